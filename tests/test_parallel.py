"""Dask scale-out (napari_vmm.scale, core.plan, io.zarr; vmm magnify --cluster/--out-dir/.zarr).

Equality with the in-memory path is checked on a LocalCluster of 2 worker processes with one
thread each; frames are tiny so the module runs in well under two minutes.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")

from napari_vmm import magnify, scale  # noqa: E402
from napari_vmm.cli import main  # noqa: E402
from napari_vmm.core import plan  # noqa: E402
from napari_vmm.core.errors import VMMError  # noqa: E402
from napari_vmm.core.frames import from_float  # noqa: E402
from napari_vmm.core.samples import translating_texture  # noqa: E402
from napari_vmm.io import video as io_video  # noqa: E402
from napari_vmm.io import zarr as zarr_io  # noqa: E402

FPS = 30.0
# Linear EVM with 2 levels: a compact spatial support (halo 2^2 x 2 x 2 = 16 px).
LINEAR = dict(method="linear", alpha=10, levels=2)


def clip(n: int = 32, size: int = 64, seed: int = 3, freq: float = 4.0) -> np.ndarray:
    frames = translating_texture(n, (size, size), FPS, freq, 0.3, seed=seed,
                                 min_wavelength=8, max_wavelength=24)
    return from_float(np.asarray(frames, np.float32), np.dtype(np.uint8))


def max_diff(a, b) -> int:
    return int(np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int)).max())


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                       dashboard_address=None, silence_logs=40)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_dask_in_dask_out_lazy_with_same_chunks():
    frames = clip(16)
    x = da.from_array(frames, chunks=(4, 64, 64))
    y = magnify(x, FPS, band=(3, 6), temporal="butterworth", **LINEAR)
    assert isinstance(y, da.Array)
    assert y.chunks == x.chunks and y.dtype == x.dtype
    z = magnify(x, FPS, band=(3, 6), temporal="ideal", **LINEAR)
    assert isinstance(z, da.Array) and z.chunks == x.chunks


def test_whole_clip_on_cluster_equals_in_memory(client):
    frames = clip(16, 64)
    ref = magnify(frames, FPS, band=(3, 6), temporal="ideal", **LINEAR)
    x = da.from_array(frames, chunks=(1, 64, 64))  # one frame per chunk: rechunked once
    lazy = scale.magnify_dask(x, FPS, band=(3, 6), temporal="ideal", tile_size=32,
                                 keep_chunks=False, **LINEAR)
    assert lazy.numblocks[1] * lazy.numblocks[2] > 1  # really tiled
    out = magnify(x, FPS, band=(3, 6), temporal="ideal", tile_size=32, **LINEAR)
    assert out.chunks == x.chunks
    result = client.compute(out).result()
    assert max_diff(result, ref) <= 1
    assert max_diff(ref, frames) > 10  # something was magnified


def test_causal_on_cluster_equals_in_memory(client):
    frames = clip(72, 48)
    kw = dict(band=(3, 6), temporal="butterworth", **LINEAR)
    warm = plan.warmup_frames(FPS, "butterworth", (3, 6))
    assert 0 < warm < 48  # so that later segments really start from a warm-up
    ref = magnify(frames, FPS, **kw)
    x = da.from_array(frames, chunks=(24, 48, 48))
    out = scale.magnify_dask(x, FPS, segment_frames=24, **kw)
    assert out.chunks == x.chunks
    result = client.compute(out).result()
    assert max_diff(result, ref) <= 1
    # Too short a warm-up is visible: the default is not arbitrary.
    short = scale.magnify_dask(x, FPS, segment_frames=24, warmup=4, **kw)
    assert max_diff(client.compute(short).result(), ref) > 1


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_static_and_dynamic_segments_are_exact(mode):
    frames = clip(32, 48)
    kw = dict(mode=mode, reference=7, **LINEAR)
    ref = magnify(frames, FPS, **kw)
    x = da.from_array(frames, chunks=(8, 48, 48))
    out = scale.magnify_dask(x, FPS, segment_frames=16, **kw)
    assert max_diff(out.compute(scheduler="sync"), ref) == 0


def test_no_seams_between_tiles():
    frames = clip(12, 64)
    x = da.from_array(frames, chunks=(12, 64, 64))
    for temporal in ("ideal", "butterworth"):
        kw = dict(band=(3, 6), temporal=temporal, **LINEAR)
        untiled = scale.magnify_dask(x, FPS, tile_size=64, **kw).compute(scheduler="sync")
        tiled = scale.magnify_dask(x, FPS, tile_size=32, keep_chunks=False, **kw)
        assert tiled.numblocks[1] > 1
        assert max_diff(tiled.compute(scheduler="sync"), untiled) <= 1, temporal


def _tiled_vs_whole(frames, tile, **kw):
    """(in-memory whole-frame result, dask result in tiles of ``tile`` px, dask array)."""
    kw = dict(band=(3, 6), temporal="ideal", alpha=10, **kw)
    whole = magnify(frames, FPS, **kw)
    lazy = scale.magnify_dask(da.from_array(frames, chunks=(frames.shape[0], 32, 32)), FPS,
                                 tile_size=tile, keep_chunks=False, **kw)
    return whole, lazy.compute(scheduler="sync"), lazy


def test_riesz_tiles_have_no_seams():
    """The local Riesz kernel and a halo covering it: tiles give the whole-frame result."""
    frames = clip(8, 128)
    whole, tiled, lazy = _tiled_vs_whole(frames, 32, method="riesz", levels=2)
    assert lazy.numblocks[1:] == (3, 3)  # really tiled, with 36 px halos
    assert max_diff(tiled, whole) <= 1
    assert max_diff(whole, frames) > 20  # something was magnified
    # The exact FFT Riesz transform (radius=0) depends on the whole frame: seams.
    whole0, tiled0, _ = _tiled_vs_whole(frames, 32, method="riesz", levels=2, radius=0)
    assert max_diff(tiled0, whole0) > 1


def test_phase_tiles_have_no_seams():
    """Phase: same depth as the whole frame, periodic halo at the frame edges, and a halo
    of 4 x 2^levels px plus the smoothing. Its Fourier-domain filters are not compactly
    supported, so a few pixels differ by up to 3 grey levels (a quarter of an input grey
    level of noise changes as many pixels of the in-memory result by as much)."""
    frames = clip(8, 96)
    whole, tiled, lazy = _tiled_vs_whole(frames, 32, method="phase", levels=2)
    assert lazy.numblocks[1:] == (3, 3)
    diff = np.abs(tiled.astype(int) - whole.astype(int))
    # measured: 222 of 73,728 samples differ by 2-3 (135 with the centred annulus boxes of
    # the earlier pyramid layout); about 20 % differ by 1 either way
    assert diff.max() <= 3 and (diff > 1).mean() < 4e-3, (diff.max(), (diff > 1).sum())
    # No seam: the columns and rows along the tile edges are no worse than the others.
    per_col = diff.mean(axis=(0, 1))
    per_row = diff.mean(axis=(0, 2))
    for edge in (31, 32, 63, 64):
        assert per_col[edge] < 0.5 and per_row[edge] < 0.5
    assert max_diff(whole, frames) > 20


@pytest.mark.parametrize("method", ["riesz", "phase", "linear"])
def test_automatic_depth_is_the_whole_frames(method):
    """levels=0 is resolved for the full frame, and the halo is that pyramid's support."""
    from napari_vmm.core.magnifiers.linear import level_alphas
    from napari_vmm.core.magnifiers.phase import auto_depth
    from napari_vmm.core.magnifiers.pyramids import max_levels

    est = plan.estimate_task_memory((16, 128, 128), np.uint8, FPS, method=method,
                                        temporal="ideal", band=(3, 6), tile_size=32)
    depth = auto_depth(128, 128) if method == "phase" else max_levels(128, 128)
    if method == "linear":  # stops after the first full-alpha level (see LinearMagnifier)
        depth = len(level_alphas(20.0, depth, 16.0)[:3])
    pinned = plan.estimate_task_memory((16, 128, 128), np.uint8, FPS, method=method,
                                           temporal="ideal", band=(3, 6), tile_size=32,
                                           levels=depth)
    assert est.halo == pinned.halo >= 4 * 2**depth
    frames = clip(4, 64)
    whole, tiled, lazy = _tiled_vs_whole(frames, 32, method=method)
    assert lazy.numblocks[1:] == (1, 1)  # a window with that halo spans the frame
    assert max_diff(tiled, whole) == 0


def test_automatic_depth_shrinks_to_fit_the_budget():
    """levels=0 and a budget too small for the frame: one shallower depth for all tiles."""
    frames = clip(8, 192)
    kw = dict(method="riesz", temporal="ideal", band=(3, 6))
    full = plan.estimate_task_memory(frames.shape, np.uint8, FPS, **kw)
    assert full.window == (192, 192) and full.halo == 0  # the frame's depth: not split
    budget = full.bytes // 2
    small = plan.estimate_task_memory(frames.shape, np.uint8, FPS, memory_budget=budget,
                                          **kw)
    assert small.bytes <= budget and small.window[0] < 192 and small.halo > 0
    x = da.from_array(frames, chunks=(8, 192, 192))
    lazy = scale.magnify_dask(x, FPS, alpha=10, memory_budget=budget, keep_chunks=False,
                                 **kw)
    assert lazy.numblocks[1] > 1
    out = lazy.compute(scheduler="sync")
    diffs = [max_diff(out, magnify(frames, FPS, alpha=10, levels=levels, **kw))
             for levels in range(2, 7)]
    assert min(diffs) <= 1  # the whole frame at the depth the tiles share
    assert max(diffs) > 1


def test_engine_tiles_build_the_whole_frames_pyramid():
    """The engine's own tiles (a clip over its memory budget) pin the depth too."""
    frames = clip(8, 128)
    for kw in (dict(method="riesz", levels=2), dict(method="linear", levels=3)):
        kw = dict(band=(3, 6), temporal="ideal", alpha=10, **kw)
        assert max_diff(magnify(frames, FPS, tile_size=32, **kw), magnify(frames, FPS, **kw)) <= 1


def test_roi_mask_on_tiles_matches_in_memory():
    frames = clip(12, 64)
    mask = np.zeros((64, 64), np.float32)
    mask[10:40, 5:30] = 1
    kw = dict(band=(3, 6), temporal="ideal", roi_mask=mask, **LINEAR)
    ref = magnify(frames, FPS, **kw)
    out = magnify(da.from_array(frames, chunks=(12, 32, 32)), FPS, tile_size=32, **kw)
    result = out.compute(scheduler="sync")
    assert max_diff(result, ref) <= 1
    assert max_diff(result[:, 50:, 50:], frames[:, 50:, 50:]) == 0


def test_warmup_frames():
    assert plan.warmup_frames(FPS, "fir", (2, 5), taps=9) == 8
    assert plan.warmup_frames(FPS, "butterworth", (2, 5), mode="dynamic") == 1
    assert plan.warmup_frames(FPS, "butterworth", (2, 5), mode="static") == 0
    fast = plan.warmup_frames(FPS, "butterworth", (3, 6))
    slow = plan.warmup_frames(FPS, "butterworth", (0.5, 1))
    assert slow > 3 * fast  # the warm-up follows the band's time constant
    assert plan.warmup_frames(FPS, "iir", (0.5, 3)) > plan.warmup_frames(
        FPS, "iir", (2, 3))
    with pytest.raises(VMMError, match="whole clip"):
        plan.warmup_frames(FPS, "ideal", (0.5, 3))


def test_estimate_task_memory():
    est = plan.estimate_task_memory((300, 256, 256), np.uint8, FPS, method="linear",
                                        temporal="ideal", band=(1, 3), levels=3)
    longer = plan.estimate_task_memory((600, 256, 256), np.uint8, FPS, method="linear",
                                           temporal="ideal", band=(1, 3), levels=3)
    assert est.path == "whole" and longer.bytes > 1.9 * est.bytes  # all T per task
    small = plan.estimate_task_memory((300, 256, 256), np.uint8, FPS, method="linear",
                                          temporal="ideal", band=(1, 3), levels=3,
                                          memory_budget=est.bytes // 3)
    assert small.bytes <= est.bytes // 3 and small.window[0] < 256 and small.halo == 32
    seg = plan.estimate_task_memory((3000, 256, 256), np.uint8, FPS, method="linear",
                                        temporal="butterworth", band=(1, 3), levels=3)
    seg2 = plan.estimate_task_memory((30000, 256, 256), np.uint8, FPS, method="linear",
                                         temporal="butterworth", band=(1, 3), levels=3)
    assert seg.path == "segments" and seg.bytes == seg2.bytes  # independent of the length
    assert seg.warmup == plan.warmup_frames(FPS, "butterworth", (1, 3))
    assert "MiB per task" in str(seg)


def test_zarr_and_ome_zarr_inputs(tmp_path):
    frames = clip(8)
    z = zarr.create_array(str(tmp_path / "a.zarr"), shape=frames.shape, chunks=(1, 64, 64),
                          dtype=frames.dtype)
    z[:] = frames
    z.attrs["fps"] = 25.0
    arr, attrs = zarr_io.open_zarr(tmp_path / "a.zarr")
    assert attrs["fps"] == 25.0 and np.array_equal(arr.compute(), frames)
    # OME-Zarr (t, c, y, x) with a time scale of 0.04 s.
    g = zarr.open_group(str(tmp_path / "b.ome.zarr"), mode="w")
    img = g.create_array("0", shape=(8, 1, 64, 64), dtype=frames.dtype, chunks=(1, 1, 64, 64))
    img[:] = frames[:, None]
    g.attrs["multiscales"] = [{
        "axes": [{"name": "t", "type": "time", "unit": "second"},
                 {"name": "c", "type": "channel"}, {"name": "y", "type": "space"},
                 {"name": "x", "type": "space"}],
        "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [0.04, 1, 1, 1]}]}]}]
    arr, attrs = zarr_io.open_zarr(tmp_path / "b.ome.zarr")
    assert arr.shape == frames.shape and attrs["fps"] == pytest.approx(25.0)
    with pytest.raises(VMMError, match="no such"):
        zarr_io.open_zarr(tmp_path / "missing.zarr")


def test_several_files_through_one_cluster(client, tmp_path, capsys):
    address = client.scheduler.address
    inputs = tmp_path / "in"
    inputs.mkdir()
    clips = {f"c{i}.npy": clip(12, 48, seed=i) for i in range(3)}
    for name, frames in clips.items():
        np.save(inputs / name, frames)
    common = ["--fps", "30", "--method", "linear", "-O", "levels=2", "--band", "3", "6", "-q"]
    # A folder, 3 files >= 2 workers: one task per file on the cluster.
    rc = main(["magnify", str(inputs), "--out-dir", str(tmp_path / "out"),
               "--cluster", address, *common])
    assert rc == 0
    for name, frames in clips.items():
        ref = magnify(frames, FPS, band=(3, 6), temporal="butterworth", **LINEAR)
        assert max_diff(np.load(tmp_path / "out" / name), ref) == 0
    # One file split across the cluster into a Zarr store (whole-clip tiles).
    rc = main(["magnify", str(inputs / "c0.npy"), str(tmp_path / "c0.zarr"), "--cluster",
               address, "--temporal", "ideal", *common])
    assert rc == 0
    ref = magnify(clips["c0.npy"], FPS, band=(3, 6), temporal="ideal", **LINEAR)
    stored = zarr.open_array(str(tmp_path / "c0.zarr"), mode="r")
    assert stored.attrs["fps"] == 30.0 and max_diff(stored[:], ref) <= 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no scratch left
    capsys.readouterr()


def test_cli_errors(tmp_path, capsys):
    np.save(tmp_path / "a.npy", clip(8))
    np.save(tmp_path / "b.npy", clip(8))
    assert main(["magnify", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"),
                 str(tmp_path / "c.npy"), "--fps", "30"]) == 1
    assert "--out-dir" in capsys.readouterr().err
    assert main(["magnify", str(tmp_path), str(tmp_path / "x.npy"), "--fps", "30"]) == 1
    assert "folder" in capsys.readouterr().err
    assert main(["magnify", str(tmp_path / "a.npy"), str(tmp_path / "o.npy"), "--fps", "30",
                 "--cluster", "nowhere"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --cluster must be local:N") and "Traceback" not in err


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_video_keyframe_segments_equal_one_pass(client, tmp_path):
    """Segments cut at keyframes, joined with -c copy, audio muxed once: same frames."""
    from napari_vmm.io import open_video, write_video

    frames = np.repeat(clip(64, 32)[..., None], 3, axis=-1)
    write_video(tmp_path / "src.mkv", frames, FPS)
    src = tmp_path / "v.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(tmp_path / "src.mkv"), "-f",
                    "lavfi", "-i", "sine=frequency=440:duration=2.2", "-c:v", "libx264",
                    "-g", "16", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(src)],
                   check=True)
    index = io_video.index_video(src)
    assert index.keyframes[:4] == [0, 16, 32, 48]
    assert np.array_equal(io_video.read_video_frames(src, 20, 23, index),
                          np.asarray(open_video(src)[20:23]))
    kw = dict(method="linear", alpha=10, band=(3, 6), temporal="fir", taps=9, levels=3)
    n = scale.magnify_video_segments(src, tmp_path / "seg.mkv", client=client,
                                        segment_frames=16, **kw)
    assert n == 4
    ref = magnify(np.asarray(open_video(src)), FPS, **kw)
    with open_video(tmp_path / "seg.mkv") as out:
        assert out.has_audio and out.shape == ref.shape
        assert max_diff(np.asarray(out), ref) == 0  # FIR warm-up (taps - 1) is exact
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type",
                            "-of", "csv=p=0", str(tmp_path / "seg.mkv")],
                           capture_output=True, text=True, check=True).stdout.split()
    assert probe.count("audio") == 1 and probe.count("video") == 1


def _nap(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


def test_progress_from_futures_and_cancel(client):
    import dask

    from napari_vmm.core.errors import Cancelled

    seen = []
    tasks = [dask.delayed(_nap, pure=False)(0.01) for _ in range(4)]
    assert scale.run_tasks(tasks, client, lambda d, t: seen.append((d, t))) == [0.01] * 4
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    slow = [dask.delayed(_nap, pure=False)(0.01)] + [
        dask.delayed(_nap, pure=False)(5) for _ in range(3)]
    with pytest.raises(Cancelled):
        scale.run_tasks(slow, client, lambda d, t: False)  # stop at the first future
    import time

    deadline = time.time() + 10
    while client.processing() and any(client.processing().values()) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(client.processing().values())  # the pending tasks were cancelled


def test_iter_compute_to_array_and_zarr(client, tmp_path):
    """Block-by-block compute (the napari widget's path): progress, array or Zarr output."""
    frames = clip(16, 64)
    kw = dict(band=(3, 6), temporal="ideal", **LINEAR)
    ref = magnify(frames, FPS, **kw)
    lazy = scale.magnify_dask(da.from_array(frames, chunks=(4, 64, 64)), FPS, tile_size=32,
                                 keep_chunks=False, **kw)
    out = np.zeros_like(frames)
    steps = list(scale.iter_compute(lazy, out, max_workers=2))  # local threads
    assert steps[-1] == (lazy.npartitions, lazy.npartitions) and len(steps) > 1
    assert max_diff(out, ref) <= 1
    steps = list(scale.iter_compute(lazy, zarr_path=tmp_path / "o.zarr", fps=FPS,
                                       client=client))  # on the cluster, stored by the tasks
    stored, attrs = zarr_io.open_zarr(tmp_path / "o.zarr")
    assert attrs["fps"] == FPS and max_diff(stored.compute(), ref) <= 1
    # Closing the generator (cancel) leaves no output and no scratch folder.
    gen = scale.iter_compute(lazy, zarr_path=tmp_path / "c.zarr", max_workers=1)
    next(gen)
    gen.close()
    assert not (tmp_path / "c.zarr").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(VMMError, match="exactly one"):
        next(scale.iter_compute(lazy))


def test_scheduler_setting_and_memory_summary():
    assert scale.check_scheduler("") is None and scale.check_scheduler(None) is None
    assert scale.check_scheduler(" local:2 ") == "local:2"
    assert scale.check_scheduler("tcp://10.0.0.1:8786") == "tcp://10.0.0.1:8786"
    for bad in ("local:0", "local:x", "10.0.0.1:8786", "http://h:1"):
        with pytest.raises(VMMError, match="Dask scheduler"):
            scale.check_scheduler(bad)
    text = plan.task_memory_summary((300, 256, 256), np.uint8, fps=FPS, method="linear",
                                        temporal="ideal", band=(1, 3), levels=3, alpha=10)
    assert "MiB per task" in text and "whole" in text
    bad = plan.task_memory_summary((300, 256, 256), np.uint8, fps=FPS, method="linear",
                                       band=(1, 20))
    assert bad.startswith("cannot run:") and "Nyquist" in bad


@pytest.mark.parametrize("temporal", ["butterworth", "fir", "iir"])
def test_filter_state_resumes_in_another_filter(temporal):
    """get_state/set_state: what a segment task needs to continue a stream elsewhere."""
    import torch

    from napari_vmm.core.temporal import make_filter

    x = torch.randn(40, 5, dtype=torch.float64)
    one = make_filter(temporal, (2, 5), FPS, taps=9)
    ref = one.step(x)
    first = make_filter(temporal, (2, 5), FPS, taps=9)
    assert first.get_state() is None
    head = first.step(x[:17])
    second = make_filter(temporal, (2, 5), FPS, taps=9)
    second.set_state(first.get_state())
    assert torch.allclose(torch.cat([head, second.step(x[17:])]), ref)
    second.set_state(None)
    assert second.get_state() is None


def test_learned_tiles_have_no_seams():
    """A learned model's 64 px halo covers its receptive field: tiles match the whole frame."""
    frames = clip(4, 160)
    whole, tiled, lazy = _tiled_vs_whole(frames, 64, method="realtime")
    assert lazy.numblocks[1:] == (2, 2)  # 80 px tiles: 160 is not split into 64 + 64 + 32
    assert max_diff(tiled, whole) <= 1
