"""File-backed videos in the Magnify widget: true capture rate, progress and cancel."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari.utils.notifications import notification_manager  # noqa: E402

from napari_vmm._napari._qt.magnify import MagnifyWidget  # noqa: E402
from napari_vmm.io import open_video, write_video  # noqa: E402

pytestmark = pytest.mark.gui
WAIT_MS = 120_000


def _errors(before: int) -> list[str]:
    return [str(n.message) for n in notification_manager.records[before:]
            if n.severity.name == "ERROR"]


def test_high_speed_video_with_true_capture_rate(make_napari_viewer, qtbot, shared_video,
                                                 tmp_path):
    """guitar_600fps stored at 29.97 fps (as high-speed footage usually is): the user sets
    600 fps in the widget and magnifies the low E string at 72-92 Hz."""
    src = open_video(shared_video("guitar_600fps.mp4"))
    frames = np.asarray(src[:96])
    stored = tmp_path / "guitar_stored.mp4"
    write_video(stored, frames, fps=29.97)

    viewer = make_napari_viewer()
    layer = viewer.open(str(stored), plugin="napari-vmm")[0]
    widget = MagnifyWidget(viewer)
    assert widget.layer is layer
    assert widget._fps.enabled and widget._fps.value == pytest.approx(29.97)
    assert "capture rate" in widget._fps_note.value
    widget._method.value = "linear"
    widget._alpha.value = 50.0
    widget._temporal.value = "ideal"
    widget.set_band(72.0, 92.0)
    before = len(notification_manager.records)
    assert widget.run() is None or qtbot.waitUntil(lambda: not widget.is_running,
                                                   timeout=WAIT_MS) is None
    msgs = _errors(before)
    assert msgs and "fps field" in msgs[-1] and "--fps" not in msgs[-1], msgs

    widget._fps.value = 600.0  # the true capture rate
    assert layer.scale[0] == pytest.approx(1 / 600)
    assert layer.metadata["napari_vmm"]["video"]["capture_fps"] == 600.0
    assert widget.band_hz() == (72.0, 92.0)
    assert "--fps 600" in widget.command()
    before = len(notification_manager.records)
    assert widget.run() is not None
    qtbot.waitUntil(lambda: not widget.is_running, timeout=WAIT_MS)
    assert _errors(before) == []
    out = viewer.layers[f"{layer.name}_linear"]
    assert out.scale[0] == pytest.approx(1 / 600)
    meta = out.metadata["napari_vmm"]
    assert meta["params"]["fps"] == 600.0
    assert meta["video"]["capture_fps"] == 600.0
    assert meta["video"]["container_fps"] == pytest.approx(29.97)
    diff = np.abs(np.asarray(out.data).astype(int) - frames.astype(int))
    assert diff.mean() > 0.5  # the strings move more


def _file_clip(tmp_path, n=240, hw=(192, 256)):
    from napari_vmm.core.samples import translating_texture

    texture = translating_texture(n, hw, 30.0, 1.0, 1.0)
    frames = np.repeat(np.rint(texture * 255).astype(np.uint8)[..., None], 3, axis=-1)
    path = tmp_path / "clip.mp4"
    write_video(path, frames, fps=30.0)
    return path


def test_file_backed_run_has_fine_progress_and_cancels_promptly(make_napari_viewer, qtbot,
                                                                tmp_path):
    """A video opened from file: progress at least every 16 frames, Cancel within 2 s."""
    viewer = make_napari_viewer()
    layer = viewer.open(str(_file_clip(tmp_path)), plugin="napari-vmm")[0]
    assert type(layer.data).__module__.startswith("dask")
    widget = MagnifyWidget(viewer)
    widget._method.value = "riesz"
    widget._temporal.value = "ideal"
    widget.set_band(0.5, 3.0)
    progress, finished = [], []
    worker = widget.run()
    assert worker is not None
    worker.yielded.connect(progress.append)
    worker.finished.connect(lambda: finished.append(True))
    qtbot.waitUntil(lambda: len(progress) >= 3, timeout=WAIT_MS)
    done, total = progress[-1]
    assert total >= 2 * 240 / 16  # two passes over the clip, <= 16 frames a step
    t0 = time.perf_counter()
    widget.cancel()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=WAIT_MS)
    took = time.perf_counter() - t0
    assert took < 2.0, f"cancel took {took:.2f} s"
    assert widget._run_btn.enabled and not widget._cancel_btn.enabled
    # the worker itself stops after the step in progress
    seen = len(progress)
    qtbot.waitUntil(lambda: bool(finished), timeout=WAIT_MS)
    assert len(progress) - seen <= 1 and progress[-1][0] < total
    qtbot.wait(200)
    assert f"{layer.name}_riesz" not in viewer.layers
