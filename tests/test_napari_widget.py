"""The magnify dock widget in a real napari viewer (run under ``xvfb-run -a pytest``)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari.utils.notifications import notification_manager  # noqa: E402

import napari_vmm  # noqa: E402
from napari_vmm._napari._qt.magnify import MagnifyWidget  # noqa: E402
from napari_vmm._napari.model import shared_model  # noqa: E402
from napari_vmm._napari.settings import settings_path  # noqa: E402
from napari_vmm.core.samples import translating_texture  # noqa: E402

pytestmark = pytest.mark.gui

FPS = 30.0
WAIT_MS = 60_000


def tiny_clip(n: int = 20, rgb: bool = False) -> np.ndarray:
    """uint8 (n, 32, 48[, 3]) texture moving 0.5 px at 3 Hz."""
    frames = translating_texture(n, (32, 48), FPS, 3.0, 0.5)
    frames = np.rint(frames * 255).astype(np.uint8)
    return np.repeat(frames[..., None], 3, axis=-1) if rgb else frames


def add_clip(viewer, data, name="clip", fps=FPS, **kwargs):
    kwargs.setdefault("scale", (1 / fps, 0.5, 0.5))
    kwargs.setdefault("units", ("s", "um", "um"))
    kwargs.setdefault("axis_labels", ("t", "y", "x"))
    return viewer.add_image(data, name=name, **kwargs)


def configure(widget, method="linear", alpha=10.0, band=(1.0, 6.0), temporal="ideal"):
    widget._method.value = method
    widget._alpha.value = alpha
    widget.set_band(*band)
    widget._temporal.value = temporal


def new_errors(before: int) -> list[str]:
    return [str(n.message) for n in notification_manager.records[before:]
            if n.severity.name in ("ERROR", "WARNING")]


def wait_done(qtbot, widget):
    qtbot.waitUntil(lambda: not widget.is_running, timeout=WAIT_MS)


def test_run_adds_magnified_layer(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    source = add_clip(viewer, tiny_clip(), contrast_limits=(10, 240))
    widget = MagnifyWidget(viewer)
    assert widget.layer is source
    assert widget._fps.value == pytest.approx(FPS) and not widget._fps.enabled
    configure(widget)

    worker = widget.run()
    assert worker is not None
    wait_done(qtbot, widget)

    out = viewer.layers["clip_linear"]
    assert out.data.shape == source.data.shape
    assert out.data.dtype == np.uint8
    np.testing.assert_allclose(out.scale, source.scale)
    np.testing.assert_allclose(out.translate, source.translate)
    assert out.units == source.units
    assert tuple(out.axis_labels) == ("t", "y", "x")
    assert tuple(out.contrast_limits) == (10, 240)
    meta = out.metadata["napari_vmm"]
    assert meta["version"] == napari_vmm.__version__
    assert meta["source"] == "clip"
    assert meta["params"]["method"] == "linear"
    assert meta["params"]["alpha"] == pytest.approx(10.0)
    assert tuple(meta["params"]["band"]) == pytest.approx((1.0, 6.0))
    assert meta["params"]["fps"] == pytest.approx(FPS)
    # magnified motion: the output differs from the input, more so than rounding
    diff = np.abs(out.data.astype(int) - source.data.astype(int))
    assert diff.max() > 3
    assert source.data is not out.data


def test_run_on_dask_rgb_layer(make_napari_viewer, qtbot):
    da = pytest.importorskip("dask.array")
    viewer = make_napari_viewer()
    frames = tiny_clip(rgb=True)
    source = add_clip(viewer, da.from_array(frames, chunks=(4, 32, 48, 3)), name="rgb",
                      rgb=True)
    widget = MagnifyWidget(viewer)
    configure(widget, method="linear", temporal="butterworth")
    widget.run()
    wait_done(qtbot, widget)
    out = viewer.layers["rgb_linear"]
    assert out.rgb and out.data.shape == frames.shape and out.data.dtype == np.uint8
    assert isinstance(out.data, np.ndarray)
    assert type(source.data).__module__.startswith("dask")  # the input stays lazy


def test_cancel_stops_within_one_chunk(make_napari_viewer, qtbot, monkeypatch):
    import time

    import napari_vmm.core.engine as engine

    real = engine.iter_magnify
    cancel_requested = []
    chunks_after_cancel = []

    def slow_iter_magnify(frames, out, **kwargs):
        """The real engine in chunks of 2 frames, with a pause between chunks."""
        for done, total in real(frames, out, **{**kwargs, "chunk_size": 2}):
            if cancel_requested:
                chunks_after_cancel.append(done)
            yield done, total
            time.sleep(0.05)

    monkeypatch.setattr(engine, "iter_magnify", slow_iter_magnify)
    viewer = make_napari_viewer()
    add_clip(viewer, tiny_clip(n=40))
    widget = MagnifyWidget(viewer)
    configure(widget, temporal="butterworth")
    progress = []
    worker = widget.run()
    worker.yielded.connect(progress.append)
    qtbot.waitUntil(lambda: len(progress) >= 2, timeout=WAIT_MS)
    cancel_requested.append(True)
    widget.cancel()
    wait_done(qtbot, widget)

    assert "clip_linear" not in viewer.layers
    assert progress[-1][0] < 40
    assert len(chunks_after_cancel) <= 1  # only the chunk in progress finishes
    assert widget._run_btn.enabled and not widget._cancel_btn.enabled


def test_bad_layers_give_notifications(make_napari_viewer):
    viewer = make_napari_viewer()
    bad = {
        "2-D": viewer.add_image(np.zeros((32, 48), np.uint8), name="flat"),
        "multiscale": viewer.add_image(
            [np.zeros((20, 32, 48), np.uint8), np.zeros((20, 16, 24), np.uint8)],
            multiscale=True, name="pyramid"),
        "dtype int32": viewer.add_image(np.zeros((20, 32, 48), np.int32), name="ints"),
        "RGBA": viewer.add_image(np.zeros((20, 32, 48, 4), np.uint8), rgb=True, name="rgba"),
        "single frame": viewer.add_image(np.zeros((1, 32, 48), np.uint8), name="one"),
    }
    widget = MagnifyWidget(viewer)
    for expected, layer in bad.items():
        widget.layer = layer
        before = len(notification_manager.records)
        assert widget.run() is None
        assert widget.preview() is None
        assert not widget.is_running
        msgs = new_errors(before)
        assert msgs and all(expected in m for m in msgs), (expected, msgs)
    assert len(viewer.layers) == len(bad)  # no output layer was added


def test_engine_error_in_worker_gives_notification(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    add_clip(viewer, tiny_clip())
    widget = MagnifyWidget(viewer)
    configure(widget, band=(1.0, 20.0))  # above Nyquist at 30 fps: the engine refuses it
    before = len(notification_manager.records)
    widget.run()
    wait_done(qtbot, widget)
    msgs = new_errors(before)
    assert any("Nyquist" in m for m in msgs), msgs
    assert "clip_linear" not in viewer.layers


def test_fps_editable_without_time_axis(make_napari_viewer):
    viewer = make_napari_viewer()
    widget = MagnifyWidget(viewer)
    assert widget.layer is None
    viewer.add_image(tiny_clip(), name="plain")
    assert widget.layer.name == "plain"  # the first image layer is picked up
    assert widget._fps.enabled
    assert "no time unit" in widget._fps_note.value
    viewer.add_image(tiny_clip(), name="timed", scale=(0.04, 1, 1), units=("ms", "um", "um"))
    widget.layer = "timed"
    assert widget._fps.value == pytest.approx(25_000.0)  # 0.04 ms per frame
    assert not widget._fps.enabled


def test_band_in_bpm_and_options_follow_method(make_napari_viewer):
    viewer = make_napari_viewer()
    add_clip(viewer, tiny_clip())
    widget = MagnifyWidget(viewer)
    widget.set_band(1.0, 2.0)
    widget._band_unit.value = "BPM"
    assert (widget._band_lo.value, widget._band_hi.value) == pytest.approx((60.0, 120.0))
    assert widget.band_hz() == pytest.approx((1.0, 2.0))
    widget.set_band(0.5, 1.5)
    assert widget._band_hi.value == pytest.approx(90.0)
    assert widget.params().band == pytest.approx((0.5, 1.5))

    from napari_vmm.core.registry import declared_options

    for name in ("phase", "linear"):
        widget._method.value = name
        declared = set(declared_options(name))
        assert set(widget._option_widgets) == declared
        assert set(widget.params().options) == declared


def test_docks_of_a_viewer_share_one_model(make_napari_viewer):
    """Two magnify docks of a viewer show one evented model; another viewer has its own."""
    from napari_vmm.core.registry import declared_options

    viewer, other = make_napari_viewer(), make_napari_viewer()
    add_clip(viewer, tiny_clip())
    add_clip(other, tiny_clip())
    a, b = MagnifyWidget(viewer), MagnifyWidget(other)
    assert a.model is shared_model(viewer) and b.model is shared_model(other)
    assert a.model is not b.model
    # docked from the Plugins menu, the widget gets a PublicOnlyProxy of the viewer
    _, docked = viewer.window.add_plugin_dock_widget("napari-vmm", "Motion magnification")
    assert isinstance(docked, MagnifyWidget) and docked.viewer is not viewer
    assert docked.model is a.model
    # an edit in one dock shows in the other (not in the other viewer's)
    a._alpha.value = 37.0
    assert a.model.params.alpha == 37.0 and docked._alpha.value == 37.0
    assert b._alpha.value != 37.0
    docked._method.value = "phase"
    assert a._method.value == "phase"
    assert set(a._option_widgets) == set(declared_options("phase"))
    # a band written into the model (what Motion traces does) reaches both docks
    a.model.set_band(2.0, 4.0)
    for dock in (a, docked):
        assert dock.band_hz() == pytest.approx((2.0, 4.0))
    assert "band set to 2-4 Hz" in docked._status.value
    assert b.band_hz() != pytest.approx((2.0, 4.0))
    # BPM is the dock's display unit; the model keeps Hz
    docked._band_unit.value = "BPM"
    assert a._band_unit.value == "BPM" and a._band_hi.value == pytest.approx(240.0)
    assert a.model.params.band == pytest.approx((2.0, 4.0))
    with pytest.raises(napari_vmm.VMMError, match="band"):
        a.set_band(4.0, 2.0)


def test_params_persist_and_copy_command(make_napari_viewer, qtbot):
    from qtpy.QtWidgets import QApplication

    viewer = make_napari_viewer()
    add_clip(viewer, tiny_clip())
    widget = MagnifyWidget(viewer)
    configure(widget, method="linear", alpha=33.0, band=(2.0, 5.0), temporal="fir")
    cmd = widget.copy_command()
    assert cmd == widget.params().to_cli("clip.tif", "clip_linear.tif")
    assert QApplication.clipboard().text() == cmd
    assert settings_path().is_file()

    again = MagnifyWidget(make_napari_viewer())
    p = again.params()
    assert (p.method, p.alpha, p.temporal) == ("linear", 33.0, "fir")
    assert p.band == pytest.approx((2.0, 5.0))


def test_preview_with_roi_crops_and_keeps_outside(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    source = add_clip(viewer, tiny_clip(n=24), scale=(1 / FPS, 1, 1), translate=(0, 5, 7))
    # a rectangle drawn on frame 3 applies to every frame; data coords of the image: rows
    # 10-20, cols 14-30
    roi = viewer.add_shapes([np.array([[3, 15, 21], [3, 25, 21], [3, 25, 37], [3, 15, 37]])],
                            shape_type="rectangle", name="roi")
    widget = MagnifyWidget(viewer)
    widget.layer = source
    configure(widget)
    widget._roi.value = roi
    widget._feather.value = 2.0
    widget._preview_frames.value = 12
    widget.preview()
    wait_done(qtbot, widget)
    prev = viewer.layers["clip_linear_preview"]
    assert prev.data.shape[0] == 12
    assert prev.data.shape[1] < 32 or prev.data.shape[2] < 48
    oy, ox = prev.metadata["napari_vmm"]["preview"]["yx_offset"]
    np.testing.assert_allclose(prev.translate, (0, 5 + oy, 7 + ox))
    assert prev.metadata["napari_vmm"]["roi"] == "roi"

    out = prev.data.astype(int)
    src = source.data[:12, oy:oy + out.shape[1], ox:ox + out.shape[2]].astype(int)
    roi_rows, roi_cols = slice(12 - oy, 18 - oy), slice(18 - ox, 26 - ox)
    assert np.abs(out[:, roi_rows, roi_cols] - src[:, roi_rows, roi_cols]).max() > 3
    # the crop keeps a margin around the feathered ROI, where nothing changes
    outside = np.ones(out.shape[1:], bool)
    outside[10 - 3 - oy:21 + 3 - oy, 14 - 3 - ox:31 + 3 - ox] = False
    assert outside.any()
    assert np.abs(out[:, outside] - src[:, outside]).max() <= 1


def test_dask_settings_persist_and_memory_estimate(make_napari_viewer, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "elsewhere"))  # keep tmp_path
    viewer = make_napari_viewer()
    add_clip(viewer, tiny_clip())
    widget = MagnifyWidget(viewer)
    configure(widget, method="linear", temporal="ideal")
    assert widget.update_memory_estimate() == ""  # not on the Dask route: hidden
    assert not widget._memory.visible
    widget._zarr_out.value = str(tmp_path / "first.zarr")  # a Zarr output: the Dask route
    text = widget.update_memory_estimate()
    assert "MiB per task" in text and "whole" in text  # shown before any run
    assert widget._memory.value == text
    widget._temporal.value = "butterworth"
    assert "segments" in widget.update_memory_estimate()
    widget._scheduler.value = "local:2"
    widget._zarr_out.value = str(tmp_path / "out.zarr")
    widget.save_settings()
    again = MagnifyWidget(make_napari_viewer())
    assert again._scheduler.value == "local:2"
    assert again._zarr_out.value == str(tmp_path / "out.zarr")
    # A bad scheduler or Zarr path is refused before anything runs, with one message.
    for field, value, expected in ((widget._scheduler, "nowhere", "Dask scheduler"),
                                   (widget._zarr_out, str(tmp_path / "o.tif"), ".zarr")):
        field.value = value
        before = len(notification_manager.records)
        assert widget.run() is None
        msgs = new_errors(before)
        assert msgs and expected in msgs[-1], msgs
        widget._scheduler.value, widget._zarr_out.value = "", ""


def test_dask_layer_on_cluster_to_zarr_lazy_layer(make_napari_viewer, qtbot, tmp_path):
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    from napari_vmm.core.engine import magnify

    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                       dashboard_address=None, silence_logs=40)
    try:
        viewer = make_napari_viewer()
        frames = tiny_clip()
        add_clip(viewer, da.from_array(frames, chunks=(4, 32, 48)), name="lazy")
        widget = MagnifyWidget(viewer)
        configure(widget, method="linear", temporal="ideal")
        widget._scheduler.value = cluster.scheduler_address
        widget._zarr_out.value = str(tmp_path / "out.zarr")
        assert widget.run() is not None
        wait_done(qtbot, widget)
        out = viewer.layers["lazy_linear"]
        assert type(out.data).__module__.startswith("dask")  # added back lazily, from Zarr
        ref = magnify(frames, **widget.params().engine_kwargs())
        assert np.abs(np.asarray(out.data).astype(int) - ref.astype(int)).max() <= 1
        assert out.metadata["napari_vmm"]["dask"]["scheduler"] == cluster.scheduler_address
        assert (tmp_path / "out.zarr").is_dir()
        np.testing.assert_allclose(out.scale, viewer.layers["lazy"].scale)
    finally:
        cluster.close()


def test_band_keeps_four_significant_digits(make_napari_viewer):
    """A slow time-lapse (10 s/frame) keeps the band the Traces widget sends, in Hz and BPM."""
    viewer = make_napari_viewer()
    add_clip(viewer, tiny_clip(), fps=0.1)
    widget = MagnifyWidget(viewer)
    widget.set_band(0.004, 0.02)
    assert widget.params().band == (0.004, 0.02)
    widget._band_unit.value = "BPM"
    assert (widget._band_lo.value, widget._band_hi.value) == pytest.approx((0.24, 1.2))
    assert widget.params().band == pytest.approx((0.004, 0.02), rel=1e-4)
    widget._band_unit.value = "Hz"
    assert widget.params().band == pytest.approx((0.004, 0.02), rel=1e-4)
    # a suggested band on a 30 fps clip keeps its digits
    viewer.layers.clear()
    add_clip(viewer, tiny_clip(), name="eye")
    widget.layer = "eye"
    widget.set_band(0.0758, 0.3147)
    assert widget.params().band == (0.0758, 0.3147)
    widget._band_unit.value = "BPM"
    assert widget.params().band == pytest.approx((0.0758, 0.3147), rel=1e-4)


def test_advanced_section_collapsed_with_human_labels(make_napari_viewer):
    viewer = make_napari_viewer()
    add_clip(viewer, tiny_clip())
    widget = MagnifyWidget(viewer)
    assert not widget._advanced.isExpanded()
    for inner in (widget._scheduler, widget._zarr_out, widget._options, widget._device):
        assert widget._advanced.isAncestorOf(inner.native)
    assert not widget._advanced.isAncestorOf(widget._band_lo.native)
    for name in widget._methods:
        widget._method.value = name
        labels = [w.label for w in widget._option_widgets.values()]
        assert all("_" not in label for label in labels), (name, labels)
    # collapsed, the form fits a 950 px high window
    assert widget._root.sizeHint().height() < 950 - 120
