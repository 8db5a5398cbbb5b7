"""Engine speed and memory: time per frame and peak RSS per method and frame size.

Run:  .venv/bin/python benchmarks/bench_engine.py [--quick]

Every configuration runs in its own process, so peak RSS is that run's own. Results are
reported as ratios against a reference measured in the same run: a load-everything
implementation of linear EVM in NumPy/SciPy (Gaussian pyramid per frame, ideal FFT over the
whole clip held in memory), which is how the public Python scripts work. Absolute numbers are
printed too, for the targets, but these machines are shared and noisy.

``--whole``: the whole-clip ``ideal`` path against our streaming Butterworth path and against
a port of the MIT code's ``amplify_spatial_lpyr_temporal_ideal`` (Laplacian pyramid of every
frame held for the whole clip, FFT along time, per-level alpha), all on the same 60 frames
of 960x544 (``../shared/videos/baby.mp4`` when present). ``--rss``: peak RSS of ``vmm
magnify`` on a video file against ``vmm-filter`` (the streaming pipe filter) on the same
clip. ``--phase-options``: ``phase`` at 1080p, its default against the cheaper options
(octave x4, half octave x4, sigma 0), with the reference at 1080p in the same run. Run them
with ``PYTHONPATH`` pointing at another checkout to measure that code.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = {"640x480": (480, 640), "960x544": (544, 960), "1920x1080": (1080, 1920)}
BABY = Path(__file__).resolve().parents[2] / "shared" / "videos" / "baby.mp4"
DRUM = BABY.with_name("drum.mp4")  # 640x360, real footage: the file-path RSS clip
#: The whole-clip comparison: Wu et al.'s baby parameters (linear, lambda_c 16, chroma 0.1).
WHOLE = {"frames": 60, "fps": 30.0, "alpha": 10.0, "band": (0.4, 3.0), "lambda_c": 16.0,
         "chroma": 0.1}


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


def whole_clip_frames(n: int) -> np.ndarray:
    """The clip of the whole-clip comparison: baby.mp4's first ``n`` frames, or synthetic."""
    if BABY.is_file():
        from napari_vmm.io import open_video

        with open_video(BABY) as src:
            return src[0:n]
    return np.stack(list(synthetic_frames(n, 544, 960)))


def _binomial(x: np.ndarray, axis: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.correlate1d(x, np.array([1, 4, 6, 4, 1]) / 16.0, axis=axis, mode="mirror")


def _reduce(x: np.ndarray) -> np.ndarray:
    return _binomial(_binomial(x, 0), 1)[::2, ::2]


def _expand(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    up = np.zeros(shape, x.dtype)
    up[::2, ::2] = x
    return 4 * _binomial(_binomial(up, 0), 1)


def run_mit_reference(clip: np.ndarray) -> dict:
    """The MIT code's ``amplify_spatial_lpyr_temporal_ideal``, ported to NumPy/SciPy as it is.

    Every frame's YIQ Laplacian pyramid (binomial 5-tap, mirrored edges, as far as the frame
    allows) goes into one (pixels x 3 x T) stack; ``ideal_bandpassing`` takes the FFT of the
    whole stack along time and keeps the bins inside the band; each level gets the alpha of
    Wu et al.'s lambda rule (exaggeration 2, finest and coarsest levels zeroed); every frame
    is rebuilt, chroma attenuated, added to the input and converted back to RGB.
    """
    from napari_vmm.core.frames import rgb_to_yiq, yiq_to_rgb

    p = WHOLE
    t0 = time.perf_counter()
    n, h, w = clip.shape[:3]
    levels, size = 1, min(h, w)  # buildLpyr's 1 + maxPyrHt for the 5-tap filter
    while size >= 5:
        levels, size = levels + 1, size // 2
    pyramids, shapes = [], []
    for frame in clip:
        g = _yiq_np(rgb_to_yiq, frame)
        bands = []
        for _ in range(levels - 1):
            lo = _reduce(g)
            bands.append(g - _expand(lo, g.shape))
            g = lo
        bands.append(g)
        shapes = [b.shape for b in bands]
        pyramids.append(np.concatenate([b.reshape(-1, 3) for b in bands]))
    stack = np.stack(pyramids, axis=-1)  # (pixels, 3, T), as pyr_stack
    del pyramids
    freqs = np.arange(n) / n * p["fps"]
    mask = (freqs > p["band"][0]) & (freqs < p["band"][1])
    spec = np.fft.fft(stack, axis=-1)
    spec[..., ~mask] = 0
    filtered = np.real(np.fft.ifft(spec, axis=-1)).astype(np.float32)
    del spec, stack
    delta = p["lambda_c"] / 8 / (1 + p["alpha"])
    lam = (h**2 + w**2) ** 0.5 / 3
    end = filtered.shape[0]
    for level in range(levels - 1, -1, -1):  # coarsest first, as the MIT loop
        size = int(np.prod(shapes[level][:2]))
        cur = (lam / delta / 8 - 1) * 2
        part = filtered[end - size:end]
        if level in (0, levels - 1):
            part[:] = 0
        else:
            part *= min(cur, p["alpha"])
        end -= size
        lam /= 2
    out = np.empty_like(clip)
    for i, frame in enumerate(clip):
        col, bands, start = filtered[..., i], [], 0
        for shape in shapes:
            size = int(np.prod(shape[:2]))
            bands.append(col[start:start + size].reshape(shape))
            start += size
        rec = bands[-1]
        for band in bands[-2::-1]:
            rec = band + _expand(rec, band.shape)
        rec[..., 1:] *= p["chroma"]
        rgb = _yiq_np(yiq_to_rgb, _yiq_np(rgb_to_yiq, frame) + rec)
        out[i] = np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)
    return {"s": time.perf_counter() - t0}


def _yiq_np(convert, frame: np.ndarray) -> np.ndarray:
    """One (H, W, 3) frame through the engine's RGB<->YIQ matrix (uint8 or float in)."""
    import torch

    x = frame.astype(np.float32) / 255 if frame.dtype == np.uint8 else frame.astype(np.float32)
    y = convert(torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None])
    return y[0].permute(1, 2, 0).numpy()


def run_whole(temporal: str, clip: np.ndarray) -> dict:
    """Our ``magnify`` on the clip: the whole-clip path (ideal) or the streaming one."""
    from napari_vmm.core.engine import magnify

    p = WHOLE
    t0 = time.perf_counter()
    magnify(clip, p["fps"], method="linear", alpha=p["alpha"], band=p["band"],
            temporal=temporal, lambda_c=p["lambda_c"], chroma_attenuation=p["chroma"])
    return {"s": time.perf_counter() - t0}


def one(args: argparse.Namespace) -> None:
    if args.method.startswith("whole:"):
        import napari_vmm  # noqa: F401, I001  (first: its OpenMP wait policy precedes torch)
        import torch

        torch.set_num_threads(args.threads)
        clip = whole_clip_frames(args.frames)
        cpu0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        kind = args.method.split(":", 1)[1]
        result = run_mit_reference(clip) if kind == "mit" else run_whole(kind, clip)
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        result["cpu_s"] = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
        result["wall_s"] = time.perf_counter() - t0
        result["peak_rss_mb"] = cpu1.ru_maxrss / 1024
        print(json.dumps(result))
        return
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
    parser.add_argument("--whole", action="store_true",
                        help="only the whole-clip comparison (ideal vs streaming vs MIT port)")
    parser.add_argument("--rss", action="store_true",
                        help="only the file path's peak RSS (vmm magnify vs vmm-filter)")
    parser.add_argument("--phase-options", action="store_true",
                        help="only phase at 1080p: the default against its cheaper options")
    parser.add_argument("--repeat", type=int, default=1,
                        help="--whole: runs per configuration (the fastest is kept)")
    parser.add_argument("--one", nargs=4, metavar=("METHOD", "SIZE", "FRAMES", "OPTIONS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        ns = argparse.Namespace(method=args.one[0], size=args.one[1], frames=int(args.one[2]),
                                options=args.one[3], threads=args.threads)
        one(ns)
        return
    if args.whole:
        whole_comparison(args.threads, args.repeat)
        return
    if args.rss:
        file_rss(args.quick, [m for m in ("linear", "riesz") if m in args.methods.split(",")])
        return
    short = 40 if args.quick else 90
    if args.phase_options:
        phase_options(args.threads, 8 if args.quick else 12)
        return
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


#: phase at 1080p: the default and the cheaper options a user can pick (docs/benchmarks.md).
PHASE_OPTIONS = ({}, {"pyramid": "octave", "orientations": 4},
                 {"pyramid": "half_octave", "orientations": 4}, {"sigma": 0.0})


def phase_options(threads: int, frames: int) -> None:
    """Streaming ``phase`` at 1920x1080 per option set, against the reference in the same run."""
    ref = spawn("reference", "1920x1080", frames)
    print(f"reference (load-everything linear EVM) 1920x1080: {1000 * ref['s_per_frame']:.1f} "
          f"ms/frame, {ref['peak_rss_mb']:.0f} MB; {threads} thread(s); load "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    print("| phase options | ms/frame | fps | peak RSS | time vs reference | RSS vs reference |")
    print("|---|---|---|---|---|---|")
    for options in PHASE_OPTIONS:
        r = spawn("phase", "1920x1080", frames, options, threads)
        print(f"| {options or 'default'} | {1000 * r['s_per_frame']:.0f} | "
              f"{1 / r['s_per_frame']:.2f} | {r['peak_rss_mb']:.0f} MB | "
              f"{r['s_per_frame'] / ref['s_per_frame']:.1f} | "
              f"{r['peak_rss_mb'] / ref['peak_rss_mb']:.2f} |", flush=True)


def whole_comparison(threads: int, repeat: int = 1) -> None:
    """``ideal`` (whole clip) vs Butterworth (streaming) vs the MIT port, same clip and run."""
    n = WHOLE["frames"]
    clip = "baby.mp4" if BABY.is_file() else "synthetic"
    print(f"whole-clip comparison: linear, {n} frames of 960x544 ({clip}), alpha "
          f"{WHOLE['alpha']:g}, band {WHOLE['band']} Hz, {threads} threads", flush=True)
    res = {}
    for kind in ("mit", "ideal", "butterworth"):
        runs = [spawn(f"whole:{kind}", "960x544", n, threads=threads) for _ in range(repeat)]
        res[kind] = min(runs, key=lambda r: r["wall_s"])
        r = res[kind]
        print(f"  {kind:12s} {r['wall_s']:7.2f} s wall {r['cpu_s']:7.2f} s CPU "
              f"{r['peak_rss_mb']:7.0f} MB peak RSS", flush=True)
    for key, label in (("wall_s", "wall"), ("cpu_s", "CPU")):
        mit, ideal, butter = (res[k][key] for k in ("mit", "ideal", "butterworth"))
        print(f"  {label}: ideal is {mit / ideal:.2f}x the MIT port (goal >= 2.5), "
              f"{ideal / butter:.2f}x the streaming path's time (goal <= 1.5)")


def _peak_rss_mb(cmd: list[str], stdin=None, env=None) -> tuple[float, float]:
    """Run ``cmd``; return its own peak RSS in MB and its wall time."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed: {err[-400:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - t0


def file_rss(quick: bool, methods: list[str]) -> None:
    """Peak RSS of ``vmm magnify`` on a 0.2-0.3 MP video against ``vmm-filter``.

    The first frames of ``../shared/videos/drum.mp4`` (640x360) when present, else a
    synthetic 640x480 clip (whose blocky texture shows less of the difference).
    """
    import shutil

    from napari_vmm.io import write_video

    if shutil.which("ffmpeg") is None:
        print("--rss needs ffmpeg on PATH")
        return
    n = 48 if quick else 120
    vmm = [sys.executable, "-c", "import sys; from napari_vmm.cli import main; "
           "sys.exit(main(sys.argv[1:]))"]
    with tempfile.TemporaryDirectory(prefix="bench-rss-") as tmp:
        clip = os.path.join(tmp, "clip.mp4")
        if DRUM.is_file():
            from napari_vmm.io import open_video

            with open_video(DRUM) as src:
                write_video(clip, src[0:n], src.fps)
            name = f"{n} frames of drum.mp4 (640x360)"
        else:
            write_video(clip, synthetic_frames(n, 480, 640), 30.0)
            name = f"a synthetic {n}-frame 640x480 video"
        print(f"peak RSS on {name} (MB; vmm-filter is the python process of the pipe, "
              "without the ffmpeg processes)", flush=True)
        common = ["--alpha", "10", "--band", "0.5", "3"]
        for method in methods:
            causal = [*common, "--method", method, "--temporal", "butterworth"]
            mag, t_mag = _peak_rss_mb([*vmm, "magnify", clip, os.path.join(tmp, "o.mp4"),
                                       *causal, "-q"])
            dec = subprocess.Popen(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", clip,
                                    "-f", "yuv4mpegpipe", "-"], stdout=subprocess.PIPE)
            filt, t_filt = _peak_rss_mb([sys.executable, "-m", "ffmpeg_filter", *causal],
                                        stdin=dec.stdout)
            dec.stdout.close()
            dec.wait()
            whole, t_whole = _peak_rss_mb([*vmm, "magnify", clip, os.path.join(tmp, "w.mp4"),
                                           *common, "--method", method, "--temporal", "ideal",
                                           "-q"])
            print(f"  {method:7s} vmm magnify {mag:6.0f} ({t_mag:5.1f} s)  vmm-filter "
                  f"{filt:6.0f} ({t_filt:5.1f} s)  ratio {mag / filt:.2f}   vmm magnify "
                  f"--temporal ideal {whole:6.0f} ({t_whole:5.1f} s)", flush=True)


if __name__ == "__main__":
    main()
