"""The magnification asked for is the magnification delivered (issue 19, section 1).

Ground truth is exact: a texture cut from a real video frame (``../shared/videos``; a 1/f
synthetic texture when the clips are absent), made periodic and Fourier-shifted
``A sin(2 pi 2 t)`` px along x, magnified with the band 1.5-2.5 Hz. The motion of the output
is the least-squares translation that best explains each frame (``fidelity.x_shifts``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SHARED_VIDEOS

from napari_vmm.core.engine import magnify
from napari_vmm.core.magnifiers import fidelity
from napari_vmm.core.magnifiers.linear import level_alphas
from napari_vmm.core.magnifiers.pyramids import max_levels, weighted_collapse
from napari_vmm.core.params import MagnifyParams
from napari_vmm.core.temporal import make_filter

FPS, FREQ, BAND = 30.0, 2.0, (1.5, 2.5)
CLIPS = ("baby.mp4", "drum.mp4")


@pytest.fixture(scope="module")
def textures() -> list[np.ndarray]:
    paths = [SHARED_VIDEOS / c for c in CLIPS if (SHARED_VIDEOS / c).is_file()]
    if not paths:  # CI: no shared clips
        return [fidelity.synthetic_texture(128, seed=s) for s in range(2)]
    return fidelity.real_textures(paths, 128)


def ratios(textures, method, amplitude, alpha, noise=0.0, temporal="ideal", skip=0, n=30,
           freq=FREQ, **options) -> list[float]:
    out = []
    for i, tex in enumerate(textures):
        clip = fidelity.moving_clip(tex, n, FPS, freq, amplitude, noise, seed=i)
        y = magnify(clip, FPS, method=method, alpha=alpha, band=BAND, temporal=temporal,
                    **options)
        out.append(fidelity.achieved_ratio(tex, y, FPS, freq, amplitude, alpha, skip=skip))
    return out


def test_the_measurement_is_exact_on_ground_truth():
    tex = fidelity.synthetic_texture(96)
    for amplitude in (0.05, 4.0):
        clip = fidelity.moving_clip(tex, 30, FPS, FREQ, amplitude)
        assert fidelity.achieved_ratio(tex, clip, FPS, FREQ, amplitude, 0.0) == pytest.approx(
            1.0, abs=1e-4)


@pytest.mark.parametrize("amplitude,alpha", [(0.05, 19), (0.2, 19), (1.0, 3)])
def test_phase_delivers_one_plus_alpha_within_5_percent(textures, amplitude, alpha):
    """Before: 0.82-0.92 on the real-frame textures (the 2-4 px wavelengths sat in the
    never-magnified high-pass residual; octave bands with 4 orientations). The synthetic 1/f
    fallback (no shared clips) holds more energy at the finest scales and reads 0.93-0.95:
    there the bound is 7.5 %."""
    real = any((SHARED_VIDEOS / c).is_file() for c in CLIPS)
    got = ratios(textures, "phase", amplitude, alpha)
    assert np.mean(got) == pytest.approx(1.0, abs=0.05 if real else 0.075), got
    assert min(got) > 0.9, got


@pytest.mark.parametrize("method", ["phase", "riesz"])
@pytest.mark.parametrize("noise,low", [(2.0, 0.75), (6.0, 0.6)])
def test_phase_methods_under_noise(textures, method, noise, low):
    got = ratios(textures, method, 0.2, 19, noise=noise)
    assert low <= np.mean(got) <= 1.25, got


def test_difference_of_iir_has_unit_gain_in_its_band():
    """Before: the MIT difference of low-passes passed 0.25 of a 2 Hz motion (0.09 at 0.9 Hz
    for 0.83-1 Hz), and the magnification with it."""
    t = torch.arange(600, dtype=torch.float64) / FPS
    for band in (BAND, (0.83, 1.0), (0.4, 3.0)):
        freq = float(np.sqrt(band[0] * band[1]))
        filt = make_filter("iir", band, FPS)
        y = filt.step(torch.sin(2 * np.pi * freq * t)[:, None])[:, 0].numpy()
        gain = fidelity.sinusoid_amplitude(y, FPS, freq, skip=300)
        assert gain == pytest.approx(1.0, abs=0.02)


def test_phase_with_the_causal_filters_after_their_start(textures):
    """(The causal FIR is left out: its delay of (taps - 1) / 2 frames puts the magnified
    motion out of phase with the input's own, so the sum is smaller; see the docs.)"""
    for temporal in ("butterworth", "iir"):
        got = ratios(textures[:1], "phase", 0.2, 9, temporal=temporal, skip=45, n=120)
        assert got[0] == pytest.approx(1.0, abs=0.08), (temporal, got)


@pytest.mark.parametrize("method", ["linear", "phase", "riesz"])
def test_motion_outside_the_band_stays_below_a_gain_of_1_1(textures, method):
    got = ratios(textures[:1], method, 0.2, 19, freq=6.0)
    # the ratio is over (1 + alpha): 1.1 / 20 is a gain of 1.1
    assert got[0] * 20 < 1.1, got


def grating(size: int, wavelength: float, phase: float = 0.0) -> np.ndarray:
    x = np.arange(size)
    return np.broadcast_to(0.5 + 0.3 * np.cos(2 * np.pi * x / wavelength + phase),
                           (size, size)).copy()


@pytest.mark.parametrize("wavelength", [4.0, 8.0, 16.0, 32.0, 64.0])
@pytest.mark.parametrize("lambda_c", [16.0, 40.0])
def test_linear_gain_is_the_lambda_c_rule_level_by_level(wavelength, lambda_c):
    """Each Laplacian level l gets alpha_l = lambda_l (1 + alpha) / lambda_c - 1 (Wu et al.,
    clipped to [0, alpha]); a grating's gain is 1 + sum_l alpha_l c_l, with c_l the part of
    the grating's motion term (its derivative, a sine) that level l carries. Small motion:
    linear's first-order regime."""
    size, alpha, amplitude, margin = 128, 19.0, 0.002, 16
    tex = grating(size, wavelength)
    levels = max_levels(size, size)
    sine = torch.as_tensor(grating(size, wavelength, np.pi / 2) - 0.5)[None, None]
    inner = (slice(margin, size - margin),) * 2
    ref = sine[0, 0].numpy()[inner]
    share = []
    for level in range(levels):
        onehot = [1.0 if i == level else 0.0 for i in range(levels)]
        part = weighted_collapse(sine.clone(), onehot)[0, 0].numpy()[inner]
        share.append(float((part * ref).sum() / (ref * ref).sum()))
    assert sum(share) == pytest.approx(1.0, abs=1e-3)
    weights = level_alphas(alpha, levels, lambda_c)
    expected = (1 + sum(a * c for a, c in zip(weights, share, strict=True))) / (1 + alpha)
    clip = fidelity.moving_clip(tex, 60, FPS, FREQ, amplitude)
    y = magnify(clip, FPS, method="linear", alpha=alpha, band=BAND, lambda_c=lambda_c)
    got = fidelity.achieved_ratio(tex, y, FPS, FREQ, amplitude, alpha)
    assert got == pytest.approx(expected, rel=0.02, abs=0.005)


def test_phase_with_one_finest_band_keeps_the_gain(textures):
    """``split_finest=False`` (one band up to the spectrum's corners, 1.7x faster at 1080p)
    measured 0.945 against the default's 0.951 at 0.05 px on five real textures (the
    synthetic 1/f fallback, with more of its energy in the finest band: 0.911)."""
    one = ratios(textures, "phase", 0.05, 19, split_finest=False)
    split = ratios(textures, "phase", 0.05, 19)
    assert np.mean(one) > 0.88, one
    assert np.mean(one) > np.mean(split) - 0.04, (one, split)


def test_phase_hd_recipe_is_valid_and_magnifies(textures):
    """The ``phase-hd`` recipe (4.2 fps at 1080p on two cores): 0.90-0.92 of (1 + alpha)
    on five real textures."""
    params = MagnifyParams.from_recipe("phase-hd", fps=FPS)
    assert params.method == "phase" and params.options["split_finest"] is False
    got = ratios(textures, "phase", 0.2, 19, **params.options)
    assert 0.85 < np.mean(got) < 1.0, got
