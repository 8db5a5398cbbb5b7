"""ffmpeg-chain speed and memory: vmm-ffmpeg / vmm-filter against plain ffmpeg.

Run:  .venv/bin/python benchmarks/bench_ffmpeg.py [--quick] [--method riesz] [--device cpu]

Every clip is generated with ffmpeg's lavfi sources (testsrc2 + sine), so no data is committed.
Every number is reported beside a reference measured in the same run:

1. **Chain speed** at 1080p: frames per second of ``vmm-ffmpeg`` (decode -> filter -> encode,
   audio copied) against a plain ``ffmpeg`` decode -> encode of the same clip with the same
   encoder settings (libx264, preset medium, crf 18, audio copied). Target: ratio >= 0.5.
   Also the same plain transcode of the chain's output: magnified motion and noise cost the
   encoder more, so this part of the chain's time is not the filter's. ``--clip VIDEO`` uses a
   real clip scaled to 1080p instead of testsrc2.
2. **Filter alone**: ``vmm-filter`` frames per second on a 1080p y4m file (stdout to
   /dev/null), against the same y4m read/write loop with an identity magnifier (the I/O
   ceiling of the pipe). Both fps exclude start-up (imports, model set-up): the filter's own
   ``-v`` report; wall times with start-up are in the JSON.
3. **Memory**: peak RSS of ``vmm-filter`` fed by ffmpeg with a 10 s and a 100 s stream (the
   ratio must be 1 within noise: memory does not grow with the stream's length).

Peak RSS is that of the filter process alone (``os.wait4``). The machines these run on may be
shared and noisy: read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def sh(cmd: list[str], **kw) -> None:
    subprocess.run(cmd, check=True, **kw)


def timed(cmd: list[str], stderr_to: Path | None = None, **kw) -> tuple[float, int]:
    """Run ``cmd``; return (seconds, peak RSS in MiB of that process).

    With ``stderr_to``, the command's stderr goes to that file (to read its own fps report).
    """
    err = open(stderr_to, "wb") if stderr_to else None  # noqa: SIM115
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stderr=err, **kw)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
    finally:
        if err is not None:
            err.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
    return elapsed, usage.ru_maxrss // 1024


def reported_fps(stderr_file: Path) -> float:
    """The last ``(... fps)`` a vmm-filter ``-v`` run (or the identity loop) printed."""
    fps = re.findall(r"\(([0-9.]+) fps\)", stderr_file.read_text())
    if not fps:
        raise SystemExit(f"no fps report in {stderr_file}: {stderr_file.read_text()[-500:]}")
    return float(fps[-1])


def make_clip(path: Path, size: str, seconds: float, rate: int = 30) -> None:
    sh(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
        f"testsrc2=s={size}:r={rate}:d={seconds}", "-f", "lavfi", "-i",
        f"sine=f=440:d={seconds}", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)])


def frames_of(path: Path) -> int:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
         "stream=nb_read_packets", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True).stdout
    return int(out.strip())


def magnify_args(a: argparse.Namespace) -> list[str]:
    args = ["--method", a.method, "--alpha", f"{a.alpha:g}", "--band", *(f"{f:g}" for f in a.band),
            "--device", a.device]
    if a.threads:
        args += ["--threads", str(a.threads)]
    return args


# The filter loop with an identity magnifier: the y4m read/copy/write ceiling of the pipe.
IDENTITY_FILTER = """
import sys, time, numpy as np
from ffmpeg_filter.cli import LumaMagnifier, filter_stream
from ffmpeg_filter.y4m import Y4MReader, Y4MWriter
import napari_vmm.core.engine  # imported by filter_stream for the chunk size: not timed
class Identity:
    def push(self, f): return np.array(f)
    def flush(self): return np.empty((0, 1, 1), np.uint8)
r = Y4MReader(open(sys.argv[1], "rb"))
w = Y4MWriter(sys.stdout.buffer, r.header)
t0 = time.perf_counter()
n = filter_stream(r, w, LumaMagnifier(Identity(), r.header.colorspace.bit_depth))
print(f"identity: {n} frames ({n / (time.perf_counter() - t0):.2f} fps)", file=sys.stderr)
"""


def plain_transcode(src: Path, dst: Path) -> float:
    """Seconds for plain ffmpeg to decode ``src`` and encode it as the chain does."""
    t, _ = timed(["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(src),
                  "-map", "0:v:0", "-map", "0:a?", "-c:v", "libx264", "-preset", "medium",
                  "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "copy", str(dst)])
    return t


def bench_chain(a, tmp: Path) -> dict:
    clip = tmp / "clip1080.mp4"
    if a.clip:  # a real clip, scaled to 1080p and looped to --seconds (audio kept if any)
        sh(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", a.clip, "-t",
            str(a.seconds), "-vf",
            "scale=1920:1080:flags=lanczos", "-c:v", "libx264", "-preset", "veryfast",
            "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip)])
    else:
        make_clip(clip, "1920x1080", a.seconds)
    n = frames_of(clip)
    plain_t = plain_transcode(clip, tmp / "plain.mp4")
    chain_t, chain_rss = timed([PY, "-m", "ffmpeg_filter.wrap", "-i", str(clip), "-o",
                                str(tmp / "vmm.mp4"), "-y", "-q", *magnify_args(a)])
    # The same plain transcode of the chain's *output*: magnified motion (and noise) costs the
    # encoder more, and that part of the chain's time is not the filter's.
    output_t = plain_transcode(tmp / "vmm.mp4", tmp / "plain_of_output.mp4")
    return {"frames": n, "clip": a.clip or "testsrc2", "plain_ffmpeg_fps": n / plain_t,
            "chain_fps": n / chain_t, "chain_over_plain": plain_t / chain_t,
            "plain_of_output_fps": n / output_t, "chain_over_plain_of_output": output_t / chain_t,
            # what a filter that cost nothing would reach: x264's speed on the output
            "encoder_ceiling": plain_t / output_t,
            "chain_peak_rss_mib": chain_rss, "target_ratio": 0.5}


def bench_filter(a, tmp: Path) -> dict:
    """vmm-filter on a 1080p y4m file against the identity loop; fps after start-up."""
    y4m = tmp / "clip1080.y4m"
    n = max(8, int(a.seconds * 30))
    sh(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
        f"testsrc2=s=1920x1080:r=30:d={n / 30}", "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe",
        str(y4m)])
    io_log, filt_log = tmp / "identity.log", tmp / "filter.log"
    with open(os.devnull, "wb") as null:
        io_t, _ = timed([PY, "-c", IDENTITY_FILTER, str(y4m)], stdout=null, stderr_to=io_log)
        filt_t, filt_rss = timed([PY, "-m", "ffmpeg_filter", "-v", "-i", str(y4m),
                                  *magnify_args(a)], stdout=null, stderr_to=filt_log)
    y4m.unlink()
    filt_fps, io_fps = reported_fps(filt_log), reported_fps(io_log)
    return {"frames": n, "filter_fps": filt_fps, "identity_io_fps": io_fps,
            "filter_over_identity_io": filt_fps / io_fps,
            "filter_wall_s_with_startup": filt_t, "identity_wall_s_with_startup": io_t,
            "filter_peak_rss_mib": filt_rss}


def bench_memory(a, lengths: tuple[int, int] = (10, 100)) -> dict:
    """Peak RSS of vmm-filter fed by ffmpeg with a short and a 10x longer stream."""
    out: dict = {"size": a.memory_size}
    for seconds in lengths:
        src = subprocess.Popen(
            ["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i",
             f"testsrc2=s={a.memory_size}:r=30:d={seconds}", "-pix_fmt", "yuv420p",
             "-f", "yuv4mpegpipe", "-"], stdout=subprocess.PIPE)
        with open(os.devnull, "wb") as null:
            t, rss = timed([PY, "-m", "ffmpeg_filter", *magnify_args(a)], stdin=src.stdout,
                           stdout=null)
        src.stdout.close()
        src.wait()
        out[f"{seconds}s"] = {"frames": 30 * seconds, "peak_rss_mib": rss,
                              "fps": 30 * seconds / t}
    short, long = (out[f"{s}s"]["peak_rss_mib"] for s in lengths)
    out["rss_long_over_short"] = long / short
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", default="riesz", help="magnifier (default riesz)")
    p.add_argument("--alpha", type=float, default=20.0, help="alpha (default 20)")
    p.add_argument("--band", type=float, nargs=2, default=(0.5, 3.0), metavar=("LOW", "HIGH"),
                   help="pass band in Hz (default 0.5 3)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="engine threads (--threads)")
    p.add_argument("--seconds", type=float, default=10.0,
                   help="length of the 1080p clip for chain and filter speed (default 10 s; "
                   "the chain time includes about 1.5 s of start-up)")
    p.add_argument("--clip", default=None, metavar="VIDEO",
                   help="a real clip for the chain speed, scaled to 1080p and looped to "
                   "--seconds (default: testsrc2)")
    p.add_argument("--memory-size", default="160x120",
                   help="frame size of the 10 s / 100 s memory streams (default 160x120)")
    p.add_argument("--quick", action="store_true",
                   help="1 s clips and a 2 s / 20 s memory pair (a smoke run)")
    p.add_argument("--only", choices=("chain", "filter", "memory"), action="append",
                   help="run only these parts (repeatable)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    a = p.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        print("error: ffmpeg is not installed", file=sys.stderr)
        return 1
    if a.quick:
        a.seconds = 1.0
    parts = a.only or ["chain", "filter", "memory"]
    results: dict = {"method": a.method, "alpha": a.alpha, "band": list(a.band),
                     "device": a.device, "threads": a.threads}
    with tempfile.TemporaryDirectory(prefix="vmm-bench-") as tmp:
        if "chain" in parts:
            results["chain"] = r = bench_chain(a, Path(tmp))
            print(f"chain 1080p, {r['frames']} frames: plain ffmpeg {r['plain_ffmpeg_fps']:.1f} "
                  f"fps, vmm-ffmpeg {r['chain_fps']:.2f} fps -> ratio "
                  f"{r['chain_over_plain']:.3f} (target >= 0.5); peak RSS "
                  f"{r['chain_peak_rss_mib']} MiB", flush=True)
            print(f"  the same transcode of the magnified output: {r['plain_of_output_fps']:.1f} "
                  f"fps -> chain / that {r['chain_over_plain_of_output']:.3f}; a filter that "
                  f"cost nothing would reach {r['encoder_ceiling']:.3f}", flush=True)
        if "filter" in parts:
            results["filter"] = r = bench_filter(a, Path(tmp))
            print(f"filter alone 1080p y4m, {r['frames']} frames: vmm-filter "
                  f"{r['filter_fps']:.2f} fps, identity I/O {r['identity_io_fps']:.1f} fps -> "
                  f"ratio {r['filter_over_identity_io']:.3f}; peak RSS "
                  f"{r['filter_peak_rss_mib']} MiB", flush=True)
    if "memory" in parts:
        results["memory"] = r = bench_memory(a, (2, 20) if a.quick else (10, 100))
        keys = [k for k in r if k.endswith("s") and isinstance(r[k], dict)]
        desc = ", ".join(f"{k}: {r[k]['peak_rss_mib']} MiB ({r[k]['fps']:.1f} fps)" for k in keys)
        print(f"memory {r['size']}: {desc} -> ratio {r['rss_long_over_short']:.3f} "
              "(must be ~1)", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
