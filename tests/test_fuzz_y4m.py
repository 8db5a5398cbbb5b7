"""Fuzzing the y4m parser and the vmm-filter loop: a 2,000-input slice, every truncation point,
the corpus of inputs that found bugs, and the memory check before any frame is allocated.

The full run (10^5 inputs) is ``python scripts/fuzz_y4m.py -n 100000``.
"""

from __future__ import annotations

import importlib.util
import io
import json
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

import ffmpeg_filter.y4m as y4m
from ffmpeg_filter import cli
from napari_vmm.core.errors import VMMError

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).parent / "fuzz_corpus" / "y4m"


def _load_fuzzer():
    spec = importlib.util.spec_from_file_location("fuzz_y4m", ROOT / "scripts" / "fuzz_y4m.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


fuzz_y4m = _load_fuzzer()


@pytest.fixture
def time_limit():
    """``with time_limit(s):`` raises the fuzzer's Hang after ``s`` seconds."""
    old = signal.signal(signal.SIGALRM, fuzz_y4m._alarm)

    class Limit:
        def __init__(self, seconds: float) -> None:
            self.seconds = seconds

        def __enter__(self):
            signal.setitimer(signal.ITIMER_REAL, self.seconds)

        def __exit__(self, *exc):
            signal.setitimer(signal.ITIMER_REAL, 0)

    yield Limit
    signal.signal(signal.SIGALRM, old)


def test_fuzz_slice_raises_only_vmmerror():
    report = fuzz_y4m.fuzz(2000, seed=23, timeout=10.0)
    assert report.inputs == 2000
    assert report.failures == [], "\n".join(f"#{i} {n}: {e}" for i, n, e, _ in report.failures)
    # The slice exercises both outcomes, not only the parser's refusals.
    assert report.outcomes["ok"] > 50 and report.outcomes["error"] > 1000


@pytest.mark.parametrize("tag", ["420jpeg", "422p10", "444alpha", "mono"])
def test_every_truncation_point(tag):
    """Each prefix runs exactly when it ends on a frame boundary, else gives a VMMError."""
    data = fuzz_y4m.stream(tag, 10, 9, 2, np.random.default_rng(0))
    header = y4m.parse_header(data[: data.index(b"\n") + 1])
    header_len = len(header.to_bytes())
    boundaries = {header_len + k * (6 + header.frame_bytes) for k in range(3)}
    for k in range(len(data) + 1):
        outcome = fuzz_y4m.run_case(data[:k], {"method": "linear"}, chunk=1)
        assert outcome == ("ok" if k in boundaries else "error"), k


@pytest.mark.parametrize("case", json.loads((CORPUS / "cases.json").read_text()),
                         ids=lambda c: c["file"])
def test_corpus_of_bug_finding_inputs(case, time_limit):

    data = (CORPUS / case["file"]).read_bytes()
    with time_limit(10.0), pytest.raises(VMMError):
        assert fuzz_y4m.run_case(data, case["setting"], raise_errors=True) is None


def test_huge_frame_refused_by_the_cli(tmp_path, capsys):
    src = tmp_path / "huge.y4m"
    src.write_bytes((CORPUS / "huge_dims_memoryerror.y4m").read_bytes())
    out = tmp_path / "out.y4m"
    assert cli.main(["-i", str(src), "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "160000x160000 is too large" in err[0], err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["huge.y4m"]


def test_frames_beyond_available_memory_are_refused_before_allocation(monkeypatch):
    header = y4m.parse_header(b"YUV4MPEG2 W4000 H3000 F30:1 C444p16\n")
    monkeypatch.setattr(y4m, "available_memory", lambda: 500 * 2**20)

    def no_allocation(*args, **kwargs):
        raise AssertionError("a frame buffer was allocated")

    monkeypatch.setattr(cli, "FrameBuffer", no_allocation)


    stream = io.BytesIO(header.to_bytes() + b"FRAME\n")
    reader = y4m.Y4MReader(stream)
    with pytest.raises(VMMError, match=r"4000x3000 yuv444p16le .* only 0\.5 GiB of memory"):
        cli.filter_stream(reader, y4m.Y4MWriter(io.BytesIO(), header), object(), chunk=2)
    # The same frames fit when the memory is there.
    y4m.check_memory(header, 3, cli.MIN_ENGINE_BYTES_PER_PIXEL, available=64 * 2**30)


@pytest.mark.parametrize("field", [b"F" + b"3" * 40 + b":1", b"F30:4294967296"])
def test_frame_rate_beyond_32_bits_is_malformed(field):
    with pytest.raises(VMMError, match="malformed y4m header field"):
        y4m.parse_header(b"YUV4MPEG2 W16 H16 " + field + b" C420jpeg\n")
