"""Engine speed and memory: time per frame and peak RSS per method and frame size.

Run:  .venv/bin/python benchmarks/bench_engine.py [--quick]

Every configuration runs in its own process, so peak RSS is that run's own. Results are
reported as ratios against a reference measured in the same run: a load-everything
implementation of linear EVM in NumPy/SciPy (Gaussian pyramid per frame, ideal FFT over the
whole clip held in memory), which is how the public Python scripts work. Absolute numbers are
printed too, for the targets, but these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

SIZES = {"640x480": (480, 640), "960x544": (544, 960), "1920x1080": (1080, 1920)}


def synthetic_frames(n: int, h: int, w: int, seed: int = 0):
    """Frames of a textured scene with a small oscillation, generated one at a time."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(h // 4 + 2, w // 4 + 2, 3), dtype=np.uint8)
    base = np.repeat(np.repeat(base, 4, axis=0), 4, axis=1)
    for i in range(n):
        shift = int(round(2 * np.sin(2 * np.pi * i / 15)))
        yield np.ascontiguousarray(base[4 + shift:4 + shift + h, 4:4 + w])


def run_engine(method: str, h: int, w: int, n: int, options: dict) -> dict:
    from napari_vmm.core.engine import StreamingMagnifier

    sm = StreamingMagnifier(30.0, method=method, alpha=10, band=(1.0, 3.0),
                            temporal="butterworth", **options)
    chunk = max(1, min(8, 2_000_000 // (h * w)))
    buf, warm, t0, timed = [], 2 * chunk, None, 0
    for i, frame in enumerate(synthetic_frames(n, h, w)):
        buf.append(frame)
        if len(buf) == chunk:
            sm.push(np.stack(buf))
            buf = []
            if i + 1 == warm:
                t0 = time.perf_counter()
            elif t0 is not None:
                timed += chunk
    elapsed = time.perf_counter() - t0
    return {"s_per_frame": elapsed / max(timed, 1)}


def run_reference(h: int, w: int, n: int) -> dict:
    """Load-everything linear EVM (the public-script pattern), luma + chroma in YIQ."""
    from scipy import ndimage

    t0 = time.perf_counter()
    clip = np.stack(list(synthetic_frames(n, h, w))).astype(np.float32) / 255
    levels = []
    for frame in clip:  # Gaussian pyramid, 4 levels, the coarsest kept (as in the scripts)
        g = frame
        for _ in range(4):
            g = ndimage.gaussian_filter(g, sigma=(1, 1, 0))[::2, ::2]
        levels.append(g)
    stack = np.stack(levels)
    spec = np.fft.fft(stack, axis=0)
    freqs = np.fft.fftfreq(n, d=1 / 30.0)
    spec[(np.abs(freqs) < 1.0) | (np.abs(freqs) > 3.0)] = 0
    filtered = np.fft.ifft(spec, axis=0).real * 10
    out = np.empty_like(clip)
    for i in range(n):
        up = ndimage.zoom(filtered[i], (h / filtered.shape[1], w / filtered.shape[2], 1), order=1)
        out[i] = clip[i] + up[:h, :w]
    return {"s_per_frame": (time.perf_counter() - t0) / n}


def one(args: argparse.Namespace) -> None:
    h, w = SIZES[args.size]
    options = json.loads(args.options)
    if args.method == "reference":
        result = run_reference(h, w, args.frames)
    else:
        import napari_vmm  # noqa: F401, I001  (first: its OpenMP wait policy precedes torch)
        import torch

        torch.set_num_threads(args.threads)
        result = run_engine(args.method, h, w, args.frames, options)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def spawn(method: str, size: str, frames: int, options: dict | None = None,
          threads: int = 2) -> dict:
    cmd = [sys.executable, __file__, "--one", method, size, str(frames),
           json.dumps(options or {}), "--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer frames")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--methods", default="linear,riesz,phase",
                        help="comma-separated methods to run (default: all three)")
    parser.add_argument("--one", nargs=4, metavar=("METHOD", "SIZE", "FRAMES", "OPTIONS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        ns = argparse.Namespace(method=args.one[0], size=args.one[1], frames=int(args.one[2]),
                                options=args.one[3], threads=args.threads)
        one(ns)
        return
    short = 40 if args.quick else 90
    configs = [
        ("linear", "640x480", {}), ("riesz", "640x480", {}), ("phase", "640x480", {}),
        ("phase", "960x544", {"pyramid": "half_octave", "orientations": 8}),
        ("linear", "1920x1080", {}), ("riesz", "1920x1080", {}),
        ("phase", "1920x1080", {}),  # defaults (half octave, 8 orientations): issue 19.3
    ]
    wanted = {m.strip() for m in args.methods.split(",") if m.strip()}
    configs = [c for c in configs if c[0] in wanted]
    refs = {}
    for size in sorted({c[1] for c in configs}):
        n = short if size != "1920x1080" else max(12, short // 4)
        refs[size] = ref = spawn("reference", size, n)
        print(f"reference (load-everything linear EVM) {size}: "
              f"{1000 * ref['s_per_frame']:.1f} ms/frame, {ref['peak_rss_mb']:.0f} MB for "
              f"{n} frames", flush=True)
    print(f"{'method':8s} {'size':10s} {'ms/frame':>9s} {'fps':>7s} {'RSS MB':>8s} "
          f"{'speed vs ref':>13s} {'RSS vs ref':>11s}  options", flush=True)
    for method, size, options in configs:
        n = short if size != "1920x1080" else max(12, short // 4)
        r = spawn(method, size, n, options, args.threads)
        ref = refs.get(size)
        speed = f"{ref['s_per_frame'] / r['s_per_frame']:.1f}x" if ref else "-"
        mem = f"{r['peak_rss_mb'] / ref['peak_rss_mb']:.2f}" if ref else "-"
        print(f"{method:8s} {size:10s} {1000 * r['s_per_frame']:9.1f} "
              f"{1 / r['s_per_frame']:7.1f} {r['peak_rss_mb']:8.0f} {speed:>13s} {mem:>11s}  "
              f"{options or ''}", flush=True)
    if "riesz" not in wanted:
        return
    # Memory must not grow with clip length: the same run on a clip ten times longer.
    n_short = 12 if args.quick else 20
    a = spawn("riesz", "1920x1080", n_short)
    b = spawn("riesz", "1920x1080", 10 * n_short)
    print(f"streaming riesz 1080p peak RSS: {n_short} frames {a['peak_rss_mb']:.0f} MB, "
          f"{10 * n_short} frames {b['peak_rss_mb']:.0f} MB (ratio "
          f"{b['peak_rss_mb'] / a['peak_rss_mb']:.3f})")


if __name__ == "__main__":
    main()
