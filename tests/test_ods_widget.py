"""The "Deflection shapes" dock widget in a real napari viewer (run under ``xvfb-run -a``)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from matplotlib.backend_bases import MouseEvent  # noqa: E402

from napari_vmm._napari._qt.deflection import DeflectionShapesWidget  # noqa: E402
from napari_vmm._napari._qt.traces import MotionTracesWidget  # noqa: E402
from napari_vmm.core.analysis import modal_assurance  # noqa: E402
from napari_vmm.core.analysis.groundtruth import (  # noqa: E402
    beam_texture,
    mode_shape,
    vibrating_beam,
)

pytestmark = pytest.mark.gui

FPS, N, W = 100.0, 200, 160
WAIT_MS = 60_000


def setup_viewer(make_napari_viewer, scale=1.0, unit="pixel"):
    viewer = make_napari_viewer()
    tex = beam_texture((24, W), None, seed=2)
    frames, _ = vibrating_beam(N, FPS, tex, 64, 20, [(7.0, 0.3, 1, 0.0), (19.0, 0.1, 2, 0.5)],
                               noise_dn=1.0)
    image = viewer.add_image(frames, name="beam", scale=(1 / FPS, scale, scale),
                             units=("s", unit, unit))
    rect = np.array([[0, 17, 0], [0, 17, W - 1], [0, 46, W - 1], [0, 46, 0]], float)
    viewer.add_shapes([rect], shape_type="rectangle", name="region", ndim=3,
                      scale=image.scale, units=image.units)
    return viewer, image


def analyse(widget, qtbot, rows=1, cols=8):
    widget._rows.value, widget._cols.value = rows, cols
    assert widget.run() is not None
    qtbot.waitUntil(lambda: not widget.is_running, timeout=WAIT_MS)
    assert widget.grid is not None, widget._status.value
    return widget.grid


def test_shape_layers_follow_the_time_slider(make_napari_viewer, qtbot):
    viewer, image = setup_viewer(make_napari_viewer)
    widget = DeflectionShapesWidget(viewer)
    assert widget._fps.value == pytest.approx(FPS)
    grid = analyse(widget, qtbot)
    shape = widget.shape  # picked automatically at the strongest common peak
    assert abs(shape.frequency_hz - 7.0) <= FPS / N
    true = mode_shape(shape.positions[:, 1] + 0.5, W, 1)
    assert modal_assurance(shape.dy, true) > 0.98
    assert widget.points.name == "ODS points" and len(widget.points.data) == 8
    assert widget.vectors.data.shape == (8, 2, 2)
    assert len(widget.ax.lines) >= 2  # averaged spectrum and its noise floor
    k = widget.exaggeration()
    positions = []
    for t in (0, 4, 7):  # 7 Hz at 100 fps: the shape's phase advances 25.2 deg per frame
        viewer.dims.set_current_step(0, t)
        positions.append(widget.points.data.copy())
        expected = shape.positions + k * shape.displacement(2 * np.pi * 7.0 * t / FPS * (
            shape.frequency_hz / 7.0))
        np.testing.assert_allclose(positions[-1], expected, atol=1e-6)
    assert not np.allclose(positions[0], positions[1])
    assert "amplitude" in widget.points.features and grid.ok.all()
    # Layers the user removed stay removed when the slider moves (and the viewer can close).
    viewer.layers.remove(widget.points)
    viewer.layers.remove(widget.vectors)
    viewer.dims.set_current_step(0, 3)
    assert "ODS points" not in viewer.layers and "ODS vectors" not in viewer.layers


def test_click_picks_a_frequency_and_csv_export(make_napari_viewer, qtbot, tmp_path):
    viewer, _ = setup_viewer(make_napari_viewer)
    widget = DeflectionShapesWidget(viewer)
    analyse(widget, qtbot)
    widget.canvas.draw()
    x, _ = widget.ax.transData.transform((19.1, 1e-3))
    y = widget.ax.bbox.y0 + 5
    MouseEvent("button_press_event", widget.canvas, x, y, button=1)._process()
    assert abs(widget.shape.frequency_hz - 19.0) <= FPS / N
    true = mode_shape(widget.shape.positions[:, 1] + 0.5, W, 2)
    assert modal_assurance(widget.shape.dy, true) > 0.95
    files = widget.export_csv(tmp_path / "ods")
    assert [f.name for f in files] == ["ods.csv", "spectrum.csv", "traces.csv"]
    with open(files[0]) as f:
        rows = list(csv.reader(f))
    assert rows[0][:4] == ["cell", "y_px", "x_px", "dy_amp_px"] and len(rows) == 9


def test_calibration_from_scale_and_two_points(make_napari_viewer, qtbot):
    viewer, image = setup_viewer(make_napari_viewer, scale=0.5, unit="millimeter")
    widget = DeflectionShapesWidget(viewer)
    assert widget._pixel_size.value == pytest.approx(0.5) and widget._unit.value == "mm"
    assert widget.calibration.method == "layer-scale"
    pts = viewer.add_points(np.array([[0, 10, 10], [0, 10, 70]]), name="ruler",
                            scale=image.scale)  # 60 px apart in the image
    widget._reset_choices()
    widget._cal_points.value = pts
    widget._cal_distance.value = "120mm"
    cal = widget.calibrate_from_points()
    assert cal.method == "points" and cal.size == pytest.approx(2.0) and cal.unit == "mm"
    grid = analyse(widget, qtbot)
    assert grid.calibration.method == "points"
    assert widget.points.metadata["napari_vmm"]["calibration"]["method"] == "points"
    amp = widget.points.features["amplitude"].max()
    assert amp == pytest.approx(np.abs(widget.shape.dy).max() * 2.0, rel=0.05)


def test_bad_input_is_one_message(make_napari_viewer, qtbot):
    viewer, _ = setup_viewer(make_napari_viewer)
    widget = DeflectionShapesWidget(viewer)
    widget._rows.value = 30  # 1-px cells
    widget._cols.value = 8
    worker = widget.run()
    qtbot.waitUntil(lambda: not widget.is_running, timeout=WAIT_MS)
    assert worker is not None and widget.grid is None
    assert widget._status.value.startswith("error:") and "at least 6 px" in widget._status.value


def test_calibration_is_shared_with_motion_traces(make_napari_viewer):
    """Both analysis docks show the viewer model's calibration; either one sets it."""
    viewer, image = setup_viewer(make_napari_viewer)
    ods, traces = DeflectionShapesWidget(viewer), MotionTracesWidget(viewer)
    assert ods.model is traces.model
    pts = viewer.add_points(np.array([[0, 10, 10], [0, 10, 70]]), name="ruler",
                            scale=image.scale)  # 60 px apart
    ods._reset_choices()
    ods._cal_points.value = pts
    ods._cal_distance.value = "120mm"
    ods.calibrate_from_points()
    assert traces._pixel_size.value == pytest.approx(2.0) and traces._unit.value == "mm"
    assert traces.model.calibration.method == "points"  # the provenance is kept
    traces._unit.value = "um"
    traces._pixel_size.value = 0.25
    assert ods._pixel_size.value == pytest.approx(0.25) and ods._unit.value == "um"
    assert ods.calibration.method == "pixel-size" and ods.calibration.size == 0.25
