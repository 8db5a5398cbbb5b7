"""Result containers: peaks, per-ROI analysis and the whole clip's analysis."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .rois import ROI


#: An amplitude below this many noise floors is flagged as not distinguishable from noise.
SNR_FLAG = 3.0


@dataclass
class Peak:
    """One spectral peak of a trace.

    ``amplitude`` is in the trace's unit (px for displacement, raw intensity for intensity):
    the largest excursion of the fitted sinusoid (for displacement, combined over x and y).
    """

    hz: float
    amplitude: float
    amplitude_x: float = float("nan")
    amplitude_y: float = float("nan")
    #: Standard error of ``amplitude`` from the noise around the peak (see ``noise.py``).
    noise_floor: float = float("nan")
    snr: float = float("nan")

    @property
    def below_floor(self) -> bool:
        """True when the amplitude is below 3x the noise floor (not distinguishable)."""
        return bool(self.amplitude < SNR_FLAG * self.noise_floor)

    def to_dict(self, scale: float | None = None, unit: str = "") -> dict[str, Any]:
        d: dict[str, Any] = {"hz": self.hz, "amplitude_px": self.amplitude}
        if not math.isnan(self.amplitude_x):
            d["amplitude_x_px"] = self.amplitude_x
            d["amplitude_y_px"] = self.amplitude_y
        if scale is not None:
            d[f"amplitude_{unit}"] = self.amplitude * scale
        if not math.isnan(self.noise_floor):
            d["noise_floor_px"] = self.noise_floor
            if scale is not None:
                d[f"noise_floor_{unit}"] = self.noise_floor * scale
            d["snr"] = _num(self.snr)
            d["below_3x_floor"] = self.below_floor
        return d


@dataclass
class RoiAnalysis:
    """Everything computed for one ROI. Displacements in px, frequencies in Hz."""

    roi: ROI
    fps: float
    dx: np.ndarray
    dy: np.ndarray
    intensity: np.ndarray
    freqs: np.ndarray
    spectrum: np.ndarray
    spectrum_x: np.ndarray
    spectrum_y: np.ndarray
    spectrum_intensity: np.ndarray
    peaks: list[Peak]
    intensity_peaks: list[Peak]
    band: tuple[float, float] | None
    intensity_band: tuple[float, float] | None
    pixel_size: float | None = None
    unit: str = "px"
    warnings: list[str] = field(default_factory=list)
    #: Noise level of ``spectrum`` (F,) px: the floor line drawn on the spectrum plot.
    noise_line: np.ndarray | None = None

    @property
    def times(self) -> np.ndarray:
        """Frame times in seconds."""
        return np.arange(len(self.dx)) / self.fps

    @property
    def dominant_hz(self) -> float:
        """Frequency of the strongest displacement peak (NaN if none)."""
        return self.peaks[0].hz if self.peaks else float("nan")

    @property
    def amplitude_px(self) -> float:
        """Displacement amplitude at the dominant frequency, combined over x and y."""
        return self.peaks[0].amplitude if self.peaks else float("nan")

    @property
    def scale(self) -> float:
        """Physical size of one pixel (1 when no pixel size was given)."""
        return self.pixel_size if self.pixel_size is not None else 1.0

    def to_dict(self) -> dict[str, Any]:
        """Summary without the traces (what ``vmm analyze --json`` prints per ROI)."""
        scale = self.pixel_size
        rms = float(np.sqrt(np.mean(
            (self.dx - self.dx.mean()) ** 2 + (self.dy - self.dy.mean()) ** 2)))
        d: dict[str, Any] = {
            "name": self.roi.label(),
            "dominant_hz": _num(self.dominant_hz),
            "amplitude_px": _num(self.amplitude_px),
            "band": list(self.band) if self.band else None,
            "peaks": [p.to_dict(scale, self.unit) for p in self.peaks],
            "intensity_dominant_hz": _num(self.intensity_peaks[0].hz)
            if self.intensity_peaks else None,
            "intensity_band": list(self.intensity_band) if self.intensity_band else None,
            "rms_displacement_px": _num(rms),
        }
        if self.peaks and not math.isnan(self.peaks[0].noise_floor):
            d["noise_floor_px"] = _num(self.peaks[0].noise_floor)
            d["snr"] = _num(self.peaks[0].snr)
        if scale is not None:
            d["unit"] = self.unit
            d["pixel_size"] = scale
            d[f"amplitude_{self.unit}"] = _num(self.amplitude_px * scale)
            d[f"rms_displacement_{self.unit}"] = _num(rms * scale)
            if "noise_floor_px" in d:
                d[f"noise_floor_{self.unit}"] = _num(self.peaks[0].noise_floor * scale)
        if self.warnings:
            d["warnings"] = list(self.warnings)
        return d


@dataclass
class MotionAnalysis:
    """Results for all ROIs of one clip."""

    rois: list[RoiAnalysis]
    fps: float
    n_frames: int
    pixel_size: float | None = None
    unit: str = "px"
    #: Provenance of the pixel size (``Calibration.to_dict()``), None when uncalibrated.
    calibration: dict[str, Any] | None = None
    #: Name of the static reference region whose noise entered the floors, if any.
    noise_reference: str | None = None

    @property
    def times(self) -> np.ndarray:
        """Frame times in seconds."""
        return np.arange(self.n_frames) / self.fps

    def to_dict(self) -> dict[str, Any]:
        """``{"fps", "n_frames", "calibration", "rois": [...]}``, ROIs in input order."""
        d: dict[str, Any] = {"fps": self.fps, "n_frames": self.n_frames}
        if self.calibration is not None:
            d["calibration"] = self.calibration
        if self.noise_reference is not None:
            d["noise_reference"] = self.noise_reference
        d["rois"] = [r.to_dict() for r in self.rois]
        return d


def _num(x: float) -> float | None:
    """JSON-safe float (NaN -> None)."""
    return None if x is None or not math.isfinite(x) else float(x)
