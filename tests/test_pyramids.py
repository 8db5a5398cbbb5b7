"""Pyramid invariants: perfect reconstruction, tight oriented boxes, per-axis blur."""

from __future__ import annotations

import pytest
import torch

from napari_vmm.core.magnifiers.phase import SteerablePyramid
from napari_vmm.core.magnifiers.pyramids import amplitude_weighted_blur, gaussian_blur


@pytest.mark.parametrize("shape,fpo,orientations", [((64, 80), 1, 4), ((63, 81), 2, 8),
                                                     ((48, 48), 4, 6)])
def test_steerable_pyramid_reconstructs_exactly(shape, fpo, orientations):
    pyr = SteerablePyramid(*shape, fpo, orientations, torch.device("cpu"))
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(0))
    spectrum, coeffs = pyr.analyze(x)
    assert len(coeffs) == len(pyr.groups)
    assert float((pyr.synthesize(spectrum, coeffs) - x).abs().max()) < 1e-5


def test_oriented_boxes_are_tighter_than_the_annulus():
    """Each oriented band is kept on its filter's box: far fewer coefficients than a full
    annulus box per orientation (the previous layout), at every scale. ``top=0``: the
    MIT layout, whose first boundary is the Nyquist radius."""
    h, w, n_or = 128, 160, 8
    pyr = SteerablePyramid(h, w, 2, n_or, torch.device("cpu"), top=0)
    kept = sum(g.filters.numel() for g in pyr.groups)
    assert sum(len(g.offsets) for g in pyr.groups) % n_or == 0
    assert kept < 0.5 * n_or * 2.0 * h * w  # the annulus boxes held about 2 frames per band


def test_one_finest_band_leaves_nothing_in_the_residual_without_extra_scales():
    """``top=-1`` (``split_finest=False``): the finest band reaches the spectrum's corners,
    so the never-magnified residual is empty, as with the default's whole scales above the
    Nyquist radius (``top=2`` for half octaves), with under 0.6x the coefficients."""
    h, w = 96, 128
    pyr = SteerablePyramid(h, w, 2, 8, torch.device("cpu"), top=-1)
    yy, xx = torch.meshgrid(torch.arange(h) - h // 2, torch.arange(w) - w // 2, indexing="ij")
    radius2 = (yy / (h / 2)) ** 2 + (xx / (w / 2)) ** 2
    fine = radius2 > 0.25  # outside the low-pass residual; the Nyquist row and column
    fine[0, :] = fine[:, 0] = False  # (wrapped onto themselves) stay in it, as before
    assert float(pyr.residual[fine].amax()) < 1e-6
    mit = SteerablePyramid(h, w, 2, 8, torch.device("cpu"), top=0)
    assert float(mit.residual[fine].amax()) > 0.5  # its transition holds the 2-4 px waves
    default = SteerablePyramid(h, w, 2, 8, torch.device("cpu"))
    assert float(default.residual[fine & (radius2 < 1)].amax()) < 1e-6  # not the corners
    size = sum(g.filters.numel() for g in pyr.groups)
    assert size < 0.6 * sum(g.filters.numel() for g in default.groups)


def test_gaussian_blur_per_axis():
    x = torch.zeros((1, 1, 31, 31))
    x[..., 15, 15] = 1.0
    y = gaussian_blur(x, (0.0, 2.0))
    assert torch.allclose(y[..., 15, :].sum(), torch.tensor(1.0))
    assert float(y[..., 14, :].abs().sum()) == 0.0  # no blur along y
    iso = gaussian_blur(x, 2.0)
    assert torch.allclose(iso, gaussian_blur(x, (2.0, 2.0)))


def test_amplitude_weighted_blur_keeps_constants():
    values = torch.full((2, 3, 16, 16), 0.7)
    amplitude = torch.rand((2, 3, 16, 16)) + 0.1
    out = amplitude_weighted_blur(values, amplitude, (1.5, 0.5))
    assert torch.allclose(out, values, atol=1e-5)


def _reference_phase(pyr, frames, alpha, sigma):
    """The phase magnifier before issue 19.3, written out: stacked crops, complex angle and
    abs, blur of shifted-pair sums with temporaries, complex rotation, out-of-place FFTs."""
    import torch.nn.functional as F

    from napari_vmm.core.magnifiers.pyramids import _gaussian_taps

    def taps_1d(x, taps, dim):
        r, n = len(taps) // 2, x.shape[dim]
        p = F.pad(x, (r, r, 0, 0) if dim == -1 else (0, 0, r, r), mode="reflect")
        out = p.narrow(dim, r, n) * taps[r]
        for k in range(r):
            out += (p.narrow(dim, k, n) + p.narrow(dim, 2 * r - k, n)) * taps[k]
        return out

    spectrum = torch.fft.fftshift(torch.fft.fft2(frames), dim=(-2, -1))
    coeffs = []
    for g in pyr.groups:
        bh, bw = g.filters.shape[-2:]
        crop = torch.stack([spectrum[:, r0:r0 + bh, c0:c0 + bw] for r0, c0 in g.offsets], 1)
        coeffs.append(torch.fft.ifft2(crop * g.filters))
    out = spectrum * pyr.residual
    for c, g in zip(coeffs, pyr.groups, strict=True):
        ref = c[:1] / (c[:1].abs() + 1e-12)
        f, amp = torch.angle(c * ref.conj()), c.abs()
        both = torch.cat([f * amp, amp], 1)
        for s, dim in ((sigma * g.sigma_scale[1], -1), (sigma * g.sigma_scale[0], -2)):
            taps = _gaussian_taps(s, both.shape[dim])
            both = taps_1d(both, taps, dim) if taps is not None else both
        f = both[:, :f.shape[1]] / (both[:, f.shape[1]:] + 1e-8)
        part = torch.fft.fft2(torch.exp(1j * alpha * f) * c) * g.filters
        bh, bw = g.filters.shape[-2:]
        for m, (r0, c0) in enumerate(g.offsets):
            out[:, r0:r0 + bh, c0:c0 + bw] += part[:, m]
    return torch.fft.ifft2(torch.fft.ifftshift(out, dim=(-2, -1))).real


@pytest.mark.parametrize("options", [{}, {"pyramid": "octave", "orientations": 4}])
def test_phase_matches_the_reference_implementation(options):
    """The optimised encode/decode (real-arithmetic phase and amplitude, fused blur taps,
    in-place FFTs) compute what the plain implementation does, to float rounding; the phase
    difference is passed through unfiltered so the output is the alpha-scaled motion."""
    from napari_vmm.core.magnifiers.phase import FILTERS_PER_OCTAVE, PhaseMagnifier

    h, w, alpha = 72, 96, 10.0
    base = torch.rand((h + 4, w + 4), generator=torch.Generator().manual_seed(1))
    frames = torch.stack([base[i:i + h, 2:2 + w] * 0.8 + 0.1 for i in (0, 1, 2)])
    opts = {"pyramid": "half_octave", "orientations": 8, "sigma": 2.0,
            "attenuate_other": False, "levels": 0} | options
    mag = PhaseMagnifier(alpha, torch.device("cpu"), **opts)
    x = frames[:, None]
    signal, ctx = mag.encode(x)
    y = mag.decode(x, signal, ctx)[:, 0]
    pyr = SteerablePyramid(h, w, FILTERS_PER_OCTAVE[opts["pyramid"]], opts["orientations"],
                           torch.device("cpu"))
    expected = _reference_phase(pyr, frames, alpha, 2.0)
    assert float((y - expected).abs().max()) < 1e-4
    assert float((y[0] - frames[0]).abs().max()) < 1e-5  # the reference frame: no motion
