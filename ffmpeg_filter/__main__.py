"""``python -m ffmpeg_filter``: the same as ``vmm-filter``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
