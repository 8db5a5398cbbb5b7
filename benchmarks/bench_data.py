"""Speed of the training-data generators: samples per second, same run.

Reference: the per-sample NumPy generator (``data.generate_batch``, what ``vmm train`` uses by
default and what the data workers run). Against it: the batched torch renderer
(``render_torch.render_batch``, ``vmm train --renderer torch``) on the CPU with the same
number of threads and, where present, on CUDA. The two alternate, ``--reps`` times each,
after a warm-up; each figure is the median. Samples per CPU-second (process time) are given
beside the wall-clock figure: on a shared machine the wall clock also measures the others.

    python benchmarks/bench_data.py                     # 128² crops, batch 16, 1 thread
    python benchmarks/bench_data.py --size 64 --batch 32 --reps 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from napari_vmm.training.data import DataConfig, generate_batch  # noqa: E402
from napari_vmm.training.render_torch import render_batch  # noqa: E402


def _timed(fn, device: torch.device | None = None) -> tuple[float, float]:
    """(wall s, process CPU s) of one call."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, time.process_time() - c0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128, help="crop S (default 128)")
    ap.add_argument("--batch", type=int, default=16, help="samples per batch (default 16)")
    ap.add_argument("--reps", type=int, default=3, help="timed batches per generator")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--cuda-batch", type=int, default=256, help="batch on CUDA (default 256)")
    ap.add_argument("--json", default="", help="also write the results here")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    cfg = DataConfig(size=a.size)
    n = a.batch
    cpu = torch.device("cpu")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f}; torch {torch.__version__}, {a.threads} thread(s); "
          f"crop {a.size}, batch {n}, {a.reps} reps")
    gens = {
        "cpu generator (per sample)": (lambda r: generate_batch(0, "train",
                                                                 range(r * n, r * n + n), cfg),
                                       None, n),
        "torch renderer, cpu": (lambda r: render_batch(0, "train", r, n, cfg, cpu), cpu, n),
    }
    if torch.cuda.is_available():
        dev = torch.device("cuda")
        nb = a.cuda_batch
        gens["torch renderer, cuda"] = (lambda r: render_batch(0, "train", r, nb, cfg, dev),
                                        dev, nb)
    for fn, dev, _ in gens.values():  # warm-up (photo bank upload, allocator, kernels)
        _timed(lambda fn=fn: fn(10_000), dev)
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in gens}
    for r in range(a.reps):  # alternate, so that load changes hit all alike
        for name, (fn, dev, _) in gens.items():
            times[name].append(_timed(lambda fn=fn, r=r: fn(r), dev))
    res = {}
    for name, (_, _, nb) in gens.items():
        wall = statistics.median(t[0] for t in times[name])
        cpu_s = statistics.median(t[1] for t in times[name])
        res[name] = {"batch": nb, "samples_per_s": nb / wall,
                     "samples_per_cpu_s": nb / max(cpu_s, 1e-9)}
    ref = res["cpu generator (per sample)"]
    for name, r in res.items():
        r["ratio_wall"] = r["samples_per_s"] / ref["samples_per_s"]
        r["ratio_cpu_time"] = r["samples_per_cpu_s"] / ref["samples_per_cpu_s"]
        print(f"{name:28s} batch {r['batch']:4d}: {r['samples_per_s']:8.1f} samples/s "
              f"({r['ratio_wall']:.2f}× the cpu generator), {r['samples_per_cpu_s']:8.1f} "
              f"samples per CPU-s ({r['ratio_cpu_time']:.2f}×)")
    if a.json:
        Path(a.json).write_text(json.dumps({"size": a.size, "threads": a.threads,
                                            "results": res}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
