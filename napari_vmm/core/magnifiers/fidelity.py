"""Gain fidelity of the magnifiers: clips with exact ground truth and the motion they carry.

A texture (cut from a real video frame, or a synthetic fallback) is made periodic without a
seam (Moisan's periodic + smooth decomposition) and translated by Fourier shifts,
``A sin(2 pi f t)`` px along x. :func:`achieved_ratio` measures the motion of a magnified
clip at ``f`` and divides it by ``(1 + alpha) A``. Used by ``benchmarks/gain_fidelity.py``
and the tests.
"""

from __future__ import annotations

import numpy as np

from ..errors import VMMError


def periodic_component(image: np.ndarray) -> np.ndarray:
    """The periodic part of ``image`` (H, W) (Moisan 2011): no seam at the wrap-around.

    The smooth part removed is the harmonic function that carries the jumps between opposite
    edges; the interior texture is nearly unchanged.
    """
    u = np.asarray(image, dtype=np.float64)
    h, w = u.shape
    v = np.zeros_like(u)
    v[0, :] += u[-1, :] - u[0, :]
    v[-1, :] += u[0, :] - u[-1, :]
    v[:, 0] += u[:, -1] - u[:, 0]
    v[:, -1] += u[:, 0] - u[:, -1]
    cy = np.cos(2 * np.pi * np.arange(h) / h)[:, None]
    cx = np.cos(2 * np.pi * np.arange(w) / w)[None, :]
    denom = 2 * cx + 2 * cy - 4
    denom[0, 0] = 1.0
    smooth = np.fft.fft2(v) / denom
    smooth[0, 0] = 0.0
    return u - np.real(np.fft.ifft2(smooth))


def real_textures(paths, size: int = 128, per_clip: int = 1,
                  seed: int = 0) -> list[np.ndarray]:
    """Luma crops (size, size) in [0, 1] of real video frames, made periodic.

    Crops are taken where the frame has texture (the most detailed of a few random windows).
    """
    from ... import io

    rng = np.random.default_rng(seed)
    out = []
    for path in paths:
        with io.open_video(path) as video:
            frame = np.asarray(video[min(len(video) - 1, 10)], dtype=np.float64)
        if frame.ndim == 3:
            frame = frame[..., :3] @ np.array([0.299, 0.587, 0.114])
        frame /= 255.0 if frame.max() > 1.5 else 1.0
        h, w = frame.shape
        if min(h, w) < size:
            raise VMMError(f"{path}: frames are smaller than the {size} px texture")
        candidates = []
        for _ in range(8 * per_clip):
            y0, x0 = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
            crop = frame[y0:y0 + size, x0:x0 + size]
            candidates.append((float(np.abs(np.diff(crop, axis=1)).mean()), y0, x0))
        for _, y0, x0 in sorted(candidates, reverse=True)[:per_clip]:
            out.append(periodic_component(frame[y0:y0 + size, x0:x0 + size]))
    return out


def synthetic_texture(size: int = 128, seed: int = 0) -> np.ndarray:
    """A 1/f (natural-image-like) texture in [0, 1], periodic: the fallback without videos."""
    rng = np.random.default_rng(seed)
    ky = np.fft.fftfreq(size)[:, None]
    kx = np.fft.fftfreq(size)[None, :]
    k = np.hypot(ky, kx)
    k[0, 0] = 1.0
    spec = (rng.standard_normal((size, size)) + 1j * rng.standard_normal((size, size))) / k
    spec[0, 0] = 0.0
    tex = np.real(np.fft.ifft2(spec))
    return 0.5 + 0.15 * tex / tex.std()


def shifted(texture: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """Frames (T, H, W) of the periodic ``texture`` translated by ``dx[t]`` px along x."""
    w = texture.shape[1]
    kx = np.fft.fftfreq(w)[None, None, :]
    spec = np.fft.fft2(texture)[None]
    phase = np.exp(-2j * np.pi * kx * np.asarray(dx, dtype=np.float64)[:, None, None])
    return np.real(np.fft.ifft2(spec * phase))


def moving_clip(texture: np.ndarray, n: int, fps: float, freq: float, amplitude: float,
                noise_dn: float = 0.0, seed: int = 0) -> np.ndarray:
    """Float32 clip (n, H, W) of ``texture`` moving ``amplitude sin(2 pi freq t)`` along x.

    ``noise_dn`` adds white Gaussian noise of that many grey levels of 8-bit video.
    """
    t = np.arange(n) / fps
    frames = shifted(texture, amplitude * np.sin(2 * np.pi * freq * t))
    if noise_dn > 0:
        frames = frames + np.random.default_rng(seed).normal(0, noise_dn / 255, frames.shape)
    return frames.astype(np.float32)


def _tukey(n: int, margin: int) -> np.ndarray:
    w = np.ones(n)
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(margin) + 0.5) / margin)
    w[:margin], w[n - margin:] = ramp, ramp[::-1]
    return w


def x_shifts(texture: np.ndarray, frames: np.ndarray, margin: int = 16,
             iterations: int = 4, wavelengths: tuple[float, float] | None = None) -> np.ndarray:
    """Horizontal shift (px) of each frame (T, H, W) against the periodic ``texture`` (H, W).

    The shift ``d`` that best explains the frame as the texture Fourier-shifted by ``d``, in
    least squares over the frame tapered by ``margin`` px (so that what the magnifiers do at
    the frame edges does not count): Gauss-Newton from the phase slope of the lowest
    frequencies. Exact (to 1e-6 px) on a shifted texture. ``wavelengths`` (min, max) px
    restricts both images to that annulus of the spectrum: the motion of one spatial scale.
    """
    h, w = texture.shape
    win = _tukey(h, margin)[:, None] * _tukey(w, margin)[None, :]
    kx = np.fft.fftfreq(w)[None, :]
    ky = np.fft.fftfreq(h)[:, None]
    radius = np.hypot(ky, kx)
    keep = np.ones((h, w))
    if wavelengths is not None:
        keep = ((radius > 1 / wavelengths[1]) & (radius <= 1 / wavelengths[0])).astype(float)
    spec = np.fft.fft2(texture) * keep
    kx_odd = np.where(np.abs(kx) < 0.5, kx, 0.0)  # the derivative has no Nyquist term
    low = ((radius < max(0.06, 1.5 * radius[keep > 0].min())) & (kx != 0)
           & (np.abs(spec) > 1e-6 * np.abs(spec).max()))  # where the texture has energy
    from scipy import fft

    fspec = fft.fft2(np.asarray(frames, dtype=np.float64)) * keep  # all frames at once
    frames = np.real(fft.ifft2(fspec))
    cross = fspec[:, low] * np.conj(spec[low])
    k = -2 * np.pi * np.broadcast_to(kx, spec.shape)[low]
    wgt = np.abs(cross)
    den = np.sum(wgt * k * k, axis=1)  # 0 where the lowest frequencies hold nothing
    d = np.sum(wgt * k * np.angle(cross), axis=1) / np.where(den > 0, den, 1.0)
    for _ in range(iterations):
        moved = spec * np.exp(-2j * np.pi * kx * d[:, None, None])
        # model and its derivative in d, both real: one inverse FFT as model + i grad
        both = fft.ifft2(moved * (1 + 2 * np.pi * kx_odd))
        model, grad = both.real, both.imag
        d = d + (np.sum(win * grad * (frames - model), axis=(1, 2))
                 / np.sum(win * grad * grad, axis=(1, 2)))
    return d


def sinusoid_amplitude(signal: np.ndarray, fps: float, freq: float, skip: int = 0) -> float:
    """Amplitude of the ``freq`` component of ``signal`` (least squares with an offset)."""
    t = np.arange(len(signal)) / fps
    design = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t),
                       np.ones_like(t)], axis=1)
    coef = np.linalg.lstsq(design[skip:], np.asarray(signal)[skip:], rcond=None)[0]
    return float(np.hypot(coef[0], coef[1]))


def achieved_ratio(texture: np.ndarray, out: np.ndarray, fps: float, freq: float,
                   amplitude: float, alpha: float, skip: int = 0,
                   wavelengths: tuple[float, float] | None = None) -> float:
    """Motion of the magnified clip ``out`` at ``freq`` over the requested ``(1 + alpha) A``.

    ``skip`` leaves out the first frames (a causal filter's start); ``wavelengths`` measures
    one spatial scale (see :func:`x_shifts`).
    """
    dx = x_shifts(texture, np.asarray(out, dtype=np.float64), wavelengths=wavelengths)
    return sinusoid_amplitude(dx, fps, freq, skip) / ((1 + alpha) * amplitude)
