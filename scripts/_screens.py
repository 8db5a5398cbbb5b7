"""Shared helpers of the screenshot scripts: a fresh viewer, event pumping, atomic saving."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path


def open_viewer(size: tuple[int, int] = (1500, 900)):
    """A shown napari viewer that starts from the widgets' default settings."""
    import napari

    # keep the user's widget settings out of the picture: start from defaults
    os.environ.setdefault("NAPARI_VMM_CONFIG_DIR", tempfile.mkdtemp(prefix="vmm-screenshot-"))
    viewer = napari.Viewer(title="napari-vmm", show=True)
    viewer.window.resize(*size)
    return viewer


def settle(rounds: int = 20, pause: float = 0.05) -> None:
    """Let Qt draw: process events ``rounds`` times, ``pause`` seconds apart."""
    from qtpy.QtWidgets import QApplication

    for _ in range(rounds):
        QApplication.processEvents()
        time.sleep(pause)


def wait_until(done, timeout: float, what: str) -> bool:
    """Pump events until ``done()``; print an error and return False after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            print(f"error: {what} did not finish in time", file=sys.stderr)
            return False
        settle(1, 0.02)
    return True


def save_window(viewer, out: str | Path) -> Path:
    """Screenshot the whole window (docks included) to ``out``, atomically."""
    from napari_vmm.io.atomic import atomic_output

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as tmp:
        viewer.screenshot(tmp, canvas_only=False)
    print(f"wrote {out}")
    return out
