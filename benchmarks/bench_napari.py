"""File-backed video in napari: peak RSS, progress interval and cancel latency of a Run.

Run:  xvfb-run -a .venv/bin/python benchmarks/bench_napari.py [--frames N] [--json FILE]

The clip is ``../shared/videos/baby.mp4`` cropped to 576 x 448 (a 301-frame face clip), opened
with the plugin's reader in a napari viewer, as a user drags it in. Each route runs in a fresh
process (so peaks do not carry over) that holds the viewer and the layer:

- ``engine``: what the Magnify widget does now for a file-backed video without a Dask
  scheduler: the engine in-process, chunk by chunk (``_jobs.engine_job``).
- ``dask``: the reference, the route it took before: ``magnify_dask`` on local threads into
  an array (``_jobs.dask_job``).

Reported per route: peak resident memory of the process (sampled every 5 ms), the longest
interval between progress steps and the frames per step, the wall time, and the cancel
latency (a second run cancelled 3 s in: from the request to the generator being closed).
The machine is shared: compare the routes, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "videos"


def make_clip(dst: Path, frames: int) -> Path:
    """A 448 x 576 face crop of the first ``frames`` frames of baby.mp4, written as H.264."""
    from napari_vmm.io import open_video, write_video

    src = SHARED / "baby.mp4"
    if not src.is_file():
        sys.exit(f"{src} is absent")
    video = open_video(src)
    h, w = video.shape[1:3]
    y0, x0 = (h - 448) // 2, (w - 576) // 2
    write_video(dst, video[:frames][:, y0:y0 + 448, x0:x0 + 576], fps=float(video.fps))
    return dst


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(route: str, clip: str, method: str, temporal: str, cancel_after: float) -> dict:
    import numpy as np
    import torch  # noqa: F401  (the Magnify widget has imported it before any Run)
    from napari import Viewer

    from napari_vmm._napari.jobs import dask_job, engine_job, engine_kwargs
    from napari_vmm._napari.layers import allocate_output

    viewer = Viewer(show=False)
    layer = viewer.open(clip, plugin="napari-vmm")[0]
    frames = layer.data
    kwargs = {"fps": 30.0, "method": method, "alpha": 10.0, "band": (0.4, 3.0),
              "temporal": temporal, "roi_mask": None}
    peak = [_rss()]
    baseline = peak[0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = allocate_output(tuple(frames.shape), frames.dtype)
    cancel = threading.Event()
    if route == "engine":
        gen = engine_job(frames, out, engine_kwargs(kwargs, tuple(frames.shape)))
    else:
        gen = dask_job(frames, out, None, None, kwargs, cancel)
    requested = []
    if cancel_after:  # what the widget does: the worker stops at its next step
        timer = threading.Timer(cancel_after, lambda: (requested.append(time.perf_counter()),
                                                       cancel.set()))
        timer.start()
    t0 = last = time.perf_counter()
    gaps, steps, cancel_latency, done = [], [], None, None
    try:
        for value in gen:
            now = time.perf_counter()
            gaps.append(now - last)
            last = now
            if value is not None and not isinstance(value, str):
                steps.append(value)
            if requested:
                gen.close()
                break
    except Exception as exc:  # the dask job raises Cancelled on its cancel event
        print(f"  {route}: {type(exc).__name__}: {exc}", file=sys.stderr)
    if requested:
        cancel_latency = time.perf_counter() - requested[0]
    else:
        done = time.perf_counter() - t0
    stop.set()
    sampler.join()
    total = steps[-1][1] if steps else 0
    n = frames.shape[0]
    passes = 2 if temporal == "ideal" else 1
    return {"route": route, "baseline_rss_mb": baseline / 2**20, "peak_rss_mb": peak[0] / 2**20,
            "max_step_gap_s": max(gaps[1:], default=float("nan")),
            "first_step_s": gaps[0] if gaps else float("nan"),
            "steps": total, "frames_per_step": passes * n / total if total else float("nan"),
            "wall_s": done, "cancel_latency_s": cancel_latency,
            "output_sum": float(np.asarray(out[::50]).mean()) if done else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=301)
    parser.add_argument("--method", default="riesz")
    parser.add_argument("--temporal", default="ideal")
    parser.add_argument("--routes", default="engine,dask")
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--child", nargs=2, metavar=("ROUTE", "CLIP"), help=argparse.SUPPRESS)
    parser.add_argument("--cancel-after", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.method, args.temporal,
                               args.cancel_after)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-napari-") as tmp:
        env = {**os.environ, "NAPARI_VMM_CONFIG_DIR": tmp}
        clip = make_clip(Path(tmp) / "face.mp4", args.frames)
        results = []
        for route in args.routes.split(","):
            for cancel_after in (0.0, 3.0):
                cmd = [sys.executable, __file__, "--child", route, str(clip), "--method",
                       args.method, "--temporal", args.temporal,
                       "--cancel-after", str(cancel_after)]
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if proc.returncode:
                    sys.exit(proc.stderr[-3000:])
                res = json.loads(proc.stdout.strip().splitlines()[-1])
                res["cancel_after_s"] = cancel_after
                results.append(res)
                print(json.dumps(res))
    print(f"\n{args.frames} frames 448x576 RGB, {args.method}/{args.temporal}, "
          f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'route':8} {'peak RSS':>9} {'baseline':>9} {'steps':>6} {'fr/step':>8} "
          f"{'max gap':>8} {'wall':>7} {'cancel':>7}")
    full = {r["route"]: r for r in results if not r["cancel_after_s"]}
    cancels = {r["route"]: r for r in results if r["cancel_after_s"]}
    for route, r in full.items():
        c = cancels.get(route, {})
        print(f"{route:8} {r['peak_rss_mb']:8.0f}M {r['baseline_rss_mb']:8.0f}M "
              f"{r['steps']:6d} {r['frames_per_step']:8.1f} {r['max_step_gap_s']:7.2f}s "
              f"{r['wall_s']:6.1f}s {c.get('cancel_latency_s', float('nan')):6.2f}s")
    if "engine" in full and "dask" in full:
        print(f"peak RSS engine / dask: "
              f"{full['engine']['peak_rss_mb'] / full['dask']['peak_rss_mb']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
