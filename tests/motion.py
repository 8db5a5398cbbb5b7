"""Ground-truth helpers for the engine tests: global sub-pixel shift estimation."""

from __future__ import annotations

import numpy as np


def global_shift(reference: np.ndarray, moved: np.ndarray, max_freq: float = 0.1) -> np.ndarray:
    """(dy, dx) of ``moved`` relative to ``reference`` from the cross-spectrum phase slope.

    A least-squares plane fit to the phase of ``F(moved) * conj(F(reference))`` over low
    frequencies, weighted by magnitude; exact for a periodic translation.
    """
    a = reference - reference.mean()
    b = moved - moved.mean()
    fa, fb = np.fft.fft2(a), np.fft.fft2(b)
    h, w = a.shape
    ky = np.broadcast_to(np.fft.fftfreq(h)[:, None], (h, w))
    kx = np.broadcast_to(np.fft.fftfreq(w)[None, :], (h, w))
    cross = fb * np.conj(fa)
    keep = (np.abs(ky) < max_freq) & (np.abs(kx) < max_freq) & (np.abs(cross) > 1e-12)
    keep[0, 0] = False
    weight = np.abs(fa[keep])
    design = np.stack([-2 * np.pi * ky[keep], -2 * np.pi * kx[keep]], axis=1)
    return np.linalg.lstsq(design * weight[:, None], np.angle(cross[keep]) * weight,
                           rcond=None)[0]


def sinusoid_amplitude(signal: np.ndarray, fps: float, freq: float, skip: int = 0) -> float:
    """Amplitude of the ``freq`` component of ``signal`` (least-squares fit)."""
    t = np.arange(len(signal)) / fps
    design = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t),
                       np.ones_like(t)], axis=1)
    coef = np.linalg.lstsq(design[skip:], signal[skip:], rcond=None)[0]
    return float(np.hypot(coef[0], coef[1]))


def x_motion_amplitude(frames: np.ndarray, fps: float, freq: float, skip: int = 0,
                       max_freq: float = 0.1) -> float:
    """Amplitude of the horizontal sinusoidal motion of a clip (T, H, W)."""
    dx = np.array([global_shift(frames[0], f, max_freq)[1] for f in frames])
    return sinusoid_amplitude(dx, fps, freq, skip)
