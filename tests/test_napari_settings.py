"""The Magnify widget's saved settings: isolation, what is persisted, stale files."""

from __future__ import annotations

import json
import tempfile

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari.utils.notifications import notification_manager  # noqa: E402

from napari_vmm._napari._qt.magnify import MagnifyWidget  # noqa: E402
from napari_vmm._napari.settings import (  # noqa: E402
    persistable,
    read_settings,
    settings_path,
    zarr_output_problem,
)
from napari_vmm.core.samples import translating_texture  # noqa: E402

pytestmark = pytest.mark.gui


def _clip(n: int = 20) -> np.ndarray:
    return np.rint(translating_texture(n, (32, 48), 30.0, 3.0, 0.5) * 255).astype(np.uint8)


def _warnings(before: int) -> list[str]:
    return [str(n.message) for n in notification_manager.records[before:]
            if n.severity.name in ("ERROR", "WARNING")]


def test_session_never_points_at_the_user_config(monkeypatch):
    """Outside any test's fixture (after teardown), saves go to a session temp dir."""
    import os

    monkeypatch.delenv("NAPARI_VMM_CONFIG_DIR")  # what pytest-qt sees after teardown
    path = str(settings_path())
    assert path.startswith(tempfile.gettempdir()), path
    assert not path.startswith(os.path.expanduser("~")), path


def test_pending_save_goes_where_it_was_scheduled(make_napari_viewer, qtbot, monkeypatch,
                                                  tmp_path):
    """A save timer firing after the config dir moved (a test's teardown) keeps its file."""
    first, later = tmp_path / "first", tmp_path / "later"
    monkeypatch.setenv("NAPARI_VMM_CONFIG_DIR", str(first))
    widget = MagnifyWidget(make_napari_viewer())
    widget._alpha.value = 42.0  # schedules a save in 300 ms
    assert widget._save_timer.isActive()
    monkeypatch.setenv("NAPARI_VMM_CONFIG_DIR", str(later))
    qtbot.waitUntil(lambda: not widget._save_timer.isActive(), timeout=5000)
    assert not (later / "magnify_widget.json").exists()
    saved = json.loads((first / "magnify_widget.json").read_text())
    assert saved["params"]["alpha"] == 42.0


def test_process_local_scheduler_and_temp_paths_are_not_saved(make_napari_viewer, tmp_path):
    widget = MagnifyWidget(make_napari_viewer())
    widget._scheduler.value = "inproc://10.0.0.1/1234/1"
    widget._zarr_out.value = str(tmp_path / "out.zarr")
    widget.save_settings()
    saved = json.loads(settings_path().read_text())
    assert saved["dask_scheduler"] == "" and saved["zarr_output"] == ""
    assert persistable({"dask_scheduler": "tcp://host:8786", "zarr_output": "/data/o.zarr"}) \
        == {"dask_scheduler": "tcp://host:8786", "zarr_output": "/data/o.zarr"}


def test_vanished_zarr_folder_is_unusable(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "elsewhere"))  # tmp_path: not temp
    assert zarr_output_problem(str(tmp_path / "out.zarr")) is None
    assert "no longer exists" in zarr_output_problem(str(tmp_path / "gone" / "out.zarr"))


def test_stale_settings_still_give_an_output_layer(make_napari_viewer, qtbot, tmp_path,
                                                   monkeypatch):
    """A file naming a dead in-process scheduler and a vanished Zarr folder: one warning,
    local defaults, and Run adds the output layer."""
    da = pytest.importorskip("dask.array")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "elsewhere"))
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "version": "0.1.0",
        "params": {"method": "linear", "alpha": 10.0, "band": [1.0, 6.0], "fps": 30.0,
                   "temporal": "ideal", "mode": "temporal", "reference": 0, "device": "cpu",
                   "options": {}},
        "dask_scheduler": "inproc://192.0.2.2/7437/1",
        "zarr_output": str(tmp_path / "vanished" / "out.zarr"),
    }))
    state, warning = read_settings()
    assert state["dask_scheduler"] == "" and state["zarr_output"] == ""
    assert "inproc://" in warning and "no longer exists" in warning

    viewer = make_napari_viewer()
    viewer.add_image(da.from_array(_clip(), chunks=(4, 32, 48)), name="lazy",
                     scale=(1 / 30, 1, 1), units=("s", "um", "um"))
    before = len(notification_manager.records)
    widget = MagnifyWidget(viewer)
    msgs = _warnings(before)
    assert len(msgs) == 1 and "local default" in msgs[0], msgs
    assert widget._scheduler.value == "" and widget._zarr_out.value == ""
    assert widget.run() is not None
    qtbot.waitUntil(lambda: not widget.is_running, timeout=60_000)
    assert "lazy_linear" in viewer.layers
    assert _warnings(before) == msgs


def test_saved_unreachable_scheduler_falls_back_to_local_threads(make_napari_viewer, qtbot):
    """A remembered tcp:// scheduler that is gone: one warning, the run uses local threads."""
    da = pytest.importorskip("dask.array")
    pytest.importorskip("distributed")
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"params": {"method": "linear", "band": [1.0, 6.0]},
                                "dask_scheduler": "tcp://127.0.0.1:9"}))
    viewer = make_napari_viewer()
    viewer.add_image(da.from_array(_clip(), chunks=(4, 32, 48)), name="lazy",
                     scale=(1 / 30, 1, 1), units=("s", "um", "um"))
    widget = MagnifyWidget(viewer)
    assert widget._scheduler.value == "tcp://127.0.0.1:9"
    before = len(notification_manager.records)
    assert widget.run() is not None
    qtbot.waitUntil(lambda: not widget.is_running, timeout=60_000)
    msgs = _warnings(before)
    assert len(msgs) == 1 and "local threads" in msgs[0], msgs
    assert any(name.startswith("lazy_") for name in (layer.name for layer in viewer.layers))
