"""Calibration: the physical length of one pixel, and where it came from.

Four ways to get it, all giving a :class:`Calibration`:

- a pixel size as a length, ``"0.12mm"`` (:func:`calibration_from_pixel_size`);
- the pinhole camera model, pixel size at the target = sensor pixel pitch x distance / focal
  length (:func:`calibration_from_pinhole`), as RDI's motion amplification asks for;
- two points a known distance apart in the frame (:func:`calibration_from_points`);
- a napari layer's scale and units (:func:`calibration_from_scale`).

The calibration's :meth:`Calibration.to_dict` is the provenance written into JSON outputs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import VMMError

#: Length units understood, in metres. Keys are lower case; "um" is the canonical micrometre.
_METRES = {
    "nm": 1e-9, "nanometer": 1e-9, "nanometre": 1e-9,
    "um": 1e-6, "µm": 1e-6, "μm": 1e-6, "micron": 1e-6, "micrometer": 1e-6, "micrometre": 1e-6,
    "mm": 1e-3, "millimeter": 1e-3, "millimetre": 1e-3,
    "cm": 1e-2, "centimeter": 1e-2, "centimetre": 1e-2,
    "m": 1.0, "meter": 1.0, "metre": 1.0,
    "in": 0.0254, "inch": 0.0254,
}
_CANONICAL = {1e-9: "nm", 1e-6: "um", 1e-3: "mm", 1e-2: "cm", 1.0: "m", 0.0254: "in"}
_LENGTH = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([^\d\s.]*)\s*$")


def unit_metres(unit: str) -> float:
    """Length of one ``unit`` in metres (``"mm"`` -> 0.001); VMMError for unknown units."""
    key = str(unit).strip().lower()
    if key.endswith("s") and key[:-1] in _METRES and len(key) > 2:  # "millimeters"
        key = key[:-1]
    if key not in _METRES:
        raise VMMError(f"unknown length unit {unit!r}; use one of nm, um, mm, cm, m, in")
    return _METRES[key]


def canonical_unit(unit: str) -> str:
    """Short name of a length unit (``"micrometer"`` -> ``"um"``)."""
    return _CANONICAL[unit_metres(unit)]


def parse_length(text: str | float, default_unit: str | None = None) -> tuple[float, str]:
    """``"0.12mm"`` -> ``(0.12, "mm")``; a bare number takes ``default_unit``.

    Raises
    ------
    VMMError
        For anything that is not a positive, finite length.
    """
    m = _LENGTH.match(str(text))
    if m is None:
        raise VMMError(f"expected a length such as 0.12mm, got {text!r}")
    value = float(m.group(1))
    unit = m.group(2) or default_unit
    if unit is None:
        raise VMMError(f"{text!r} needs a unit (for example {text}mm)")
    if not (value > 0 and math.isfinite(value)):
        raise VMMError(f"a length must be positive, got {text!r}")
    return value, canonical_unit(unit)


def _readable(metres: float) -> tuple[float, str]:
    """A length in the largest of m, mm, um, nm in which it reads at least 0.1."""
    for unit in ("m", "mm", "um", "nm"):
        if metres / _METRES[unit] >= 0.1:
            return metres / _METRES[unit], unit
    return metres / 1e-9, "nm"


@dataclass(frozen=True)
class Calibration:
    """Physical size of one (square) pixel.

    Attributes
    ----------
    size : float or None
        Length of one pixel in :attr:`unit`; None when uncalibrated (everything stays in px).
    unit : str
        ``"px"`` when uncalibrated, else a length unit (``"mm"``, ``"um"``, ...).
    method : str
        ``"none"``, ``"pixel-size"``, ``"pinhole"``, ``"points"`` or ``"layer-scale"``.
    inputs : dict
        What the calibration was derived from (recorded as provenance).
    """

    size: float | None = None
    unit: str = "px"
    method: str = "none"
    inputs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.size is not None and not (self.size > 0 and math.isfinite(self.size)):
            raise VMMError(f"pixel size must be a positive number, got {self.size!r}")

    @property
    def calibrated(self) -> bool:
        return self.size is not None

    @property
    def scale(self) -> float:
        """Multiply px by this to get :attr:`unit` (1 when uncalibrated)."""
        return 1.0 if self.size is None else float(self.size)

    def to_dict(self) -> dict[str, Any]:
        """Provenance: ``{"method", "pixel_size", "unit", "inputs"}``."""
        return {"method": self.method, "pixel_size": self.size, "unit": self.unit,
                "inputs": dict(self.inputs)}

    def describe(self) -> str:
        """One line for reports: ``"1 px = 0.12 mm (pixel-size)"`` or ``"uncalibrated (px)"``."""
        if self.size is None:
            return "uncalibrated (px)"
        return f"1 px = {self.size:.6g} {self.unit} ({self.method})"


def no_calibration() -> Calibration:
    """Displacements in px."""
    return Calibration()


def calibration_from_pixel_size(size: str | float, unit: str | None = None,
                                default_unit: str | None = None) -> Calibration:
    """From a pixel size: ``"0.12mm"``, or a number with ``unit`` (else ``default_unit``).

    Raises
    ------
    VMMError
        When the string's unit and ``unit`` disagree, or the size is not a positive length.
    """
    value, u = parse_length(size, default_unit=unit or default_unit)
    if unit is not None and canonical_unit(unit) != u:
        raise VMMError(f"pixel size {size!r} is in {u} but the unit given is {unit!r}")
    return Calibration(value, u, "pixel-size", {"pixel_size": str(size)})


def calibration_from_pinhole(distance: str, focal_length: str,
                             sensor_pixel: str) -> Calibration:
    """Pinhole model: pixel size at the target = ``sensor_pixel * distance / focal_length``.

    Parameters
    ----------
    distance : str
        Camera (lens centre) to target, with a unit, e.g. ``"2.5m"``.
    focal_length : str
        e.g. ``"50mm"``.
    sensor_pixel : str
        Pixel pitch of the sensor (after any binning or downscaling of the video), e.g.
        ``"5.86um"``.

    Notes
    -----
    Valid for a target plane facing the camera at a distance much larger than the focal
    length (otherwise use ``distance - focal_length``); the unit chosen is the largest of
    m, mm, um, nm in which the size reads at least 0.1.
    """
    d = _to_metres(distance, "--distance")
    f = _to_metres(focal_length, "--focal-length")
    p = _to_metres(sensor_pixel, "--sensor-pixel")
    if d <= f:
        raise VMMError(f"distance {distance} must be larger than the focal length {focal_length}")
    value, unit = _readable(p * d / f)
    return Calibration(value, unit, "pinhole", {
        "distance": str(distance), "focal_length": str(focal_length),
        "sensor_pixel": str(sensor_pixel)})


def calibration_from_points(p1: Sequence[float], p2: Sequence[float],
                            distance: str | float, unit: str | None = None) -> Calibration:
    """From two points (``(row, col)`` in px) that lie ``distance`` apart on the object."""
    value, u = parse_length(distance, default_unit=unit)
    a, b = np.asarray(p1, dtype=float)[-2:], np.asarray(p2, dtype=float)[-2:]
    px = float(np.hypot(*(a - b)))
    if not (px > 0 and math.isfinite(px)):
        raise VMMError("the two calibration points must be distinct")
    return Calibration(value / px, u, "points", {
        "p1": a.tolist(), "p2": b.tolist(), "distance": f"{value:g}{u}", "distance_px": px})


def calibration_from_scale(scale: Sequence[float], units: Sequence[Any]) -> Calibration:
    """From a napari layer's ``scale`` and ``units`` (their last two axes, y and x).

    Uncalibrated (px) when the units are not lengths (napari's default is ``pixel``) or the
    pixels are not square.
    """
    try:
        sy, sx = (float(v) for v in list(scale)[-2:])
        uy, ux = (canonical_unit(f"{u}") for u in list(units)[-2:])
    except (VMMError, ValueError, TypeError):
        return no_calibration()
    if uy != ux or not math.isclose(sy, sx, rel_tol=1e-6) or not sx > 0:
        return no_calibration()
    return Calibration(sx, ux, "layer-scale", {"scale": [sy, sx], "units": [uy, ux]})


def _to_metres(text: str, what: str) -> float:
    try:
        value, unit = parse_length(text)
    except VMMError as err:
        raise VMMError(f"{what}: {err}") from None
    return value * unit_metres(unit)
