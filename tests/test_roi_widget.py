"""The "Motion traces" dock widget in a real napari viewer (run under ``xvfb-run -a pytest``)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from matplotlib.backend_bases import MouseEvent  # noqa: E402
from napari.utils.notifications import notification_manager  # noqa: E402

from napari_vmm._napari._qt import traces as traces_view  # noqa: E402
from napari_vmm._napari._qt.traces import MotionTracesWidget  # noqa: E402
from napari_vmm._napari.model import WidgetsModel, shared_model  # noqa: E402
from napari_vmm.core.samples import translating_texture  # noqa: E402

pytestmark = pytest.mark.gui

FPS = 30.0
F_HZ = 3.1
N = 60
WAIT_MS = 60_000


class BandLog:
    """Records the bands the traces widget puts in the shared model (all of them: an equal
    band emits no model event)."""

    def __init__(self) -> None:
        self.bands: list[tuple[float, float]] = []


@pytest.fixture
def magnify(monkeypatch):
    log = BandLog()
    real = WidgetsModel.set_band

    def record(model, lo, hi):
        log.bands.append(real(model, lo, hi))
        return log.bands[-1]

    monkeypatch.setattr(WidgetsModel, "set_band", record)
    return log


def setup_viewer(make_napari_viewer, pixel=(1.0, "pixel")):
    viewer = make_napari_viewer()
    frames = translating_texture(N, (40, 48), FPS, F_HZ, 0.5, direction=(0.0, 1.0))
    kwargs = {"scale": (1 / FPS, pixel[0], pixel[0]), "units": ("s", pixel[1], pixel[1])}
    image = viewer.add_image(np.rint(frames * 65535).astype(np.uint16), name="clip", **kwargs)
    rect = np.array([[5, 8, 10], [5, 8, 38], [5, 32, 38], [5, 32, 10]], dtype=float)
    shapes = viewer.add_shapes([rect], shape_type="rectangle", name="rois", ndim=3,
                               scale=image.scale, units=image.units)
    return viewer, image, shapes


def analyse(widget, qtbot):
    worker = widget.run()
    assert worker is not None
    qtbot.waitUntil(lambda: not widget.is_running, timeout=WAIT_MS)
    assert widget.result is not None, widget._status.value
    return widget.result


def test_analysis_plots_and_features(make_napari_viewer, qtbot, magnify):
    viewer, image, shapes = setup_viewer(make_napari_viewer)
    widget = MotionTracesWidget(viewer)
    assert widget.layer is image and widget.shapes is shapes
    assert widget._fps.value == pytest.approx(FPS)
    res = analyse(widget, qtbot)
    (r,) = res.rois
    assert abs(r.dominant_hz - F_HZ) <= r.freqs[1]
    assert abs(r.amplitude_px - 0.5) < 0.05 and r.peaks[0].amplitude_y < 0.02
    # two traces (x, y) on the waveform axes plus the cursor; a spectrum line
    assert len(widget.ax_wave.lines) == 3 and len(widget.ax_spec.lines) >= 1
    np.testing.assert_allclose(widget.ax_spec.lines[0].get_ydata(), r.spectrum)
    assert shapes.features["dominant_hz"][0] == pytest.approx(r.dominant_hz)
    assert "Hz" in widget._status.value


def test_cursor_follows_frame_without_recomputing(make_napari_viewer, qtbot, magnify,
                                                 monkeypatch):
    viewer, _, _ = setup_viewer(make_napari_viewer)
    widget = MotionTracesWidget(viewer)
    analyse(widget, qtbot)
    calls = []
    monkeypatch.setattr(traces_view, "analysis_job",
                        lambda *a, **k: calls.append(a) or iter(()))
    drawn = []
    monkeypatch.setattr(widget, "_draw", lambda: drawn.append(1))
    viewer.dims.set_current_step(0, 12)
    assert widget.cursor_time == pytest.approx(12 / FPS)
    viewer.dims.set_current_step(0, 45)
    assert widget.cursor_time == pytest.approx(45 / FPS)
    assert not calls and not drawn


def test_click_peak_and_drag_set_the_band(make_napari_viewer, qtbot, magnify):
    viewer, _, _ = setup_viewer(make_napari_viewer)
    widget = MotionTracesWidget(viewer)
    res = analyse(widget, qtbot)
    widget.canvas.draw()

    def at(hz, button_event):
        x, y = widget.ax_spec.transData.transform((hz, 0.0))
        y = widget.ax_spec.bbox.y0 + 5
        MouseEvent(button_event, widget.canvas, x, y, button=1)._process()

    # a click just next to the peak selects the band around the peak
    at(F_HZ + 0.2, "button_press_event")
    at(F_HZ + 0.2, "button_release_event")
    assert len(magnify.bands) == 1
    lo, hi = magnify.bands[0]
    assert lo < res.rois[0].dominant_hz < hi
    # a drag selects exactly the dragged range (inside the zoomed frequency axis)
    assert widget.ax_spec.get_xlim()[1] > 4.0
    at(1.5, "button_press_event")
    at(4.0, "button_release_event")
    assert magnify.bands[-1] == pytest.approx((1.5, 4.0), abs=0.05)
    assert widget.band == magnify.bands[-1] and "Hz" in widget._band_label.value
    # far from any peak, a click does nothing
    assert widget.pick_peak(14.0) is None and len(magnify.bands) == 2
    widget._use_suggested_band()
    assert magnify.bands[-1] == pytest.approx(res.rois[0].band)


def test_csv_export(make_napari_viewer, qtbot, magnify, tmp_path):
    viewer, _, _ = setup_viewer(make_napari_viewer, pixel=(0.5, "um"))
    widget = MotionTracesWidget(viewer)
    # the pixel size comes from the layer's scale and units
    assert widget._pixel_size.value == 0.5 and widget._unit.value == "um"
    res = analyse(widget, qtbot)
    assert abs(res.rois[0].amplitude_px - 0.5) < 0.05  # ROIs mapped through the 0.5 um scale
    traces, spectra = widget.export_csv(tmp_path / "m.csv")
    rows = list(csv.reader(traces.read_text().splitlines()))
    assert len(rows) == N + 1 and "roi1_dx_um" in rows[0]
    col, col_um = rows[0].index("roi1_dx_px"), rows[0].index("roi1_dx_um")
    np.testing.assert_allclose([float(r[col]) for r in rows[1:]], res.rois[0].dx, atol=1e-5)
    np.testing.assert_allclose([float(r[col_um]) for r in rows[1:]], 0.5 * res.rois[0].dx,
                               atol=1e-5)
    assert spectra.name == "m_spectra.csv" and spectra.exists()


def test_bad_inputs_give_one_clear_error(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    widget = MotionTracesWidget(viewer)
    before = len(notification_manager.records)
    assert widget.run() is None
    assert "image" in widget._status.value
    viewer.add_image(np.zeros((20, 32, 32), dtype=np.uint8), name="clip")
    viewer.add_shapes(name="empty", ndim=3)
    widget._reset_choices()
    assert widget.run() is None and "empty" in widget._status.value
    errors = [str(n.message) for n in notification_manager.records[before:]]
    assert len(errors) == 2 and all("Traceback" not in e for e in errors)


def test_cancel_stops_the_worker(make_napari_viewer, qtbot, magnify):
    viewer, _, _ = setup_viewer(make_napari_viewer)
    widget = MotionTracesWidget(viewer)
    worker = widget.run()
    widget.cancel()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=WAIT_MS)
    assert worker is not None
    assert widget.result is None and widget._status.value == "cancelled"
    assert widget._run_btn.enabled and not widget._cancel_btn.enabled
    # cancelling a re-run keeps the previous result and says so
    first = analyse(widget, qtbot)
    widget.run()
    widget.cancel()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=WAIT_MS)
    assert widget.result is first and widget._status.value == "cancelled"


def test_docked_from_the_menu_the_band_reaches_magnify(make_napari_viewer, qtbot):
    """Both widgets docked as a user does (napari hands each a proxy of the viewer)."""
    viewer, _, _ = setup_viewer(make_napari_viewer)
    _, magnify = viewer.window.add_plugin_dock_widget("napari-vmm", "Motion magnification")
    _, widget = viewer.window.add_plugin_dock_widget("napari-vmm", "Motion traces")
    assert isinstance(widget, MotionTracesWidget)
    analyse(widget, qtbot)
    widget.select_band(2.5, 3.75)
    assert magnify.band_hz() == pytest.approx((2.5, 3.75))
    assert widget.model is magnify.model is shared_model(viewer)


def test_a_band_chosen_before_magnify_opens_is_kept(make_napari_viewer, qtbot):
    """The band lives in the viewer's model, not in a widget: a dock opened later shows it."""
    viewer, _, _ = setup_viewer(make_napari_viewer)
    widget = MotionTracesWidget(viewer)
    analyse(widget, qtbot)
    widget.select_band(2.5, 3.75)
    _, magnify = viewer.window.add_plugin_dock_widget("napari-vmm", "Motion magnification")
    assert magnify.band_hz() == pytest.approx((2.5, 3.75))


@pytest.mark.parametrize("kind", ["rectangle", "ellipse", "polygon"])
def test_roi_masks_match_napari_rasterisation(kind):
    """Our masks agree with what napari draws (up to boundary pixels), rotated shapes too."""
    from napari.layers import Shapes

    from napari_vmm.core.analysis import rois_from_shapes

    if kind == "polygon":
        verts = np.array([[5.0, 6.0], [8.0, 40.0], [30.0, 33.0], [26.0, 10.0], [15.0, 3.0]])
    else:  # a box rotated by 30 degrees around (20, 24)
        half = np.array([[-8.0, -14.0], [-8.0, 14.0], [8.0, 14.0], [8.0, -14.0]])
        c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
        verts = half @ np.array([[c, s], [-s, c]]) + [20.0, 24.0]
    layer = Shapes([verts], shape_type=kind)
    theirs = np.asarray(layer.to_masks((40, 48))[0], dtype=bool)
    (roi,) = rois_from_shapes(layer.data, layer.shape_type)
    ours = roi.mask((40, 48))
    iou = (ours & theirs).sum() / (ours | theirs).sum()
    assert iou > 0.9, iou


def test_nan_frames_give_one_clear_toast(make_napari_viewer, qtbot, magnify):
    viewer, image, shapes = setup_viewer(make_napari_viewer)
    data = image.data.astype(np.float32) / 65535
    data[7, 10, 10] = np.nan
    nan_layer = viewer.add_image(data, name="nan", scale=image.scale, units=image.units)
    widget = MotionTracesWidget(viewer)
    widget.layer, widget.shapes = nan_layer, shapes
    before = len(notification_manager.records)
    assert widget.run() is not None
    qtbot.waitUntil(lambda: not widget.is_running, timeout=WAIT_MS)
    msgs = [str(n.message) for n in notification_manager.records[before:]
            if n.severity.name in ("ERROR", "WARNING")]
    assert len(msgs) == 1 and "NaN" in msgs[0], msgs
    assert "NaN" in widget._status.value and widget._status.native.wordWrap()


def test_layer_without_time_scale_warns_and_unlocks_fps(make_napari_viewer, qtbot, magnify):
    viewer, image, shapes = setup_viewer(make_napari_viewer)
    widget = MotionTracesWidget(viewer)
    assert not widget._fps.enabled
    plain = viewer.add_image(np.asarray(image.data), name="plain")  # no time unit
    widget.layer = plain
    assert widget._fps.enabled and "no time unit" in widget._fps_note.value
    widget._fps.value = 30.0
    before = len(notification_manager.records)
    analyse(widget, qtbot)
    msgs = [str(n.message) for n in notification_manager.records[before:]
            if n.severity.name == "WARNING"]
    assert any("no time scale" in m for m in msgs), msgs


def test_spectrum_zooms_to_content_and_has_peak_controls(make_napari_viewer, qtbot, magnify):
    viewer, image, shapes = setup_viewer(make_napari_viewer)
    widget = MotionTracesWidget(viewer)
    widget._fmax.value = 10.0
    widget._peaks.value = 2
    res = analyse(widget, qtbot)
    (r,) = res.rois
    assert len(r.peaks) <= 2 and all(p.hz <= 10.0 for p in r.peaks)
    lo, hi = widget.ax_spec.get_xlim()
    assert lo == 0 and F_HZ < hi < FPS / 2  # zoomed to the content, not 0-Nyquist
    widget.select_band(3.0, 9.0)
    assert widget.ax_spec.get_xlim()[1] >= 9.0  # the band stays in view
    widget._log_freq.value = True
    assert widget.ax_spec.get_xscale() == "log" and widget.ax_spec.get_xlim()[0] > 0
    # the legend sits above the waveform axes, the hint follows the theme's text colour
    legend = widget.ax_wave.get_legend()
    if legend is not None:
        assert legend.get_bbox_to_anchor().y0 >= widget.ax_wave.bbox.y1 - 1
    from napari.utils.theme import get_theme

    fg = get_theme(viewer.theme).text.as_hex()
    from matplotlib.colors import to_hex

    assert to_hex(widget.ax_spec.title.get_color()) == to_hex(fg)
