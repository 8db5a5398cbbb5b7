"""Screenshot of the magnify widget in a real napari window, for the README.

Opens the "Vibrating target" sample through the plugin manifest, docks the "Motion
magnification" widget the way a user would, runs it, and saves the whole window (dock
included) with the source and the magnified output side by side.

Run it under a virtual display::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot_widget.py

Writes ``docs/images/magnify_widget.png`` (atomically; ``--out`` to change it; ``--advanced``
expands the widget's Advanced section).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _screens import open_viewer, save_window, settle, wait_until

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs/images/magnify_widget.png"))
    parser.add_argument("--method", default="phase")
    parser.add_argument("--alpha", type=float, default=20.0)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for Run")
    parser.add_argument("--advanced", action="store_true",
                        help="show the widget's Advanced section expanded")
    args = parser.parse_args(argv)

    viewer = open_viewer((1500, 900))
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
    if not wait_until(lambda: not widget.is_running, args.timeout, "magnification"):
        return 1
    name = f"{source.name}_{args.method}"  # outputs are named <source>_<method>
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
    if args.advanced:
        widget._advanced.expand(animate=False)
    viewer.reset_view()
    settle()
    save_window(viewer, args.out)
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
