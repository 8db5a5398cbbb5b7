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
    layout without the bands above the Nyquist radius (they add two full-frame scales)."""
    h, w, n_or = 128, 160, 8
    pyr = SteerablePyramid(h, w, 2, n_or, torch.device("cpu"), top=0)
    kept = sum(g.filters.numel() for g in pyr.groups)
    assert sum(len(g.offsets) for g in pyr.groups) % n_or == 0
    assert kept < 0.5 * n_or * 2.0 * h * w  # the annulus boxes held about 2 frames per band


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
