"""The whole-clip path: the ideal filter as a projection, tiles, and files decoded once."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from napari_vmm.cli import main
from napari_vmm.core import wholeclip
from napari_vmm.core.engine import band_basis, iter_magnify, magnify, whole_signal_frames
from napari_vmm.core.samples import vibrating_target
from napari_vmm.core.spool import FrameSpool, spool_frames
from napari_vmm.core.temporal import make_filter
from napari_vmm.io import open_video, write_video


@pytest.mark.parametrize("n", [1, 2, 59, 60, 301])
@pytest.mark.parametrize("band", [(0.0, 3.0), (0.5, 3.0), (0.83, 1.0), (14.0, 14.99)])
def test_band_basis_is_the_ideal_filter(n, band):
    filt = make_filter("ideal", band, 30.0)
    basis = band_basis(filt, n)
    if basis is None:  # only when the band holds more than max(32, n // 5) vectors
        assert n > 32 * 5
        return
    assert np.allclose(basis.T @ basis, np.eye(basis.shape[1]), atol=1e-9)
    x = np.random.default_rng(1).standard_normal((n, 7))
    expected = filt.whole(torch.from_numpy(x)).numpy()
    assert np.allclose(basis @ (basis.T @ x), expected, atol=1e-9)


def test_band_basis_only_for_the_ideal_filter():
    assert band_basis(make_filter("butterworth", (0.5, 3.0), 30.0), 60) is None
    assert band_basis(make_filter("fir", (0.5, 3.0), 30.0, zero_phase=True), 60) is None
    wide = make_filter("ideal", (0.1, 14.0), 30.0)  # 2 x 84 vectors of 300: FFT is cheaper
    assert band_basis(wide, 300) is None
    assert whole_signal_frames(wide, 300, 8) == wholeclip.FFT_SIGNAL_FACTOR * 300


@pytest.fixture(scope="module")
def target():
    frames, info = vibrating_target(n_frames=40, shape=(96, 128))
    return frames, info


@pytest.mark.parametrize(("method", "tile_size"), [("linear", None), ("phase", None),
                                                   ("riesz", None), ("linear", 32)])
def test_projection_equals_the_fft_route(method, tile_size, monkeypatch):
    frames, info = vibrating_target(n_frames=24, shape=(64, 96))
    kw = dict(fps=info["fps"], method=method, alpha=20, band=(1.5, 2.5), temporal="ideal",
              tile_size=tile_size)
    fast = magnify(frames, **kw)
    monkeypatch.setattr(wholeclip, "PROJECTION_RANK", 0)  # the FFT over the whole signal
    reference = magnify(frames, **kw)
    assert np.abs(fast.astype(int) - reference.astype(int)).max() <= 1


def _tiles(frames, **kw) -> int:
    """Tiles the whole-clip path cut, from its progress total (2 passes of chunks each)."""
    out = np.empty_like(frames)
    totals = {total for _, total in iter_magnify(frames, out, **kw)}
    return totals.pop() // (2 * math.ceil(len(frames) / kw["chunk_size"]))


def test_projection_holds_less_than_the_whole_signal(target, monkeypatch):
    frames, info = target
    kw = dict(fps=info["fps"], method="linear", alpha=20, band=(1.5, 2.5), temporal="ideal",
              chunk_size=4, memory_budget=8 << 20)
    projected = _tiles(frames, **kw)
    monkeypatch.setattr(wholeclip, "PROJECTION_RANK", 0)
    assert projected == 1 < _tiles(frames, **kw)


def test_frame_spool_reads_and_writes_windows(tmp_path):
    data = np.random.default_rng(0).integers(0, 255, (7, 10, 12, 3), dtype=np.uint8)
    with FrameSpool(tmp_path / "a.raw", data.shape, data.dtype) as spool:
        spool[0:7] = data
        assert np.array_equal(spool[2:5, 3:9, 4:11], data[2:5, 3:9, 4:11])
        spool[1:3, 2:4, 5:7] = 0
        data[1:3, 2:4, 5:7] = 0
        assert np.array_equal(np.asarray(spool), data)
        assert spool.reads == 7 + 3 and spool.writes == 7 + 2
        with pytest.raises(TypeError):
            spool[0:7:2]
    assert not (tmp_path / "a.raw").exists()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    frames, info = vibrating_target(n_frames=40, shape=(128, 192))
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_video(path, frames, info["fps"], codec="h264-lossless")
    return path


def _count_opens(monkeypatch, path) -> list[str]:
    import av

    opens, real = [], av.open

    def counting(file, *args, **kwargs):
        if str(file) == str(path):
            opens.append(str(file))
        return real(file, *args, **kwargs)

    monkeypatch.setattr(av, "open", counting)
    return opens


@pytest.mark.parametrize("extra", [
    ["--method", "linear", "-O", "lambda_c=1000", "--band", "1.5", "2.5"],
    # a wide band (the FFT route) under a small budget: several tiles, each read twice
    ["--method", "linear", "--band", "0.5", "14", "--memory-budget", "0.006"],
])
def test_whole_clip_file_is_decoded_once(clip, tmp_path, monkeypatch, extra):
    out = tmp_path / "out.npy"
    opens = _count_opens(monkeypatch, clip)
    assert main(["magnify", str(clip), str(out), "--temporal", "ideal", "--alpha", "10",
                 *extra, "-q"]) == 0
    assert len(opens) <= 2  # probing the file, then decoding it once
    # the same result as the engine on the frames in memory, with the same tiles
    with open_video(clip) as src:
        frames = src[:]
    kw = dict(fps=30.0, method="linear", alpha=10, temporal="ideal",
              band=tuple(float(b) for b in extra[extra.index("--band") + 1:][:2]),
              chunk_size=8)
    if "-O" in extra:
        kw["lambda_c"] = 1000.0
    if "--memory-budget" in extra:
        kw["memory_budget"] = int(0.006 * 2**30)
        assert _tiles(frames, **kw) > 1
    assert np.array_equal(np.load(out), magnify(frames, **kw))
    assert not list(tmp_path.glob(".*"))  # the scratch spools are gone


def test_spool_stops_at_a_truncated_end(tmp_path):
    data = np.arange(40 * 6 * 8, dtype=np.uint8).reshape(40, 6, 8)

    class Truncated:  # declares 45 frames, holds 40 (as a cut video does)
        shape, dtype = (45, 6, 8), data.dtype

        def __getitem__(self, key):
            return data[key]

    with spool_frames(Truncated(), tmp_path / "in.raw", chunk=8) as spool:
        assert spool.shape == data.shape and np.array_equal(spool[:], data)


def test_file_path_streams_small_chunks(clip, tmp_path, monkeypatch):
    from napari_vmm.cli import magnify as cli_magnify
    from napari_vmm.core.engine import StreamingMagnifier

    sizes, push = [], StreamingMagnifier.push

    def recording(self, frames):
        sizes.append(int(np.prod(frames.shape[:3])))
        return push(self, frames)

    monkeypatch.setattr(StreamingMagnifier, "push", recording)
    monkeypatch.setattr(cli_magnify, "FILE_CHUNK_PIXELS", 3 * 128 * 192)
    assert main(["magnify", str(clip), str(tmp_path / "out.mp4"), "--temporal",
                 "butterworth", "--band", "1.5", "2.5", "-q"]) == 0
    assert sum(sizes) == 40 * 128 * 192 and max(sizes) == 3 * 128 * 192
