"""The "Motion traces" dock widget: what moves in each ROI, and at what frequency.

For every rectangle, ellipse or polygon of a Shapes layer it plots the sub-pixel displacement
over time and its amplitude spectrum (:mod:`napari_vmm.core.analysis`, matplotlib embedded in
Qt). A vertical cursor follows the viewer's current frame without recomputing anything.
Clicking near a spectral peak, or dragging a range on the spectrum, chooses a band and puts it
in the viewer's shared model (:mod:`napari_vmm._napari.model`), which every "Motion
magnification" dock shows.

Scripts and tests use it as::

    widget = MotionTracesWidget(viewer)
    worker = widget.run()            # analyses the selected image with the selected Shapes
    ...                              # widget.result is a MotionAnalysis once it has returned
    widget.select_band(2.0, 4.0)     # what a drag on the spectrum does
    widget.export_csv("traces.csv")  # also writes traces_spectra.csv
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
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
from napari.layers import Image, Shapes
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_warning
from qtpy.QtWidgets import QFileDialog, QSizePolicy, QVBoxLayout, QWidget

from napari_vmm._napari._qt.qtutil import CalibrationFields, worker_error_message
from napari_vmm._napari.jobs import CHUNK_FRAMES, analysis_job
from napari_vmm._napari.layers import check_image_layer, pixel_size_from_layer, shapes_to_rois
from napari_vmm._napari.model import WidgetsModel, shared_model
from napari_vmm._napari.plots import nearest_peak, spectrum_xlim
from napari_vmm.core.errors import VMMError

if TYPE_CHECKING:
    import napari
    from napari.qt.threading import GeneratorWorker

    from napari_vmm.core.analysis import MotionAnalysis

#: A click within this fraction of the spectrum's x-range of a peak selects that peak.
PEAK_PICK_TOLERANCE = 0.04
#: A press and release closer than this many screen pixels is a click, not a drag.
CLICK_PIXELS = 4


class MotionTracesWidget(QWidget):
    """Dock widget: displacement traces and spectra of the ROIs of a Shapes layer.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose image and Shapes layers it lists.
    model : WidgetsModel, optional
        Where a chosen band goes; default: the viewer's :func:`shared_model`, which the
        "Motion magnification" docks show.
    """

    def __init__(self, viewer: napari.viewer.Viewer, parent: QWidget | None = None,
                 model: WidgetsModel | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.model = shared_model(viewer) if model is None else model
        self.result: MotionAnalysis | None = None
        self.band: tuple[float, float] | None = None
        self._worker: GeneratorWorker | None = None
        self._returned = False  # whether the current or last run delivered a result
        self._result_layer: Image | None = None
        self._band_span = None
        self._press: tuple[float, float] | None = None  # (xdata, screen x) of a press

        self._layer = ComboBox(label="image", choices=self._image_choices, nullable=True,
                               tooltip="T,Y,X or T,Y,X,C layer (numpy or dask)")
        self._shapes = ComboBox(label="ROIs", choices=self._shapes_choices, nullable=True,
                                tooltip="Shapes layer: rectangles, ellipses or polygons")
        self._fps = FloatSpinBox(label="fps", value=30.0, min=0.001, max=1e6, step=1.0,
                                 tooltip="frame rate; taken from the layer when its first "
                                         "axis is in time units")
        self._pixel_size = FloatSpinBox(label="pixel size", value=0.0, min=0.0, max=1e9,
                                        step=0.1, tooltip="0: report displacement in px")
        self._unit = LineEdit(label="unit", value="um")
        self._run_btn = PushButton(text="Analyze")
        self._cancel_btn = PushButton(text="Cancel", enabled=False)
        self._suggest_btn = PushButton(text="Use suggested band", enabled=False,
                                       tooltip="send ROI 1's suggested band to Magnify")
        self._csv_btn = PushButton(text="Export CSV…", enabled=False)
        self._fps_note = Label(value="")
        self._fmin = FloatSpinBox(label="fmin (Hz)", value=0.0, min=0.0, max=1e6, step=0.1,
                                  tooltip="ignore peaks below this frequency (0: none)")
        self._fmax = FloatSpinBox(label="fmax (Hz)", value=0.0, min=0.0, max=1e6, step=1.0,
                                  tooltip="ignore peaks above this frequency (0: Nyquist)")
        self._peaks = SpinBox(label="peaks", value=5, min=1, max=50,
                              tooltip="spectral peaks reported per ROI")
        self._log_freq = CheckBox(text="log frequency axis", value=False)
        self._band_label = Label(value="band: click a peak or drag on the spectrum")
        self._status = Label(value="")
        for label in (self._fps_note, self._band_label, self._status):
            label.native.setWordWrap(True)
            label.native.setSizePolicy(QSizePolicy.Policy.Expanding,
                                       QSizePolicy.Policy.Preferred)
        self._fps_note.visible = False
        form = Container(widgets=[self._layer, self._shapes, self._fps, self._fps_note,
                                  self._pixel_size, self._unit, self._fmin, self._fmax,
                                  self._peaks, self._log_freq])
        buttons = Container(widgets=[self._run_btn, self._cancel_btn], layout="horizontal",
                            labels=False)
        more = Container(widgets=[self._suggest_btn, self._csv_btn], layout="horizontal",
                         labels=False)

        self.figure = Figure(figsize=(4.5, 4.5), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(420)
        self.ax_wave, self.ax_spec = self.figure.subplots(2, 1)
        self._cursor = None
        self._style_axes()

        layout = QVBoxLayout(self)
        for w in (form, buttons, more, self._band_label, self._status):
            layout.addWidget(w.native)
        layout.addWidget(self.canvas, stretch=1)

        self._run_btn.changed.connect(self.run)
        self._cancel_btn.changed.connect(self.cancel)
        self._suggest_btn.changed.connect(self._use_suggested_band)
        self._csv_btn.changed.connect(self._export_dialog)
        self._log_freq.changed.connect(self._on_log_freq)
        self._layer.changed.connect(self._on_layer_changed)
        self._shapes.changed.connect(self._on_shapes_changed)
        self._calibration = CalibrationFields(self, self.model, self._pixel_size, self._unit,
                                              "um")
        self.canvas.mpl_connect("button_press_event", self._on_press)
        self.canvas.mpl_connect("button_release_event", self._on_release)
        for ev in (viewer.layers.events.inserted, viewer.layers.events.removed):
            ev.connect(self._reset_choices)
        viewer.dims.events.current_step.connect(self._on_step)
        self._watched_shapes: Shapes | None = None
        self._reset_choices()
        active = viewer.layers.selection.active
        if isinstance(active, Image):
            self._layer.value = active
        self._on_layer_changed()
        self._on_shapes_changed()

    # ---------------------------------------------------------------- layers and parameters

    def _image_choices(self, _w: Any = None) -> list[tuple[str, Image]]:
        return [(ly.name, ly) for ly in self.viewer.layers if isinstance(ly, Image)]

    def _shapes_choices(self, _w: Any = None) -> list[tuple[str, Shapes]]:
        return [(ly.name, ly) for ly in self.viewer.layers if isinstance(ly, Shapes)]

    def _reset_choices(self, _event: Any = None) -> None:
        self._layer.reset_choices()
        self._shapes.reset_choices()
        # default to the topmost layer of each kind
        for combo, choices in ((self._layer, self._image_choices()),
                               (self._shapes, self._shapes_choices())):
            if combo.value is None and choices:
                combo.value = choices[-1][1]

    @property
    def layer(self) -> Image | None:
        """The image layer to analyse."""
        return self._layer.value

    @layer.setter
    def layer(self, layer: Image) -> None:
        self._layer.value = layer

    @property
    def shapes(self) -> Shapes | None:
        """The Shapes layer holding the ROIs."""
        return self._shapes.value

    @shapes.setter
    def shapes(self, layer: Shapes) -> None:
        self._shapes.value = layer

    @property
    def is_running(self) -> bool:
        """True while an analysis worker is active."""
        return self._worker is not None

    def _on_layer_changed(self, *_: Any) -> None:
        from napari_vmm._writer import layer_fps

        layer = self.layer
        if layer is None:
            return
        fps = layer_fps({"scale": layer.scale, "units": layer.units, "metadata": layer.metadata})
        self._fps.enabled = fps is None
        if fps is not None:
            self._fps.value = round(fps, 6)
            self._fps_note.value = ""
        else:
            self._fps_note.value = ("⚠ first axis has no time unit: check fps "
                                    f"(using {self._fps.value:g})")
        self._fps_note.visible = fps is None
        size = pixel_size_from_layer(layer)
        if size is not None:  # the layer's scale: one change of the shared calibration
            self._calibration.set(*size)

    def _on_shapes_changed(self, *_: Any) -> None:
        if self._watched_shapes is not None:
            self._watched_shapes.events.data.disconnect(self._on_rois_edited)
        self._watched_shapes = self.shapes
        if self._watched_shapes is not None:
            self._watched_shapes.events.data.connect(self._on_rois_edited)

    def _on_rois_edited(self, _event: Any = None) -> None:
        if self.result is not None:
            self._status.value = "ROIs changed: press Analyze to update the plots"

    # ---------------------------------------------------------------- running

    def run(self) -> GeneratorWorker | None:
        """Start the analysis in a worker thread; return it (None when the input is refused).

        Progress shows in napari's activity dock; results land in :attr:`result`, the plots
        and the Shapes layer's features (``dominant_hz``, ``amplitude_px``, ``band_lo_hz``,
        ``band_hi_hz``).
        """
        if self._worker is not None:
            return self._worker
        try:
            frames, rois, fps, options = self._inputs()
        except VMMError as err:
            show_error(str(err))
            self._status.value = f"error: {err}"
            return None
        n = int(frames.shape[0])
        worker = create_worker(
            analysis_job, frames, rois, fps, options, _ignore_errors=True,
            _progress={"total": math.ceil(n / CHUNK_FRAMES), "desc": "Motion traces"})
        worker.yielded.connect(self._on_yielded)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        self._returned = False
        self._result_layer = self.layer
        self._set_running(True)
        self._status.value = f"analysing {len(rois)} ROI(s) over {n} frames…"
        worker.start()
        return worker

    def cancel(self) -> None:
        """Stop the running analysis at its next chunk."""
        if self._worker is not None:
            self._worker.quit()
            self._status.value = "cancelling…"

    def _inputs(self) -> tuple[Any, list, float, dict[str, Any]]:
        layer, shapes = self.layer, self.shapes
        check_image_layer(layer)
        if shapes is None:
            raise VMMError("no Shapes layer: add one and draw rectangles, ellipses or polygons")
        if len(shapes.data) == 0:
            raise VMMError(f"Shapes layer {shapes.name!r} is empty: draw a ROI first")
        rois = shapes_to_rois(shapes, layer)
        if self._fps.enabled:
            show_warning(f"layer {layer.name!r} has no time scale; using fps = "
                         f"{self._fps.value:g} as set in the widget")
        options: dict[str, Any] = {"n_peaks": int(self._peaks.value)}
        if self._fmin.value > 0:
            options["fmin"] = float(self._fmin.value)
        if self._fmax.value > 0:
            options["fmax"] = float(self._fmax.value)
        if self._pixel_size.value > 0:
            unit = self._unit.value.strip() or "um"
            options.update(pixel_size=float(self._pixel_size.value), unit=unit)
        return layer.data, rois, float(self._fps.value), options

    def _set_running(self, running: bool) -> None:
        self._run_btn.enabled = not running
        self._cancel_btn.enabled = running

    def _on_yielded(self, value: tuple[int, int]) -> None:
        done, total = value
        self._status.value = f"analysing… {done}/{total} frames"

    def _on_returned(self, result: MotionAnalysis) -> None:
        self._returned = True
        self.result = result
        self._store_features(result)
        self._draw()
        summary = "; ".join(
            f"ROI {i}: {r.dominant_hz:.3g} Hz, {r.amplitude_px:.3g} px"
            for i, r in enumerate(result.rois, start=1) if r.peaks)
        self._status.value = summary or "no motion peak found"
        for r in result.rois:
            for msg in r.warnings:
                show_warning(msg)

    def _on_errored(self, exc: BaseException) -> None:
        msg = worker_error_message(exc, "motion traces")  # one toast; traceback to the log
        self._status.value = f"error: {msg}"
        show_error(f"Motion traces: {msg}")

    def _on_finished(self) -> None:
        self._worker = None
        self._set_running(False)
        if not self._returned and not self._status.value.startswith("error"):
            self._status.value = "cancelled"

    def _store_features(self, result: MotionAnalysis) -> None:
        shapes = self.shapes
        if shapes is None or len(shapes.data) != len(result.rois):
            return
        feats = shapes.features.copy()
        feats["dominant_hz"] = [r.dominant_hz for r in result.rois]
        feats["amplitude_px"] = [r.amplitude_px for r in result.rois]
        feats["band_lo_hz"] = [r.band[0] if r.band else np.nan for r in result.rois]
        feats["band_hi_hz"] = [r.band[1] if r.band else np.nan for r in result.rois]
        shapes.features = feats

    # ---------------------------------------------------------------- plotting

    def _style_axes(self) -> None:
        """Follow the napari theme (text and background colours) when it can be read."""
        try:
            from napari.utils.theme import get_theme

            theme = get_theme(self.viewer.theme)
            bg, fg = theme.canvas.as_hex(), theme.text.as_hex()
        except Exception:
            return
        self.figure.set_facecolor(bg)
        for ax in (self.ax_wave, self.ax_spec):
            ax.set_facecolor(bg)
            ax.tick_params(colors=fg)
            for spine in ax.spines.values():
                spine.set_color(fg)
            ax.xaxis.label.set_color(fg)
            ax.yaxis.label.set_color(fg)
            ax.title.set_color(fg)
            legend = ax.get_legend()
            if legend is not None:
                for text in legend.get_texts():
                    text.set_color(fg)

    def _draw(self) -> None:
        from napari_vmm.core.analysis import draw_roi

        result = self.result
        self.ax_wave.clear()
        self.ax_spec.clear()
        self._band_span = None
        for i, r in enumerate(result.rois):
            draw_roi(self.ax_wave, self.ax_spec, r, color=f"C{i % 10}", label=f"ROI {i + 1}",
                     show_band=False)
        if len(result.rois) <= 4:  # above the axes, never over the traces
            self.ax_wave.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0, 1.0),
                                ncols=4, frameon=False)
        self.ax_spec.set_title("click a peak or drag a range to set the band", fontsize=8)
        self._cursor = self.ax_wave.axvline(self._current_time(), color="0.5", lw=1)
        self._zoom_spectrum()
        self._style_axes()
        has_band = bool(result.rois and result.rois[0].band)
        self._suggest_btn.enabled = has_band
        self._csv_btn.enabled = True
        if self.band is not None:
            self._draw_band(*self.band)
        self.canvas.draw_idle()

    def _zoom_spectrum(self) -> None:
        """Frequency axis: the content and the band (:func:`spectrum_xlim`), linear or log."""
        if self.result is None:
            return
        log_axis = bool(self._log_freq.value)
        self.ax_spec.set_xscale("log" if log_axis else "linear")
        self.ax_spec.set_xlim(*spectrum_xlim(self.result.rois, self.band, self.result.fps,
                                             log_axis))

    def _on_log_freq(self, *_: Any) -> None:
        self._zoom_spectrum()
        self.canvas.draw_idle()

    def _current_frame(self) -> int:
        layer = self._result_layer or self.layer
        step = self.viewer.dims.current_step
        frame = step[0] if step else 0
        if layer is not None:
            # world -> the layer's frame index (honours its time scale and translate)
            with contextlib.suppress(ValueError, IndexError, TypeError):
                frame = layer.world_to_data(self.viewer.dims.point)[0]
        n = self.result.n_frames if self.result is not None else 1
        return int(min(max(round(float(frame)), 0), n - 1))

    def _current_time(self) -> float:
        fps = self.result.fps if self.result is not None else float(self._fps.value)
        return self._current_frame() / fps

    def _on_step(self, _event: Any = None) -> None:
        """Move the frame cursor only: no analysis, no full redraw."""
        if self._cursor is None:
            return
        t = self._current_time()
        self._cursor.set_xdata([t, t])
        self.canvas.draw_idle()

    @property
    def cursor_time(self) -> float | None:
        """Where the frame cursor stands, in seconds (None before the first analysis)."""
        return None if self._cursor is None else float(self._cursor.get_xdata()[0])

    # ---------------------------------------------------------------- band selection

    def _on_press(self, event: Any) -> None:
        if event.inaxes is self.ax_spec and event.button == 1 and event.xdata is not None:
            self._press = (float(event.xdata), float(event.x))
        elif event.inaxes is self.ax_wave and event.xdata is not None and self.result:
            self._goto_time(float(event.xdata))

    def _on_release(self, event: Any) -> None:
        press, self._press = self._press, None
        if press is None or self.result is None:
            return
        x0, px0 = press
        x1 = float(event.xdata) if event.inaxes is self.ax_spec and event.xdata is not None \
            else x0
        if abs(float(event.x) - px0) <= CLICK_PIXELS:
            self.pick_peak(x0)
        else:
            self.select_band(min(x0, x1), max(x0, x1))

    def _goto_time(self, seconds: float) -> None:
        """Clicking the waveform moves the viewer to that frame."""
        frame = int(round(seconds * self.result.fps))
        frame = min(max(frame, 0), self.result.n_frames - 1)
        self.viewer.dims.set_current_step(0, frame)

    def pick_peak(self, hz: float) -> tuple[float, float] | None:
        """Choose the band around the spectral peak nearest to ``hz`` (any ROI).

        Returns the band, or None when no peak lies within :data:`PEAK_PICK_TOLERANCE` of the
        spectrum's range.
        """
        from napari_vmm.core.analysis import suggest_band

        if self.result is None:
            return None
        best = nearest_peak(self.result.rois, hz, PEAK_PICK_TOLERANCE * self.result.fps / 2)
        if best is None:
            self._status.value = f"no peak near {hz:.3g} Hz: drag a range instead"
            return None
        r, p = best
        band = suggest_band(r.freqs, r.spectrum, p.hz, r.fps, self.result.n_frames)
        self.select_band(*band)
        return band

    def select_band(self, lo_hz: float, hi_hz: float) -> tuple[float, float] | None:
        """Set the band (Hz): shade it and put it in the shared model (Motion magnification
        shows it)."""
        nyq = self.result.fps / 2 if self.result is not None else float(self._fps.value) / 2
        lo, hi = max(0.0, float(lo_hz)), min(float(hi_hz), nyq)
        if not hi > lo:
            self._status.value = f"empty band {lo_hz:.3g}-{hi_hz:.3g} Hz ignored"
            return None
        self.band = (lo, hi)
        self._band_label.value = f"band: {lo:.4g} – {hi:.4g} Hz"
        self._draw_band(lo, hi)
        self._zoom_spectrum()
        self.canvas.draw_idle()
        self._send_band(lo, hi)
        return self.band

    def _draw_band(self, lo: float, hi: float) -> None:
        if self._band_span is not None:
            self._band_span.remove()
        self._band_span = self.ax_spec.axvspan(lo, hi, color="#f2c84b", alpha=0.35, lw=0)

    def _send_band(self, lo: float, hi: float) -> None:
        """Put the band in the shared model: the magnify docks show it, and one opened later
        starts from it."""
        try:
            self.model.set_band(lo, hi)
        except VMMError as err:
            show_error(str(err))

    def _use_suggested_band(self, *_: Any) -> None:
        if self.result is not None and self.result.rois and self.result.rois[0].band:
            self.select_band(*self.result.rois[0].band)

    # ---------------------------------------------------------------- export

    def export_csv(self, path: str | Path) -> tuple[Path, Path]:
        """Write the traces to ``path`` and the spectra next to it (``<stem>_spectra.csv``)."""
        from napari_vmm.core.analysis import write_spectra_csv, write_traces_csv

        if self.result is None:
            raise VMMError("nothing to export yet: press Analyze first")
        path = Path(path)
        spectra = path.with_name(f"{path.stem}_spectra.csv")
        write_traces_csv(path, self.result)
        write_spectra_csv(spectra, self.result)
        return path, spectra

    def _export_dialog(self, *_: Any) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export motion traces", "motion_traces.csv",
                                              "CSV (*.csv)")
        if not path:
            return
        try:
            traces, spectra = self.export_csv(path)
        except (VMMError, OSError) as err:
            show_error(f"Motion traces: {err}")
            return
        self._status.value = f"wrote {traces.name} and {spectra.name}"
