"""A long clip (default 10,000 frames) through ``vmm magnify`` and the napari Dask route:
memory over time, progress all the way, and how fast a cancel at a random moment stops.

    .venv/bin/python benchmarks/bench_longclip.py [--frames 10000] [--size 160x120]
        [--method linear] [--cancels 4] [--seed 0] [--quick]

The clip is generated on the fly (ffmpeg's lavfi ``testsrc2``, x264) in a temporary folder
that is removed at the end; nothing is stored. Two routes, each in its own process (its own
``HOME``) so that its RSS is its own:

* ``cli``: ``vmm magnify CLIP OUT.mp4`` with stderr on a pseudo-terminal, as a user sees it;
  the tqdm bar's redraws are the progress ticks. A cancel is SIGINT (Ctrl-C); it is stopped
  when the ``interrupted`` line is out and no temporary file is left in the output folder
  (the process then still unloads torch before it exits; that time is reported apart).
* ``napari-dask``: what the Magnify widget's Run does for a video layer with a Zarr output,
  without Qt: the napari reader's dask array in a ``napari.layers.Image``, ``prepare_job``,
  then the ``dask_job`` generator in a worker thread (as superqt runs it). A cancel is the
  widget's: ``cancel.set()`` then ``quit``; it is stopped when the generator has ended, the
  helper thread has finished (the pending blocks cancelled) and no partial store is left.

RSS is sampled every 0.2 s (``psutil``, the process and its children). "RSS at 10 %" is the
sample when the progress first reaches 10 % of the frames, "RSS at the end" the last one
before the process ends; their ratio is ~1 at constant memory. Cancel moments are drawn
uniformly between the first progress tick and 80 % of the full run's duration.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

LIMIT_S = 2.0  # the promise: a cancel stops the work within this


def make_clip(path: str, frames: int, size: str) -> None:
    """Encode ``frames`` frames of lavfi testsrc2 at 30 fps into ``path``."""
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={size}:rate=30", "-frames:v", str(frames), "-c:v",
                    "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", path], check=True)


def tree_rss(proc: psutil.Process) -> int:
    """Resident bytes of ``proc`` and its children (0 once gone)."""
    total = 0
    try:
        for p in [proc, *proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
    except psutil.Error:
        pass
    return total


class Run:
    """One child process: its RSS samples and its progress ticks, collected by threads."""

    def __init__(self, cmd: list[str], env: dict[str, str], pty_err: bool) -> None:
        self.samples: list[tuple[float, int, int]] = []  # (t, rss, progress done)
        self.ticks: list[tuple[float, int, int]] = []  # (t, done, total)
        self.lines: list[tuple[float, str]] = []
        self.t0 = time.monotonic()
        if pty_err:
            import pty

            master, slave = pty.openpty()
            import fcntl
            import struct
            import termios

            # a 0x0 terminal gets no tqdm bar at all: give it 24 rows of 100 columns
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
            self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=slave)
            os.close(slave)
            self._fd = master
        else:
            self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         text=True, bufsize=1)
            self._fd = None
        self.ps = psutil.Process(self.proc.pid)
        threading.Thread(target=self._sample, daemon=True).start()
        threading.Thread(target=self._read, daemon=True).start()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def done(self) -> int:
        return self.ticks[-1][1] if self.ticks else 0

    def _sample(self) -> None:
        while self.proc.poll() is None:
            rss = tree_rss(self.ps)
            if rss:
                self.samples.append((self.now(), rss, self.done()))
            time.sleep(0.2)

    def _line(self, text: str) -> None:
        self.lines.append((self.now(), text))
        m = re.search(r"(\d+)/(\d+)", text)
        if m and ("magnify" in text or text.startswith("tick")):
            done, total = int(m.group(1)), int(m.group(2))
            if not self.ticks or (done, total) != self.ticks[-1][1:]:
                self.ticks.append((self.now(), done, total))

    def _read(self) -> None:
        if self._fd is None:
            for line in self.proc.stdout:
                self._line(line.strip())
            return
        buf = b""
        while True:
            try:
                data = os.read(self._fd, 4096)
            except OSError:
                break
            if not data:
                break
            buf += data
            *parts, buf = re.split(rb"[\r\n]", buf)
            for part in parts:
                if part.strip():
                    self._line(part.decode(errors="replace"))
        os.close(self._fd)

    def wait_for(self, pred, timeout: float) -> float | None:
        """Seconds (since start) when ``pred()`` first held, None after ``timeout``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return self.now()
            time.sleep(0.01)
        return None


def summary(run: Run, frames: int) -> dict:
    """RSS at 10 % and at the end, peak, progress ticks, wall time."""
    total = run.ticks[-1][2] if run.ticks else frames  # frames, or Dask blocks
    at10 = next((rss for _, rss, d in run.samples if 10 * d >= total), None)
    end = run.samples[-1][1] if run.samples else None
    mib = 1 / 2**20
    return {"wall_s": round(run.now(), 1),
            "rss_10pct_mib": round(at10 * mib, 1) if at10 else None,
            "rss_end_mib": round(end * mib, 1) if end else None,
            "ratio_end_10pct": round(end / at10, 3) if at10 and end else None,
            "peak_mib": round(max(r for _, r, _ in run.samples) * mib, 1),
            "progress_ticks": len(run.ticks),
            "last_progress": f"{run.ticks[-1][1]}/{run.ticks[-1][2]}" if run.ticks else None,
            "rc": run.proc.returncode}


def leftovers(folder: str) -> list[str]:
    return sorted(p for p in os.listdir(folder) if p != "clip.mp4")


def cli_cmd(clip: str, out: str, method: str) -> list[str]:
    return [sys.executable, "-m", "napari_vmm", "magnify", clip, out, "--method", method,
            "--alpha", "10", "--band", "0.5", "3", "-y"]


def napari_cmd(clip: str, out: str, method: str) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), "--child-napari", clip, out, method]


def full_run(cmd: list[str], env: dict, pty_err: bool, frames: int) -> tuple[dict, Run]:
    run = Run(cmd, env, pty_err)
    run.proc.wait()
    time.sleep(0.3)  # the reader thread drains the last redraw
    return summary(run, frames), run


def wait_then_sleep(run: Run, delay: float) -> dict | None:
    """Wait for the first progress tick, then ``delay`` s; a result dict if the run ended."""
    started = run.wait_for(lambda: run.ticks or run.proc.poll() is not None, 300)
    if started is None or run.proc.poll() is not None:
        run.proc.kill()
        return {"error": "never started"}
    time.sleep(delay)
    if run.proc.poll() is not None:
        return {"finished_before_cancel": True}
    return None


def cancel_cli(cmd: list[str], env: dict, out_dir: str, delay: float) -> dict:
    """SIGINT ``delay`` s after the first progress tick; times until stopped and exited."""
    run = Run(cmd, env, True)
    early = wait_then_sleep(run, delay)
    if early is not None:
        return early
    t_sig = run.now()
    run.proc.send_signal(signal.SIGINT)
    said = run.wait_for(lambda: any("interrupted" in s for _, s in run.lines), 60)
    clean = run.wait_for(lambda: not leftovers(out_dir), 60)
    try:
        run.proc.wait(60)
    except subprocess.TimeoutExpired:
        run.proc.kill()
    exited = run.now()
    left = leftovers(out_dir)
    stopped = max(said or exited, clean or exited)
    return {"at_progress": run.done(), "stop_s": round(stopped - t_sig, 3),
            "exit_s": round(exited - t_sig, 3), "rc": run.proc.returncode, "left": left}


def cancel_napari(cmd: list[str], env: dict, out_dir: str, delay: float) -> dict:
    """The widget's cancel ``delay`` s after the first tick; the child times the stop."""
    run = Run(cmd, env, False)
    early = wait_then_sleep(run, delay)
    if early is not None:
        return early
    t_req = run.now()
    run.proc.stdin.write("cancel\n")
    run.proc.stdin.flush()
    run.wait_for(lambda: any(s.startswith("stopped") for _, s in run.lines), 60)
    try:
        run.proc.wait(60)
    except subprocess.TimeoutExpired:
        run.proc.kill()
    line = next((s for _, s in run.lines if s.startswith("stopped")), "stopped nan")
    work = next((s for _, s in run.lines if s.startswith("work-")), "work-stopped nan")
    return {"at_progress": run.done(), "stop_s": round(float(line.split()[1]), 3),
            "work_stop_s": round(float(work.split()[1]), 3),
            "exit_s": round(run.now() - t_req, 3), "rc": run.proc.returncode,
            "left": leftovers(out_dir)}


def child_napari(clip: str, out: str, method: str) -> int:
    """The widget's Run on the Dask route without Qt; stdin ``cancel`` is the Cancel button."""
    import napari

    from napari_vmm._napari.jobs import dask_job, prepare_job
    from napari_vmm._reader import read_video
    from napari_vmm.core.errors import Cancelled
    from napari_vmm.core.params import MagnifyParams

    data, kwargs, _ = read_video(clip)[0]
    layer = napari.layers.Image(data, **kwargs)
    params = MagnifyParams(method=method, alpha=10, band=(0.5, 3.0), fps=30.0)
    job = prepare_job(layer, params, zarr_output=out)
    scheduler, zarr_out = job.dask
    cancel = threading.Event()
    state = {"ended": None}

    def worker() -> None:  # superqt's GeneratorWorker: stops at the next yield once quit
        gen = dask_job(job.frames, job.out, zarr_out, scheduler, job.kwargs, cancel)
        try:
            for value in gen:
                if isinstance(value, tuple):
                    print(f"tick {value[0]}/{value[1]}", flush=True)
                if state.get("quit"):
                    gen.close()
                    break
        except Cancelled:
            pass
        state["ended"] = time.monotonic()

    th = threading.Thread(target=worker, daemon=True)
    th.start()

    def listen() -> None:
        for line in sys.stdin:
            if line.strip() == "cancel":
                t0 = time.monotonic()
                cancel.set()
                state["quit"] = True
                th.join()
                while any(h.name.startswith("vmm-dask_") for h in threading.enumerate()):
                    time.sleep(0.005)  # the pool threads computing blocks have stopped
                print(f"work-stopped {time.monotonic() - t0:.4f}", flush=True)
                for h in threading.enumerate():  # the helper removes the partial store
                    if h.name == "vmm-dask-job":
                        h.join()
                parent = Path(out).parent
                while any(p.name.startswith(".") for p in parent.iterdir()):
                    time.sleep(0.005)  # the partial store is removed
                print(f"stopped {time.monotonic() - t0:.4f}", flush=True)
                os._exit(130)

    threading.Thread(target=listen, daemon=True).start()
    th.join()
    while cancel.is_set():  # the listener times the cleanup, then exits
        time.sleep(1)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--size", default="160x120", help="WxH of the generated clip")
    ap.add_argument("--method", default="linear")
    ap.add_argument("--cancels", type=int, default=4, help="random cancel moments per route")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--routes", default="cli,napari-dask")
    ap.add_argument("--quick", action="store_true", help="smoke test: 300 frames, 1 cancel")
    ap.add_argument("--child-napari", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_napari:
        return child_napari(*args.child_napari)
    if args.quick:
        args.frames, args.cancels = 300, 1
    if shutil.which("ffmpeg") is None:
        print("ffmpeg is needed", file=sys.stderr)
        return 1
    rng = random.Random(args.seed)
    load = os.getloadavg()
    report: dict = {"frames": args.frames, "size": args.size, "method": args.method,
                    "load_before": [round(x, 2) for x in load]}
    with tempfile.TemporaryDirectory(prefix="vmm-longclip-") as tmp:
        env = {**os.environ, "HOME": tmp, "XDG_CONFIG_HOME": os.path.join(tmp, ".config"),
               "XDG_CACHE_HOME": os.path.join(tmp, ".cache"), "PYTHONUNBUFFERED": "1"}
        clip = os.path.join(tmp, "clip.mp4")
        make_clip(clip, args.frames, args.size)
        for route in args.routes.split(","):
            out_dir = os.path.join(tmp, route)
            os.mkdir(out_dir)
            out = os.path.join(out_dir, "out.mp4" if route == "cli" else "out.zarr")
            cmd = (cli_cmd if route == "cli" else napari_cmd)(clip, out, args.method)
            full, run = full_run(cmd, env, route == "cli", args.frames)
            working_s = run.now() - (run.ticks[0][0] if run.ticks else 0.0)
            shutil.rmtree(out, ignore_errors=True) if route != "cli" else os.remove(out)
            cancels = []
            for _ in range(args.cancels):
                delay = rng.uniform(0, 0.8 * working_s)
                fn = cancel_cli if route == "cli" else cancel_napari
                cancels.append({"delay_s": round(delay, 2), **fn(cmd, env, out_dir, delay)})
                for p in leftovers(out_dir):
                    q = os.path.join(out_dir, p)
                    shutil.rmtree(q) if os.path.isdir(q) else os.remove(q)
            stops = sorted(c["stop_s"] for c in cancels if "stop_s" in c)
            report[route] = {**full, "cancels": cancels,
                             "cancel_max_s": max(stops) if stops else None,
                             "cancel_median_s": stops[len(stops) // 2] if stops else None}
            print(json.dumps({route: report[route]}), flush=True)
    report["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=1))
    bad = [r for r in args.routes.split(",")
           if (report[r]["cancel_max_s"] or 0) > LIMIT_S
           or any(c.get("left") for c in report[r]["cancels"])]
    if bad:
        print(f"cancel slower than {LIMIT_S} s or files left: {bad}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
