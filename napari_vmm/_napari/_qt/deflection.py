"""The "Deflection shapes" dock widget: how a whole structure moves at one frequency.

A grid of cells (inside the first shape of a Shapes layer, or over the whole frame) is tracked
(:func:`napari_vmm.core.analysis.iter_analyze_grid`); the widget plots the cells' averaged
spectrum with its noise floor, and a click on it picks a frequency. The shape at that
frequency is shown as a Points layer (the cells, coloured by amplitude) and a Vectors layer
(their displacement), both moving with the viewer's time slider: at frame ``t`` each point
sits at ``position + k Re(P exp(2 pi i f t / fps))``, exaggerated ``k`` times.

Scripts and tests use it as::

    widget = DeflectionShapesWidget(viewer)
    worker = widget.run()            # tracks the grid in a worker thread
    ...                              # widget.grid is a GridAnalysis once it has returned
    widget.select_frequency(7.0)     # what a click on the spectrum does
    widget.export_csv("folder")      # ods.csv, spectrum.csv, traces.csv
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
    SpinBox,
)
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from napari.layers import Image, Points, Shapes
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error
from qtpy.QtWidgets import QFileDialog, QVBoxLayout, QWidget

from napari_vmm._napari._qt.qtutil import CalibrationFields, worker_error_message
from napari_vmm._napari.jobs import CHUNK_FRAMES, grid_job
from napari_vmm._napari.layers import check_image_layer, fps_from_layer, shapes_to_rois
from napari_vmm._napari.model import WidgetsModel, shared_model
from napari_vmm.core.errors import VMMError

if TYPE_CHECKING:
    import napari
    from napari.qt.threading import GeneratorWorker

    from napari_vmm.core.analysis import Calibration, DeflectionShape, GridAnalysis

class DeflectionShapesWidget(QWidget):
    """Dock widget: operating deflection shapes from a grid of tracked cells.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    model : WidgetsModel, optional
        Holds the pixel calibration, shared with "Motion traces"; default: the viewer's
        :func:`shared_model`.
    """

    def __init__(self, viewer: napari.viewer.Viewer, parent: QWidget | None = None,
                 model: WidgetsModel | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.model = shared_model(viewer) if model is None else model
        self.grid: GridAnalysis | None = None
        self.shape: DeflectionShape | None = None
        self._worker: GeneratorWorker | None = None
        self._source: Image | None = None
        self.points: Points | None = None
        self.vectors = None

        self._layer = ComboBox(label="image", choices=self._choices(Image), nullable=True)
        self._roi = ComboBox(label="region", choices=self._choices(Shapes), nullable=True,
                             tooltip="Shapes layer: the grid covers its first shape's box "
                                     "(none: the whole frame)")
        self._rows = SpinBox(label="rows", value=4, min=1, max=64)
        self._cols = SpinBox(label="columns", value=8, min=1, max=64)
        self._fps = FloatSpinBox(label="fps", value=30.0, min=0.001, max=1e6, step=1.0)
        self._pixel_size = FloatSpinBox(label="pixel size", value=0.0, min=0.0, max=1e9,
                                        step=0.01, tooltip="0: px (or the layer's scale)")
        self._unit = LineEdit(label="unit", value="mm")
        self._cal_points = ComboBox(label="2 points", choices=self._choices(Points),
                                    nullable=True, tooltip="a Points layer whose last two "
                                    "points lie a known distance apart")
        self._cal_distance = LineEdit(label="distance", value="",
                                      tooltip="their distance on the object, e.g. 50mm")
        self._cal_btn = PushButton(text="Calibrate from 2 points")
        self._exaggerate = FloatSpinBox(label="exaggerate", value=0.0, min=0.0, max=1e6,
                                        tooltip="drawn displacement x this (0: automatic)")
        self._run_btn = PushButton(text="Analyze")
        self._cancel_btn = PushButton(text="Cancel", enabled=False)
        self._csv_btn = PushButton(text="Export CSV…", enabled=False)
        self._status = Label(value="")
        self._status.native.setWordWrap(True)
        form = Container(widgets=[
            self._layer, self._roi, self._rows, self._cols, self._fps, self._pixel_size,
            self._unit, self._cal_points, self._cal_distance, self._cal_btn, self._exaggerate])
        buttons = Container(widgets=[self._run_btn, self._cancel_btn, self._csv_btn],
                            layout="horizontal", labels=False)
        self.figure = Figure(figsize=(4.5, 2.8), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(240)
        self.ax = self.figure.subplots()
        layout = QVBoxLayout(self)
        for w in (form, buttons, self._status):
            layout.addWidget(w.native)
        layout.addWidget(self.canvas, stretch=1)

        self._run_btn.changed.connect(self.run)
        self._cancel_btn.changed.connect(self.cancel)
        self._csv_btn.changed.connect(self._export_dialog)
        self._cal_btn.changed.connect(self.calibrate_from_points)
        self._layer.changed.connect(self._on_layer_changed)
        self._exaggerate.changed.connect(lambda *_: self._update_layers())
        self._calibration = CalibrationFields(self, self.model, self._pixel_size, self._unit,
                                              "mm")
        self.canvas.mpl_connect("button_press_event", self._on_click)
        for ev in (viewer.layers.events.inserted, viewer.layers.events.removed):
            ev.connect(self._reset_choices)
        viewer.dims.events.current_step.connect(self._on_step)
        self._reset_choices()
        self._on_layer_changed()

    # ---------------------------------------------------------------- layers and inputs

    def _choices(self, kind: type):
        def get(_w: Any = None) -> list[tuple[str, Any]]:
            return [(ly.name, ly) for ly in self.viewer.layers if isinstance(ly, kind)
                    and ly is not self.points]
        return get

    def _reset_choices(self, _event: Any = None) -> None:
        for combo in (self._layer, self._roi, self._cal_points):
            combo.reset_choices()
        if self._layer.value is None and self._choices(Image)():
            self._layer.value = self._choices(Image)()[-1][1]

    @property
    def is_running(self) -> bool:
        return self._worker is not None

    def _on_layer_changed(self, *_: Any) -> None:
        from napari_vmm.core.analysis import calibration_from_scale

        layer = self._layer.value
        if layer is None:
            return
        fps = fps_from_layer(layer)
        if fps is not None:
            self._fps.value = round(fps, 6)
        cal = calibration_from_scale(layer.scale, layer.units)
        if cal.calibrated:
            self.model.calibration = cal

    @property
    def calibration(self) -> Calibration | None:
        """The pixel calibration (the shared model's; None: none chosen yet)."""
        return self.model.calibration

    def calibrate_from_points(self) -> Calibration | None:
        """Pixel size from the last two points of the chosen Points layer and the distance."""
        from napari_vmm.core.analysis import calibration_from_points

        try:
            pts, layer = self._cal_points.value, self._layer.value
            if pts is None or len(pts.data) < 2 or layer is None:
                raise VMMError("choose an image and a Points layer with two points")
            yx = [layer.world_to_data(pts.data_to_world(p))[-2:] for p in pts.data[-2:]]
            cal = calibration_from_points(yx[0], yx[1], self._cal_distance.value)
        except VMMError as err:
            self._status.value = f"error: {err}"
            show_error(str(err))
            return None
        self.model.calibration = cal
        self._status.value = cal.describe()
        return cal

    def _current_calibration(self) -> Calibration:
        return self._calibration.current()

    # ---------------------------------------------------------------- running

    def run(self) -> GeneratorWorker | None:
        """Track the grid in a worker thread; return it (None when the input is refused)."""
        if self._worker is not None:
            return self._worker
        layer, roi_layer = self._layer.value, self._roi.value
        try:
            check_image_layer(layer)
            roi = None
            if roi_layer is not None and len(roi_layer.data):
                roi = shapes_to_rois(roi_layer, layer)[0]
            options = {"roi": roi, "calibration": self._current_calibration()}
        except VMMError as err:
            self._status.value = f"error: {err}"
            show_error(str(err))
            return None
        grid = (int(self._rows.value), int(self._cols.value))
        n = int(layer.data.shape[0])
        worker = create_worker(
            grid_job, layer.data, grid, float(self._fps.value), options, _ignore_errors=True,
            _progress={"total": math.ceil(n / CHUNK_FRAMES), "desc": "Deflection shapes"})
        worker.yielded.connect(self._on_yielded)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self._worker, self._source = worker, layer
        self._run_btn.enabled, self._cancel_btn.enabled = False, True
        self._status.value = f"tracking a {grid[0]}x{grid[1]} grid over {n} frames…"
        worker.start()
        return worker

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.quit()
            self._status.value = "cancelling…"

    def _on_yielded(self, value: tuple[int, int]) -> None:
        self._status.value = f"tracking… {value[0]}/{value[1]} frames"

    def _on_returned(self, grid: GridAnalysis) -> None:
        self.grid = grid
        self._csv_btn.enabled = True
        self._draw_spectrum()
        if grid.peaks:
            self.select_frequency(grid.peaks[0].hz)
        else:
            self._status.value = "no spectral peak: click the spectrum to pick a frequency"

    def _on_errored(self, exc: BaseException) -> None:
        msg = worker_error_message(exc, "deflection shapes")
        self._status.value = f"error: {msg}"
        show_error(f"Deflection shapes: {msg}")

    def _on_finished(self) -> None:
        self._worker = None
        self._run_btn.enabled, self._cancel_btn.enabled = True, False
        if self.grid is None and not self._status.value.startswith("error"):
            self._status.value = "cancelled"

    # ---------------------------------------------------------------- spectrum and shape

    def _draw_spectrum(self) -> None:
        g, ax = self.grid, self.ax
        ax.clear()
        s, u = g.calibration.scale, g.calibration.unit
        ax.semilogy(g.freqs, g.spectrum * s, lw=1, label="mean over cells")
        ax.semilogy(g.freqs, g.noise_line * s, lw=0.8, ls=":", color="0.5", label="noise floor")
        if self.shape is not None:
            ax.axvline(self.shape.frequency_hz, color="C3", lw=0.8)
        ax.set_xlabel("frequency (Hz) - click to pick")
        ax.set_ylabel(f"amplitude ({u})")
        ax.set_xlim(0, g.fps / 2)
        ax.legend(fontsize=7)
        self.canvas.draw_idle()

    def _on_click(self, event: Any) -> None:
        if self.grid is not None and event.inaxes is self.ax and event.xdata is not None:
            self.select_frequency(float(event.xdata))

    def select_frequency(self, hz: float) -> DeflectionShape | None:
        """Compute the shape at ``hz`` (refined within one bin) and show it."""
        from napari_vmm.core.analysis import deflection_shape

        if self.grid is None:
            return None
        try:
            self.shape = deflection_shape(self.grid, hz)
        except VMMError as err:
            self._status.value = f"error: {err}"
            return None
        sh, cal = self.shape, self.grid.calibration
        amp = sh.amplitude[sh.ok]
        self._status.value = (
            f"{sh.frequency_hz:.4g} Hz: largest {amp.max() * cal.scale:.3g} {cal.unit}, "
            f"median SNR {np.median(sh.snr[sh.ok]):.3g}; {cal.describe()}")
        self._draw_spectrum()
        self._update_layers(create=True)
        return sh

    def exaggeration(self) -> float:
        from napari_vmm.core.analysis.ods_render import auto_exaggeration

        if self._exaggerate.value > 0:
            return float(self._exaggerate.value)
        return auto_exaggeration(self.shape, float(min(self.grid.layout.cell)))

    def _frame_index(self) -> int:
        layer = self._source
        if layer is None:
            return 0
        t = layer.world_to_data(self.viewer.dims.point)[0]
        return int(np.clip(round(float(t)), 0, layer.data.shape[0] - 1))

    def _update_layers(self, create: bool = False) -> None:
        """Place the points and vectors at the current frame's phase of the shape.

        The layers are made only when ``create`` (a new shape): once the user (or the viewer
        closing) removes them, moving the time slider does not bring them back.
        """
        sh, layer = self.shape, self._source
        if sh is None or layer is None:
            return
        missing = self.points is None or self.points not in self.viewer.layers
        if missing and not create:
            return
        phase = 2 * np.pi * sh.frequency_hz * self._frame_index() / self.grid.fps
        disp = self.exaggeration() * sh.displacement(phase)[sh.ok]
        pos = sh.positions[sh.ok]
        scale, translate = layer.scale[-2:], layer.translate[-2:]
        feats = {"amplitude": sh.amplitude[sh.ok] * self.grid.calibration.scale,
                 "snr": sh.snr[sh.ok], "dy_phase_deg": np.degrees(np.angle(sh.dy[sh.ok]))}
        vec = np.stack([pos, disp], axis=1)
        if missing:
            self.points = self.viewer.add_points(
                pos + disp, name="ODS points", features=feats, face_color="amplitude",
                face_colormap="plasma", size=max(3.0, min(self.grid.layout.cell) / 4),
                scale=scale, translate=translate)
            self.vectors = self.viewer.add_vectors(
                vec, name="ODS vectors", edge_color="cyan", edge_width=1.0, scale=scale,
                translate=translate, vector_style="arrow")
            self._reset_choices()
        else:
            self.points.data = pos + disp
            self.points.features = feats
            self.points.face_color = "amplitude"
            if self.vectors is not None and self.vectors in self.viewer.layers:
                self.vectors.data = vec
        self.points.metadata["napari_vmm"] = {
            "ods_frequency_hz": sh.frequency_hz, "calibration": sh.calibration.to_dict()}

    def _on_step(self, _event: Any = None) -> None:
        if self.shape is not None:
            self._update_layers()

    # ---------------------------------------------------------------- export

    def export_csv(self, folder: str | Path) -> list[Path]:
        """Write ``ods.csv``, ``spectrum.csv`` and ``traces.csv`` into ``folder``."""
        from napari_vmm.core.analysis.files import rows_to_csv, write_text_atomic
        from napari_vmm.core.analysis.ods import grid_spectrum_rows, grid_trace_rows, ods_rows

        if self.grid is None or self.shape is None:
            raise VMMError("nothing to export: analyse and pick a frequency first")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for name, rows in (("ods.csv", ods_rows(self.shape)),
                           ("spectrum.csv", grid_spectrum_rows(self.grid)),
                           ("traces.csv", grid_trace_rows(self.grid))):
            write_text_atomic(folder / name, rows_to_csv(rows))
            out.append(folder / name)
        self._status.value = f"CSV written to {folder}"
        return out

    def _export_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the ODS CSV files")
        if folder:
            try:
                self.export_csv(folder)
            except (VMMError, OSError) as err:
                show_error(str(err))
