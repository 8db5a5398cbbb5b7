"""Plugin reader, writer and sample data (no viewer needed except where marked gui)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("dask")

from napari_vmm._napari import samples  # noqa: E402
from napari_vmm._reader import CHUNK_FRAMES, napari_get_reader  # noqa: E402
from napari_vmm._writer import layer_fps, write_video_layer  # noqa: E402


@pytest.mark.parametrize("make", [samples.vibrating_target, samples.pulsing_timelapse])
def test_sample_data_layers(make):
    (layer,) = make()
    data, kwargs, kind = layer
    assert kind == "image" and data.ndim in (3, 4)
    info = kwargs["metadata"]["napari_vmm"]["sample"]
    assert kwargs["scale"][0] == pytest.approx(1 / info["fps"])
    assert kwargs["units"][0] == "s"
    assert layer_fps(kwargs) == pytest.approx(info["fps"])
    if data.ndim == 4:
        assert kwargs["rgb"] and data.dtype == np.uint8 and data.shape[-1] == 3
    else:
        assert data.dtype == np.uint16 and kwargs["units"][1] == "um"


@pytest.mark.parametrize("name", ["notes.txt", "missing.mp4", "garbage.mp4", "empty.mkv"])
def test_reader_declines_without_raising(tmp_path, name):
    path = tmp_path / name
    if name == "garbage.mp4":
        path.write_bytes(b"\x00\x01not a video" * 100)
    elif name != "missing.mp4":
        path.write_bytes(b"")
    assert napari_get_reader(str(path)) is None
    assert napari_get_reader([str(path), str(path)]) is None


def test_reader_opens_real_video_lazily(shared_video, monkeypatch):
    import dask.array as da

    from napari_vmm.io import VideoSource

    decoded = []  # (start, stop) of every decode request
    real_read_range = VideoSource._read_range

    def counting_read_range(self, start, stop):
        decoded.append((start, stop))
        return real_read_range(self, start, stop)

    monkeypatch.setattr(VideoSource, "_read_range", counting_read_range)
    path = str(shared_video("baby.mp4"))
    reader = napari_get_reader(path)
    assert reader is not None
    ((data, kwargs, kind),) = reader(path)
    assert kind == "image" and kwargs["rgb"]
    assert isinstance(data, da.Array)
    assert data.ndim == 4 and data.shape[-1] == 3 and data.dtype == np.uint8
    assert data.shape[0] > CHUNK_FRAMES and data.chunks[0][0] == CHUNK_FRAMES
    fps = kwargs["metadata"]["napari_vmm"]["video"]["fps"]
    assert 20 < fps < 60
    assert kwargs["scale"][0] == pytest.approx(1 / fps) and kwargs["units"][0] == "s"
    assert decoded == []  # opening decodes nothing
    frame = np.asarray(data[CHUNK_FRAMES + 1])
    assert frame.shape == data.shape[1:] and frame.std() > 1
    assert decoded == [(CHUNK_FRAMES, 2 * CHUNK_FRAMES)]  # only the chunk holding that frame
    # reads of a few frames at a time, as the engine does, decode each chunk once
    for t0 in range(0, 2 * CHUNK_FRAMES - 3, 3):
        assert np.asarray(data[t0:t0 + 3]).shape[0] == 3
    assert sorted(decoded) == [(0, CHUNK_FRAMES), (CHUNK_FRAMES, 2 * CHUNK_FRAMES)]


def test_writer_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(12, 32, 48, 3), dtype=np.uint8)
    path = str(tmp_path / "out.mp4")
    meta = {"scale": (0.04, 1, 1), "units": ("s", "pixel", "pixel"), "metadata": {}}
    assert write_video_layer(path, frames, meta) == [path]
    ((data, kwargs, _),) = napari_get_reader(path)(path)
    assert data.shape == frames.shape
    assert kwargs["metadata"]["napari_vmm"]["video"]["fps"] == pytest.approx(25.0)


@pytest.mark.gui
def test_open_sample_and_preview_it(make_napari_viewer, qtbot):
    pytest.importorskip("napari")
    from napari_vmm._napari._qt.magnify import MagnifyWidget

    viewer = make_napari_viewer()
    viewer.open_sample("napari-vmm", "pulsing_timelapse")
    layer = viewer.layers[-1]
    assert layer.data.dtype == np.uint16
    widget = MagnifyWidget(viewer)
    assert widget.layer is layer
    info = layer.metadata["napari_vmm"]["sample"]
    assert widget._fps.value == pytest.approx(info["fps"]) and not widget._fps.enabled

    widget._method.value = "linear"
    widget._temporal.value = "ideal"
    widget.set_band(0.5 * info["freq_hz"], 2 * info["freq_hz"])
    widget._preview_frames.value = 12
    widget.preview()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=60_000)
    preview = viewer.layers[f"{layer.name}_linear_preview"]
    assert preview.data.shape == (12, *layer.data.shape[1:])
    assert preview.data.dtype == np.uint16
    assert preview.units == layer.units
    assert preview.metadata["napari_vmm"]["preview"]["frames"] == 12


def test_writer_never_overwrites_the_source_video(tmp_path):
    frames = np.zeros((4, 16, 16, 3), np.uint8)
    src = str(tmp_path / "src.mp4")
    assert write_video_layer(src, frames, {"scale": (0.1, 1, 1), "units": ("s", "px", "px")})
    before = (tmp_path / "src.mp4").read_bytes()
    ((data, kwargs, _),) = napari_get_reader(src)(src)
    assert write_video_layer(src, np.full_like(frames, 200), kwargs) == []
    assert (tmp_path / "src.mp4").read_bytes() == before


def test_large_outputs_go_to_an_anonymous_file(monkeypatch):
    pytest.importorskip("napari")
    from napari_vmm._napari import layers as _widget

    small = _widget.allocate_output((4, 8, 8), np.uint16)
    assert type(small) is np.ndarray and small.dtype == np.uint16
    monkeypatch.setattr(_widget, "MEMMAP_BYTES", 100)
    big = _widget.allocate_output((4, 8, 8, 3), np.uint8)
    assert isinstance(big, np.memmap) and big.shape == (4, 8, 8, 3)
    big[:] = 7
    assert int(big.sum()) == 7 * big.size


def test_writer_refuses_a_2d_layer_clearly(tmp_path):
    pytest.importorskip("napari")
    from napari.utils.notifications import notification_manager

    from napari_vmm._writer import write_video_layer

    before = len(notification_manager.records)
    for data, rgb in ((np.zeros((16, 16), np.uint8), False),
                      (np.zeros((16, 16, 3), np.uint8), True)):
        dst = tmp_path / "flat.mp4"
        assert write_video_layer(str(dst), data, {"rgb": rgb, "scale": (1, 1)}) == []
        assert not dst.exists()
    msgs = [str(n.message) for n in notification_manager.records[before:]]
    assert len(msgs) == 2 and all("2-D" in m and "T,Y,X" in m for m in msgs), msgs
