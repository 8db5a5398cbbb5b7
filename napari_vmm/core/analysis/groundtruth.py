"""Rendered ground truth for deflection shapes: a textured beam vibrating in bending modes.

Each column of the frame is shifted vertically by the beam's deflection at that column with an
exact Fourier shift (a phase ramp along the rows), so the true displacement of every point is
known. The texture can come from a real video frame (more realistic than noise) or be
synthetic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from ..samples import smooth_texture


def beam_texture(shape: tuple[int, int], frame: np.ndarray | None = None,
                 seed: int = 0) -> np.ndarray:
    """A (rows, cols) float texture in DN (about 30..220) for the beam.

    Cut from the centre of ``frame`` (a real image, 2-D luma or RGB) when given, else a
    band-limited random texture. Lightly blurred (sigma 0.7 px) so that the Fourier shift of a
    column is the shift of a band-limited signal.
    """
    h, w = shape
    if frame is not None:
        img = np.asarray(frame, dtype=np.float64)
        if img.ndim == 3:
            img = img[..., :3] @ np.array([0.299, 0.587, 0.114])
        y0, x0 = max(0, (img.shape[0] - h) // 2), max(0, (img.shape[1] - w) // 2)
        tex = np.resize(img[y0:y0 + h, x0:x0 + w], (h, w))
    else:
        tex = smooth_texture((h, w), np.random.default_rng(seed), 6.0)
    tex = ndimage.gaussian_filter(tex, 0.7)
    tex = (tex - tex.min()) / max(np.ptp(tex), 1e-12)
    return 30.0 + 190.0 * tex


def mode_shape(x: np.ndarray, length: float, order: int) -> np.ndarray:
    """Bending mode ``order`` of a simply supported beam, ``sin(order pi x / L)``."""
    return np.sin(order * np.pi * np.asarray(x, dtype=np.float64) / length)


def vibrating_beam(n_frames: int, fps: float, texture: np.ndarray, frame_height: int,
                   top: int, modes: Sequence[tuple[float, float, int, float]],
                   noise_dn: float = 0.0, seed: int = 0, background: float = 60.0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """uint8 frames (T, H, W) of a horizontal beam and its true deflection (T, W).

    Parameters
    ----------
    n_frames, fps
    texture : ndarray (bh, W)
        The beam's texture (see :func:`beam_texture`); the beam spans all W columns, so
        ``L = W`` and column ``c`` is at ``x = c + 0.5``.
    frame_height : int
    top : int
        First row of the beam at rest.
    modes : list of (frequency_hz, amplitude_px, order, phase_rad)
        Deflection ``sum_m A_m sin(order_m pi x / L) sin(2 pi f_m t + phase_m)``, downwards.
    noise_dn : float
        Gaussian noise added before rounding to 8 bits.
    """
    bh, w = texture.shape
    img = np.full((frame_height, w), background)
    img[top:top + bh] = texture
    # Soft top and bottom edges, so that the beam's outline is band-limited too.
    img = ndimage.gaussian_filter1d(img, 0.7, axis=0, mode="wrap")
    spec = np.fft.fft(img, axis=0)
    ky = np.fft.fftfreq(frame_height)[:, None]
    x = np.arange(w) + 0.5
    t = np.arange(n_frames) / fps
    defl = np.zeros((n_frames, w))
    for f, a, order, ph in modes:
        defl += a * np.sin(2 * np.pi * f * t + ph)[:, None] * mode_shape(x, w, order)[None]
    rng = np.random.default_rng(seed)
    out = np.empty((n_frames, frame_height, w), np.uint8)
    for i in range(n_frames):
        moved = np.fft.ifft(spec * np.exp(-2j * np.pi * ky * defl[i][None]), axis=0).real
        if noise_dn > 0:
            moved += rng.normal(0.0, noise_dn, moved.shape)
        out[i] = np.clip(np.rint(moved), 0, 255)
    return out, defl
