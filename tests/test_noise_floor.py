"""Noise floor, SNR and the 3x-floor flag, validated against Fourier-shifted ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from napari_vmm.core import analysis as an
from napari_vmm.core.analysis.noise import noise_density, rounding_repeats, welch_density
from napari_vmm.core.samples import smooth_texture, translating_texture

FPS = 30.0


def _noisy(frames: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, sigma, frames.shape) if sigma > 0 else 0.0
    return np.clip(np.rint(frames * 255 + noise), 0, 255).astype(np.uint8)


def _error_and_floor(amp: float, sigma: float, seeds: range) -> tuple[float, float]:
    """RMS amplitude error over seeds (textures and noise), and the RMS of the floors."""
    errs, floors = [], []
    for seed in seeds:
        frames = translating_texture(150, (40, 40), FPS, 3.1, amp, (1.0, 0.3), seed=seed)
        noise_seed = 100 + seed + int(1000 * sigma)
        (r,) = an.analyze_motion(_noisy(frames, sigma, noise_seed), "5,5,30,30", FPS).rois
        errs.append(r.peaks[0].amplitude - amp)
        floors.append(r.peaks[0].noise_floor)
    return float(np.sqrt(np.mean(np.square(errs)))), float(np.sqrt(np.mean(np.square(floors))))


@pytest.mark.parametrize("sigma", [1.0, 2.0, 4.0, 8.0])
def test_floor_predicts_the_amplitude_error(sigma):
    """With sensor noise the floor is the amplitude's standard error, within a factor of 2."""
    err, floor = _error_and_floor(0.3, sigma, range(12))
    assert 0.5 <= err / floor <= 2.0, (err, floor)


@pytest.mark.parametrize("amp", [0.05, 0.3, 1.0])
def test_floor_on_noise_free_8bit_input(amp):
    """Without noise only rounding is left, repeated every cycle: still within a factor of 2.

    (The white-noise bound alone read 1.5-5.1 times too low here.)
    """
    err, floor = _error_and_floor(amp, 0.0, range(12))
    assert floor > 0 and 0.5 <= err / floor <= 2.0, (err, floor)


def test_rounding_repeats():
    g = np.full(100, 10.0)  # 10 steps per px
    # 150 frames sweeping 0.1 px visit 1 + 0.1 * 10 / 0.5 = 3 rounding states
    assert rounding_repeats(g, 0.1, 150, 0.0) == pytest.approx(50.0)
    assert rounding_repeats(g, 0.1, 150, 1.0) == pytest.approx(1.0, abs=1e-12)  # dithered
    assert rounding_repeats(g, 100.0, 150, 0.0) == 1.0  # a long sweep: white again
    assert 1.0 < rounding_repeats(g, 0.1, 150, 0.2) < 50.0


def test_floor_grows_with_noise():
    floors = [_error_and_floor(0.3, s, range(2))[1] for s in (1.0, 4.0)]
    assert 2.5 < floors[1] / floors[0] < 5.5


def test_snr_and_flag():
    frames = translating_texture(150, (40, 40), FPS, 3.1, 0.3, (1.0, 0.0), seed=1)
    strong = an.analyze_motion(_noisy(frames, 2.0, 0), "5,5,30,30", FPS).rois[0].peaks[0]
    assert strong.snr > 100 and not strong.below_floor
    d = strong.to_dict()
    assert d["snr"] == pytest.approx(strong.amplitude / strong.noise_floor)
    assert d["below_3x_floor"] is False and d["noise_floor_px"] == strong.noise_floor
    still = translating_texture(150, (40, 40), FPS, 3.1, 0.0, seed=1)
    r = an.analyze_motion(_noisy(still, 8.0, 0), "5,5,30,30", FPS).rois[0]
    # Peaks of pure noise are the spectrum's maxima, about 3 floors; none is far above.
    snr = [p.snr for p in r.peaks]
    assert np.median(snr) < 4 and max(snr) < 10 and any(p.below_floor for p in r.peaks)
    assert "BELOW 3x FLOOR" in an.format_report(
        an.MotionAnalysis([r], FPS, 150))


def test_leakage_of_a_strong_peak_is_not_noise():
    """A clean 2 px sinusoid: its window leakage must not raise the floor near it."""
    t = np.arange(300) / FPS
    x = np.stack([2.0 * np.sin(2 * np.pi * 3.1 * t), np.zeros_like(t)])
    x += np.random.default_rng(0).normal(0, 1e-3, x.shape)
    _, _, peaks = an.find_peaks(x, FPS)
    from napari_vmm.core.analysis.noise import peak_floors

    peak_floors(x, FPS, peaks)
    expected = 1e-3 * np.sqrt(2 / 300)  # white noise of 1e-3 px per frame
    assert 0.5 < peaks[0].noise_floor / expected < 2.0


def test_noise_density_ignores_peaks():
    rng = np.random.default_rng(1)
    t = np.arange(2048) / 100.0
    x = rng.normal(0, 0.01, t.size) + 0.5 * np.sin(2 * np.pi * 12.0 * t)
    freqs, psd, _, n_avg = welch_density(x, 100.0, 256)
    dens = noise_density(freqs, psd, [12.0], n_avg)
    white = 2 * 0.01**2 / 100.0
    assert np.all(np.abs(dens[0] / white - 1) < 0.35)


def test_static_reference_region_sets_a_floor():
    """A static textured region beside the ROI: its noise, scaled by texture, is a floor."""
    rng = np.random.default_rng(4)
    n, h = 150, 40
    moving = translating_texture(n, (h, 40), FPS, 3.1, 0.3, (1.0, 0.0), seed=3)
    static = 0.1 + 0.8 * smooth_texture((h, 40), rng)
    frames = np.concatenate([moving, np.broadcast_to(static, (n, h, 40)),
                             np.full((n, h, 10), 0.5)], axis=2)
    clip = _noisy(frames, 3.0, 9)
    plain = an.analyze_motion(clip, "5,5,30,30", FPS).rois[0].peaks[0]
    res = an.analyze_motion(clip, "5,5,30,30", FPS, noise_reference="45,5,30,30")
    ref = res.rois[0].peaks[0]
    assert res.noise_reference == "noise reference" or res.noise_reference
    assert ref.noise_floor >= plain.noise_floor
    assert ref.noise_floor / plain.noise_floor < 2.0  # same camera noise, similar texture
    assert res.to_dict()["noise_reference"]


def test_floor_line_is_drawn(tmp_path):
    pytest.importorskip("matplotlib")
    frames = translating_texture(90, (40, 40), FPS, 3.1, 0.3, seed=1)
    res = an.analyze_motion(_noisy(frames, 2.0, 0), "5,5,30,30", FPS)
    fig = an.plot_analysis(res, tmp_path / "p.png")
    labels = [ln.get_label() for ax in fig.axes for ln in ax.get_lines()]
    assert any("noise floor" in lab for lab in labels)
    line = res.rois[0].noise_line
    assert line.shape == res.rois[0].freqs.shape and np.all(line > 0)
    # The line is the level of the spectrum's grass: the median of the off-peak bins.
    off = np.abs(res.rois[0].freqs - 3.1) > 1.5
    ratio = np.median(res.rois[0].spectrum[off]) / np.median(line[off])
    assert 0.5 < ratio < 1.5
