"""Phase-based magnification on a complex steerable pyramid (Wadhwa et al. 2013).

The pyramid is built in the Fourier domain with torch. Each oriented band is cropped to the
tight bounding box of its filter's support before the inverse FFT, so coarse levels cost
little and an oriented band costs about half of its annulus' box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import torch

from ..registry import Option
from .base import Magnifier
from .pyramids import amplitude_weighted_blur

FILTERS_PER_OCTAVE = {"octave": 1, "half_octave": 2, "quarter_octave": 4}
# Transition widths (in octaves) of the radial masks, as in the MIT code.
TRANSITION_WIDTH = {1: 1.0, 2: 0.75, 4: 0.6}
# Filter values below this fraction of a band's peak are dropped (before the tight-frame
# normalisation, so reconstruction stays exact); it bounds the boxes of oriented bands.
SUPPORT_THRESHOLD = 1e-3


@dataclass
class BandGroup:
    """Oriented bands of one scale whose boxes have the same size.

    ``filters`` is (G, h, w) float32; ``offsets`` the top-left corner of each member's box in
    the centred spectrum; ``sigma_scale`` the (y, x) factors that turn a blur of ``sigma`` px
    of the scale's own sampling (its radius times the frame size) into box pixels.
    """

    filters: torch.Tensor
    offsets: list[tuple[int, int]]
    sigma_scale: tuple[float, float]


def _smooth_size(n: int, limit: int) -> int:
    """Smallest 2-3-5-smooth length >= ``n`` (fast FFTs), or ``limit`` if that comes first."""
    for m in range(n, limit):
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
    return limit


def _support_span(mask_1d: torch.Tensor, limit: int) -> tuple[int, int]:
    """[start, stop) covering the True entries, grown to a smooth length within ``limit``."""
    idx = torch.nonzero(mask_1d).flatten()
    lo, hi = int(idx.min()), int(idx.max()) + 1
    size = _smooth_size(hi - lo, limit)
    start = min(max(0, lo - (size - (hi - lo)) // 2), limit - size)
    return start, start + size


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
    top : int, optional
        How many band boundaries lie above the Nyquist radius (default: enough that the
        never-magnified high-pass residual holds nothing inside the Nyquist circle). 0 is the
        MIT layout, which leaves most of the 2-4 px wavelengths unmagnified. -1: no scale
        above the Nyquist radius; instead the finest band reaches past the spectrum's
        corners, so the residual is empty with about half the coefficients (1.7x faster,
        0.1-0.6 % less gain, docs/benchmarks.md).

    Notes
    -----
    Filters are normalised so that the pyramid is a tight frame: decoding the unmodified
    coefficients returns the input exactly (up to float error). A band cropped at an offset
    box is the true band times a fixed carrier ``exp(i k0 . x)``; phase *differences* between
    frames do not see it, and synthesis removes it, so no fftshift is needed per band.
    """

    def __init__(self, height: int, width: int, filters_per_octave: int, orientations: int,
                 device: torch.device, depth: int | None = None,
                 top: int | None = None) -> None:
        self.shape = (height, width)
        fy = (torch.arange(height, dtype=torch.float64) - height // 2) / (height / 2)
        fx = (torch.arange(width, dtype=torch.float64) - width // 2) / (width / 2)
        yy, xx = torch.meshgrid(fy, fx, indexing="ij")
        radius = torch.sqrt(xx**2 + yy**2)
        radius[height // 2, width // 2] = radius[height // 2, width // 2 - 1] if width > 1 else 1
        angle = torch.atan2(yy, xx)
        twidth = TRANSITION_WIDTH[filters_per_octave]
        depth = auto_depth(height, width) if not depth else int(depth)
        # The high-pass residual is never magnified. With the first boundary at the Nyquist
        # radius (as in the MIT code) its transition takes most of the 2-4 px wavelengths:
        # measured, 0.25 of (1 + alpha) at 2-3 px and 0.76 at 3-4 px. The finest bands
        # start `top` filters above it, so that the residual's transition ends at radius 1
        # and everything inside the Nyquist circle is in a band; or (top=-1) the first
        # boundary moves past the spectrum's corner (radius sqrt 2) and the finest band
        # runs from its lower boundary to the corner.
        if top is None:
            top = math.ceil(twidth * filters_per_octave - 1e-9)
        above = max(top, 0)
        n_bounds = depth * filters_per_octave + 1 + above
        boundaries = [2.0 ** (-(k - above) / filters_per_octave) for k in range(n_bounds)]
        if top < 0:
            boundaries[0] = math.sqrt(2) * 2.0 ** twidth * 1.001

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
        # Tight-frame normalisation: residual + sum over bands of the symmetrised squares == 1.
        # Each scale's full-frame filters are dropped once summed; only their boxes are kept
        # (at 1080p the full-frame filters of all scales took 2.7 GB).
        total = residual.clone()
        scales = []  # per scale: (box of each band and its corner, the scale's sampling (h, w))
        for k in range(1, len(boundaries)):
            radial = high_mask(boundaries[k]) * low_mask(boundaries[k - 1])
            filters = torch.stack([radial * a for a in angular])
            peak = filters.amax(dim=(1, 2), keepdim=True).clamp_min(1e-30)
            filters = torch.where(filters >= SUPPORT_THRESHOLD * peak, filters, 0.0)
            sq = (filters**2).sum(0)
            total += 0.5 * (sq + _flip(sq))
            boxes = []
            for f in filters:
                support = f > 0
                if not support.any():
                    continue
                r0, r1 = _support_span(support.any(1), height)
                c0, c1 = _support_span(support.any(0), width)
                boxes.append((f[r0:r1, c0:c1].clone(), (r0, c0)))
            del filters, sq
            r_max = boundaries[k - 1] * 2**0.05
            sampling = (min(height, 2 * math.ceil(r_max * height / 2) + 2),
                        min(width, 2 * math.ceil(r_max * width / 2) + 2))
            scales.append((boxes, sampling))
        scale = 1 / torch.sqrt(total)
        self.residual = (residual * scale**2).to(device, torch.float32)
        self.groups: list[BandGroup] = []
        for boxes, (sh, sw) in scales:
            by_size: dict[tuple[int, int], list[tuple[torch.Tensor, tuple[int, int]]]] = {}
            for f, (r0, c0) in boxes:
                bh, bw = f.shape
                by_size.setdefault((bh, bw), []).append(
                    (f * scale[r0:r0 + bh, c0:c0 + bw], (r0, c0)))
            for (bh, bw), members in by_size.items():
                self.groups.append(BandGroup(
                    filters=torch.stack([m[0] for m in members]).to(device, torch.float32),
                    offsets=[m[1] for m in members],
                    sigma_scale=(bh / sh, bw / sw),
                ))

    def spectrum(self, x: torch.Tensor) -> torch.Tensor:
        """Centred (fftshifted) spectrum, complex (N, H, W), of real frames (N, H, W)."""
        return torch.fft.fftshift(torch.fft.fft2(x), dim=(-2, -1))

    def bands(self, spectrum: torch.Tensor) -> list[torch.Tensor]:
        """Complex band coefficients of a centred spectrum, one (N, G, h, w) per group."""
        coeffs = []
        for g in self.groups:
            bh, bw = g.filters.shape[-2:]
            crop = spectrum.new_empty((spectrum.shape[0], len(g.offsets), bh, bw))
            for m, (r0, c0) in enumerate(g.offsets):
                torch.mul(spectrum[:, r0:r0 + bh, c0:c0 + bw], g.filters[m], out=crop[:, m])
            coeffs.append(torch.fft.ifft2(crop, out=crop))
        return coeffs

    def analyze(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Spectrum and complex band coefficients of real frames.

        Parameters
        ----------
        x : Tensor, shape (N, H, W)

        Returns
        -------
        spectrum : complex Tensor, shape (N, H, W), centred (fftshifted)
        coeffs : list of complex Tensor, one per :attr:`groups` entry, each (N, G, h, w)
        """
        spectrum = self.spectrum(x)
        return spectrum, self.bands(spectrum)

    def accumulate(self, spectrum: torch.Tensor, coeffs: list[torch.Tensor]) -> torch.Tensor:
        """Centred spectrum of the residual of ``spectrum`` plus the bands of ``coeffs``.

        The coefficients are transformed in place (they are consumed).
        """
        out = spectrum * self.residual
        for c, g in zip(coeffs, self.groups, strict=True):
            bh, bw = g.filters.shape[-2:]
            part = torch.fft.fft2(c, out=c)
            for m, (r0, c0) in enumerate(g.offsets):
                out[:, r0:r0 + bh, c0:c0 + bw].addcmul_(part[:, m], g.filters[m])
        return out

    def to_frames(self, out: torch.Tensor) -> torch.Tensor:
        """Real frames (N, H, W) of a centred spectrum (its real part)."""
        return torch.fft.ifft2(torch.fft.ifftshift(out, dim=(-2, -1))).real

    def synthesize(self, spectrum: torch.Tensor, coeffs: list[torch.Tensor]) -> torch.Tensor:
        """Real frames (N, H, W) from the residual of ``spectrum`` and (modified) coefficients.

        The coefficients are overwritten.
        """
        return self.to_frames(self.accumulate(spectrum, coeffs))


def phase_difference(c: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``angle(c * conj(ref))``, with ``atan2`` on contiguous real and imaginary parts.

    Complex ``angle`` is not vectorised on CPU: this is 2x faster. The product is the same
    complex multiply, so the sign of a zero imaginary part (+pi or -pi) is the same too.
    """
    prod = torch.view_as_real(c * ref.conj())
    im = prod[..., 1].contiguous()
    return torch.atan2(im, prod[..., 0].contiguous(), out=im)


def amplitude(c: torch.Tensor) -> torch.Tensor:
    """``|c|`` as ``hypot(re, im)``: several times faster than complex ``abs`` on CPU."""
    cr = torch.view_as_real(c)
    return torch.hypot(cr[..., 0], cr[..., 1])


def rotate(c: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``c * exp(i shift)`` from real cos/sin (complex exp is several times slower on CPU)."""
    return torch.complex(torch.cos(shift), torch.sin(shift)).mul_(c)


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
             depth: int | None = None, top: int | None = None) -> SteerablePyramid:
    return SteerablePyramid(h, w, fpo, n_or, torch.device(device), depth, top)


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
        # Half-octave bands with 8 orientations carry 0.95-0.96 of (1 + alpha) on real
        # textures; octave bands with 4 orientations only 0.90-0.92 (docs/evaluation.md).
        "pyramid": Option("half_octave", str, "pyramid type",
                          choices=tuple(FILTERS_PER_OCTAVE)),
        "orientations": Option(8, int, "orientations per scale", min=2, max=16),
        "sigma": Option(2.0, float, "amplitude-weighted phase smoothing sigma in px (0: off)",
                        min=0.0, max=20.0),
        "attenuate_other": Option(False, bool, "remove motion outside the band"),
        "levels": Option(0, int, "octaves of bands (0: as many as the frame allows)",
                         min=0, max=12),
        # False: one band from the finest scale to the spectrum's corners instead of whole
        # scales above the Nyquist radius: 1.7x faster at 1080p, 0.1-0.6 % less gain
        "split_finest": Option(True, bool, "finest wavelengths in scales of their own "
                               "(False: one band, 1.7x faster)"),
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
                        self.opts.get("levels") or None,
                        None if self.opts.get("split_finest", True) else -1)

    def frame_options(self, height: int, width: int) -> dict[str, Any]:
        return {"levels": self.opts.get("levels") or auto_depth(height, width)}

    def encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], Any]:
        spectrum, coeffs = self._pyr(x).analyze(x[:, 0])
        if self._reference is None:
            self._reference = [c[:1] / (c[:1].abs() + 1e-12) for c in coeffs]
        signal = [phase_difference(c, ref)
                  for c, ref in zip(coeffs, self._reference, strict=True)]
        return signal, (spectrum, coeffs)

    def decode(self, x: torch.Tensor, filtered: list[torch.Tensor], ctx: Any) -> torch.Tensor:
        spectrum, coeffs = ctx
        pyr = self._pyr(x)
        sigma = self.opts["sigma"]
        attenuate = self.opts["attenuate_other"]
        gain = (1 + self.alpha) if attenuate else self.alpha
        out = []
        for c, f, ref, g in zip(coeffs, filtered, self._reference, pyr.groups, strict=True):
            amp = amplitude(c) if (sigma > 0 or attenuate) else None
            if sigma > 0:
                shift = amplitude_weighted_blur(
                    f, amp, (sigma * g.sigma_scale[0], sigma * g.sigma_scale[1])).mul_(gain)
            else:
                shift = f * gain
            if attenuate:
                out.append(rotate(ref, shift).mul_(amp))
            else:
                out.append(rotate(c, shift))
        return pyr.synthesize(spectrum, out)[:, None]
