"""Operating deflection shapes (ODS): how every point of a structure moves at one frequency.

A grid of cells is tracked (:mod:`.grid`); each cell's ``dy`` and ``dx`` traces get a spectrum,
the cells' spectra are averaged to find the frequencies the structure moves at, and at the
chosen one a least-squares fit of a sinusoid to every trace gives its amplitude and phase: the
*shape*. Phases are relative to the cell that moves most, so a standing shape reads 0 or
+-180 degrees. Each cell's noise floor (:mod:`.noise`) gives its SNR.

The shape's complex phasors ``P`` mean ``d(t) = Re(P exp(2 pi i f t))`` with ``t`` in seconds
from the first frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import VMMError
from .calibration import Calibration, no_calibration
from .grid import GridLayout, grid_layout, iter_track_grid
from .motion import drive
from .noise import amplitude_floor, noise_density, spectrum_floor, welch_density
from .results import Peak
from .rois import ROI
from .spectra import (
    amplitude_spectrum,
    find_peaks,
    fit_sinusoids,
    refine_frequency,
    sinusoid_residual,
)
from .tracking import source_info


@dataclass
class GridAnalysis:
    """Traces and spectra of every cell of a grid.

    Attributes
    ----------
    layout : GridLayout
    fps : float
    dy, dx : ndarray (n_cells, T)
        Displacement of each cell, px (0 for untrackable cells).
    ok : ndarray (n_cells,) bool
        Cells with enough texture to track.
    freqs : ndarray (F,)
    spectrum : ndarray (F,)
        RMS over the trackable cells of their combined (x and y) Welch amplitude spectra, px.
    noise_line : ndarray (F,)
        Noise level of :attr:`spectrum`, px.
    peaks : list of Peak
        Peaks of the averaged spectrum (only ``hz`` is meaningful), strongest first.
    calibration : Calibration
    """

    layout: GridLayout
    fps: float
    dy: np.ndarray
    dx: np.ndarray
    ok: np.ndarray
    freqs: np.ndarray
    spectrum: np.ndarray
    noise_line: np.ndarray
    peaks: list[Peak]
    calibration: Calibration

    @property
    def n_frames(self) -> int:
        return int(self.dy.shape[1])

    @property
    def positions(self) -> np.ndarray:
        """Cell centres (n_cells, 2) ``(row, col)``, px."""
        return self.layout.centres()

    def traces(self) -> np.ndarray:
        """(2 * n_ok, T): ``dx`` then ``dy`` of the trackable cells."""
        return np.concatenate([self.dx[self.ok], self.dy[self.ok]])


@dataclass
class DeflectionShape:
    """The shape at one frequency.

    Attributes
    ----------
    frequency_hz : float
    positions : ndarray (n_cells, 2)
        Cell centres ``(row, col)``, px.
    dy, dx : ndarray (n_cells,) complex
        Phasors, px; phases relative to the cell that moves most.
    floor : ndarray (n_cells,)
        Standard error of each cell's amplitude, px (NaN for untrackable cells).
    ok : ndarray (n_cells,) bool
    calibration : Calibration
    requested_hz : float or None
        What was asked (None for ``auto``); ``frequency_hz`` is refined within one bin.
    bin_hz : float
        Welch bin width of the spectra.
    """

    frequency_hz: float
    positions: np.ndarray
    dy: np.ndarray
    dx: np.ndarray
    floor: np.ndarray
    ok: np.ndarray
    calibration: Calibration
    requested_hz: float | None = None
    bin_hz: float = float("nan")

    @property
    def amplitude(self) -> np.ndarray:
        """Largest excursion of each cell's orbit (semi-major axis), px."""
        m = np.stack([np.stack([self.dy.real, self.dy.imag], -1),
                      np.stack([self.dx.real, self.dx.imag], -1)], axis=1)  # (n, 2, 2)
        return np.linalg.svd(m, compute_uv=False)[:, 0]

    @property
    def snr(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.amplitude / self.floor

    def displacement(self, phase: float) -> np.ndarray:
        """``(dy, dx)`` of every cell (n_cells, 2) at ``phase`` radians of the cycle, px."""
        rot = np.exp(1j * phase)
        return np.stack([(self.dy * rot).real, (self.dx * rot).real], axis=1)

    def to_dict(self) -> dict[str, Any]:
        """The ``"ods"`` object of ``vmm analyze --ods`` (amplitudes in the unit, positions px)."""
        cal, s = self.calibration, self.calibration.scale
        amp, snr = self.amplitude, self.snr
        points = []
        for i, (y, x) in enumerate(self.positions):
            points.append({
                "y": float(y), "x": float(x),
                "dy_amp": _num(abs(self.dy[i]) * s), "dx_amp": _num(abs(self.dx[i]) * s),
                "dy_phase": _num(math.degrees(np.angle(self.dy[i]))),
                "dx_phase": _num(math.degrees(np.angle(self.dx[i]))),
                "amplitude": _num(amp[i] * s), "snr": _num(snr[i]),
                "noise_floor": _num(self.floor[i] * s), "tracked": bool(self.ok[i]),
            })
        d: dict[str, Any] = {"frequency_hz": self.frequency_hz, "unit": cal.unit}
        if self.requested_hz is not None:
            d["requested_hz"] = self.requested_hz
        d.update({"bin_hz": self.bin_hz, "phase_unit": "deg", "positions_unit": "px",
                  "points": points})
        return d


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def iter_analyze_grid(frames: Any, grid: tuple[int, int], fps: float | None = None, *,
                      roi: ROI | None = None, calibration: Calibration | None = None,
                      reference: int = 0, nperseg: int | None = None, max_shift: int = 8,
                      chunk_frames: int = 32, fmin: float | None = None,
                      fmax: float | None = None
                      ) -> Generator[tuple[int, int], None, GridAnalysis]:
    """Generator form of :func:`analyze_grid`: yields ``(frames_done, n_frames)`` per chunk."""
    n, (h, w), _ = source_info(frames)
    fps = getattr(frames, "fps", None) if fps is None else fps
    if fps is None or not (float(fps) > 0 and math.isfinite(float(fps))):
        raise VMMError(f"a positive frame rate is needed (fps), got {fps!r}")
    fps = float(fps)
    if n < 8:
        raise VMMError(f"need at least 8 frames to analyse motion, got {n}")
    layout = grid_layout((h, w), *grid, roi=roi)
    disp, ok = yield from iter_track_grid(frames, layout, reference=reference,
                                          max_shift=max_shift, chunk_frames=chunk_frames)
    if not ok.any():
        raise VMMError("no grid cell has enough texture to track")
    dy, dx = disp[:, :, 0].T.copy(), disp[:, :, 1].T.copy()
    x = np.concatenate([dx[ok], dy[ok]])
    freqs, amp = amplitude_spectrum(x, fps, nperseg)
    spectrum = np.sqrt((amp**2).sum(axis=0) / ok.sum())
    _, _, peaks = find_peaks(x, fps, n_peaks=5, fmin=fmin, fmax=fmax, nperseg=nperseg)
    f_, psd, enbw, n_avg = welch_density(sinusoid_residual(x, fps, [p.hz for p in peaks]),
                                         fps, nperseg)
    dens = noise_density(f_, psd, [p.hz for p in peaks], n_avg)
    line = spectrum_floor(dens, enbw) / math.sqrt(ok.sum())
    return GridAnalysis(layout, fps, dy, dx, ok, freqs, spectrum, line, peaks,
                        calibration or no_calibration())


def analyze_grid(frames: Any, grid: tuple[int, int], fps: float | None = None, *,
                 progress: Callable[[int, int], Any] | None = None,
                 **options: Any) -> GridAnalysis:
    """Track a ``rows x cols`` grid of cells and compute their spectra.

    Parameters
    ----------
    frames : array-like (T, H, W[, C]) or a video source
    grid : (rows, cols)
    fps : float, optional
        Taken from ``frames.fps`` when omitted.
    progress : callable(done, total), optional
        Returning ``False`` stops with :class:`Cancelled`.
    **options
        ``roi`` (the grid covers its bounding box; default the whole frame), ``calibration``,
        ``reference`` (frame, 0), ``nperseg``, ``max_shift`` (8), ``chunk_frames`` (32),
        ``fmin``/``fmax`` (Hz: the range searched for the spectrum's peaks, hence ``auto``).
    """
    return drive(iter_analyze_grid(frames, grid, fps, **options), progress)


def deflection_shape(analysis: GridAnalysis, frequency: float | str = "auto") -> DeflectionShape:
    """The operating deflection shape at ``frequency`` (Hz) or at the strongest common peak.

    A given frequency is refined to the peak of the cells' summed periodogram within one
    Welch bin of it.

    Raises
    ------
    VMMError
        For a frequency outside (0, Nyquist), or ``auto`` without any peak.
    """
    fps, ok = analysis.fps, analysis.ok
    x = analysis.traces()
    df = float(analysis.freqs[1] - analysis.freqs[0])
    requested = None
    if isinstance(frequency, str) and frequency.strip().lower() != "auto":
        try:
            frequency = float(frequency)
        except ValueError:
            raise VMMError(f"ODS frequency must be a number of Hz or 'auto', got "
                           f"{frequency!r}") from None
    if isinstance(frequency, str):
        if not analysis.peaks:
            raise VMMError("no spectral peak found for --ods auto; give a frequency")
        f = analysis.peaks[0].hz
    else:
        requested = float(frequency)
        if not 0 < requested < fps / 2:
            raise VMMError(f"ODS frequency {requested:g} Hz is outside (0, {fps / 2:g}) Hz")
        f = refine_frequency(x, fps, requested, df)
    n_ok = int(ok.sum())
    phasors = fit_sinusoids(x, fps, [f])[0]  # (2 n_ok,)
    px_, py_ = phasors[:n_ok], phasors[n_ok:]
    # Phases relative to the cell that moves most (its larger component at phase 0).
    mag = np.hypot(np.abs(px_), np.abs(py_))
    k = int(np.argmax(mag))
    ref_phase = np.angle(py_[k] if abs(py_[k]) >= abs(px_[k]) else px_[k])
    rot = np.exp(-1j * ref_phase)
    n_cells = analysis.layout.n_cells
    dy, dx = np.zeros(n_cells, complex), np.zeros(n_cells, complex)
    dy[ok], dx[ok] = py_ * rot, px_ * rot
    # Noise floor of each cell at f, along its direction of motion.
    residual = sinusoid_residual(x, fps, [f] + [p.hz for p in analysis.peaks])
    freqs, psd, _, n_avg = welch_density(residual, fps, None)
    dens = noise_density(freqs, psd, [f] + [p.hz for p in analysis.peaks], n_avg)
    kf = int(np.argmin(np.abs(freqs - f)))
    floor = np.full(n_cells, np.nan)
    duration = analysis.n_frames / fps
    for j, i in enumerate(np.flatnonzero(ok)):
        u = np.array([abs(px_[j]), abs(py_[j])])
        floor[i] = float(amplitude_floor(dens[[j, n_ok + j], kf], duration,
                                         u if u.any() else None))
    return DeflectionShape(float(f), analysis.positions, dy, dx, floor, ok.copy(),
                           analysis.calibration, requested, df)


def modal_assurance(a: np.ndarray, b: np.ndarray) -> float:
    """Modal assurance criterion ``|a^H b|^2 / ((a^H a)(b^H b))`` of two (complex) shapes."""
    a, b = np.ravel(a), np.ravel(b)
    den = np.vdot(a, a).real * np.vdot(b, b).real
    return float(abs(np.vdot(a, b)) ** 2 / den) if den > 0 else float("nan")


def ods_rows(shape: DeflectionShape) -> list[list[Any]]:
    """CSV rows (header first), one per cell: position, amplitudes and phases, SNR."""
    u = shape.calibration.unit
    rows: list[list[Any]] = [["cell", "y_px", "x_px", f"dy_amp_{u}", f"dx_amp_{u}",
                              "dy_phase_deg", "dx_phase_deg", f"amplitude_{u}",
                              f"noise_floor_{u}", "snr", "tracked"]]
    for i, p in enumerate(shape.to_dict()["points"]):
        rows.append([i, f"{p['y']:.6g}", f"{p['x']:.6g}"] + [
            "" if p[k] is None else f"{p[k]:.6g}" for k in (
                "dy_amp", "dx_amp", "dy_phase", "dx_phase", "amplitude", "noise_floor",
                "snr")] + [int(p["tracked"])])
    return rows


def grid_spectrum_rows(analysis: GridAnalysis) -> list[list[Any]]:
    """CSV rows: frequency, averaged spectrum and its noise floor (px and the unit)."""
    cal = analysis.calibration
    header = ["freq_hz", "mean_amp_px", "noise_floor_px"]
    if cal.calibrated:
        header += [f"mean_amp_{cal.unit}", f"noise_floor_{cal.unit}"]
    rows: list[list[Any]] = [header]
    for f, a, fl in zip(analysis.freqs, analysis.spectrum, analysis.noise_line, strict=True):
        row = [f"{f:.6g}", f"{a:.6g}", f"{fl:.6g}"]
        if cal.calibrated:
            row += [f"{a * cal.scale:.6g}", f"{fl * cal.scale:.6g}"]
        rows.append(row)
    return rows


def grid_trace_rows(analysis: GridAnalysis) -> list[list[Any]]:
    """CSV rows: frame, time, then ``cellN_dy_px, cellN_dx_px`` (and in the unit) per cell."""
    cal = analysis.calibration
    header: list[Any] = ["frame", "time_s"]
    cols: list[np.ndarray] = []
    for i in range(analysis.layout.n_cells):
        header += [f"cell{i}_dy_px", f"cell{i}_dx_px"]
        cols += [analysis.dy[i], analysis.dx[i]]
        if cal.calibrated:
            header += [f"cell{i}_dy_{cal.unit}", f"cell{i}_dx_{cal.unit}"]
            cols += [analysis.dy[i] * cal.scale, analysis.dx[i] * cal.scale]
    data = np.stack(cols, axis=1)
    rows: list[list[Any]] = [header]
    for t in range(analysis.n_frames):
        rows.append([t, f"{t / analysis.fps:.6g}"] + [f"{v:.6g}" for v in data[t]])
    return rows


__all__ = ["DeflectionShape", "GridAnalysis", "GridLayout", "analyze_grid", "deflection_shape",
           "grid_spectrum_rows", "grid_trace_rows", "iter_analyze_grid", "modal_assurance",
           "ods_rows"]
