"""Training speed on this CPU: samples per second of ``vmm train``, float32 against bf16.

Reference: ``vmm train MODEL --amp off`` (float32, what CPU runs use by default). Against it:
``--amp bf16`` (autocast to bfloat16; CPUs with native bfloat16, AVX-512 BF16 or AMX, run its
convolutions faster). Each arm is a real short run from the shipped weights in a temporary run
directory (data generation, loss, backward pass and Adam step included; the first logged
window, which holds the warm-up, is dropped). The arms alternate, ``--reps`` times each, and
each figure is the median of the logged windows. The machine's load is printed first: on a
shared machine the other processes slow both arms.

    python benchmarks/bench_train.py                         # realtime, fd4mm, oh2018
    python benchmarks/bench_train.py --models fd4mm --crop 64 --steps 100 --reps 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARMS = ("off", "bf16")


def _run(model: str, amp: str, steps: int, threads: int, crop: int,
         run_dir: Path) -> list[float]:
    """samples/s of the logged windows of one short run (the first window dropped)."""
    cmd = [sys.executable, "-m", "napari_vmm", "train", model, "--init", "shipped",
           "--run-dir", str(run_dir), "--max-steps", str(steps), "--amp", amp,
           "--crop", str(crop),
           "--threads", str(threads), "--val-n", "4", "--val-every", str(10 * steps),
           "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    rates = [r["samples_per_s"] for r in rows if "samples_per_s" in r]
    return rates[1:] or rates


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="realtime,fd4mm,oh2018")
    ap.add_argument("--steps", type=int, default=80, help="steps per run (default 80)")
    ap.add_argument("--reps", type=int, default=2, help="runs per arm (default 2)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--crop", type=int, default=0, help="training crop (default: the model's)")
    ap.add_argument("--json", default="", help="also write the results here")
    ns = ap.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="vmm-bench-train-") as tmp:
        for model in [m.strip() for m in ns.models.split(",") if m.strip()]:
            rates: dict[str, list[float]] = {arm: [] for arm in ARMS}
            for rep in range(ns.reps):
                for arm in ARMS:
                    run_dir = Path(tmp) / f"{model}-{arm}-{rep}"
                    rates[arm] += _run(model, arm, ns.steps, ns.threads, ns.crop, run_dir)
            med = {arm: statistics.median(v) for arm, v in rates.items()}
            results[model] = {"samples_per_s": med, "windows": rates,
                              "bf16_over_float32": med["bf16"] / med["off"]}
            print(f"{model}: float32 {med['off']:.2f} samples/s, bf16 {med['bf16']:.2f} "
                  f"({med['bf16'] / med['off']:.2f}x)", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end", flush=True)
    if ns.json:
        Path(ns.json).write_text(json.dumps(
            {"threads": ns.threads, "steps": ns.steps, "reps": ns.reps, "crop": ns.crop,
             "models": results},
            indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
