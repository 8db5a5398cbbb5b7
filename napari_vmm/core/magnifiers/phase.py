"""Phase-based magnification on a complex steerable pyramid (Wadhwa et al. 2013).

The pyramid is built in the Fourier domain with torch. Each band is cropped to the support
of its filter before the inverse FFT, so coarse levels cost little.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, ClassVar

import torch

from ..registry import Option
from .base import Magnifier
from .pyramids import amplitude_weighted_blur

FILTERS_PER_OCTAVE = {"octave": 1, "half_octave": 2, "quarter_octave": 4}
# Transition widths (in octaves) of the radial masks, as in the MIT code.
TRANSITION_WIDTH = {1: 1.0, 2: 0.75, 4: 0.6}


class SteerablePyramid:
    """Complex steerable pyramid for frames of one size, with filters cached on a device.

    Parameters
    ----------
    height, width : int
        Frame size.
    filters_per_octave : int
        1 (octave), 2 (half octave) or 4 (quarter octave).
    orientations : int
        Number of orientations per scale.
    depth : int, optional
        Number of octaves of bands (default: ``floor(log2(min(height, width))) - 1``). Tiles
        of a frame pass the frame's depth so that they build the same bands.

    Notes
    -----
    Filters are normalised so that the pyramid is a tight frame: decoding the unmodified
    coefficients returns the input exactly (up to float error).
    """

    def __init__(self, height: int, width: int, filters_per_octave: int, orientations: int,
                 device: torch.device, depth: int | None = None) -> None:
        self.shape = (height, width)
        fy = (torch.arange(height, dtype=torch.float64) - height // 2) / (height / 2)
        fx = (torch.arange(width, dtype=torch.float64) - width // 2) / (width / 2)
        yy, xx = torch.meshgrid(fy, fx, indexing="ij")
        radius = torch.sqrt(xx**2 + yy**2)
        radius[height // 2, width // 2] = radius[height // 2, width // 2 - 1] if width > 1 else 1
        angle = torch.atan2(yy, xx)
        twidth = TRANSITION_WIDTH[filters_per_octave]
        depth = auto_depth(height, width) if not depth else int(depth)
        n_bounds = depth * filters_per_octave + 1
        boundaries = [2.0 ** (-k / filters_per_octave) for k in range(n_bounds)]

        def high_mask(r0: float) -> torch.Tensor:
            log_rad = torch.clamp(torch.log2(radius) - math.log2(r0), -twidth, 0)
            return torch.abs(torch.cos(log_rad * math.pi / (2 * twidth)))

        def low_mask(r0: float) -> torch.Tensor:
            return torch.sqrt(torch.clamp(1 - high_mask(r0) ** 2, min=0))

        n_or = orientations
        const = (2 ** (n_or - 1)) * math.factorial(n_or - 1) / math.sqrt(
            n_or * math.factorial(2 * (n_or - 1)))
        angular = []
        for b in range(n_or):
            delta = torch.remainder(angle - math.pi * b / n_or + math.pi, 2 * math.pi) - math.pi
            mask = const * torch.cos(delta) ** (n_or - 1) * (delta.abs() < math.pi / 2)
            angular.append(2 * mask)

        residual = high_mask(boundaries[0]) ** 2 + low_mask(boundaries[-1]) ** 2
        bands, crops = [], []
        for k in range(1, len(boundaries)):
            radial = high_mask(boundaries[k]) * low_mask(boundaries[k - 1])
            bands.append(torch.stack([radial * a for a in angular]))
            crops.append(self._crop_box(boundaries[k - 1] * 2 ** 0.05, height, width))
        # Tight-frame normalisation: residual + sum over bands of the symmetrised squares == 1.
        total = residual.clone()
        for f in bands:
            sq = (f**2).sum(0)
            total += 0.5 * (sq + _flip(sq))
        scale = 1 / torch.sqrt(total)
        self.residual = (residual * scale**2).to(device, torch.float32)
        self.bands = []
        for f, (r0, r1, c0, c1) in zip(bands, crops, strict=True):
            self.bands.append((f * scale)[:, r0:r1, c0:c1].to(device, torch.float32))
        self.crops = crops

    @staticmethod
    def _crop_box(r_max: float, height: int, width: int) -> tuple[int, int, int, int]:
        half_h = min(math.ceil(r_max * height / 2) + 1, height // 2)
        half_w = min(math.ceil(r_max * width / 2) + 1, width // 2)
        ch, cw = height // 2, width // 2
        rows = (0, height) if 2 * half_h >= height - 1 else (ch - half_h, ch + half_h)
        cols = (0, width) if 2 * half_w >= width - 1 else (cw - half_w, cw + half_w)
        return rows[0], rows[1], cols[0], cols[1]

    def analyze(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Spectrum and complex band coefficients of real frames.

        Parameters
        ----------
        x : Tensor, shape (N, H, W)

        Returns
        -------
        spectrum : complex Tensor, shape (N, H, W), centred (fftshifted)
        coeffs : list of complex Tensor, each (N, orientations, h_k, w_k)
        """
        spectrum = torch.fft.fftshift(torch.fft.fft2(x), dim=(-2, -1))
        coeffs = []
        for filt, (r0, r1, c0, c1) in zip(self.bands, self.crops, strict=True):
            crop = spectrum[:, None, r0:r1, c0:c1] * filt
            coeffs.append(torch.fft.ifft2(torch.fft.ifftshift(crop, dim=(-2, -1))))
        return spectrum, coeffs

    def synthesize(self, spectrum: torch.Tensor, coeffs: list[torch.Tensor]) -> torch.Tensor:
        """Real frames (N, H, W) from the residual of ``spectrum`` and (modified) coefficients."""
        out = spectrum * self.residual
        for c, filt, (r0, r1, c0, c1) in zip(coeffs, self.bands, self.crops, strict=True):
            part = torch.fft.fftshift(torch.fft.fft2(c), dim=(-2, -1)) * filt
            out[:, r0:r1, c0:c1] += part.sum(1)
        return torch.fft.ifft2(torch.fft.ifftshift(out, dim=(-2, -1))).real


def _flip(a: torch.Tensor) -> torch.Tensor:
    """a(-f) on a centred grid (index i -> (-i) mod n around the centre)."""
    h, w = a.shape[-2:]
    rows = (2 * (h // 2) - torch.arange(h)) % h
    cols = (2 * (w // 2) - torch.arange(w)) % w
    return a[..., rows, :][..., :, cols]


def auto_depth(height: int, width: int) -> int:
    """Octaves of bands a frame of (height, width) gets by default."""
    return max(1, int(math.floor(math.log2(min(height, width)))) - 1)


@lru_cache(maxsize=8)
def _pyramid(h: int, w: int, fpo: int, n_or: int, device: str,
             depth: int | None = None) -> SteerablePyramid:
    return SteerablePyramid(h, w, fpo, n_or, torch.device(device), depth)


class PhaseMagnifier(Magnifier):
    """Phase-based magnification (Wadhwa et al. 2013).

    The motion signal is, per pyramid band, the local phase difference to the reference (first)
    frame. Decoding multiplies each coefficient by ``exp(i * alpha * filtered_phase)``, so the
    output displacement is ``(1 + alpha)`` times the input displacement. With
    ``attenuate_other=True`` the unfiltered motion is removed: the phase becomes the
    reference phase plus ``(1 + alpha)`` times the filtered phase. Luma only.
    """

    name = "phase"
    color_space = "yiq"
    luma_only = True
    options: ClassVar[dict[str, Option]] = {
        "pyramid": Option("octave", str, "pyramid type", choices=tuple(FILTERS_PER_OCTAVE)),
        "orientations": Option(4, int, "orientations per scale", min=2, max=16),
        "sigma": Option(2.0, float, "amplitude-weighted phase smoothing sigma in px (0: off)",
                        min=0.0, max=20.0),
        "attenuate_other": Option(False, bool, "remove motion outside the band"),
        "levels": Option(0, int, "octaves of bands (0: as many as the frame allows)",
                         min=0, max=12),
    }

    def __init__(self, alpha: float, device: torch.device, **options: Any) -> None:
        super().__init__(alpha, device, **options)
        self._reference: list[torch.Tensor] | None = None

    #: The pyramid is built with FFTs over the whole frame, so it wraps around at the frame
    #: edges: tiles at an edge take their halo from the opposite edge.
    boundary = "periodic"

    @property
    def spatial_support(self) -> int:
        # Not bounded (the filters are defined in the Fourier domain); measured: with
        # 4 x 2^levels px plus the phase smoothing at the coarsest band's sampling
        # (2^(levels-1)), tiles are at the method's own noise floor (docs/dask.md).
        levels = self.opts.get("levels") or 6
        step = 2 ** levels
        blur = math.ceil(2.5 * self.opts.get("sigma", 2.0)) * 2 ** (levels - 1)
        return 4 * step + -(-blur // step) * step

    def reset(self) -> None:
        self._reference = None

    def _pyr(self, x: torch.Tensor) -> SteerablePyramid:
        fpo = FILTERS_PER_OCTAVE[self.opts["pyramid"]]
        return _pyramid(x.shape[-2], x.shape[-1], fpo, self.opts["orientations"], str(x.device),
                        self.opts.get("levels") or None)

    def frame_options(self, height: int, width: int) -> dict[str, Any]:
        return {"levels": self.opts.get("levels") or auto_depth(height, width)}

    def encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], Any]:
        spectrum, coeffs = self._pyr(x).analyze(x[:, 0])
        if self._reference is None:
            self._reference = [c[:1] / (c[:1].abs() + 1e-12) for c in coeffs]
        signal = [torch.angle(c * ref.conj())
                  for c, ref in zip(coeffs, self._reference, strict=True)]
        return signal, (spectrum, coeffs)

    def decode(self, x: torch.Tensor, filtered: list[torch.Tensor], ctx: Any) -> torch.Tensor:
        spectrum, coeffs = ctx
        sigma = self.opts["sigma"]
        out = []
        for c, f, ref in zip(coeffs, filtered, self._reference, strict=True):
            amplitude = c.abs()
            if sigma > 0:
                f = amplitude_weighted_blur(f, amplitude, sigma)
            if self.opts["attenuate_other"]:
                out.append(amplitude * ref * torch.exp(1j * (1 + self.alpha) * f))
            else:
                out.append(c * torch.exp(1j * self.alpha * f))
        return self._pyr(x).synthesize(spectrum, out)[:, None]
