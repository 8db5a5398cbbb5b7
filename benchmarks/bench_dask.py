"""Dask scale-out: speed-up from 1 to 2 worker processes, and peak memory per worker.

Run:  .venv/bin/python benchmarks/bench_dask.py [--quick] [--json FILE]

1. Speed-up: the same lazy job (``magnify_dask``) computed on a LocalCluster of 1 worker
   process, then of 2 (one thread each, torch limited to one thread per worker), for a
   whole-clip filter (``ideal``: full-T tiles) and a causal one (``butterworth``: time
   segments with warm-up). Reported as the ratio of wall times measured in the same run.
   The workers are warmed up (imports, first task) before timing.
2. Memory: for each path, a fresh 1-worker cluster runs the tasks one output block at a time;
   the worker's resident memory, sampled every 2 ms, peaks this much above its warmed-up
   baseline, compared with :func:`estimate_task_memory` (the formula in docs/dask.md).

The machine is shared, so absolute times are noisy; the ratios are the result.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


def make_clip(n: int, size: int) -> np.ndarray:
    from napari_vmm.core.frames import from_float
    from napari_vmm.core.samples import translating_texture

    frames = translating_texture(n, (size, size), 30.0, 4.0, 0.3, seed=1,
                                 min_wavelength=8, max_wavelength=32)
    return from_float(np.asarray(frames, np.float32), np.dtype(np.uint8))


def _worker_setup() -> int:
    import resource

    import torch

    import napari_vmm.scale.graphs  # noqa: F401

    torch.set_num_threads(1)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _current_rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _start_sampler(dask_worker) -> int:
    """Sample the worker's resident memory every 2 ms (ru_maxrss keeps the import peak)."""
    import threading

    state = {"peak": _current_rss(), "stop": threading.Event()}
    dask_worker._vmm_rss = state

    def loop() -> None:
        while not state["stop"].wait(0.002):
            state["peak"] = max(state["peak"], _current_rss())

    threading.Thread(target=loop, daemon=True).start()
    return state["peak"]


def _stop_sampler(dask_worker) -> int:
    state = dask_worker._vmm_rss
    state["stop"].set()
    return state["peak"]


def _cluster(workers: int):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)
    client = Client(cluster)
    client.run(_worker_setup)
    return cluster, client


def job(frames: np.ndarray, kind: str, tile: int, segment: int, store: str, method: str):
    """The lazy job, reading its input from a Zarr store (tasks read what they need)."""
    import dask.array as da

    n, size = frames.shape[0], frames.shape[1]
    chunks = (n, size, size) if kind == "whole" else (segment, size, size)
    path = os.path.join(store, f"{kind}-{n}-{size}.zarr")
    if not os.path.exists(path):
        import zarr

        zarr.create_array(path, shape=frames.shape, chunks=chunks, dtype=frames.dtype)[:] = frames
    x = da.from_zarr(path)
    from napari_vmm.scale import magnify_dask

    if kind == "whole":
        return magnify_dask(x, 30.0, method=method, alpha=10, band=(3, 6),
                            temporal="ideal", tile_size=tile, keep_chunks=False, levels=3)
    return magnify_dask(x, 30.0, method=method, alpha=10, band=(3, 6),
                        temporal="butterworth", segment_frames=segment, keep_chunks=False,
                        levels=3)


def estimate(frames: np.ndarray, kind: str, tile: int, segment: int, method: str):
    from napari_vmm.core.plan import estimate_task_memory

    return estimate_task_memory(frames.shape, frames.dtype, 30.0, method=method,
                                temporal="ideal" if kind == "whole" else "butterworth",
                                band=(3, 6), tile_size=tile if kind == "whole" else None,
                                segment_frames=segment, levels=3)


def timed(client, arr) -> float:
    from distributed import wait

    t0 = time.perf_counter()
    fut = client.compute(arr)
    wait(fut)
    fut.result()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller clip")
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--method", default="riesz",
                        help="magnifier (default riesz: heavy enough that the tasks, not the "
                        "scheduling, dominate)")
    args = parser.parse_args()
    n, size = (64, 128) if args.quick else (96, 256)
    tile, segment = size // 2, 16 if args.quick else 48
    warm = make_clip(8, 64)
    results: dict = {"method": args.method, "tile": tile, "segment": segment}
    store = tempfile.mkdtemp(prefix="vmm-bench-dask-")
    try:
        for kind in ("whole", "segments"):
            # Four tasks each: 2x2 full-T tiles, or 4 time segments (3 with a warm-up).
            frames = make_clip(n if kind == "whole" else 4 * segment, size)
            results[kind] = run_kind(kind, frames, warm, tile, segment, store, args.method)
            results[kind]["clip"] = list(frames.shape)
    finally:
        shutil.rmtree(store, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    print(json.dumps(results))


def run_kind(kind: str, frames: np.ndarray, warm: np.ndarray, tile: int, segment: int,
             store: str, method: str) -> dict:
    times = {}
    for workers in (1, 2):
        cluster, client = _cluster(workers)
        try:
            # Warm up every worker (first-task costs) on a tiny clip, then time.
            timed(client, job(warm, kind, 32, 8, store, method))
            times[workers] = min(timed(client, job(frames, kind, tile, segment, store, method))
                                 for _ in range(2))
        finally:
            client.close()
            cluster.close()
    est = estimate(frames, kind, tile, segment, method)
    cluster, client = _cluster(1)
    try:
        timed(client, job(warm, kind, 32, 8, store, method))
        tasks = job(frames, kind, tile, segment, store, method)
        base = client.run(_start_sampler)
        # One output block at a time, gathered and dropped: the peak is one task's.
        for index in np.ndindex(*tasks.numblocks):
            timed(client, tasks.blocks[index])
        peak = client.run(_stop_sampler)
        growth = max(peak[w] - base[w] for w in peak)
    finally:
        client.close()
        cluster.close()
    blocks = int(np.prod(tasks.numblocks))
    r = {
        "seconds_1_worker": round(times[1], 2), "seconds_2_workers": round(times[2], 2),
        "speedup_1_to_2": round(times[1] / times[2], 2), "tasks": blocks,
        "formula_bytes": est.bytes, "peak_growth_bytes": int(growth),
        "measured_over_formula": round(growth / est.bytes, 2), "task": str(est),
    }
    print(f"{kind:9s} {blocks:3d} tasks  1 worker {r['seconds_1_worker']:7.2f} s  "
          f"2 workers {r['seconds_2_workers']:7.2f} s  speed-up x{r['speedup_1_to_2']:.2f}"
          f"  | memory/task: formula {est.bytes / 2**20:6.1f} MiB, worker peak growth "
          f"{growth / 2**20:6.1f} MiB (x{r['measured_over_formula']:.2f})", flush=True)
    return r


if __name__ == "__main__":
    main()
