import sys

from napari_vmm.cli import main

sys.exit(main())
