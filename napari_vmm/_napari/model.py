"""The state the napari-vmm dock widgets of one viewer share (Qt-free).

:class:`WidgetsModel` is a napari :class:`~napari.utils.events.EventedModel`: assigning a
field emits ``model.events.<field>`` (only when the value changes), so the dock views
subscribe to the model instead of calling each other. There is one model per viewer
(:func:`shared_model`): the "Motion traces" widget writes the band it picked into it, every
"Motion magnification" dock of that viewer shows it, and a dock opened later starts from it.
The model also reads and writes the settings file (:mod:`napari_vmm._napari.settings`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import weakref
from pathlib import Path
from typing import Any, Literal

from napari.utils.events import EventedModel
from pydantic import Field, InstanceOf, PrivateAttr

from napari_vmm import __version__
from napari_vmm._napari.settings import read_settings, settings_path, write_settings
from napari_vmm.core.params import MagnifyParams, check_band_edges

log = logging.getLogger(__name__)


class WidgetsModel(EventedModel):
    """What the dock widgets of one viewer share.

    Attributes
    ----------
    params : MagnifyParams
        The magnification parameters (method, α, band in Hz, fps, filter, mode, ...). The
        "Motion magnification" form shows them; "Motion traces" sets the band.
    band_unit : {"Hz", "BPM"}
        The unit the magnify form shows the band in (``params.band`` is always in Hz).
    options_by_method : dict
        The options last chosen for each method, so switching methods keeps them.
    feather_px, preview_frames : float, int
        ROI feather (px) and preview length (0: automatic) of the magnify form.
    dask_scheduler, zarr_output : str
        Where a Run on the Dask route goes ("" = local threads / no Zarr output).
    calibration : Calibration or None
        The pixel size shared by "Motion traces" and "Deflection shapes"
        (:class:`napari_vmm.core.analysis.Calibration`; None: report in pixels).
    """

    params: InstanceOf[MagnifyParams] = Field(default_factory=MagnifyParams)
    band_unit: Literal["Hz", "BPM"] = "Hz"
    options_by_method: dict[str, dict[str, Any]] = Field(default_factory=dict)
    feather_px: float = 4.0
    preview_frames: int = 0
    dask_scheduler: str = ""
    zarr_output: str = ""
    calibration: Any = None

    _saved_scheduler: str = PrivateAttr("")
    _settings_warning: str | None = PrivateAttr(None)

    # ------------------------------------------------------------------------ parameters

    def set_params(self, params: MagnifyParams) -> None:
        """Make ``params`` current; its options become the method's remembered options."""
        self.update({"params": params,
                     "options_by_method": {**self.options_by_method,
                                           params.method: dict(params.options)}})

    def set_band(self, lo_hz: float, hi_hz: float) -> tuple[float, float]:
        """Set the pass band in Hz; returns it.

        Raises
        ------
        VMMError
            Unless ``0 <= lo_hz < hi_hz`` (both finite) and the parameters accept the band
            (e.g. below Nyquist at ``params.fps``).
        """
        lo_hz, hi_hz = check_band_edges(lo_hz, hi_hz)
        self.params = dataclasses.replace(self.params, band=(lo_hz, hi_hz))  # validates
        return lo_hz, hi_hz

    def calibration_for(self, size: float, unit: str) -> Any:
        """The calibration of a pixel of ``size`` ``unit`` (``size <= 0``: none).

        The current :attr:`calibration` is kept when it says the same (within 1 %: the
        fields round), so its provenance (two points, the layer's scale) survives.
        """
        from napari_vmm.core.analysis import calibration_from_pixel_size, no_calibration

        size = float(size)
        if size <= 0:
            return no_calibration()
        cal = self.calibration
        if cal is not None and cal.calibrated and math.isclose(cal.size, size, rel_tol=0.01) \
                and cal.unit == unit:
            return cal
        return calibration_from_pixel_size(size, unit)

    # ------------------------------------------------------------------------ settings

    @property
    def saved_scheduler(self) -> str:
        """The Dask scheduler the settings file named ("" when none): one that cannot be
        reached any more falls back to local threads instead of failing the run."""
        return self._saved_scheduler

    def to_settings(self) -> dict[str, Any]:
        """The JSON-able state written to the settings file."""
        return {
            "version": __version__,
            "params": self.params.to_dict(),
            "band_unit": self.band_unit,
            "options_by_method": self.options_by_method,
            "feather_px": self.feather_px,
            "preview_frames": self.preview_frames,
            "dask_scheduler": self.dask_scheduler,
            "zarr_output": self.zarr_output,
        }

    def apply_settings(self, state: dict[str, Any]) -> None:
        """Take the values of a settings dict (:meth:`to_settings`); raises on a bad one."""
        params = MagnifyParams.from_dict(state["params"])
        self.update({
            "options_by_method": {**self.options_by_method,
                                  **state.get("options_by_method", {}),
                                  params.method: dict(params.options)},
            "params": params,
            "band_unit": "BPM" if state.get("band_unit") == "BPM" else "Hz",
            "feather_px": state.get("feather_px", self.feather_px),
            "preview_frames": state.get("preview_frames", self.preview_frames),
            "dask_scheduler": state.get("dask_scheduler", ""),
            "zarr_output": state.get("zarr_output", ""),
        })

    def pop_settings_warning(self) -> str | None:
        """The warning of :meth:`load_settings` (once; None when there was none)."""
        warning, self._settings_warning = self._settings_warning, None
        return warning

    def load_settings(self, path: Path | None = None) -> str | None:
        """Read the settings file; returns a warning to show (None when there is none).

        An old or broken file leaves the defaults (logged); a saved scheduler or Zarr output
        that cannot be used any more falls back to the local default (the warning says so).
        The warning is also kept for :meth:`pop_settings_warning`.
        """
        state, warning = read_settings(path)
        if state:
            try:
                self.apply_settings(state)
            except Exception as exc:  # an old or broken file: start from defaults
                log.warning("napari-vmm: ignoring settings in %s: %s",
                            path or settings_path(), exc)
        self._saved_scheduler = self.dask_scheduler
        self._settings_warning = warning
        return warning

    def save_settings(self, path: Path | None = None) -> None:
        """Write :meth:`to_settings` to ``path`` (default :func:`settings_path`), atomically.

        Never raises: the settings are a convenience (a failure is logged).
        """
        try:
            write_settings(self.to_settings(), path)
        except Exception as exc:
            log.warning("napari-vmm: could not save widget settings: %s", exc)


def unwrap_viewer(viewer: Any) -> Any:
    """The viewer behind napari's PublicOnlyProxy (docked plugin widgets get a proxy)."""
    return getattr(viewer, "__wrapped__", viewer)


# One model per viewer, dropped with the viewer. It maps viewers to models; no widget is
# held here, and widgets never reach each other: they only share the model.
_MODELS: weakref.WeakKeyDictionary[Any, WidgetsModel] = weakref.WeakKeyDictionary()


def shared_model(viewer: Any) -> WidgetsModel:
    """The :class:`WidgetsModel` of ``viewer`` (a proxy of it gives the same).

    Made on first use from the user's settings file (:meth:`WidgetsModel.load_settings`).
    """
    target = unwrap_viewer(viewer)
    model = _MODELS.get(target)
    if model is None:
        model = _MODELS[target] = WidgetsModel()
        model.load_settings()
    return model
