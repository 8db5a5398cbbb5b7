"""Riesz-pyramid phase magnification (Wadhwa et al. 2014): the fast streaming path."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from ..registry import Option
from .base import Magnifier
from .pyramids import (
    KERNEL_RADIUS,
    amplitude_weighted_blur,
    collapse,
    laplacian_pyramid,
    max_levels,
)


def riesz_transform(band: torch.Tensor, pad: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Riesz transform (R1 along x, R2 along y) of band-pass images (N, C, H, W).

    Computed exactly in the Fourier domain (``-i w_x / |w|`` and ``-i w_y / |w|``) on a
    reflect-padded copy, so the local phase is unbiased at every frequency of the band (the
    three-tap approximation underestimates it away from w = pi/2).
    """
    h, w = band.shape[-2:]
    pad = min(pad, h - 1, w - 1)
    x = F.pad(band, (pad, pad, pad, pad), mode="reflect") if pad > 0 else band
    ph, pw = x.shape[-2:]
    wy = torch.fft.fftfreq(ph, device=band.device, dtype=band.dtype)[:, None]
    wx = torch.fft.rfftfreq(pw, device=band.device, dtype=band.dtype)[None, :]
    norm = torch.sqrt(wx**2 + wy**2)
    norm[0, 0] = 1.0
    spec = torch.fft.rfft2(x)
    r1 = torch.fft.irfft2(spec * (-1j * wx / norm), s=(ph, pw))
    r2 = torch.fft.irfft2(spec * (-1j * wy / norm), s=(ph, pw))
    if pad > 0:
        r1, r2 = r1[..., pad:-pad, pad:-pad], r2[..., pad:-pad, pad:-pad]
    return r1, r2


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
    }

    def __init__(self, alpha: float, device: torch.device, **options: Any) -> None:
        super().__init__(alpha, device, **options)
        self._reference: list[tuple[torch.Tensor, ...]] | None = None

    @property
    def spatial_support(self) -> int:
        return 2 ** (self.opts.get("levels") or 6) * KERNEL_RADIUS * 2

    def reset(self) -> None:
        self._reference = None

    def _levels(self, x: torch.Tensor) -> int:
        auto = max_levels(x.shape[-2], x.shape[-1])
        return min(self.opts["levels"], auto) if self.opts["levels"] else auto

    def encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], Any]:
        bands = laplacian_pyramid(x, self._levels(x))
        monogenic = [(b, *riesz_transform(b)) for b in bands[:-1]]
        if self._reference is None:
            self._reference = [tuple(t[:1].clone() for t in m) for m in monogenic]
        signal = []
        for (i_c, r1_c, r2_c), (i_r, r1_r, r2_r) in zip(monogenic, self._reference, strict=True):
            # Quaternion product current * conj(reference): cos and the oriented sin parts.
            real = i_r * i_c + r1_r * r1_c + r2_r * r2_c
            x_part = i_r * r1_c - r1_r * i_c
            y_part = i_r * r2_c - r2_r * i_c
            sin_norm = torch.sqrt(x_part**2 + y_part**2) + 1e-12
            dphi = torch.atan2(sin_norm, real)
            signal.append(torch.cat([dphi * x_part / sin_norm, dphi * y_part / sin_norm], dim=1))
        return signal, (bands, monogenic)

    def decode(self, x: torch.Tensor, filtered: list[torch.Tensor], ctx: Any) -> torch.Tensor:
        bands, monogenic = ctx
        sigma = self.opts["sigma"]
        out_bands = []
        for (i_c, r1_c, r2_c), f in zip(monogenic, filtered, strict=True):
            c = i_c.shape[1]
            f_cos, f_sin = f[:, :c], f[:, c:]
            if sigma > 0:
                amplitude = torch.sqrt(i_c**2 + r1_c**2 + r2_c**2)
                f_cos = amplitude_weighted_blur(f_cos, amplitude, sigma)
                f_sin = amplitude_weighted_blur(f_sin, amplitude, sigma)
            norm = torch.sqrt(f_cos**2 + f_sin**2) + 1e-12
            shift = self.alpha * norm
            out_bands.append(
                i_c * torch.cos(shift) - torch.sin(shift) * (r1_c * f_cos + r2_c * f_sin) / norm
            )
        out_bands.append(bands[-1])
        return collapse(out_bands)
