"""Displacement noise floor: how large an amplitude noise alone produces, at every frequency.

The floor is estimated from the trace's own power spectral density *away from its peaks*: the
fitted peak sinusoids are subtracted (so their window leakage does not count), then a running
median is taken over the bins that are not within :data:`PEAK_GUARD_BINS` of a peak, corrected
for the median's bias on a chi-squared variable, and optionally from a static reference
region, whose whole displacement is noise (and camera shake).

Two numbers come out of a noise density ``S(f)`` (px^2/Hz, one-sided):

- the **amplitude floor** ``sqrt(S(f) / T)`` (``T`` the clip's duration), the standard error of
  an amplitude fitted by least squares over the whole clip (what the peaks report): white noise
  of variance ``s^2`` per frame gives ``S = 2 s^2 / fps`` and a fitted cosine or sine
  coefficient of standard deviation ``s sqrt(2 / N)``;
- the **spectrum floor**, the RMS level of noise on the Welch amplitude spectrum
  ``sqrt(2 S(f) ENBW)`` (``ENBW`` the Hann window's equivalent noise bandwidth in Hz), the
  line drawn on spectrum plots.
"""

from __future__ import annotations

import numpy as np
from scipy import signal, stats

from .spectra import default_nperseg, sinusoid_residual
from .tracking import LUMA

#: Bins on each side of a peak left out of the floor (the Hann main lobe is +-2 bins).
PEAK_GUARD_BINS = 3


def quantization_step(dtype: np.dtype, n_channels: int = 1) -> float:
    """Standard deviation of the rounding error of the luma the tracker sees (0 for floats).

    Integer samples carry a uniform rounding error of one step, ``1 / sqrt(12)``; colour is
    reduced to luma by a weighted sum of three independently rounded channels.
    """
    if np.dtype(dtype).kind not in "ui":
        return 0.0
    gain = float(np.sqrt(np.sum(LUMA[:3] ** 2))) if n_channels >= 3 else 1.0
    return gain / np.sqrt(12.0)


def quantization_density(hess_inv: np.ndarray, sigma_q: float, fps: float) -> np.ndarray:
    """Noise PSD (2, 1) in (x, y) order of a tracker whose input has white noise ``sigma_q``.

    The Cramer-Rao bound of a translation estimate is ``sigma^2 H^-1`` per frame (``H`` the
    Gauss-Newton Hessian of the template's gradients, in (y, x) order); white per frame, so
    its one-sided density is ``2 var / fps``. On a noise-free 8-bit input the rounding error
    is a deterministic function of the displacement that mostly falls on the motion's
    harmonics, where the spectrum cannot see it as noise: this bound stands in for it.
    """
    var_yx = sigma_q**2 * np.diag(np.asarray(hess_inv, dtype=np.float64))
    return (2.0 * var_yx[::-1] / fps)[:, None]


#: Intensity change, in quantization steps, after which a pixel's rounding error is taken as
#: independent of its value before (the sawtooth error's autocorrelation crosses zero at 0.21
#: of a step and is negative to 0.79).
ROUNDING_DECORRELATION_STEPS = 0.5


def rounding_repeats(gradients: np.ndarray, span_px: float, n_frames: int,
                     input_sigma: float) -> float:
    """How many times more rounding noise a fitted amplitude sees than white noise predicts.

    Rounding a noise-free frame is a deterministic function of the displacement: a pixel
    whose intensity moves by ``g d`` keeps the same rounding error until ``g d`` has moved
    about :data:`ROUNDING_DECORRELATION_STEPS` of a step. A trace that sweeps ``span_px``
    back and forth (periodic motion does, every cycle) therefore visits only about
    ``K = 1 + span_px * g_bar / 0.5`` independent rounding errors, however many frames it
    has, and the amplitude's variance is ``N / K`` times the white-noise bound. Input noise
    dithers the rounding: the error's dependence on the signal falls with the noise's
    characteristic function at one cycle per step, ``exp(-2 pi^2 sigma^2)`` for Gaussian
    noise of ``sigma`` steps (Widrow's quantization theorem), its variance with the square,
    so with half a step of noise or more the factor is 1.

    Parameters
    ----------
    gradients : ndarray
        Intensity gradients (steps per px) along this component, over the tracked region;
        weighted by gradient energy, ``g_bar = sum |g|^3 / sum g^2``.
    span_px : float
        Range of displacement the trace covers along this component.
    n_frames : int
    input_sigma : float
        Noise already in the input, in quantization steps.

    Returns
    -------
    float
        Factor (>= 1) on the quantization density.
    """
    g = np.abs(np.asarray(gradients, dtype=np.float64)).ravel()
    energy = float(np.sum(g**2))
    g_bar = float(np.sum(g**3)) / energy if energy > 0 else 0.0
    visited = 1.0 + max(0.0, float(span_px)) * g_bar / ROUNDING_DECORRELATION_STEPS
    repeats = max(1.0, n_frames / visited)
    dither = float(np.exp(-4.0 * np.pi**2 * max(0.0, float(input_sigma)) ** 2))
    return 1.0 + (repeats - 1.0) * dither


def welch_density(traces: np.ndarray, fps: float, nperseg: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Welch PSD with the same segments as :func:`~.spectra.amplitude_spectrum`.

    Returns
    -------
    freqs : (F,)
    psd : (K, F) px^2/Hz, one-sided
    enbw : float
        Equivalent noise bandwidth of one bin, Hz.
    n_avg : int
        Number of segments averaged.
    """
    x = np.atleast_2d(np.asarray(traces, dtype=np.float64))
    n = x.shape[-1]
    seg = default_nperseg(n) if nperseg is None else int(min(nperseg, n))
    freqs, psd = signal.welch(x, fs=fps, window="hann", nperseg=seg, noverlap=seg // 2,
                              detrend="linear", scaling="density", axis=-1)
    w = signal.get_window("hann", seg)
    enbw = fps * float(np.sum(w**2) / np.sum(w) ** 2)
    n_avg = 1 + (n - seg) // (seg - seg // 2)
    return freqs, psd, enbw, n_avg


def noise_density(freqs: np.ndarray, psd: np.ndarray, peaks_hz: list[float] | np.ndarray,
                  n_avg: int = 1, guard_bins: int = PEAK_GUARD_BINS) -> np.ndarray:
    """Noise PSD under the peaks: running median of the bins away from them, per component.

    Parameters
    ----------
    freqs : (F,)
    psd : (K, F) or (F,)
    peaks_hz : frequencies whose neighbourhood (``guard_bins`` bins each side) is left out,
        as is the DC bin and the one next to it (trend residue).
    n_avg : int
        Segments averaged by Welch (sets the chi-squared degrees of freedom of the median
        correction, ``2 n_avg``).

    Returns
    -------
    ndarray, same shape as ``psd``
    """
    p = np.atleast_2d(np.asarray(psd, dtype=np.float64))
    f_count = p.shape[-1]
    df = freqs[1] - freqs[0] if len(freqs) > 1 else 1.0
    keep = np.ones(f_count, dtype=bool)
    keep[:min(2, f_count)] = False
    for f in peaks_hz:
        k = int(round(f / df))
        keep[max(0, k - guard_bins):k + guard_bins + 1] = False
    if keep.sum() < 3:  # too short a spectrum to leave anything out
        keep[:] = True
        keep[0] = f_count == 1
    dof = 2 * max(1, int(n_avg))
    bias = dof / stats.chi2.ppf(0.5, dof)  # mean / median of chi2(dof)
    idx = np.flatnonzero(keep)
    half = max(4, f_count // 16)
    out = np.empty_like(p)
    for j in range(f_count):  # median of the kept bins within +-half of bin j (at least 5)
        lo, hi = np.searchsorted(idx, [j - half, j + half + 1])
        while hi - lo < min(5, idx.size):
            lo, hi = max(0, lo - 1), min(idx.size, hi + 1)
        out[:, j] = np.median(p[:, idx[lo:hi]], axis=1) * bias
    return out if np.ndim(psd) == 2 else out[0]


def amplitude_floor(density: np.ndarray, duration_s: float,
                    direction: np.ndarray | None = None) -> np.ndarray:
    """Standard error of a fitted amplitude, ``sqrt(S / T)``.

    Parameters
    ----------
    density : (K, F) or (K,)
        Noise PSD per component.
    duration_s : float
    direction : (K,), optional
        Unit vector of the motion (e.g. the peak's x and y amplitudes): the error of its
        amplitude sees ``sum(u_k^2 S_k)``. Default: the mean over components.
    """
    d = np.asarray(density, dtype=np.float64)
    if direction is None:
        s = d.mean(axis=0)
    else:
        u = np.asarray(direction, dtype=np.float64)
        u = u / max(float(np.linalg.norm(u)), 1e-300)
        s = np.tensordot(u**2, d, axes=1)
    return np.sqrt(s / duration_s)


def spectrum_floor(density: np.ndarray, enbw: float) -> np.ndarray:
    """RMS noise level of the combined Welch amplitude spectrum, ``sqrt(2 ENBW sum_k S_k)``."""
    return np.sqrt(2.0 * enbw * np.atleast_2d(density).sum(axis=0))


def trace_noise_density(traces: np.ndarray, fps: float, peaks_hz: list[float],
                        nperseg: int | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """A trace's own noise PSD away from its peaks: ``(freqs, density (K, F), enbw)``.

    The fitted peak sinusoids are removed first, so that their window leakage is not taken
    for noise (see :func:`noise_density`).
    """
    x = np.atleast_2d(np.asarray(traces, dtype=np.float64))
    residual = sinusoid_residual(x, fps, list(peaks_hz)) if len(peaks_hz) else x
    freqs, psd, enbw, n_avg = welch_density(residual, fps, nperseg)
    return freqs, noise_density(freqs, psd, list(peaks_hz), n_avg), enbw


def rounding_density(traces: np.ndarray, fps: float, own_density: np.ndarray,
                     hess_inv: np.ndarray, sigma_q: float,
                     gradients: tuple[np.ndarray, ...]) -> np.ndarray:
    """Noise PSD (2, 1) in (x, y) order that the input's rounding gives a tracked trace.

    :func:`quantization_density` (the white-noise bound) times :func:`rounding_repeats` per
    component: the span is the trace's 1st-99th percentile range, the gradients are the
    tracker's ``(gx, gy)``, and the input's own noise (in steps) is read off the trace's
    noise away from its peaks, ``S fps / 2 = sigma^2 H^-1``, less the rounding's share.

    Parameters
    ----------
    traces : (2, T)
        ``dx, dy`` in px.
    fps : float
    own_density : (2, F)
        The trace's own noise PSD away from its peaks (:func:`trace_noise_density`).
    hess_inv : (2, 2)
        The tracker's inverse Gauss-Newton Hessian, (y, x) order.
    sigma_q : float
        Rounding error in steps (:func:`quantization_step`); 0 gives zeros.
    gradients : (gx, gy)
        The template's gradients (steps per px).
    """
    x = np.atleast_2d(np.asarray(traces, dtype=np.float64))
    base = quantization_density(hess_inv, sigma_q, fps)
    if sigma_q <= 0:
        return base
    own = np.atleast_2d(own_density)
    var_xy = np.diag(np.asarray(hess_inv, dtype=np.float64))[::-1]
    out = np.empty_like(base)
    n = x.shape[-1]
    for k in range(2):
        span = float(np.subtract(*np.percentile(x[k], [99, 1])))
        input_var = float(np.median(own[k])) * fps / 2.0 / var_xy[k] - sigma_q**2
        factor = rounding_repeats(gradients[k], span, n, np.sqrt(max(0.0, input_var)))
        out[k] = base[k] * factor
    return out


def peak_floors(traces: np.ndarray, fps: float, peaks: list, nperseg: int | None = None,
                lower_density: np.ndarray | None = None,
                own: tuple[np.ndarray, np.ndarray, float] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Noise floor of a displacement trace, written into its peaks.

    Sets ``noise_floor`` (px, the standard error of the amplitude along the peak's direction)
    and ``snr`` (amplitude / floor) on every :class:`~.results.Peak` of ``peaks``.

    Parameters
    ----------
    traces : (K, T)
        Components in the peaks' order (``dx, dy`` for displacement).
    fps : float
    peaks : list of Peak
    nperseg : int, optional
    lower_density : (K, F) or (K, 1), optional
        A noise PSD known from elsewhere (a static reference region scaled to this ROI, the
        input's quantization, see :func:`quantization_density`); the floor is the larger of
        it and the trace's own.
    own : (freqs, density, enbw), optional
        :func:`trace_noise_density` of ``traces`` when the caller has it already.

    Returns
    -------
    density : (K, F)
        The noise PSD used (px^2/Hz).
    line : (F,)
        The spectrum floor (see :func:`spectrum_floor`), to draw on the amplitude spectrum.
    """
    x = np.atleast_2d(np.asarray(traces, dtype=np.float64))
    freqs, dens, enbw = own or trace_noise_density(x, fps, [p.hz for p in peaks], nperseg)
    if lower_density is not None:
        dens = np.maximum(dens, lower_density)
    duration = x.shape[-1] / fps
    for p in peaks:
        k = int(np.argmin(np.abs(freqs - p.hz)))
        u = None
        if x.shape[0] == 2 and np.isfinite(p.amplitude_x):
            u = np.array([p.amplitude_x, p.amplitude_y])
            u = None if not np.any(u > 0) else u
        p.noise_floor = float(amplitude_floor(dens[:, k], duration, u))
        p.snr = float(p.amplitude / p.noise_floor) if p.noise_floor > 0 else float("inf")
    return dens, spectrum_floor(dens, enbw)
