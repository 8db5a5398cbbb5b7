"""Riesz-pyramid phase magnification (Wadhwa et al. 2014): the fast streaming path."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ..registry import Option
from .base import Magnifier
from .pyramids import (
    KERNEL_RADIUS,
    amplitude_weighted_blur,
    collapse,
    gaussian_blur,
    laplacian_pyramid,
    max_levels,
    upsample,
)

#: Default radius in px (at each pyramid level) of the Riesz transform's kernel.
RIESZ_RADIUS = 8
#: Tikhonov damping of the aperture fit, relative to the trace of its 2x2 system.
APERTURE_DAMPING = 1e-3
#: Below this fraction of the window's mean |r|^2 a pixel keeps its own measured phase vector.
APERTURE_FALLBACK = 0.01

@lru_cache(maxsize=8)
def riesz_kernels(radius: int) -> np.ndarray:
    """Spatial kernels (2, 2r+1, 2r+1) of a Riesz transform with support ``radius`` px.

    The ideal discrete kernels (the inverse DFT of ``-i w_x / |w|`` and ``-i w_y / |w|`` on a
    grid much larger than the kernel, so they do not depend on any frame size) times a window
    that is flat to ``radius / 2`` and falls to zero at ``radius + 1`` as a squared cosine.
    For radius 8 the response differs from the ideal ``-i`` by 0.035 at 1/16 cycle/px, 0.031
    at 1/8 and 0.010 at 1/4 (a band's peak), against 0.5 for the three-tap [0.5, 0, -0.5].
    """
    n = max(256, 16 * radius)
    wy = np.fft.fftfreq(n)[:, None]
    wx = np.fft.fftfreq(n)[None, :]
    norm = np.hypot(wx, wy)
    norm[0, 0] = 1.0
    c = n // 2
    ideal = [np.fft.fftshift(np.fft.ifft2(-1j * f / norm).real) for f in (wx, wy)]
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    r = np.hypot(yy, xx)
    flat = radius / 2
    window = np.where(r <= flat, 1.0, np.where(
        r <= radius + 1, np.cos(np.pi * (r - flat) / (2 * (radius + 1 - flat))) ** 2, 0.0))
    return np.stack([k[c - radius:c + radius + 1, c - radius:c + radius + 1] * window
                     for k in ideal])


@lru_cache(maxsize=32)
def _multipliers(ph: int, pw: int, radius: int, device: str) -> torch.Tensor:
    """(2, ph, pw // 2 + 1) complex64 rfft-grid responses of R1 and R2.

    ``radius`` 0: the ideal ``-i w_x / |w|`` and ``-i w_y / |w|``; > 0: the spectra of
    :func:`riesz_kernels` embedded (centred at 0, wrapped) in a (ph, pw) grid. Made as
    normal tensors even under ``torch.inference_mode``, so that a cached one also serves
    training (σ-θ Net's Riesz forms) later in the same process.
    """
    with torch.inference_mode(False):
        return _make_multipliers(ph, pw, radius, device)


def _make_multipliers(ph: int, pw: int, radius: int, device: str) -> torch.Tensor:
    if radius == 0:
        wy = torch.fft.fftfreq(ph, dtype=torch.float64)[:, None]
        wx = torch.fft.rfftfreq(pw, dtype=torch.float64)[None, :]
        norm = torch.sqrt(wx**2 + wy**2)
        norm[0, 0] = 1.0
        return torch.stack([-1j * wx / norm, -1j * wy / norm]).to(
            device, torch.complex64)
    k = riesz_kernels(radius)
    grid = np.zeros((2, ph, pw))
    offsets = np.arange(-radius, radius + 1)
    grid[:, (offsets % ph)[:, None], (offsets % pw)[None, :]] = k
    return torch.fft.rfft2(torch.as_tensor(grid)).to(device, torch.complex64)


def riesz_transform(band: torch.Tensor, pad: int = 8,
                    radius: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Riesz transform (R1 along x, R2 along y) of band-pass images (N, C, H, W).

    Parameters
    ----------
    band : Tensor (N, C, H, W)
        Band-pass images (a Laplacian pyramid level).
    pad : int
        Reflect padding for ``radius=0``.
    radius : int
        0: computed exactly in the Fourier domain (``-i w_x / |w|``, ``-i w_y / |w|``) on a
        reflect-padded copy: unbiased at every frequency, but every output depends on the
        whole image (the error of cutting the image decays only as 1/distance), so tiles
        show seams. > 0: convolution with :func:`riesz_kernels` of that radius (by FFT on a
        copy padded by ``radius``): each output depends only on the image within ``radius``
        px, so tiles with a halo give exactly the whole-frame result.

    Notes
    -----
    The padded size grows to a fast FFT length (2-3-5-smooth): 1080 + 16 rows would otherwise
    have a prime factor of 137, 2.5x slower. The extension is a reflection (zeros beyond it on
    levels smaller than the padding), so nothing wraps around into the crop.
    """
    from scipy.fft import next_fast_len

    h, w = band.shape[-2:]
    margin = radius if radius > 0 else min(pad, h - 1, w - 1)
    ph, pw = next_fast_len(h + 2 * margin, real=True), next_fast_len(w + 2 * margin, real=True)
    top, left = (ph - h) // 2, (pw - w) // 2
    x = band
    reflect = min(top, ph - h - top, left, pw - w - left, h - 1, w - 1)
    if reflect > 0:
        x = F.pad(x, (reflect,) * 4, mode="reflect")
    if x.shape[-2:] != (ph, pw):  # the rest of the margin (and the fast length) in zeros
        t, lft = top - reflect, left - reflect
        x = F.pad(x, (lft, pw - x.shape[-1] - lft, t, ph - x.shape[-2] - t))
    spec = torch.fft.rfft2(x)
    hx, hy = _multipliers(ph, pw, radius, str(band.device))
    r1 = torch.fft.irfft2(spec * hx, s=(ph, pw))
    r2 = torch.fft.irfft2(spec.mul_(hy), s=(ph, pw))
    return r1[..., top:top + h, left:left + w], r2[..., top:top + h, left:left + w]


def _mean_2x2_products(pairs) -> torch.Tensor:
    """Means of 2x2 blocks of ``a * b`` for each (a, b) pair of (N, C, H, W), stacked on dim 1.

    An odd last row/column is repeated. The full-resolution products are never stored: row
    pairs are multiplied and summed in one go (2 ops per pair), then column pairs are added.
    """
    a0 = pairs[0][0]
    h, w = a0.shape[-2:]
    if h % 2 or w % 2:  # pad each distinct tensor once (r1, r2 and q recur across pairs)
        pad = (0, w % 2, 0, h % 2)
        padded = {id(t): F.pad(t, pad, mode="replicate") for pair in pairs for t in pair}
        pairs = [(padded[id(a)], padded[id(b)]) for a, b in pairs]
    c = a0.shape[1]
    hh, hw = -(-h // 2), -(-w // 2)
    out = a0.new_empty((a0.shape[0], len(pairs) * c, hh, hw))
    for k, (a, b) in enumerate(pairs):
        rows = torch.mul(a[..., 0::2, :], b[..., 0::2, :]).addcmul_(a[..., 1::2, :],
                                                                     b[..., 1::2, :])
        torch.add(rows[..., 0::2], rows[..., 1::2], out=out[:, k * c:(k + 1) * c])
    return out.mul_(0.25)


def aperture_fit(r1: torch.Tensor, r2: torch.Tensor, f_cos: torch.Tensor, f_sin: torch.Tensor,
                 window: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Resolve the aperture problem: the motion fitted over a window, seen along each pixel.

    A monogenic pixel measures only the motion along its own orientation u = (r1, r2) / |r|:
    its phase vector is ``f = (u . D) u``. On 2-D texture, shifting each pixel by that normal
    component alone under-magnifies (measured 0.74-0.85 of (1 + alpha)). Here the motion D is
    the weighted least-squares fit ``sum w u u^T D = sum w f`` over a Gaussian window of
    ``window`` px with weights w = |r|^2 (so ``w u u^T`` is just ``r r^T``), and every pixel
    gets ``(u . D) u``: the full motion where the window holds several orientations, the normal
    component where the structure is 1-D (a small damping keeps that system regular). Pixels
    with little odd energy |r|^2 (phase extrema, where u is noise) blend back to their own
    measured phase vector, whose length is right there. The
    window's moments are taken at half resolution (2x2 means, then the rest of the Gaussian
    there), and the fit is upsampled back with the pyramid's own 2x interpolator.

    Parameters
    ----------
    r1, r2 : Tensor (N, C, H, W)
        Riesz components of the current frame's band.
    f_cos, f_sin : Tensor (N, C, H, W)
        The (filtered) phase vector ``dphi * u``.
    window : float
        Gaussian sigma of the fit's window in px of this level.

    Returns
    -------
    (Tensor, Tensor)
        The fitted phase vector, same shapes.
    """
    c = r1.shape[1]
    h, w = r1.shape[-2:]
    q = (r1 * r1).addcmul_(r2, r2)
    pairs = ((r1, r1), (r1, r2), (r2, r2), (q, f_cos), (q, f_sin))
    coarse = min(h, w) >= 16 and window > 0.5
    if coarse:  # 2x2 means (sigma 1/2 px), then the rest of the window at half resolution
        moments = gaussian_blur(_mean_2x2_products(pairs), math.sqrt(window**2 - 0.25) / 2)
    else:
        moments = gaussian_blur(torch.cat([a * b for a, b in pairs], dim=1), window)
    a11, a12, a22, b1, b2 = moments.split(c, dim=1)
    trace = a11 + a22
    damp = trace * APERTURE_DAMPING + 1e-20
    a11, a22 = a11 + damp, a22 + damp
    det = (a11 * a22).addcmul_(a12, a12, value=-1)
    fit = torch.cat([(a22 * b1).addcmul_(a12, b2, value=-1).div_(det),
                     (a11 * b2).addcmul_(a12, b1, value=-1).div_(det), trace], dim=1)
    if coarse:
        fit = upsample(fit, (h, w))
    dx, dy, trace = fit.split(c, dim=1)
    # (u . D) u where the pixel has energy, the measured phase vector where it has little
    # (phase extrema, where r and so u vanish): [r (r . D) + eps f] / (|r|^2 + eps)
    eps = trace.mul_(APERTURE_FALLBACK).add_(1e-20)
    along = (r1 * dx).addcmul_(r2, dy)
    denom = q.add_(eps)
    return ((r1 * along).addcmul_(eps, f_cos).div_(denom),
            (r2 * along).addcmul_(eps, f_sin).div_(denom))


class RieszMagnifier(Magnifier):
    """Phase magnification with the Riesz pyramid (Wadhwa et al. 2014).

    Each Laplacian level and its Riesz transform (R1, R2) form a monogenic signal with local
    amplitude, phase and orientation. The motion signal is the quaternionic phase difference to
    the reference (first) frame, ``(dphi cos(theta), dphi sin(theta))`` per level. Decoding
    shifts each level's phase by ``alpha`` times the filtered phase, so the output displacement
    is ``(1 + alpha)`` times the input displacement. Luma only.
    """

    name = "riesz"
    color_space = "yiq"
    luma_only = True
    options: ClassVar[dict[str, Option]] = {
        "levels": Option(0, int, "pyramid levels (0: as many as the frame allows)", min=0, max=12),
        # Smoothing the oriented phase vector averages opposite orientations of broadband
        # texture and loses up to a third of the motion, so it is off by default.
        "sigma": Option(0.0, float, "amplitude-weighted phase smoothing sigma in px "
                        "(denoises, but under-magnifies broadband texture)", min=0.0, max=20.0),
        # Level 0 (2-4 px wavelengths, and part of 8 px ones) is 3/4 of the work. Passing it
        # through (1) is 4x faster and drops its noise, but under-magnifies fine texture:
        # measured 0.57-0.69 of (1 + alpha) instead of 0.74-0.85 on 8-24 px texture.
        "finest_level": Option(0, int, "finest pyramid level that is magnified (1: pass the "
                               "2-4 px level through, 4x faster, less noise)", min=0, max=4),
        "aperture": Option(2.0, float, "window sigma in px per level of the local motion fit "
                           "that resolves the aperture problem on 2-D texture (0: each pixel's "
                           "normal motion only, faster, under-magnifies texture)",
                           min=0.0, max=8.0),
        "radius": Option(RIESZ_RADIUS, int, "Riesz kernel radius in px per level (0: exact "
                         "FFT transform over the whole frame; tiles then show seams)",
                         min=0, max=32),
    }

    def __init__(self, alpha: float, device: torch.device, **options: Any) -> None:
        super().__init__(alpha, device, **options)
        self._reference: list[tuple[torch.Tensor, ...]] | None = None

    @property
    def spatial_support(self) -> int:
        # The Laplacian pyramid's support (as linear), plus the Riesz kernel and the phase
        # smoothing at the coarsest band level (step 2^(levels-2)), rounded up to a multiple
        # of 2^levels so that tile windows stay on the pyramid's grid.
        levels = self.opts.get("levels") or 6
        radius = self.opts.get("radius", RIESZ_RADIUS) or 8
        # the aperture window (+ its decimation and upsampling taps) adds to the smoothing
        aperture = self.opts.get("aperture", 0.0)
        blur = math.ceil(2.5 * self.opts.get("sigma", 0.0)) + (
            math.ceil(2.5 * aperture) + 2 * KERNEL_RADIUS if aperture > 0 else 0)
        step = 2 ** levels
        extra = (radius + blur) * 2 ** max(0, levels - 2)
        return step * KERNEL_RADIUS * 2 + -(-extra // step) * step

    @property
    def work_factor(self) -> float:
        # the aperture fit's five moment maps and its solve: measured 107 MiB against 56 MiB
        # predicted with the default factor for 256x256 Dask segments
        return 3.0 + (5.0 if self.opts.get("aperture", 0.0) > 0 else 0.0)

    def frame_options(self, height: int, width: int) -> dict[str, Any]:
        return {"levels": self._levels_for(height, width)}

    def reset(self) -> None:
        self._reference = None

    def _levels(self, x: torch.Tensor) -> int:
        return self._levels_for(x.shape[-2], x.shape[-1])

    def _levels_for(self, height: int, width: int) -> int:
        auto = max_levels(height, width)
        return min(self.opts["levels"], auto) if self.opts["levels"] else auto

    def encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], Any]:
        bands = laplacian_pyramid(x, self._levels(x))
        first = min(self.opts.get("finest_level", 0), len(bands) - 1)
        radius = self.opts.get("radius", RIESZ_RADIUS)
        monogenic = [(b, *riesz_transform(b, radius=radius)) for b in bands[first:-1]]
        if self._reference is None:
            self._reference = [tuple(t[:1].clone() for t in m) for m in monogenic]
        signal = []
        for (i_c, r1_c, r2_c), (i_r, r1_r, r2_r) in zip(monogenic, self._reference, strict=True):
            # Quaternion product current * conj(reference): cos and the oriented sin parts.
            real = (i_r * i_c).addcmul_(r1_r, r1_c).addcmul_(r2_r, r2_c)
            c = i_c.shape[1]
            out = torch.empty((i_c.shape[0], 2 * c) + tuple(i_c.shape[2:]), dtype=i_c.dtype,
                              device=i_c.device)
            x_part = torch.mul(i_r, r1_c, out=out[:, :c]).addcmul_(r1_r, i_c, value=-1)
            y_part = torch.mul(i_r, r2_c, out=out[:, c:]).addcmul_(r2_r, i_c, value=-1)
            sin_norm = torch.hypot(x_part, y_part).add_(1e-12)
            # (dphi cos theta, dphi sin theta) = (x_part, y_part) * dphi / |sin part|
            out.mul_(torch.atan2(sin_norm, real).div_(sin_norm).repeat(1, 2, 1, 1))
            signal.append(out)
        return signal, (bands, monogenic, first)

    def decode(self, x: torch.Tensor, filtered: list[torch.Tensor], ctx: Any) -> torch.Tensor:
        bands, monogenic, first = ctx
        sigma = self.opts["sigma"]
        out_bands = list(bands[:first])
        for (i_c, r1_c, r2_c), f in zip(monogenic, filtered, strict=True):
            c = i_c.shape[1]
            f_cos, f_sin = f[:, :c], f[:, c:]
            if sigma > 0:
                amplitude = torch.sqrt(i_c**2 + r1_c**2 + r2_c**2)
                f_cos = amplitude_weighted_blur(f_cos, amplitude, sigma)
                f_sin = amplitude_weighted_blur(f_sin, amplitude, sigma)
            if self.opts.get("aperture", 0) > 0:
                f_cos, f_sin = aperture_fit(r1_c, r2_c, f_cos, f_sin, self.opts["aperture"])
            norm = torch.hypot(f_cos, f_sin).add_(1e-12)
            shift = norm * self.alpha
            # i cos(shift) - sin(shift) (r1 f_cos + r2 f_sin) / |f|
            along = (r1_c * f_cos).addcmul_(r2_c, f_sin)
            factor = torch.sin(shift).div_(norm)
            out_bands.append(torch.cos(shift).mul_(i_c).addcmul_(factor, along, value=-1))
        out_bands.append(bands[-1])
        return collapse(out_bands)
