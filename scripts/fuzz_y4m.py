"""In-process fuzzer for the y4m parser and the ``vmm-filter`` loop.

Each input is a y4m stream, valid or mutated, pushed through ``Y4MReader`` and
``filter_stream`` with a real engine magnifier (``make_magnifier``). An input passes when it
either runs or raises :class:`VMMError`; any other exception, or an input that takes longer
than ``--timeout`` seconds, is a failure. The inputs are:

- every truncation point (each byte) of the header and first two frames of a small stream in
  every colour space (one case in four, in a seeded order);
- mutated streams: header tokens (sizes, rates, interlace, aspect, colour tags and bit
  depths, extensions, unknown or duplicated tokens), absurd sizes, ``FRAME`` markers,
  flipped, inserted and deleted bytes, random truncation.

Usage (the full run: 215 s, 466 inputs/s, on the shared 2-core machine)::

    .venv/bin/python scripts/fuzz_y4m.py -n 100000 [--seed 0] [--save-failures DIR]

The test suite runs a 2,000-input slice (``tests/test_fuzz_y4m.py``).
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ffmpeg_filter.cli import filter_stream, make_magnifier  # noqa: E402
from ffmpeg_filter.y4m import (  # noqa: E402
    Y4MReader,
    Y4MWriter,
    parse_header,
    supported_colorspaces,
)
from napari_vmm.core.errors import VMMError  # noqa: E402

#: Values a header token is replaced with (sizes, rates, the other fields).
SIZE_VALUES = ["0", "-1", "1", "2", "7", "8", "9", "15", "17", "63", "65", "4097", "16384",
               "46341", "65536", "100000", "2147483647", "2147483648", "4294967304",
               "9223372036854775808", "1" + "0" * 30, "", "x", "1.5", "1e3", "+8", "0x10",
               "1_6", " 8", "８"]
RATE_VALUES = ["30:1", "30000:1001", "0:1", "1:0", "0:0", "-30:1", "30:-1", "30", ":", "a:b",
               "1:1000000", "1000000:1", "30:1:1", "", "1e9:1", "3" * 40 + ":1"]
OTHER_TOKENS = ["Ip", "It", "Ib", "Im", "I?", "Ix", "I", "A1:1", "A0:0", "A", "Ax:y",
                "XYSCSS=420JPEG", "XCOLORRANGE=FULL", "XCOLORRANGE=LIMITED", "XCOLORRANGE=",
                "X", "Z", "Q12", "\t", "W", "H", "F", "C", "\x00", "\xff", "é"]
BAD_TAGS = ["420p10alpha", "444p8", "mono8", "422p11", "yuv420p", "444alpha16", "420p",
            "mono1", "444p10alpha", "411p10", "420jpegp10", "4:2:0", "", "p10", "444p", "mono9x",
            "444p16alpha", "420mpeg2p12", "mono016", "422p010"]
FRAME_LINES = [b"FRAM\n", b"frame\n", b"FRAME", b"FRAME Ixyz\n", b"FRAME " + b"x" * 5000 + b"\n",
               b"\nFRAME\n", b"FRAME\r\n", b"FRAME\nFRAME\n", b"FRAMEFRAME\n", b"XRAME\n",
               b"FRAME\x00\n", b"", b"FRAME \n", b"FRAME" + b" " * 4100]
TAGS = supported_colorspaces()


def stream(tag: str, width: int, height: int, frames: int, rng: np.random.Generator,
           rate: str = "30:1", extra: str = "") -> bytes:
    """A valid y4m stream of random frames."""
    header = f"YUV4MPEG2 W{width} H{height} F{rate} Ip A1:1 C{tag}{extra}\n".encode()
    h = parse_header(header)
    body = b"".join(
        b"FRAME\n" + rng.integers(0, h.colorspace.max_value + 1, h.samples_per_frame)
        .astype(h.colorspace.dtype).tobytes() for _ in range(frames))
    return header + body


def truncation_cases() -> list[tuple[str, bytes]]:
    """Every prefix of a 10x9, two-frame stream in each colour space (header + 2 frames)."""
    rng = np.random.default_rng(1)
    cases = []
    for tag in TAGS:
        data = stream(tag, 10, 9, 2, rng)
        cases += [(f"truncate {tag} at {k}/{len(data)}", data[:k]) for k in range(len(data))]
    return cases


def _mutate_header(header: bytes, rng: np.random.Generator) -> bytes:
    tokens = header.rstrip(b"\n").decode("latin-1").split(" ")
    op = rng.integers(7)
    i = int(rng.integers(1, len(tokens))) if len(tokens) > 1 else 1
    if op == 0 and len(tokens) > 1:  # absurd or malformed size
        key = "W" if rng.random() < 0.5 else "H"
        tokens = [f"{key}{rng.choice(SIZE_VALUES)}" if t.startswith(key) else t for t in tokens]
    elif op == 1:  # frame rate
        tokens = [f"F{rng.choice(RATE_VALUES)}" if t.startswith("F") else t for t in tokens]
    elif op == 2:  # colour tag and bit depth
        tag = rng.choice(TAGS + BAD_TAGS)
        tokens = [f"C{tag}" if t.startswith("C") else t for t in tokens]
    elif op == 3 and len(tokens) > 1:  # drop a token
        del tokens[i]
    elif op == 4:  # duplicate or insert a token
        tokens.insert(i, rng.choice(tokens[1:] + OTHER_TOKENS) if len(tokens) > 1
                      else rng.choice(OTHER_TOKENS))
    elif op == 5:  # separators
        sep = rng.choice(["  ", "\t", "", " \r"])
        return (sep.join(tokens) + rng.choice(["\n", "\r\n", "", " \n"])).encode("utf-8")
    else:  # change the magic
        tokens[0] = rng.choice(["YUV4MPEG", "YUV4MPEG2X", "yuv4mpeg2", "YUV4MPEG3", ""])
    return (" ".join(tokens) + "\n").encode("utf-8")


def mutate(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """One to three random mutations of a stream; returns (what was done, the bytes)."""
    done = []
    for _ in range(int(rng.integers(1, 4))):
        nl = data.find(b"\n")
        header, body = (data[: nl + 1], data[nl + 1:]) if nl >= 0 else (data, b"")
        op = int(rng.integers(8))
        if op <= 2:
            data = _mutate_header(header, rng) + body
            done.append("header")
        elif op == 3:  # a FRAME marker
            starts = [k for k in range(len(data)) if data.startswith(b"FRAME", k)] or [len(data)]
            k = int(rng.choice(starts))
            end = data.find(b"\n", k)
            end = len(data) if end < 0 else end + 1
            data = data[:k] + bytes(rng.choice(FRAME_LINES)) + data[end:]
            done.append("frame-marker")
        elif op == 4 and data:  # flip bytes
            arr = bytearray(data)
            for k in rng.integers(0, len(arr), int(rng.integers(1, 5))):
                arr[k] = int(rng.integers(256))
            data = bytes(arr)
            done.append("flip")
        elif op == 5:  # insert bytes
            k = int(rng.integers(len(data) + 1))
            ins = rng.choice([b"\n", b"FRAME\n", b"\x00" * 7, b" ",
                              rng.bytes(int(rng.integers(1, 64)))])
            data = data[:k] + bytes(ins) + data[k:]
            done.append("insert")
        elif op == 6 and data:  # delete a range
            k = int(rng.integers(len(data)))
            data = data[:k] + data[k + int(rng.integers(1, 64)):]
            done.append("delete")
        else:  # truncate, or append garbage
            if rng.random() < 0.7 and data:
                data = data[: int(rng.integers(len(data)))]
                done.append("truncate")
            else:
                data = data + rng.bytes(int(rng.integers(1, 200)))
                done.append("append")
    return "+".join(done), data


def random_case(rng: np.random.Generator) -> tuple[str, bytes]:
    """A valid small stream in a random colour space, mutated."""
    tag = str(rng.choice(TAGS))
    width, height = (int(v) for v in rng.choice([1, 2, 3, 7, 8, 9, 12, 16, 17, 24], 2))
    frames = int(rng.integers(0, 4))
    extra = str(rng.choice(["", " XCOLORRANGE=FULL", " XYSCSS=420JPEG", " XCOLORRANGE=LIMITED"]))
    rate = str(rng.choice(["30:1", "30000:1001", "240:1", "25:1"]))
    data = stream(tag, width, height, frames, rng, rate, extra)
    if rng.random() < 0.1:
        return f"valid {tag} {width}x{height} x{frames}", data
    what, data = mutate(data, rng)
    return f"{what} of {tag} {width}x{height} x{frames}", data


def cases(n: int, seed: int = 0) -> Iterator[tuple[int, str, bytes]]:
    """``n`` inputs: one in four a truncation point (seeded order), the rest random mutants."""
    rng = np.random.default_rng(seed)
    trunc = truncation_cases()
    order = rng.permutation(len(trunc))
    for i in range(n):
        if i % 4 == 0:
            name, data = trunc[order[(i // 4) % len(trunc)]]
        else:
            name, data = random_case(rng)
        yield i, name, data


#: Magnifier settings cycled through (the causal filters, a latency, the static mode).
SETTINGS = [
    dict(method="riesz"),
    dict(method="linear", temporal="fir"),
    dict(method="phase", temporal="iir", band=(1.0, 5.0)),
    dict(method="riesz", temporal="ideal", window=4, latency=2),
    dict(method="linear", mode="static", temporal="none"),
]


class Hang(Exception):
    """An input took longer than the time limit."""


def run_case(data: bytes, setting: dict, chunk: int | None = None,
             raise_errors: bool = False) -> str:
    """Filter one stream in process; ``"ok"`` or ``"error"`` (a VMMError), else it raises.

    With ``raise_errors`` a VMMError is raised too.
    """
    params = dict(method="riesz", alpha=10.0, band=(0.5, 3.0), fps=None,
                  temporal="butterworth", mode="temporal", reference=0, order=2, taps=None,
                  device="cpu")
    params.update(setting)
    try:
        reader = Y4MReader(io.BytesIO(data))
        magnifier = make_magnifier(params, reader.header)
        writer = Y4MWriter(io.BytesIO(), reader.header)
        filter_stream(reader, writer, magnifier, chunk)
    except VMMError:
        if raise_errors:
            raise
        return "error"
    return "ok"


@dataclass
class Report:
    """What a fuzzing run saw."""

    inputs: int = 0
    outcomes: Counter = field(default_factory=Counter)
    failures: list[tuple[int, str, str, bytes]] = field(default_factory=list)
    seconds: float = 0.0
    slowest: float = 0.0


def _alarm(signum, frame):
    raise Hang()


def fuzz(n: int, seed: int = 0, timeout: float = 10.0, max_failures: int = 50) -> Report:
    """Run ``n`` inputs; collect every exception other than VMMError, and hangs."""
    report = Report()
    # Warm up untimed: the first case imports torch and builds the engine (seconds).
    for setting in SETTINGS:
        run_case(stream("420jpeg", 16, 16, 2, np.random.default_rng(0)), setting)
    old = signal.signal(signal.SIGALRM, _alarm)
    start = time.perf_counter()
    try:
        for i, name, data in cases(n, seed):
            t0 = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                outcome = run_case(data, SETTINGS[i % len(SETTINGS)], chunk=1 + i % 3)
            except Hang:
                outcome = "hang"
            except Exception as exc:  # noqa: BLE001 - a failure of the fuzzed code
                outcome = f"{type(exc).__name__}"
                if len(report.failures) < max_failures:
                    report.failures.append((i, name, f"{type(exc).__name__}: {exc}", data))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            if outcome == "hang" and len(report.failures) < max_failures:
                report.failures.append((i, name, f"hang (> {timeout} s)", data))
            report.slowest = max(report.slowest, time.perf_counter() - t0)
            report.outcomes[outcome] += 1
            report.inputs += 1
    finally:
        signal.signal(signal.SIGALRM, old)
        report.seconds = time.perf_counter() - start
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100_000, help="inputs (default 100000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per input")
    parser.add_argument("--save-failures", metavar="DIR",
                        help="write each failing input to DIR (for the regression corpus)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    report = fuzz(args.n, args.seed, args.timeout)
    print(f"{report.inputs} inputs in {report.seconds:.0f} s "
          f"({report.inputs / max(report.seconds, 1e-9):.0f}/s, slowest {report.slowest:.2f} s): "
          + ", ".join(f"{k} {v}" for k, v in sorted(report.outcomes.items())))
    for i, name, error, data in report.failures:
        print(f"FAIL #{i} ({name}): {error}")
        if args.save_failures:
            os.makedirs(args.save_failures, exist_ok=True)
            with open(os.path.join(args.save_failures, f"case{i:06d}.y4m"), "wb") as f:
                f.write(data)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
