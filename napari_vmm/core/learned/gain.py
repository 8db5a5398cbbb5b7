"""Achieved magnification: how far the content of a magnified clip really moves.

SSIM alone rewards a method that returns its input (Ha et al.): on a noisy clip, copying the
input is a safe answer. The evaluation therefore measures the motion each output actually
has, against the motion that was asked for:

    achieved magnification = (measured output amplitude) / (true input amplitude)

and reports it over the requested 1 + α. The estimator tracks a window on the moving object:
phase correlation gives the integer shift, then the window is re-cut at that shift and a
magnitude-weighted plane fit to the cross-spectrum phase gives the sub-pixel rest. The
amplitude is a least-squares sinusoid fit at the known motion frequency along the known
motion direction (phase-agnostic, so a causal filter's lag does not count as a loss).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: a method whose achieved/requested ratio is below this fails the row, whatever its SSIM
FAIL_BELOW = 0.5

_LUMA = np.array([0.299, 0.587, 0.114])


def _luma(frames: np.ndarray) -> np.ndarray:
    """(T, H, W[, C]) -> (T, H, W) float64."""
    x = np.asarray(frames, dtype=np.float64)
    if x.ndim == 4:
        x = x[..., 0] if x.shape[-1] == 1 else x[..., :3] @ _LUMA
    return x


def _crop(img: np.ndarray, cy: int, cx: int, half: int) -> np.ndarray:
    """The (2·half, 2·half) window centred at (cy, cx), clamped into the frame."""
    h, w = img.shape
    y0 = min(max(cy - half, 0), h - 2 * half)
    x0 = min(max(cx - half, 0), w - 2 * half)
    return img[y0:y0 + 2 * half, x0:x0 + 2 * half]


def _subpixel(ref: np.ndarray, cur: np.ndarray, win: np.ndarray, max_freq: float) -> np.ndarray:
    """(dy, dx) of ``cur`` against ``ref`` (|shift| < ~1 px) from the cross-spectrum phase."""
    fa = np.fft.fft2((ref - ref.mean()) * win)
    fb = np.fft.fft2((cur - cur.mean()) * win)
    n = ref.shape[0]
    k = np.fft.fftfreq(n)
    ky, kx = np.meshgrid(k, k, indexing="ij")
    cross = fb * np.conj(fa)
    keep = (np.abs(ky) < max_freq) & (np.abs(kx) < max_freq) & (np.abs(cross) > 1e-20)
    keep[0, 0] = False
    wgt = np.abs(fa[keep])
    design = np.stack([-2 * np.pi * ky[keep], -2 * np.pi * kx[keep]], axis=1)
    return np.linalg.lstsq(design * wgt[:, None], np.angle(cross[keep]) * wgt, rcond=None)[0]


def object_displacements(frames: np.ndarray, centre: tuple[float, float], half: int,
                         ref: int = 0, max_freq: float = 0.12,
                         weight: np.ndarray | None = None) -> np.ndarray:
    """Displacement (T, 2) = (dy, dx) px of the content around ``centre`` against frame ``ref``.

    ``frames``: (T, H, W[, C]); ``half``: half the side of the tracked window, which should lie
    on the moving object; ``weight``: optional (H, W) map of the object in frame ``ref`` (its
    coverage), so that a static background inside the window does not count. Each frame's
    search starts at the previous frame's estimate: shifts of up to ``half`` px between
    consecutive frames are followed.
    """
    y = _luma(frames)
    cy, cx = (int(round(c)) for c in centre)
    n = 2 * half
    win = np.outer(np.hanning(n), np.hanning(n))
    if weight is not None:
        w = _crop(np.asarray(weight, float), cy, cx, half)
        if w.sum() > 0.25 * win.sum():  # enough of the object under the window
            win = win * w
    r = _crop(y[ref], cy, cx, half)
    fr = np.fft.fft2((r - r.mean()) * win)
    out = np.zeros((len(y), 2))
    prev = np.zeros(2)
    for t in range(len(y)):
        by, bx = (int(round(v)) for v in prev)
        c = _crop(y[t], cy + by, cx + bx, half)
        cross = np.fft.fft2((c - c.mean()) * win) * np.conj(fr)
        corr = np.fft.ifft2(cross / np.maximum(np.abs(cross), 1e-20)).real
        iy, ix = np.unravel_index(int(np.argmax(corr)), corr.shape)
        iy, ix = (iy + n // 2) % n - n // 2 + by, (ix + n // 2) % n - n // 2 + bx
        d = np.array([iy, ix], float)
        for _ in range(3):  # the fit under a fixed window is biased low: undo the shift, refit
            pad = half + 4
            big = _crop(y[t], cy + iy, cx + ix, pad)
            back = ndimage.shift(big, -(d - (iy, ix)), order=3, mode="nearest")
            d += _subpixel(r, back[4:-4, 4:-4], win, max_freq)
        out[t] = prev = d
    return out


def sinusoid_amplitude(signal: np.ndarray, fps: float, freq: float) -> float:
    """Amplitude of the ``freq`` component of ``signal`` (least squares with an offset)."""
    t = np.arange(len(signal)) / fps
    design = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t),
                       np.ones_like(t)], axis=1)
    coef = np.linalg.lstsq(design, np.asarray(signal, float), rcond=None)[0]
    return float(np.hypot(coef[0], coef[1]))


def achieved_magnification(frames: np.ndarray, amplitude: float, direction: np.ndarray,
                           fps: float, freq: float, centre: tuple[float, float],
                           half: int, weight: np.ndarray | None = None) -> float:
    """Measured motion amplitude of ``frames`` along ``direction`` over the true input
    ``amplitude`` (px): 1 + α for a perfect magnifier, 1 for a copy of the input.

    ``centre``, ``half``, ``weight``: the tracked window, see :func:`object_displacements`.
    """
    d = object_displacements(frames, centre, half, weight=weight)
    u = np.asarray(direction, float) / np.linalg.norm(direction)
    return sinusoid_amplitude(d @ u, fps, freq) / float(amplitude)
