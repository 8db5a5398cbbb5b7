"""Welch amplitude spectra, peak finding with sub-bin frequencies and fitted amplitudes, bands."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import signal

from .results import Peak


def default_nperseg(n_frames: int) -> int:
    """Welch segment length: the whole trace up to 512 frames, then 512 (50 % overlap)."""
    return int(min(n_frames, 512))


def amplitude_spectrum(traces: np.ndarray, fps: float,
                       nperseg: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Welch amplitude spectra of one or more traces.

    Parameters
    ----------
    traces : ndarray, shape (T,) or (K, T)
    fps : float
    nperseg : int, optional
        Segment length (default :func:`default_nperseg`).

    Returns
    -------
    freqs : ndarray (F,)
        Hz.
    amplitude : ndarray (F,) or (K, F)
        ``sqrt(2 * power)``: a sinusoid of amplitude ``A`` on a bin reads ``A``; the traces'
        linear trend is removed per segment.
    """
    x = np.atleast_2d(np.asarray(traces, dtype=np.float64))
    n = x.shape[-1]
    seg = default_nperseg(n) if nperseg is None else int(min(nperseg, n))
    freqs, power = signal.welch(x, fs=fps, window="hann", nperseg=seg, noverlap=seg // 2,
                                detrend="linear", scaling="spectrum", axis=-1)
    amp = np.sqrt(2.0 * power)
    return freqs, (amp[0] if np.ndim(traces) == 1 else amp)


def refine_frequency(x: np.ndarray, fps: float, f_guess: float, half_width: float) -> float:
    """Peak of the zero-padded, Hann-windowed periodogram of ``x`` (K, T) near ``f_guess``."""
    n = x.shape[-1]
    nfft = 1 << int(math.ceil(math.log2(16 * n)))
    t = np.arange(n)
    detr = x - np.polynomial.polynomial.polyval(t, np.polynomial.polynomial.polyfit(t, x.T, 1))
    win = np.hanning(n)
    power = np.zeros(nfft // 2 + 1)
    block = max(1, (1 << 20) // nfft)  # traces per FFT: at most 1M complex values (16 MB)
    for i in range(0, detr.shape[0], block):
        power += (np.abs(np.fft.rfft(detr[i:i + block] * win, nfft, axis=-1)) ** 2).sum(axis=0)
    f = np.fft.rfftfreq(nfft, 1.0 / fps)
    sel = np.flatnonzero(np.abs(f - f_guess) <= half_width)
    if sel.size == 0:
        return f_guess
    k = sel[np.argmax(power[sel])]
    if 0 < k < len(power) - 1:  # parabolic interpolation on log power
        a, b, c = np.log(power[k - 1:k + 2] + 1e-300)
        denom = a - 2 * b + c
        if denom < 0:
            return float(f[k] + 0.5 * (a - c) / denom * (f[1] - f[0]))
    return float(f[k])


def _sinusoid_design(n: int, fps: float, freqs_hz: Sequence[float]) -> np.ndarray:
    """Columns: offset, trend, then cos and sin at each frequency (n, 2 + 2P)."""
    t = np.arange(n) / fps
    cols = [np.ones(n), t - t.mean()]
    for f in freqs_hz:
        cols += [np.cos(2 * np.pi * f * t), np.sin(2 * np.pi * f * t)]
    return np.stack(cols, axis=1)


def fit_sinusoids(x: np.ndarray, fps: float, freqs_hz: Sequence[float]) -> np.ndarray:
    """Joint least-squares fit of offset, trend and sinusoids; complex phasors (P, K)."""
    coef, *_ = np.linalg.lstsq(_sinusoid_design(x.shape[-1], fps, freqs_hz), x.T, rcond=None)
    cos_c, sin_c = coef[2::2], coef[3::2]  # (P, K)
    return cos_c - 1j * sin_c  # x_k(t) = Re(P_k exp(i w t))


def sinusoid_residual(x: np.ndarray, fps: float, freqs_hz: Sequence[float]) -> np.ndarray:
    """``x`` (K, T) minus its joint least-squares fit of offset, trend and sinusoids."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    design = _sinusoid_design(x.shape[-1], fps, freqs_hz)
    coef, *_ = np.linalg.lstsq(design, x.T, rcond=None)
    return x - (design @ coef).T


def orbit_amplitude(phasors: np.ndarray) -> float:
    """Largest excursion of ``Re(P exp(i w t))`` over t for a phasor vector P (K,)."""
    m = np.stack([phasors.real, phasors.imag], axis=1)  # (K, 2)
    return float(np.linalg.svd(m, compute_uv=False)[0])


def suggest_band(freqs: np.ndarray, amplitude: np.ndarray, f0: float, fps: float,
                 n_frames: int, rel_width: float = 0.2) -> tuple[float, float]:
    """Pass band around a peak at ``f0``.

    Half-width = the largest of ``rel_width * f0``, the peak's half-power half-width on the
    amplitude spectrum, and one frequency bin of the whole clip (``fps / n_frames``, what an
    ideal filter can resolve). The band stays within ``(0, 0.99 * Nyquist)``.
    """
    nyq = fps / 2.0
    df_clip = fps / max(n_frames, 1)
    power = np.asarray(amplitude, dtype=np.float64) ** 2
    k = int(np.argmin(np.abs(freqs - f0)))
    half = power[k] / 2.0
    lo_k, hi_k = k, k
    while lo_k > 0 and power[lo_k - 1] > half:
        lo_k -= 1
    while hi_k < len(power) - 1 and power[hi_k + 1] > half:
        hi_k += 1
    hwhm = (freqs[hi_k] - freqs[lo_k]) / 2.0 + (freqs[1] - freqs[0] if len(freqs) > 1 else 0) / 2
    hw = max(rel_width * f0, hwhm, df_clip)
    lo = max(f0 - hw, f0 / 2.0, df_clip / 2.0)
    hi = min(f0 + hw, 0.99 * nyq)
    if hi <= f0:
        hi = (f0 + nyq) / 2.0
    if lo >= f0:
        lo = f0 / 2.0
    hi = min(hi, 0.99 * nyq)  # a peak at Nyquist: the magnifiers refuse a band reaching it
    return float(lo if lo < hi else hi / 2.0), float(hi)


def harmonic_series(peaks: Sequence[Peak], bin_hz: float,
                    min_ratio: float = 0.5) -> tuple[float, float] | None:
    """Fundamental and highest strong harmonic when the dominant peak is part of a series.

    Periodic but non-sinusoidal motion (a heartbeat, a contraction) puts comparable energy
    at a fundamental ``f1`` and its multiples. Peaks count when their amplitude is at least
    ``min_ratio`` times the dominant one and their frequency is within
    ``max(bin_hz, 5 %)`` of an integer multiple of ``f1``.

    Returns
    -------
    (f1, f_top) or None
        None when the dominant peak stands alone (no strong sub-harmonic or harmonic).
    """
    if not peaks:
        return None
    top = peaks[0]
    strong = [p for p in peaks if p.amplitude >= min_ratio * top.amplitude]

    def multiple(f: float, f1: float) -> bool:
        k = round(f / f1)
        return k >= 1 and abs(f - k * f1) <= max(bin_hz, 0.05 * f)

    below = sorted(p.hz for p in strong if p.hz < top.hz - bin_hz and multiple(top.hz, p.hz))
    f1 = below[0] if below else top.hz
    series = [p.hz for p in strong if multiple(p.hz, f1)]
    if len(series) < 2:
        return None
    return f1, max(series)


def band_for_peaks(freqs: np.ndarray, amplitude: np.ndarray, peaks: Sequence[Peak], fps: float,
                   n_frames: int) -> tuple[float, float] | None:
    """Suggested band: around the dominant peak, or spanning its harmonic series.

    See :func:`suggest_band` (one peak) and :func:`harmonic_series`.
    """
    if not peaks:
        return None
    bin_hz = float(freqs[1] - freqs[0]) if len(freqs) > 1 else fps / max(n_frames, 1)
    series = harmonic_series(peaks, bin_hz)
    if series is None:
        return suggest_band(freqs, amplitude, peaks[0].hz, fps, n_frames)
    lo = suggest_band(freqs, amplitude, series[0], fps, n_frames)[0]
    hi = suggest_band(freqs, amplitude, series[1], fps, n_frames)[1]
    return lo, hi


def find_peaks(traces: np.ndarray, fps: float, n_peaks: int = 5,
               fmin: float | None = None, fmax: float | None = None,
               nperseg: int | None = None) -> tuple[np.ndarray, np.ndarray, list[Peak]]:
    """Spectral peaks of one trace or of a vector trace (e.g. dx and dy together).

    Parameters
    ----------
    traces : ndarray, shape (T,) or (K, T)
    fps : float
    n_peaks : int
        At most this many peaks, strongest first.
    fmin, fmax : float, optional
        Search range in Hz. Default: from 1.5 Welch bins (ignoring the residual trend) to
        Nyquist.
    nperseg : int, optional

    Returns
    -------
    freqs : ndarray (F,)
    combined : ndarray (F,)
        Root-sum-square of the components' amplitude spectra.
    peaks : list of Peak
        Strongest first. Amplitudes are the largest excursion of the fitted sinusoid (the
        orbit's semi-major axis for K = 2); ``amplitude_x``/``amplitude_y`` are filled for K = 2.
    """
    x = np.atleast_2d(np.asarray(traces, dtype=np.float64))
    n = x.shape[-1]
    freqs, amp = amplitude_spectrum(x, fps, nperseg)
    combined = np.sqrt((amp**2).sum(axis=0))
    if n < 8 or len(freqs) < 3 or not np.any(combined > 0):
        return freqs, combined, []
    df = freqs[1] - freqs[0]
    lo = 1.5 * df if fmin is None else float(fmin)
    hi = freqs[-1] if fmax is None else float(fmax)
    allowed = np.flatnonzero((freqs >= lo) & (freqs <= hi))
    if allowed.size == 0:
        return freqs, combined, []
    idx, _ = signal.find_peaks(np.concatenate([[0.0], combined, [0.0]]))
    idx = np.intersect1d(idx - 1, allowed)
    if idx.size == 0:  # no local maximum inside the range: take its largest value
        idx = np.array([allowed[np.argmax(combined[allowed])]])
    idx = idx[np.argsort(combined[idx])[::-1]]
    strongest = combined[idx[0]]
    idx = idx[combined[idx] >= 0.05 * strongest][:n_peaks]
    fine = [refine_frequency(x, fps, freqs[k], df) for k in idx]
    phasors = fit_sinusoids(x, fps, fine)
    peaks = []
    for f, p in zip(fine, phasors, strict=True):
        amp_xy = np.abs(p)
        peaks.append(Peak(
            hz=float(f), amplitude=orbit_amplitude(p),
            amplitude_x=float(amp_xy[0]) if len(p) == 2 else float("nan"),
            amplitude_y=float(amp_xy[1]) if len(p) == 2 else float("nan")))
    peaks.sort(key=lambda pk: pk.amplitude, reverse=True)
    return freqs, combined, peaks
