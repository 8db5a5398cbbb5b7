"""Generate the bundled sample clips in sample_data/ with their true parameters beside them.

Run: python scripts/make_sample_data.py   (deterministic: same seed, same files)
"""

from __future__ import annotations

import json
from pathlib import Path

from napari_vmm.core.samples import pulsing_timelapse, vibrating_target
from napari_vmm.io import write_stack, write_video

OUT = Path(__file__).resolve().parent.parent / "sample_data"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    frames, info = vibrating_target(n_frames=120, shape=(144, 192), fps=30.0, freq_hz=2.0,
                                    amplitude_px=0.25)
    write_video(OUT / "vibrating_target.mp4", frames, info["fps"], codec="h264-lossless")
    info.update(file="vibrating_target.mp4", codec="h264 lossless (qp 0, yuv444p)",
                suggested={"method": "riesz", "alpha": 20, "band_hz": [1.5, 2.5]})
    (OUT / "vibrating_target.json").write_text(json.dumps(info, indent=2) + "\n")

    frames, info = pulsing_timelapse(n_frames=100, shape=(128, 128), fps=10.0, freq_hz=0.5,
                                     amplitude_px=0.4)
    write_stack(OUT / "pulsing_timelapse.tif", frames, frames.shape, frames.dtype)
    info.update(file="pulsing_timelapse.tif",
                suggested={"method": "phase", "alpha": 15, "band_hz": [0.3, 0.8]})
    (OUT / "pulsing_timelapse.json").write_text(json.dumps(info, indent=2) + "\n")
    for f in sorted(OUT.iterdir()):
        print(f"{f.name}: {f.stat().st_size} bytes")


if __name__ == "__main__":
    main()
