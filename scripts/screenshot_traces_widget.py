"""Screenshot of the "Motion traces" widget on a real clip, for the README and docs.

Opens ../shared/videos/cardiomyocyte_zdisc.avi through the plugin's reader, draws three
rectangular ROIs on a Shapes layer, docks "Motion traces" the way a user would, runs the
analysis, picks the band on ROI 1's main peak and saves the window.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot_traces_widget.py

Writes ``docs/images/motion_traces_widget.png`` (atomically; ``--out`` to change it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from _screens import open_viewer, save_window, settle, wait_until

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "videos" / "cardiomyocyte_zdisc.avi"
ROIS_XYWH = [(310, 180, 70, 90), (150, 140, 80, 80), (30, 230, 60, 60)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default=str(CLIP))
    parser.add_argument("--out", default=str(ROOT / "docs/images/motion_traces_widget.png"))
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    if not Path(args.clip).is_file():
        print(f"error: {args.clip} is absent", file=sys.stderr)
        return 1

    viewer = open_viewer((1500, 950))
    (image,) = viewer.open(args.clip, plugin="napari-vmm")
    rects = [np.array([[y - 0.5, x - 0.5], [y - 0.5, x + w - 0.5], [y + h - 0.5, x + w - 0.5],
                       [y + h - 0.5, x - 0.5]]) for x, y, w, h in ROIS_XYWH]
    viewer.add_shapes(rects, shape_type="rectangle", name="ROIs", edge_width=3,
                      edge_color=["#1f77b4", "#ff7f0e", "#2ca02c"],  # the plots' C0, C1, C2
                      face_color="transparent", scale=image.scale[-2:])
    _, widget = viewer.window.add_plugin_dock_widget("napari-vmm", "Motion traces")
    widget.layer = image
    widget.shapes = viewer.layers["ROIs"]
    if widget.run() is None:
        print(f"error: the widget refused to run: {widget._status.value}", file=sys.stderr)
        return 1
    if not wait_until(lambda: not widget.is_running, args.timeout, "the analysis"):
        return 1
    if widget.result is None:
        print(f"error: no result: {widget._status.value}", file=sys.stderr)
        return 1
    widget.pick_peak(widget.result.rois[0].dominant_hz)
    viewer.dims.set_current_step(0, 20)  # mid-contraction
    viewer.layers.selection.active = image
    settle()
    viewer.reset_view()
    settle()
    save_window(viewer, args.out)
    print(widget._status.value)
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
