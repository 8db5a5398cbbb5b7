"""Long runs: a 640x480 stream through ``vmm-filter`` for minutes or hours, at constant memory.

Run:  .venv/bin/python benchmarks/bench_longrun.py [--minutes 5] [--checkpoints 1,5]
      .venv/bin/python benchmarks/bench_longrun.py --minutes 60 --checkpoints 1,10,60   # 1 h

The stream is generated on the fly (nothing is stored): 64 distinct 640x480 4:2:0 frames of a
textured pattern moving sub-pixel, cycled forever, written to the filter's stdin; its stdout is
counted and discarded. Every ``--sample`` seconds the benchmark reads the filter process's
``/proc`` entries: resident memory (VmRSS), peak (VmHWM) and CPU time. It reports, at each
checkpoint, the RSS, the peak so far, the frames done and, per interval, the frames per second
and the CPU milliseconds per frame.

The references are measured in the same run: memory growth is the RSS at the end over the
RSS at the first checkpoint (1.0 = constant memory), throughput drift is the CPU ms per frame
of the last interval over that of the first interval after the first checkpoint (CPU time per
frame, unlike wall fps, does not change when other jobs share the cores). ``--rate FPS`` feeds
the filter at a fixed rate, like a live camera (0, the default, as fast as it takes frames).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
W, H = 640, 480


def make_frames(n: int = 64) -> list[bytes]:
    """``n`` y4m frames (FRAME line + planes) of a pattern moving 0.3 px per frame."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    chroma = np.full((H // 2) * (W // 2) * 2, 128, np.uint8).tobytes()
    frames = []
    for t in range(n):
        shift = 2.0 * np.sin(2 * np.pi * t / n)  # one period per cycle: a seamless loop
        luma = 128 + 60 * np.sin((xx - shift) / 7.0) * np.cos(yy / 11.0)
        frames.append(b"FRAME\n" + np.clip(luma, 0, 255).astype(np.uint8).tobytes() + chroma)
    return frames


def proc_stats(pid: int) -> dict[str, float]:
    """RSS and peak RSS (MiB) and CPU seconds of a live process, from /proc."""
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    out["cpu_s"] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return out


def run(minutes: float, checkpoints: list[float], rate: float, sample: float,
        filter_args: list[str]) -> dict:
    frames = make_frames()
    header = f"YUV4MPEG2 W{W} H{H} F30:1 Ip A1:1 C420jpeg XYSCSS=420JPEG\n".encode()
    frame_bytes = len(frames[0])
    cmd = [sys.executable, "-m", "ffmpeg_filter", *filter_args]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    stop = threading.Event()
    received = [0]

    def feed() -> None:
        try:
            proc.stdin.write(header)
            t0, i = time.monotonic(), 0
            while not stop.is_set():
                if rate > 0:
                    time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
                proc.stdin.write(frames[i % len(frames)])
                i += 1
            proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass

    def drain() -> None:
        while chunk := proc.stdout.read(1 << 20):
            received[0] += len(chunk)

    threads = [threading.Thread(target=feed, daemon=True),
               threading.Thread(target=drain, daemon=True)]
    for t in threads:
        t.start()
    start = time.monotonic()
    samples = []
    marks = sorted(c * 60 for c in checkpoints if c <= minutes)
    try:
        while (elapsed := time.monotonic() - start) < minutes * 60:
            time.sleep(min(sample, max(0.1, minutes * 60 - elapsed)))
            if proc.poll() is not None:
                raise RuntimeError(f"vmm-filter stopped early (exit {proc.returncode})")
            stats = proc_stats(proc.pid)
            done = max(0, (received[0] - len(header)) // frame_bytes)
            samples.append({"t_s": round(time.monotonic() - start, 1), "frames": int(done),
                            "rss_mib": round(stats["VmRSS"], 1),
                            "peak_mib": round(stats["VmHWM"], 1),
                            "cpu_s": round(stats["cpu_s"], 2)})
    finally:
        stop.set()
        proc.wait(timeout=120)
    return {"samples": samples, "checkpoints": summarize(samples, marks),
            "command": cmd, "rate": rate, "frame": f"{W}x{H} yuv420p"}


def summarize(samples: list[dict], marks: list[float]) -> list[dict]:
    """The sample nearest each checkpoint, with fps and CPU ms/frame since the previous one."""
    rows, prev = [], samples[0]
    for mark in marks:
        s = min(samples, key=lambda x: abs(x["t_s"] - mark))
        df, dt = s["frames"] - prev["frames"], s["t_s"] - prev["t_s"]
        rows.append({**s, "checkpoint_min": mark / 60,
                     "fps": round(df / dt, 2) if dt > 0 else None,
                     "cpu_ms_per_frame": round(1000 * (s["cpu_s"] - prev["cpu_s"]) / df, 1)
                     if df > 0 else None})
        prev = s
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="length of the run")
    parser.add_argument("--checkpoints", default="1,5",
                        help="minutes at which to report (default 1,5; 1 h: 1,10,60)")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="feed at this many frames per second (0: as fast as it goes)")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--json", metavar="FILE", help="write every sample and checkpoint")
    parser.add_argument("filter_args", nargs="*", default=["--method", "riesz", "--alpha",
                        "10", "--band", "0.5", "3", "--threads", "1"],
                        help="vmm-filter options after -- (default riesz, 1 thread)")
    args = parser.parse_args()
    checkpoints = [float(c) for c in args.checkpoints.split(",")]
    result = run(args.minutes, checkpoints, args.rate, args.sample, args.filter_args)
    rows = result["checkpoints"]
    print(f"vmm-filter, {result['frame']}, {' '.join(args.filter_args)}, "
          f"feed {'unpaced' if not args.rate else f'{args.rate:g} fps'}")
    print("| t (min) | frames | RSS (MiB) | peak RSS (MiB) | fps (interval) | CPU ms/frame |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['checkpoint_min']:g} | {r['frames']} | {r['rss_mib']} | {r['peak_mib']} | "
              f"{r['fps']} | {r['cpu_ms_per_frame']} |")
    if len(rows) >= 2:
        growth = rows[-1]["rss_mib"] / rows[0]["rss_mib"]
        drift = (rows[-1]["cpu_ms_per_frame"] / rows[1]["cpu_ms_per_frame"]
                 if rows[1]["cpu_ms_per_frame"] else float("nan"))
        result["rss_growth"], result["cpu_per_frame_drift"] = round(growth, 3), round(drift, 3)
        print(f"RSS at {rows[-1]['checkpoint_min']:g} min / at {rows[0]['checkpoint_min']:g} "
              f"min: {growth:.3f}; CPU ms per frame, last interval / first interval after "
              f"{rows[0]['checkpoint_min']:g} min: {drift:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
