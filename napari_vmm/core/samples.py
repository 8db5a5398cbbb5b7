"""Synthetic clips with known motion: the bundled samples and the tests' ground truth.

Motion is rendered exactly with Fourier shifts (a sub-pixel translation is a phase ramp in the
frequency domain), so the true displacement of every frame is known.
"""

from __future__ import annotations

import numpy as np


def fourier_shift(image: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """Translate a 2-D image by (dy, dx) pixels (periodic, exact for band-limited images)."""
    h, w = image.shape
    ky = np.fft.fftfreq(h)[:, None]
    kx = np.fft.fftfreq(w)[None, :]
    ramp = np.exp(-2j * np.pi * (ky * dy + kx * dx))
    return np.fft.ifft2(np.fft.fft2(image) * ramp).real


def smooth_texture(shape: tuple[int, int], rng: np.random.Generator,
                   min_wavelength: float = 8.0, max_wavelength: float | None = None) -> np.ndarray:
    """Band-limited random texture in [0, 1] with wavelengths in [min, max] px."""
    h, w = shape
    spec = rng.normal(size=(h, w)) + 1j * rng.normal(size=(h, w))
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    f = np.sqrt(fy**2 + fx**2)
    keep = f < 1.0 / min_wavelength
    if max_wavelength is not None:
        keep &= f > 1.0 / max_wavelength
    spec *= keep / np.maximum(f, 1.0 / max(h, w))
    tex = np.fft.ifft2(spec).real
    tex -= tex.min()
    return tex / max(tex.max(), 1e-12)


def translating_texture(n_frames: int, shape: tuple[int, int], fps: float, freq_hz: float,
                        amplitude_px: float, direction: tuple[float, float] = (0.0, 1.0),
                        seed: int = 0, min_wavelength: float = 8.0,
                        max_wavelength: float | None = None) -> np.ndarray:
    """Float32 frames (T, H, W) of a texture moving ``amplitude * sin(2 pi f t)``.

    The motion is along ``direction`` (dy, dx); wavelengths are in [min, max] px.
    """
    rng = np.random.default_rng(seed)
    tex = smooth_texture(shape, rng, min_wavelength, max_wavelength)
    dy, dx = np.asarray(direction, dtype=float) / np.hypot(*direction)
    t = np.arange(n_frames) / fps
    disp = amplitude_px * np.sin(2 * np.pi * freq_hz * t)
    frames = [fourier_shift(tex, d * dy, d * dx) for d in disp]
    return (0.1 + 0.8 * np.stack(frames)).astype(np.float32)


def vibrating_target(n_frames: int = 90, shape: tuple[int, int] = (96, 128), fps: float = 30.0,
                     freq_hz: float = 2.0, amplitude_px: float = 0.3,
                     seed: int = 0) -> tuple[np.ndarray, dict]:
    """A textured disc vibrating sub-pixel over a static textured background (uint8 RGB).

    Returns
    -------
    frames : ndarray (T, H, W, 3) uint8
    info : dict
        True parameters: fps, freq_hz, amplitude_px, direction, centre, radius.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    background = smooth_texture(shape, rng, 6.0)
    target = smooth_texture(shape, rng, 4.0)
    yy, xx = np.mgrid[:h, :w]
    cy, cx, radius = h / 2, w / 2, min(h, w) / 3
    colour_bg = np.array([0.55, 0.6, 0.7])
    colour_fg = np.array([0.9, 0.6, 0.3])
    t = np.arange(n_frames) / fps
    disp = amplitude_px * np.sin(2 * np.pi * freq_hz * t)
    frames = np.empty((n_frames, h, w, 3), dtype=np.uint8)
    for i, d in enumerate(disp):
        # The disc (mask and texture) moves horizontally by d; render the soft mask by shifting.
        dist = np.hypot(yy - cy, xx - cx - d)
        mask = np.clip(radius + 0.5 - dist, 0, 1)[..., None]
        fg = fourier_shift(target, 0, d)[..., None] * colour_fg
        bg = background[..., None] * colour_bg
        img = 0.15 + 0.8 * (mask * fg + (1 - mask) * bg)
        frames[i] = np.clip(np.rint(img * 255), 0, 255)
    info = {"kind": "vibrating_target", "fps": fps, "freq_hz": freq_hz,
            "amplitude_px": amplitude_px, "direction": "x", "centre_yx": [cy, cx],
            "radius_px": radius, "n_frames": n_frames, "shape": [h, w, 3], "seed": seed}
    return frames, info


def pulsing_timelapse(n_frames: int = 120, shape: tuple[int, int] = (128, 128), fps: float = 10.0,
                      freq_hz: float = 0.5, amplitude_px: float = 0.4,
                      seed: int = 1) -> tuple[np.ndarray, dict]:
    """A 16-bit gray "microscopy" time-lapse: a cell-like ring whose radius pulses sub-pixel.

    Returns
    -------
    frames : ndarray (T, H, W) uint16
    info : dict
        True parameters: fps, freq_hz, amplitude_px (radius change), centre, radius.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    cy, cx, radius = h / 2, w / 2, min(h, w) / 4
    dist = np.hypot(yy - cy, xx - cx)
    speckle = smooth_texture(shape, rng, 3.0)
    t = np.arange(n_frames) / fps
    frames = np.empty((n_frames, h, w), dtype=np.uint16)
    for i, ti in enumerate(t):
        r = radius + amplitude_px * np.sin(2 * np.pi * freq_hz * ti)
        ring = np.exp(-0.5 * ((dist - r) / 2.5) ** 2)
        img = 800 + 20000 * ring * (0.7 + 0.3 * speckle) + rng.normal(0, 60, size=shape)
        frames[i] = np.clip(np.rint(img), 0, 65535)
    info = {"kind": "pulsing_timelapse", "fps": fps, "freq_hz": freq_hz,
            "amplitude_px": amplitude_px, "centre_yx": [cy, cx], "radius_px": radius,
            "n_frames": n_frames, "shape": [h, w], "dtype": "uint16", "seed": seed,
            "pixel_size_um": 0.2}
    return frames, info
