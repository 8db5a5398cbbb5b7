"""Plot arithmetic of the "Motion traces" widget (Qt-free): axis limits, peak picking."""

from __future__ import annotations

import numpy as np


def spectrum_xlim(rois: list, band: tuple[float, float] | None, fps: float,
                  log_axis: bool = False, energy: float = 0.9) -> tuple[float, float]:
    """Frequency range that shows the spectra's content and the band.

    The upper limit is 1.3 x the highest of: the band's high edge, the strongest peaks, and
    the frequency below which ``energy`` of each spectrum lies (capped at Nyquist). With
    ``log_axis`` the lower limit is the lowest positive frequency, else 0.
    """
    nyq = fps / 2
    top, low = 0.0, nyq
    for r in rois:
        freqs = np.asarray(r.freqs, dtype=float)
        spec = np.nan_to_num(np.asarray(r.spectrum, dtype=float)) ** 2
        if freqs.size > 1:
            low = min(low, float(freqs[1]))
            cum = np.cumsum(spec)
            if cum[-1] > 0:
                top = max(top, float(freqs[min(np.searchsorted(cum, energy * cum[-1]),
                                               freqs.size - 1)]))
        top = max([top] + [p.hz for p in r.peaks[:3]])
    if band is not None:
        top = max(top, band[1])
    hi = nyq if top <= 0 else min(nyq, 1.3 * top)
    return (low if log_axis else 0.0), hi


def nearest_peak(rois: list, hz: float, tolerance_hz: float) -> tuple | None:
    """``(roi, peak)`` of the spectral peak nearest to ``hz`` over all ROIs, or None when
    none lies within ``tolerance_hz``."""
    best = None
    for r in rois:
        for p in r.peaks:
            if best is None or abs(p.hz - hz) < abs(best[1].hz - hz):
                best = (r, p)
    if best is None or abs(best[1].hz - hz) > tolerance_hz:
        return None
    return best
