"""Screenshot of the magnify widget in a real napari window, for the README.

Opens the "Vibrating target" sample through the plugin manifest, docks the "Motion
magnification" widget the way a user would, runs it, and saves the whole window (dock
included) with the source and the magnified output side by side.

Run it under a virtual display::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot_widget.py

Writes ``docs/images/magnify_widget.png`` (atomically; ``--out`` to change it).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs/images/magnify_widget.png"))
    parser.add_argument("--method", default="phase")
    parser.add_argument("--alpha", type=float, default=20.0)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for Run")
    args = parser.parse_args(argv)

    import napari
    from qtpy.QtWidgets import QApplication

    # keep the user's widget settings out of the picture: start from defaults
    os.environ.setdefault("NAPARI_VMM_CONFIG_DIR", tempfile.mkdtemp(prefix="vmm-screenshot-"))
    viewer = napari.Viewer(title="napari-vmm", show=True)
    viewer.window.resize(1500, 900)
    viewer.open_sample("napari-vmm", "vibrating_target")
    source = viewer.layers[-1]
    _, widget = viewer.window.add_plugin_dock_widget("napari-vmm", "Motion magnification")

    widget.layer = source
    widget._method.value = args.method
    widget._alpha.value = args.alpha
    info = source.metadata["napari_vmm"]["sample"]
    widget.set_band(0.5 * info["freq_hz"], 1.5 * info["freq_hz"])
    widget._temporal.value = "ideal"
    if widget.run() is None:
        print("error: the widget refused to run (see the notification)", file=sys.stderr)
        return 1
    deadline = time.monotonic() + args.timeout
    while widget.is_running:
        if time.monotonic() > deadline:
            print("error: magnification did not finish in time", file=sys.stderr)
            return 1
        QApplication.processEvents()
        time.sleep(0.02)
    name = f"{source.name}_magnified"
    if name not in viewer.layers:
        print("error: no magnified layer was added", file=sys.stderr)
        return 1

    # side by side, at the frame of largest displacement (a quarter period)
    grid = viewer.canvas.grid
    grid.enabled = True
    grid.stride = 1
    quarter = round(info["fps"] / info["freq_hz"] / 4)
    viewer.dims.set_current_step(0, quarter)
    viewer.layers.selection.active = viewer.layers[name]
    text = viewer.canvas.overlays.text
    text.visible = True
    text.position = "top_left"
    text.font_size = 8
    text.text = (f"left: source   right: {args.method}, α = {args.alpha:g}\n"
                 f"frame {quarter}: largest displacement")
    viewer.reset_view()
    for _ in range(20):
        QApplication.processEvents()
        time.sleep(0.05)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp.png")
    viewer.screenshot(str(tmp), canvas_only=False)
    os.replace(tmp, out)
    print(f"wrote {out}")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
