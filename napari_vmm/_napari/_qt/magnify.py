"""The "Motion magnification" dock widget: a thin view over the shared model.

The form shows :class:`napari_vmm._napari.model.WidgetsModel` (the parameters, the band, the
Dask settings) and writes every edit back to it; other docks of the viewer (a second
magnify dock, "Motion traces" choosing a band) change the model and this form follows. The
work is built by :func:`napari_vmm._napari.jobs.prepare_job` and runs in a napari generator
worker that yields after every chunk, so the viewer stays responsive, progress shows in the
activity dock and Cancel stops within one chunk.

Scripts and tests use it as::

    widget = MagnifyWidget(viewer)
    widget.set_band(0.5, 3.0)
    worker = widget.run()          # starts processing the selected layer; returns the worker
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Shapes
from napari.qt.threading import create_worker
from napari.utils import cancelable_progress
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication, QWidget

from napari_vmm._form import (
    build_magnify_form,
    form_engine_kwargs,
    form_params,
    gui_message,
    loadable_methods,
    option_widget,
    show_fields,
    significant_decimals,
)
from napari_vmm._napari._qt.qtutil import is_alive
from napari_vmm._napari.jobs import (
    WorkerError,
    dask_job,
    dask_memory_line,
    dask_settings,
    engine_job,
    prepare_job,
)
from napari_vmm._napari.layers import (
    check_image_layer,
    layer_rate,
    magnify_command,
    output_layer_kwargs,
    set_capture_rate,
    video_file_info,
)
from napari_vmm._napari.model import WidgetsModel, shared_model
from napari_vmm._napari.settings import settings_path
from napari_vmm.core.errors import Cancelled, VMMError
from napari_vmm.core.params import check_band_edges

if TYPE_CHECKING:
    import napari
    from napari.qt.threading import GeneratorWorker

    from napari_vmm.core.params import MagnifyParams

log = logging.getLogger(__name__)


class MagnifyWidget(QWidget):
    """Dock widget: magnify the motion in an image layer.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose layers it lists and to which it adds ``<source>_<method>``.
    model : WidgetsModel, optional
        The state to show and edit; default: the viewer's :func:`shared_model`.
    """

    def __init__(self, viewer: napari.viewer.Viewer, parent: QWidget | None = None,
                 model: WidgetsModel | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.model = shared_model(viewer) if model is None else model
        self._worker: GeneratorWorker | None = None
        self._pbar: cancelable_progress | None = None
        self._cancel_event: threading.Event | None = None
        self._save_path: Path | None = None
        self._syncing = True  # True while the form is filled from the model: no write-back
        self._methods = self._method_catalog()
        self._option_widgets: dict[str, Any] = {}

        build_magnify_form(self)

        # signals
        self._method.changed.connect(self._on_method_changed)
        self._layer.changed.connect(self._on_layer_changed)
        self._band_unit.changed.connect(self._on_band_unit_changed)
        self._fps.changed.connect(self._on_fps_changed)
        self._mode.changed.connect(self._update_enabled)
        self._roi.changed.connect(self._update_enabled)
        self._preview_btn.changed.connect(self.preview)
        self._run_btn.changed.connect(self.run)
        self._cancel_btn.changed.connect(self.cancel)
        self._copy_btn.changed.connect(self.copy_command)
        for w in (self._alpha, self._band_lo, self._band_hi, self._fps, self._temporal,
                  self._order, self._taps, self._zero_phase, self._mode, self._reference,
                  self._device, self._feather, self._preview_frames, self._band_unit,
                  self._method, self._scheduler, self._zarr_out, self._layer):
            w.changed.connect(self._on_form_changed)
        layer_events = viewer.layers.events
        for ev in (layer_events.inserted, layer_events.removed, layer_events.reordered):
            ev.connect(self._reset_layer_choices)
        self._reset_layer_choices()
        self._save_timer = self._timer(self.save_settings)
        self._estimate_timer = self._timer(self.update_memory_estimate)

        warning = self.model.pop_settings_warning()
        if warning:
            show_warning(warning)
        self._show_model()
        self.model.events.connect(self._on_model_changed)
        active = viewer.layers.selection.active
        if isinstance(active, Image):
            self._layer.value = active
        self._on_layer_changed()
        self._update_enabled()
        self._syncing = False
        self._push()  # the layer's frame rate, for a band another dock sets
        self.update_memory_estimate()

    def _timer(self, slot: Any) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(300)
        timer.timeout.connect(slot)
        return timer

    # ---------------------------------------------------------------- choices and state

    @staticmethod
    def _method_catalog() -> dict[str, dict[str, Any]]:
        from napari_vmm.core.registry import available_methods

        try:
            return available_methods()
        except Exception as exc:  # a broken method module must not take the widget down
            show_warning(f"napari-vmm: could not list all methods: {exc}")
            return loadable_methods()

    @staticmethod
    def _devices() -> list[str]:
        try:
            import torch

            return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
        except Exception:
            return ["cpu"]

    def _image_choices(self, _widget: Any = None) -> list[tuple[str, Image]]:
        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Image)]

    def _shapes_choices(self, _widget: Any = None) -> list[tuple[str, Shapes]]:
        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Shapes)]

    def _reset_layer_choices(self, event: Any = None) -> None:
        if not self._alive():
            return
        self._layer.reset_choices()
        self._roi.reset_choices()
        if self._layer.value is None and self._layer.choices:  # first image: select it
            self._layer.value = self._layer.choices[-1]
        # follow renames too (disconnecting first keeps one connection per layer)
        for layer in self.viewer.layers:
            layer.events.name.disconnect(self._reset_layer_choices)
            layer.events.name.connect(self._reset_layer_choices)

    def _alive(self) -> bool:
        return is_alive(self)

    @property
    def is_running(self) -> bool:
        """True while a Run or Preview worker is active."""
        return self._worker is not None

    # ---------------------------------------------------------------- form <-> model

    def _on_form_changed(self, *_: Any) -> None:
        if self._syncing:
            return
        self._push()
        # the file is chosen now: a save that fires later (e.g. while a test tears down)
        # still goes where this change was made
        self._save_path = settings_path()
        self._save_timer.start()
        self._estimate_timer.start()

    def _push(self) -> None:
        """Write the form into the model. Parameters the model refuses (e.g. a band above
        Nyquist while typing) are left out: Run reports them."""
        values: dict[str, Any] = {
            "band_unit": self._band_unit.value, "feather_px": float(self._feather.value),
            "preview_frames": int(self._preview_frames.value),
            "dask_scheduler": self._scheduler.value, "zarr_output": self._zarr_out.value,
        }
        name = self._method.value
        if name is not None:
            values["options_by_method"] = {**self.model.options_by_method,
                                           name: self._current_options()}
        with contextlib.suppress(VMMError):
            values["params"] = self.params()
        self._syncing = True
        try:
            self.model.update(values)
        finally:
            self._syncing = False

    def _on_model_changed(self, event: Any = None) -> None:
        """Another dock (or a script) changed the model: show it."""
        if self._syncing or not self._alive():
            return
        band = self.band_hz()
        self._show_model()
        new = self.model.params.band
        if new is not None and not np.allclose(band, new, rtol=1e-6):
            self._set_status(f"band set to {new[0]:.4g}-{new[1]:.4g} Hz")
        self._estimate_timer.start()

    def _show_model(self) -> None:
        """Fill the form from the model (without writing it back)."""
        m, syncing = self.model, self._syncing
        self._syncing = True
        try:
            self._band_unit.value = m.band_unit
            self._show_params(m.params)
            self._feather.value = m.feather_px
            self._preview_frames.value = m.preview_frames
            self._scheduler.value = m.dask_scheduler
            self._zarr_out.value = m.zarr_output
        finally:
            self._syncing = syncing

    def _show_params(self, params: MagnifyParams) -> None:
        """Show ``params`` in the form (unknown methods or devices are ignored)."""
        if params.method in self._methods and self._method.value != params.method:
            self._method.value = params.method  # rebuilds the options from the model
        elif params.method == self._method.value:
            for key, value in params.options.items():
                if key in self._option_widgets:
                    self._option_widgets[key].value = value
        show_fields(self, params)  # alpha, fps, filter, order, taps, mode, reference, device
        if params.band is not None:
            factor = 60.0 if self._band_unit.value == "BPM" else 1.0
            self._show_band(params.band[0] * factor, params.band[1] * factor)

    # ---------------------------------------------------------------- method options

    def _rebuild_options(self) -> None:
        """Replace the option widgets with those of the selected method."""
        self._options.clear()
        self._option_widgets = {}
        name = self._method.value
        if name is None:
            return
        info = self._methods[name]
        summary = info.get("summary", "")
        weights = info.get("weights")
        if isinstance(weights, dict):  # learned methods say whether trained weights ship
            summary += f"\nweights: {weights.get('status', 'unknown')}"
            if weights.get("val_ssim") is not None:
                summary += f" (validation SSIM {weights['val_ssim']:.3f})"
        self._method_summary.value = summary
        self._method_summary.visible = bool(summary)
        saved = self.model.options_by_method.get(name, {})
        for key, spec in info.get("options", {}).items():
            widget = option_widget(key, spec, saved.get(key, spec["default"]))
            widget.changed.connect(self._on_form_changed)
            self._option_widgets[key] = widget
            self._options.append(widget)
        self._options.visible = bool(self._option_widgets)

    def _current_options(self) -> dict[str, Any]:
        return {key: w.value for key, w in self._option_widgets.items()}

    def _on_method_changed(self, *_: Any) -> None:
        self._rebuild_options()

    # ---------------------------------------------------------------- layer, fps, band

    @property
    def layer(self) -> Image | None:
        """The selected image layer."""
        return self._layer.value

    @layer.setter
    def layer(self, layer: Image | str) -> None:
        if isinstance(layer, str):
            layer = self.viewer.layers[layer]
        self._layer.value = layer

    def _on_layer_changed(self, *_: Any) -> None:
        layer = self._layer.value
        self._fps.enabled = True
        if layer is None:
            self._fps_note.value = ""
            return
        try:
            check_image_layer(layer)
        except VMMError as exc:
            self._set_status(str(exc))
            return
        self._set_status("")
        fps, editable, self._fps_note.value = layer_rate(layer, self._fps.value)
        if fps is not None:
            self._fps.value = fps
        self._fps.enabled = editable
        self._reference.max = max(int(layer.data.shape[0]) - 1, 0)

    def _on_band_unit_changed(self, *_: Any) -> None:
        factor = 60.0 if self._band_unit.value == "BPM" else 1 / 60.0
        self._show_band(self._band_lo.value * factor, self._band_hi.value * factor)

    def _on_fps_changed(self, *_: Any) -> None:
        layer = self._layer.value
        if not self._syncing and video_file_info(layer) is not None:
            set_capture_rate(layer, self._fps.value)  # the true capture rate of the footage
        self._show_band()

    def _show_band(self, lo: float | None = None, hi: float | None = None) -> None:
        """Show band edges (in the widget's unit) with >= 4 significant digits.

        The spin boxes get enough decimals for these values and for a tenth of the Nyquist
        frequency, so slow time-lapses (e.g. 0.004 Hz at 10 s/frame) keep their band.
        """
        lo = self._band_lo.value if lo is None else lo
        hi = self._band_hi.value if hi is None else hi
        unit = 60.0 if self._band_unit.value == "BPM" else 1.0
        decimals = significant_decimals((lo, hi, self._fps.value / 20 * unit))
        for box in (self._band_lo, self._band_hi):
            if box.native.decimals() != decimals:
                box.native.setDecimals(decimals)
                box.native.setSingleStep(10.0 ** (2 - decimals) if decimals > 2 else 0.1)
        self._band_hi.value = hi  # set high first so low stays below it
        self._band_lo.value = lo

    def band_hz(self) -> tuple[float, float]:
        """The band in Hz, whatever unit the widget shows."""
        factor = 1 / 60.0 if self._band_unit.value == "BPM" else 1.0
        return self._band_lo.value * factor, self._band_hi.value * factor

    def set_band(self, lo_hz: float, hi_hz: float) -> None:
        """Set the pass band (in Hz) in the shared model; every magnify dock of the viewer
        shows it (in its current unit).

        A band the parameters refuse (e.g. above Nyquist at this layer's rate) is shown in
        this form only; Run then says why.

        Parameters
        ----------
        lo_hz, hi_hz : float
            Band edges in Hz, ``0 <= lo_hz < hi_hz``.
        """
        lo_hz, hi_hz = check_band_edges(lo_hz, hi_hz)
        try:
            self.model.set_band(lo_hz, hi_hz)
        except VMMError:
            factor = 60.0 if self._band_unit.value == "BPM" else 1.0
            self._show_band(lo_hz * factor, hi_hz * factor)

    def _update_enabled(self, *_: Any) -> None:
        self._reference.enabled = self._mode.value == "static"
        self._feather.enabled = self._roi.value is not None
        running = self._worker is not None
        self._run_btn.enabled = not running
        self._preview_btn.enabled = not running
        self._cancel_btn.enabled = running

    def _set_status(self, text: str) -> None:
        if self._alive():  # the dock may have been closed while a worker ran
            self._status.value = text

    # ---------------------------------------------------------------- parameters

    def params(self) -> MagnifyParams:
        """The parameters the form shows, as a validated :class:`MagnifyParams`."""
        return form_params(self)  # raises VMMError naming a bad parameter

    def set_params(self, params: MagnifyParams) -> None:
        """Make ``params`` the shared model's (every magnify dock of the viewer shows them;
        unknown methods or devices are not shown)."""
        self.model.set_params(params)

    def update_memory_estimate(self) -> str:
        """Show (and return) the memory one Dask task would hold for the selected layer.

        The estimate (:func:`napari_vmm._napari.jobs.dask_memory_line`) runs nothing; it is
        what a run on the Dask route (a dask-backed layer with a scheduler set, or a Zarr
        output) holds per task, so tiles and segments can be sized before a run. It is
        hidden (and empty) when Run would not take the Dask route.
        """
        if not self._alive():
            return ""
        text = dask_memory_line(self._layer.value, self._scheduler.value, self._zarr_out.value,
                                form_engine_kwargs(self))
        self._memory.value = text
        self._memory.visible = bool(text)
        return text

    def dask_settings(self) -> tuple[str | None, str | None]:
        """The validated Dask scheduler (None: local threads) and Zarr output (or None)."""
        return dask_settings(self._scheduler.value, self._zarr_out.value)

    def save_settings(self, path: Path | None = None) -> None:
        """Write the shared model to the user config dir (atomically) for the next session.

        A process-local scheduler (``inproc://``) or a Zarr output in the temporary folder is
        not written (:func:`napari_vmm._napari.settings.persistable`). ``path`` defaults to
        where the last change was scheduled to be saved, else :func:`settings_path`.
        """
        path = path or self._save_path
        self._save_path = None
        self.model.save_settings(path)

    # ---------------------------------------------------------------- actions

    def run(self) -> GeneratorWorker | None:
        """Magnify the whole selected layer into ``<source>_<method>``.

        A re-run replaces only the earlier result of the same method, so two methods can be
        compared side by side.

        Returns
        -------
        GeneratorWorker or None
            The started worker, or None when the input was refused (a notification says why).
        """
        return self._start(preview=False)

    def preview(self) -> GeneratorWorker | None:
        """Magnify the first N frames (cropped to the ROI when set) into
        ``<source>_<method>_preview``."""
        return self._start(preview=True)

    def cancel(self) -> None:
        """Stop the running worker and free the widget at once.

        The worker stops at its next step (an engine chunk, or the Dask job's next check):
        that step finishes in the background and its result is dropped, so Run is available
        again immediately.
        """
        worker = self._worker
        if worker is None:
            return
        if self._cancel_event is not None:  # Dask route: stop in the worker, cleanly
            self._cancel_event.set()
        else:
            worker.quit()
        self._detach(worker)
        self._set_status("cancelled (the step in progress ends in the background)")

    def command(self) -> str:
        """The ``vmm magnify`` command equivalent to the current parameters."""
        return magnify_command(self._layer.value, self.params())

    def copy_command(self) -> str | None:
        """Put the equivalent ``vmm magnify`` command on the clipboard and return it."""
        try:
            cmd = self.command()
        except Exception as exc:
            show_error(f"napari-vmm: {exc}")
            return None
        QApplication.clipboard().setText(cmd)
        layer = self._layer.value
        if layer is not None and not getattr(layer.source, "path", None):
            show_warning(f"layer {layer.name!r} has no file: save it and fix the input path "
                         "in the copied command")
        if self._roi.value is not None:
            show_warning("the copied command does not include the ROI")
        self._set_status(f"copied: {cmd}")
        self.save_settings()
        return cmd

    def _start(self, preview: bool) -> GeneratorWorker | None:
        if self._worker is not None:
            show_warning("napari-vmm: a magnification is already running")
            return None
        try:
            job = prepare_job(self._layer.value, self.params(), roi_layer=self._roi.value,
                              feather_px=float(self._feather.value), preview=preview,
                              preview_frames=int(self._preview_frames.value),
                              scheduler=self._scheduler.value,
                              zarr_output=self._zarr_out.value)
        except VMMError as exc:
            show_error(gui_message(str(exc)))
            self._set_status(gui_message(str(exc)))
            return None
        for text in job.warnings:
            show_warning(text)
        self.save_settings()
        what = "preview" if preview else "magnification"
        if job.dask is None:
            self._cancel_event = None
            worker = create_worker(engine_job, job.frames, job.out, job.kwargs,
                                   _ignore_errors=True)
        else:
            scheduler, zarr_out = job.dask
            self._cancel_event = threading.Event()
            fallback = scheduler is not None and scheduler == self.model.saved_scheduler
            worker = create_worker(dask_job, job.frames, job.out, zarr_out, scheduler,
                                   job.kwargs, self._cancel_event, fallback,
                                   _ignore_errors=True)
        self._worker = worker
        self._pbar = cancelable_progress(total=0, desc=f"{what} of {job.source.name}",
                                         cancel_callback=self.cancel)
        worker.yielded.connect(self._on_yielded)
        worker.returned.connect(lambda result, w=worker: self._worker is w and self._on_returned(
            result, job.source, job.name, job.provenance, job.offset))
        worker.errored.connect(lambda exc, w=worker: self._on_errored(exc, w))
        worker.aborted.connect(lambda w=worker: self._on_aborted(what, w))
        worker.finished.connect(lambda w=worker: self._detach(w))
        self._update_enabled()
        self._set_status(f"{what} of {job.source.name!r} running…")
        worker.start()
        return worker

    # ---------------------------------------------------------------- worker callbacks

    def _on_yielded(self, value: tuple[int, int] | str) -> None:
        if isinstance(value, str):  # a warning from the worker (e.g. a scheduler fallback)
            show_warning(value)
            self._set_status(value)
            return
        done, total = value
        if self._pbar is not None:
            if self._pbar.total != total:
                self._pbar.total = total
            self._pbar.update(done - self._pbar.n)

    def _on_returned(self, out: np.ndarray | str, source: Image, name: str,
                     provenance: dict[str, Any], offset: tuple[int, int]) -> None:
        if isinstance(out, (str, os.PathLike)):  # a Zarr output: add it back lazily
            from napari_vmm.io.zarr import open_zarr

            out = open_zarr(out)[0]
        kwargs = output_layer_kwargs(source, name, provenance, offset)
        if name in self.viewer.layers:
            self.viewer.layers.remove(name)
        self.viewer.add_image(out, **kwargs)
        self._set_status(f"added {name!r}")

    def _on_errored(self, exc: BaseException, worker: Any = None) -> None:
        if isinstance(exc, WorkerError):
            exc = exc.original
        if isinstance(exc, Cancelled):
            if worker is None or worker is self._worker:
                self._set_status("cancelled")
            return
        if worker is not None and worker is not self._worker:  # cancelled, then failed
            log.warning("napari-vmm: a cancelled run failed in the background: %s", exc)
            return
        if isinstance(exc, VMMError):
            msg = gui_message(str(exc))
        else:
            log.error("napari-vmm: magnification failed", exc_info=exc)
            msg = f"magnification failed: {type(exc).__name__}: {exc}"
        show_error(msg)
        self._set_status(msg)

    def _on_aborted(self, what: str, worker: Any = None) -> None:
        show_info(f"napari-vmm: {what} cancelled")
        if self._worker is None or self._worker is worker:
            self._set_status(f"{what} cancelled")

    def _detach(self, worker: Any) -> None:
        """Forget ``worker`` (finished, or cancelled and ending in the background)."""
        if self._worker is not worker:
            return
        self._worker = None
        self._cancel_event = None
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
        if self._alive():
            self._update_enabled()
