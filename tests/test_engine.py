"""Engine tests against exact ground truth (Fourier-shifted textures)."""

from __future__ import annotations

import numpy as np
import pytest
from motion import x_motion_amplitude

from napari_vmm.core.engine import StreamingMagnifier, iter_magnify, magnify
from napari_vmm.core.errors import Cancelled, VMMError
from napari_vmm.core.samples import translating_texture

FPS, FREQ = 30.0, 2.0


def clip(amplitude: float, freq: float = FREQ, n: int = 60, size: int = 96,
         wavelengths=(8, 24)) -> np.ndarray:
    return translating_texture(n, (size, size), FPS, freq, amplitude, seed=3,
                               min_wavelength=wavelengths[0], max_wavelength=wavelengths[1])


# Measured output / (1 + alpha) A on this broadband texture (alpha, A as below):
# phase 0.89-0.91; riesz 0.86-0.97 with its aperture fit (0.74-0.85 shifting each pixel along
# its own orientation only, aperture=0).
TOLERANCE = {"phase": 0.15, "riesz": 0.15}


@pytest.mark.parametrize("method", ["phase", "riesz"])
@pytest.mark.parametrize("alpha,amplitude", [(4, 0.2), (9, 0.2), (19, 0.2), (9, 0.05)])
def test_phase_methods_magnify_by_one_plus_alpha(method, alpha, amplitude):
    frames = clip(amplitude)
    out = magnify(frames, FPS, method=method, alpha=alpha, band=(1.5, 2.5), temporal="ideal")
    measured = x_motion_amplitude(out, FPS, FREQ)
    expected = (1 + alpha) * amplitude
    assert expected <= 4
    assert measured == pytest.approx(expected, rel=TOLERANCE[method])


def test_riesz_aperture_fit_recovers_2d_motion():
    """Along its own orientation only, each pixel sees the normal motion: under-magnified."""
    frames = clip(0.2)
    kw = dict(alpha=9, band=(1.5, 2.5), temporal="ideal")
    fitted = x_motion_amplitude(magnify(frames, FPS, method="riesz", **kw), FPS, FREQ)
    normal = x_motion_amplitude(magnify(frames, FPS, method="riesz", aperture=0.0, **kw),
                                FPS, FREQ)
    assert fitted == pytest.approx(2.0, rel=0.10)
    assert normal < 0.87 * fitted


@pytest.mark.parametrize("wavelength", [8, 16])
def test_riesz_is_exact_on_gratings(wavelength):
    """On a locally 1-D signal (a grating) the Riesz phase is exact: within 15%."""
    from napari_vmm.core.samples import fourier_shift

    xx = np.mgrid[:64, :64][1]
    image = 0.5 + 0.3 * np.cos(2 * np.pi * xx / wavelength)
    t = np.arange(60) / FPS
    frames = np.stack([fourier_shift(image, 0, 0.2 * np.sin(2 * np.pi * FREQ * ti))
                       for ti in t]).astype(np.float32)
    out = magnify(frames, FPS, method="riesz", alpha=4, band=(1.5, 2.5), temporal="ideal")
    measured = x_motion_amplitude(out, FPS, FREQ, max_freq=0.2)
    assert measured == pytest.approx(1.0, rel=0.15)


def test_linear_follows_lambda_c_rule():
    frames = clip(0.05, wavelengths=(16, 48))
    alpha = 4
    # lambda_c small: every level may take the full alpha, so the gain is close to 1 + alpha.
    full = magnify(frames, FPS, method="linear", alpha=alpha, band=(1.5, 2.5),
                   temporal="ideal", lambda_c=2.0)
    assert x_motion_amplitude(full, FPS, FREQ) == pytest.approx(0.05 * (1 + alpha), rel=0.15)
    # The default lambda_c = 16 attenuates short wavelengths: gain between 1 and 1 + alpha.
    attenuated = magnify(frames, FPS, method="linear", alpha=alpha, band=(1.5, 2.5),
                         temporal="ideal")
    gain = x_motion_amplitude(attenuated, FPS, FREQ) / 0.05
    assert 1.2 < gain < (1 + alpha) * 1.05


@pytest.mark.parametrize("options", [{}, {"levels": 2}, {"lambda_c": 64.0}, {"alpha": -0.5}])
def test_linear_equals_the_filtered_laplacian_pyramid(options):
    """The filter-then-pyramid form equals Wu et al.'s pyramid-then-filter, every level kept."""
    import torch

    from napari_vmm.core.magnifiers.linear import level_alphas
    from napari_vmm.core.magnifiers.pyramids import collapse, laplacian_pyramid, max_levels
    from napari_vmm.core.temporal import make_filter

    frames = clip(0.3, wavelengths=(6, 48))[:, :40, :56]
    alpha, lambda_c = options.get("alpha", 10.0), options.get("lambda_c", 16.0)
    out = magnify(frames, FPS, method="linear", alpha=alpha, band=(1.5, 2.5),
                  temporal="butterworth", **{k: v for k, v in options.items() if k != "alpha"})
    x = torch.from_numpy(frames.astype(np.float32) / 255)[:, None]
    levels = options.get("levels") or max_levels(40, 56)
    bands = laplacian_pyramid(x, levels)
    filt = make_filter("butterworth", (1.5, 2.5), FPS)
    alphas = level_alphas(alpha, levels, lambda_c)
    motion = collapse([filt.whole(b) * a for b, a in zip(bands, alphas, strict=True)])
    expected = np.clip(np.rint((x + motion)[:, 0].numpy() * 255), 0, 255)
    assert np.abs(out.astype(float) - expected).max() <= 1


@pytest.mark.parametrize("order", [1, 2, 4])
def test_streaming_butterworth_equals_scipy_in_chunks_and_blocks(monkeypatch, order):
    """The in-place SOS update, block by block and chunk by chunk, is scipy's sosfilt.

    The stream starts in the steady state of its first frame (scipy's ``sosfilt_zi``).
    """
    import torch
    from scipy.signal import sosfilt, sosfilt_zi

    from napari_vmm.core import temporal

    monkeypatch.setattr(temporal, "SOS_BLOCK", 1000)  # several blocks, one partial
    filt = temporal.make_filter("butterworth", (0.5, 3.0), FPS, order=order)
    x = torch.randn(37, 3, 1234, generator=torch.Generator().manual_seed(0))
    y = torch.cat([filt.step(x[t:t + 5]) for t in range(0, 37, 5)])
    x64 = x.numpy().astype(np.float64)
    zi = sosfilt_zi(filt.sos)[:, :, None, None] * x64[0]
    expected = sosfilt(filt.sos, x64, axis=0, zi=zi)[0]
    assert np.abs(y.numpy() - expected).max() < 1e-4


@pytest.mark.parametrize("method", ["linear", "phase", "riesz"])
def test_motion_outside_the_band_is_not_amplified(method):
    frames = clip(0.2, freq=6.0)
    out = magnify(frames, FPS, method=method, alpha=9, band=(1.5, 2.5), temporal="ideal")
    assert x_motion_amplitude(out, FPS, 6.0) / 0.2 < 1.2


@pytest.mark.parametrize("method", ["linear", "phase", "riesz"])
def test_streaming_and_whole_clip_paths_agree(method):
    frames = (clip(0.2, n=30, size=64) * 255).astype(np.uint8)
    kwargs = dict(fps=FPS, method=method, alpha=10, band=(1.0, 4.0), temporal="butterworth")
    streamed = np.empty_like(frames)
    whole = np.empty_like(frames)
    for _ in iter_magnify(frames, streamed, path="stream", chunk_size=7, **kwargs):
        pass
    for _ in iter_magnify(frames, whole, path="whole", **kwargs):
        pass
    assert np.abs(streamed.astype(int) - whole).max() <= 1
    # The StreamingMagnifier gives the same frames whatever the chunking.
    sm = StreamingMagnifier(**kwargs)
    pushed = np.concatenate([sm.push(frames[i:i + 4]) for i in range(0, len(frames), 4)])
    assert np.abs(pushed.astype(int) - streamed).max() <= 1


def test_tiles_leave_no_seam():
    frames = clip(0.2, n=30, size=96)
    kwargs = dict(fps=FPS, method="riesz", alpha=10, band=(1.5, 2.5), temporal="ideal")
    one_tile = magnify(frames, **kwargs)
    tiled = magnify(frames, tile_size=40, **kwargs)
    assert np.abs(one_tile - tiled).max() * 255 <= 1.0


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("channels", [None, 1, 3])
def test_shape_and_dtype_round_trip(dtype, channels):
    base = clip(0.2, n=12, size=32)
    if channels:
        base = np.repeat(base[..., None], channels, axis=-1)
    if np.issubdtype(dtype, np.integer):
        frames = np.rint(base * np.iinfo(dtype).max).astype(dtype)
    else:
        frames = base.astype(dtype)
    out = magnify(frames, FPS, method="riesz", alpha=5, band=(1, 4), temporal="butterworth")
    assert out.shape == frames.shape and out.dtype == frames.dtype
    same = magnify(frames, FPS, method="phase", alpha=0, band=(1, 4), temporal="ideal")
    tolerance = 1 if np.issubdtype(dtype, np.integer) else 1e-5
    assert np.abs(same.astype(np.float64) - frames).max() <= tolerance


def test_sixteen_bit_precision_survives():
    base = clip(0.2, n=10, size=32)
    frames = np.rint(1000 + base * 40).astype(np.uint16)  # a 40-level range: 8 bits would lose it
    out = magnify(frames, FPS, method="linear", alpha=0, band=(1, 4), temporal="ideal")
    assert np.array_equal(out, frames)


def test_iterator_input_streams_frames():
    frames = clip(0.2, n=20, size=32)
    gen = magnify(iter(frames), FPS, method="riesz", alpha=5, band=(1, 4),
                  temporal="butterworth")
    out = np.stack(list(gen))
    ref = magnify(frames, FPS, method="riesz", alpha=5, band=(1, 4), temporal="butterworth")
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_static_and_dynamic_modes_run():
    frames = clip(0.2, n=20, size=32)
    for mode in ("static", "dynamic"):
        out = magnify(frames, FPS, method="phase", alpha=3, mode=mode)
        assert out.shape == frames.shape
    static = magnify(frames, FPS, method="phase", alpha=3, mode="static", reference=5)
    assert np.abs(static[5] - frames[5]).max() < 1e-3  # the reference frame is not moved


def test_roi_mask_limits_magnification():
    frames = clip(0.2, n=20, size=48)
    mask = np.zeros((48, 48), np.float32)
    mask[:, :24] = 1
    out = magnify(frames, FPS, method="riesz", alpha=10, band=(1, 4), temporal="butterworth",
                  roi_mask=mask)
    assert np.array_equal(out[:, :, 24:], frames[:, :, 24:])
    assert np.abs(out[:, :, :24] - frames[:, :, :24]).max() > 0.01


def test_progress_can_cancel():
    frames = clip(0.2, n=20, size=32)
    with pytest.raises(Cancelled):
        magnify(frames, FPS, method="riesz", band=(1, 4), temporal="butterworth",
                chunk_size=2, progress=lambda done, total: done < 3)


@pytest.mark.parametrize("kwargs,match", [
    (dict(band=(1, 20)), "Nyquist"),
    (dict(band=(3, 1)), "below band high"),
    (dict(fps=0), "fps must be a positive"),
    (dict(method="nope"), "unknown method"),
    (dict(lambda_c=3, method="phase"), "unknown option"),  # a linear option
    (dict(alpha=1e9), "alpha"),
    (dict(alpha=float("nan")), "alpha"),
    (dict(temporal="gauss"), "unknown temporal filter"),
    (dict(device="tpu"), "device"),
])
def test_bad_parameters_raise_one_clear_error(kwargs, match):
    frames = clip(0.2, n=8, size=32)
    args = dict(fps=FPS, method="riesz", alpha=5, band=(1, 4), temporal="butterworth")
    args.update(kwargs)
    with pytest.raises(VMMError, match=match):
        magnify(frames, **args)


def test_bad_frames_raise_one_clear_error():
    frames = clip(0.2, n=8, size=32)
    frames[2, 3, 3] = np.nan
    with pytest.raises(VMMError, match="NaN"):
        magnify(frames, FPS, method="riesz", band=(1, 4), temporal="butterworth")
    with pytest.raises(VMMError, match="dtype"):
        magnify(frames.astype(np.int32), FPS, band=(1, 4))
    with pytest.raises(VMMError, match="shape"):
        magnify(np.zeros((4, 32, 32, 2), np.float32), FPS, band=(1, 4))


def test_streaming_refuses_whole_clip_filter():
    with pytest.raises(VMMError, match="whole clip"):
        StreamingMagnifier(FPS, method="riesz", temporal="ideal")


def test_whole_clip_on_frames_smaller_than_a_tile():
    frames = clip(0.2, n=10, size=16)
    out = magnify(frames, FPS, method="phase", band=(1, 4), temporal="ideal")
    assert out.shape == (10, 16, 16)


@pytest.mark.parametrize("method", ["linear", "riesz"])
def test_iterator_static_mode_uses_the_reference_frame(method):
    """Issue 20: ``magnify(iterator, mode="static", reference=5)`` used frame 0."""
    frames = clip(0.2, n=20, size=32)
    kw = dict(method=method, alpha=3, mode="static", reference=5, chunk_size=4)
    streamed = np.stack(list(magnify(iter(frames), FPS, **kw)))
    in_memory = magnify(frames, FPS, **kw)
    assert streamed.shape == frames.shape and streamed.dtype == frames.dtype
    assert np.abs(streamed[5] - frames[5]).max() < 1e-3  # the reference frame is not moved
    np.testing.assert_allclose(streamed, in_memory, atol=2e-3)
    frame0 = magnify(frames, FPS, **{**kw, "reference": 0})
    assert np.abs(streamed - frame0).max() > 0.01  # not frame 0's differences
    with pytest.raises(VMMError, match="reference frame 30 is outside the clip"):
        list(magnify(iter(frames), FPS, **{**kw, "reference": 30}))


def test_iterator_progress_is_called_per_chunk_and_cancels():
    """Issue 20: ``progress`` was ignored for iterators; total is None (length unknown)."""
    frames = clip(0.2, n=20, size=32)
    kw = dict(method="riesz", band=(1, 4), temporal="butterworth", chunk_size=4)
    calls = []
    out = list(magnify(iter(frames), FPS, progress=lambda d, t: calls.append((d, t)), **kw))
    assert len(out) == 20
    assert calls == [(4, None), (8, None), (12, None), (16, None), (20, None)]
    seen = []
    gen = magnify(iter(frames), FPS, progress=lambda d, t: d < 8, **kw)
    with pytest.raises(Cancelled):
        for frame in gen:
            seen.append(frame)
    assert len(seen) == 8  # the chunk that reported 8 frames is still handed out, then stop


def test_streaming_magnifier_holds_frames_until_the_reference():
    frames = clip(0.2, n=12, size=32)
    sm = StreamingMagnifier(FPS, method="linear", alpha=3, mode="static", reference=5)
    sizes = [len(sm.push(frames[t:t + 2])) for t in range(0, 12, 2)]
    assert sizes == [0, 0, 6, 2, 2, 2] and len(sm.flush()) == 0
    short = StreamingMagnifier(FPS, method="linear", alpha=3, mode="static", reference=5)
    assert len(short.push(frames[:4])) == 0
    with pytest.raises(VMMError, match=r"reference frame 5 is outside the clip \(0..3\)"):
        short.flush()
