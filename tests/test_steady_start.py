"""Causal filters start in a steady state: no magnified start-up transient (issue 24, item 2).

Before, the causal Butterworth started from zero delays: its step response to the first frame
was magnified, and `linear` at alpha = 100 opened with black/white flashing; the windowed-sinc
FIR leaked 0.5 % of the frame's grey level into the band.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_vmm.core.engine import StreamingMagnifier, magnify
from napari_vmm.core.frames import from_float
from napari_vmm.core.samples import translating_texture
from napari_vmm.core.temporal import make_filter

FPS = 30.0
PULSE = (0.83, 1.0)  # Wu et al.'s face pulse band, with alpha = 100


def static_clip(n: int = 40, size: int = 48, colour: bool = False) -> np.ndarray:
    frames = translating_texture(n, (size, size), FPS, 1.0, 0.0, seed=5)
    if colour:
        frames = np.stack([frames, 0.8 * frames + 0.1, 1 - frames], axis=-1)
    return from_float(frames, np.dtype(np.uint8))


def max_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(int) - b.astype(int)).max())


@pytest.mark.parametrize("temporal", ["butterworth", "fir", "iir"])
@pytest.mark.parametrize("method", ["linear", "phase", "riesz"])
def test_static_clip_streams_through_unchanged_at_alpha_100(method, temporal):
    frames = static_clip(colour=method == "linear")
    sm = StreamingMagnifier(FPS, method=method, alpha=100, band=PULSE, temporal=temporal)
    out = np.concatenate([sm.push(frames[t:t + 7]) for t in range(0, len(frames), 7)])
    assert max_diff(out, frames) <= 1


@pytest.mark.parametrize("order", [1, 2, 4])
def test_butterworth_of_a_constant_is_zero_from_the_first_frame(order):
    import torch

    filt = make_filter("butterworth", PULSE, FPS, order=order)
    x = torch.full((50, 3), 0.7, dtype=torch.float64)
    assert filt.step(x).abs().max() < 1e-9
    assert make_filter("butterworth", PULSE, FPS, order=order).whole(x).abs().max() < 1e-9


def test_fir_has_no_gain_at_dc_and_unit_gain_in_the_band():
    from scipy.signal import freqz

    for band in (PULSE, (1.5, 2.5), (0.5, 3.0)):
        filt = make_filter("fir", band, FPS)
        _, h = freqz(filt.taps, worN=[0.0, sum(band) / 2], fs=FPS)
        assert abs(h[0]) < 1e-9
        assert abs(h[1]) == pytest.approx(1.0, abs=1e-3)


def test_moving_clip_does_not_flash_at_the_start():
    """No frame differs from its input by more than the magnified true motion does."""
    amplitude, alpha = 0.01, 100

    def moving(a: float) -> np.ndarray:
        return from_float(translating_texture(150, (48, 48), FPS, 0.9, a, seed=2),
                          np.dtype(np.uint8))

    frames = moving(amplitude)
    out = magnify(frames, FPS, method="linear", alpha=alpha, band=PULSE, temporal="butterworth")
    explained = max_diff(moving((1 + alpha) * amplitude), frames)  # the true motion, magnified
    dev = np.abs(out.astype(int) - frames.astype(int)).max(axis=(1, 2))
    assert dev.max() <= explained + 2  # before: 181-229 grey levels from frame 6 on (27 here)


def test_dask_segments_start_steady_too():
    da = pytest.importorskip("dask.array")
    from napari_vmm.scale import magnify_dask

    frames = static_clip(n=48)
    kw = dict(method="linear", alpha=100, band=PULSE, temporal="butterworth", levels=2)
    x = da.from_array(frames, chunks=(16, 48, 48))
    out = magnify_dask(x, FPS, segment_frames=16, warmup=8, **kw).compute(scheduler="sync")
    assert max_diff(out, frames) <= 1
