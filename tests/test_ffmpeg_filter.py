"""vmm-filter (y4m pipe filter) and vmm-ffmpeg (file-to-file wrapper).

The unit tests drive the filter loop with small fake magnifiers; the ``ffmpeg`` tests run real
ffmpeg on tiny lavfi clips (64x48, 30 frames) and the real engine.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from ffmpeg_filter import cli, wrap
from ffmpeg_filter.y4m import FrameBuffer, Y4MReader, Y4MWriter, parse_header
from napari_vmm.core.errors import VMMError

ROOT = Path(__file__).resolve().parents[1]
HAVE_FFMPEG = shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None
needs_ffmpeg = pytest.mark.skipif(not HAVE_FFMPEG, reason="ffmpeg/ffprobe not installed")
# One engine thread: the frames are tiny, and on a busy 2-core machine torch's thread pool
# costs far more than it gains.
MAGNIFY = ["--method", "riesz", "--alpha", "20", "--band", "0.5", "3", "--threads", "1"]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------- helpers
def y4m_bytes(tag: str, n: int, w: int = 16, h: int = 12, seed: int = 0,
              extra: str = "XCOLORRANGE=LIMITED") -> bytes:
    """An in-memory y4m stream of ``n`` random frames."""
    header = parse_header(f"YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C{tag} {extra}\n".encode())
    rng = np.random.default_rng(seed)
    body = b"".join(
        b"FRAME\n"
        + rng.integers(0, header.colorspace.max_value + 1, header.samples_per_frame)
        .astype(header.colorspace.dtype).tobytes()
        for _ in range(n)
    )
    return header.to_bytes() + body


def read_all(data: bytes) -> tuple[object, FrameBuffer]:
    reader = Y4MReader(io.BytesIO(data))
    buf = FrameBuffer(reader.header, 10_000)
    n = reader.read_into(buf)
    return reader.header, [p[:n] for p in buf.planes]


class DelayedPlusOne:
    """A fake magnifier with a latency: returns luma + 1, ``delay`` frames late."""

    def __init__(self, delay: int) -> None:
        self.delay = delay
        self.held: list[np.ndarray] = []

    def push(self, frames):
        self.held += [f + 1 for f in frames]
        ready = max(0, len(self.held) - self.delay)
        out, self.held = self.held[:ready], self.held[ready:]
        return np.array(out).reshape(-1, *frames.shape[1:])

    def flush(self):
        out, self.held = self.held, []
        return np.array(out)


class FloatIdentity:
    """Fake engine that returns float frames unchanged (float in, float out)."""

    def push(self, frames):
        return np.asarray(frames, dtype=np.float32).copy()

    def flush(self):
        return np.empty((0, 1, 1), np.float32)


def run_filter(data: bytes, magnifier, chunk: int) -> bytes:
    reader = Y4MReader(io.BytesIO(data))
    out = io.BytesIO()
    n = cli.filter_stream(reader, Y4MWriter(out, reader.header), magnifier, chunk)
    assert n == reader.frames_read
    return out.getvalue()


# --------------------------------------------------------------------------- filter loop
@pytest.mark.parametrize("delay, chunk", [(0, 4), (5, 3), (7, 1), (2, 16)])
def test_one_output_frame_per_input_frame_in_order_with_a_latency(delay, chunk):
    data = y4m_bytes("420jpeg", 11)
    out = run_filter(data, cli.LumaMagnifier(DelayedPlusOne(delay), 8), chunk)
    h_in, planes_in = read_all(data)
    h_out, planes_out = read_all(out)
    assert h_out.to_bytes() == h_in.to_bytes()
    assert len(planes_out[0]) == 11
    np.testing.assert_array_equal(planes_out[0], (planes_in[0] + 1).astype(np.uint8))
    for cin, cout in zip(planes_in[1:], planes_out[1:], strict=True):
        np.testing.assert_array_equal(cin, cout)  # chroma untouched


@pytest.mark.parametrize("tag", ["420p10", "422p12", "444p16", "mono10", "mono16"])
def test_high_bit_depth_luma_is_restored_exactly(tag):
    data = y4m_bytes(tag, 5)
    depth = parse_header(data.split(b"\n")[0]).colorspace.bit_depth
    out = run_filter(data, cli.LumaMagnifier(FloatIdentity(), depth), chunk=2)
    assert out == data


def test_luma_goes_to_the_engine_normalised_and_comes_back_clipped():
    seen = []

    class Doubler(FloatIdentity):
        def push(self, frames):
            seen.append(frames.copy())
            return frames * 2

    lm = cli.LumaMagnifier(Doubler(), 10)
    luma = np.array([[[0, 1023], [600, 100]]], dtype="<u2")
    out = lm.push(luma)
    assert seen[0].dtype == np.float32 and seen[0].max() == pytest.approx(1.0)
    assert out.dtype == np.dtype("<u2")
    assert out.tolist() == [[[0, 1023], [1023, 200]]]


def test_magnifier_returning_too_many_frames_is_an_error():
    class TooMany(FloatIdentity):
        def push(self, frames):
            return np.concatenate([frames, frames])

    with pytest.raises(VMMError, match="more frames"):
        run_filter(y4m_bytes("mono", 3), cli.LumaMagnifier(TooMany(), 8), chunk=3)


# --------------------------------------------------------------------------- sliding ideal
def _window_recorder(calls):
    def magnify_window(frames):
        calls.append(len(frames))
        # Every output frame carries the index of the last frame of its window.
        return np.repeat(frames[-1:], len(frames), axis=0)

    return magnify_window


@pytest.mark.parametrize(
    "window, latency, hop, n, chunk",
    [(8, 4, 1, 20, 3), (8, 4, 2, 20, 5), (6, 0, 3, 13, 4), (10, 5, None, 7, 2)],
)
def test_sliding_ideal_window_has_the_latency_and_emits_every_frame_once(window, latency, hop,
                                                                         n, chunk):
    calls: list[int] = []
    sw = cli.SlidingWindowIdeal(_window_recorder(calls), window, latency, hop)
    frames = np.arange(n, dtype=np.float32)[:, None, None] * np.ones((1, 8, 8), np.float32)
    outs = [sw.push(frames[i:i + chunk]) for i in range(0, n, chunk)] + [sw.flush()]
    out = np.concatenate(outs)[:, 0, 0]
    assert len(out) == n
    hop = sw.hop
    for t, end in enumerate(out):
        # each output saw `latency` future frames (all that exist near the end) ...
        assert end >= min(t + latency, n - 1)
        # ... and not more than latency + hop - 1
        assert end <= t + latency + hop - 1 or end == n - 1
    assert max(calls) <= window  # memory: never more than `window` frames


def test_sliding_ideal_identity_is_exact():
    sw = cli.SlidingWindowIdeal(lambda f: f.copy(), window=6, latency=3, hop=2)
    frames = np.random.default_rng(1).random((17, 8, 9)).astype(np.float32)
    out = np.concatenate([sw.push(frames[:5]), sw.push(frames[5:]), sw.flush()])
    np.testing.assert_array_equal(out, frames)


@pytest.mark.parametrize(
    "window, latency, hop, words",
    [(1, 0, 1, "--window"), (8, 8, 1, "--latency"), (8, 4, 5, "--hop")],
)
def test_sliding_ideal_refuses_bad_windows(window, latency, hop, words):
    with pytest.raises(VMMError, match=words):
        cli.SlidingWindowIdeal(lambda f: f, window, latency, hop)


def test_ideal_without_a_window_is_refused():
    header = parse_header(b"YUV4MPEG2 W16 H16 F30:1 Cmono\n")
    with pytest.raises(VMMError, match="--window"):
        cli.make_magnifier(dict(method="riesz", alpha=5, band=(0.5, 3), temporal="ideal"),
                           header)


@pytest.mark.parametrize("window", [None, 16])
def test_zero_phase_on_a_pipe_is_one_clear_error(window, capsysbinary, tmp_path):
    """The route says zero phase needs the whole clip: refused with or without --window (the
    sliding window is the ideal filter's; a short window crashed forward-backward filtering)."""
    header = parse_header(b"YUV4MPEG2 W16 H16 F30:1 Cmono\n")
    with pytest.raises(VMMError, match="--zero-phase needs the whole clip"):
        cli.make_magnifier(dict(method="riesz", alpha=5, band=(0.5, 3), zero_phase=True,
                                window=window), header)
    y4m = b"YUV4MPEG2 W16 H16 F30:1 Cmono\n" + b"FRAME\n" + bytes(256)
    argv = ["--alpha", "5", "--band", "0.5", "3", "--zero-phase", "-o", str(tmp_path / "o.y4m")]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(y4m)))
        rc = cli.main(argv + (["--window", str(window)] if window else []))
    err = capsysbinary.readouterr().err.decode()
    assert rc == 1 and "Traceback" not in err and "--zero-phase" in err
    assert list(tmp_path.iterdir()) == []


def test_missing_frame_rate_needs_fps():
    header = parse_header(b"YUV4MPEG2 W16 H16 Cmono\n")
    with pytest.raises(VMMError, match="--fps"):
        cli.make_magnifier(dict(method="riesz", alpha=5, band=(0.5, 3)), header)


def moving_pattern_y4m() -> tuple[object, FrameBuffer, bytes]:
    """24 frames of a 48x32 4:2:0 pattern moving sinusoidally at 2 Hz (30 fps)."""
    t = np.arange(24)[:, None, None]
    _, xx = np.mgrid[0:32, 0:48]
    luma = 128 + 60 * np.sin(2 * np.pi * (xx - 0.5 * np.sin(2 * np.pi * 2 * t / 30)) / 16)
    header = parse_header(b"YUV4MPEG2 W48 H32 F30:1 Ip C420jpeg XCOLORRANGE=LIMITED\n")
    buf = FrameBuffer(header, 24)
    buf.luma[:] = np.rint(luma).astype(np.uint8)
    buf.planes[1][:] = 90
    buf.planes[2][:] = 170
    src = io.BytesIO()
    Y4MWriter(src, header).write(buf)
    return header, buf, src.getvalue()


def test_real_engine_magnifies_luma_and_keeps_chroma():
    header, buf, data = moving_pattern_y4m()
    params = dict(method="riesz", alpha=20, band=(1.0, 4.0), temporal="butterworth")
    out = run_filter(data, cli.make_magnifier(params, header), chunk=5)
    _, planes = read_all(out)
    assert len(planes[0]) == 24
    assert (planes[1] == 90).all() and (planes[2] == 170).all()
    assert np.abs(planes[0].astype(int) - buf.luma).max() > 5


def test_roi_limits_the_magnification(tmp_path):
    header, buf, data = moving_pattern_y4m()
    src, dst = tmp_path / "in.y4m", tmp_path / "out.y4m"
    src.write_bytes(data)
    rc = cli.main(["-i", str(src), "-o", str(dst), *MAGNIFY, "--band", "1", "4",
                   "--roi", "0,0,20,32", "--feather", "0"])
    assert rc == 0
    _, planes = read_all(dst.read_bytes())
    inside, outside = planes[0][:, :, :20], planes[0][:, :, 24:]
    assert np.abs(inside.astype(int) - buf.luma[:, :, :20]).max() > 5
    np.testing.assert_array_equal(outside, buf.luma[:, :, 24:])


def test_fps_overrides_the_header_rate():
    header = parse_header(b"YUV4MPEG2 W16 H16 F30:1 Cmono\n")  # stored at 30 fps
    params = dict(method="riesz", alpha=5, band=(72.0, 92.0))
    with pytest.raises(VMMError, match="Nyquist"):
        cli.make_magnifier(params, header)
    assert cli.make_magnifier({**params, "fps": 600.0}, header) is not None


# --------------------------------------------------------------------------- wrapper helpers
@pytest.mark.parametrize("pix_fmt, depth, expected", [
    ("yuv420p", 8, "yuv420p"), ("yuvj420p", 8, "yuvj420p"), ("yuv420p10le", 10, "yuv420p10le"),
    ("yuv422p", 10, "yuv422p10le"), ("yuv444p12le", 16, "yuv444p16le"), ("nv12", 8, "yuv420p"),
    ("p010le", 10, "yuv420p10le"), ("rgb24", 8, "yuv444p"), ("gray16le", 16, "gray16le"),
    ("gray", 8, "gray"),
])
def test_pipe_pix_fmt_keeps_the_chroma_layout(pix_fmt, depth, expected):
    assert wrap.pipe_pix_fmt(pix_fmt, depth) == expected


def test_bit_depth_of_pixel_formats():
    assert [wrap.pix_fmt_bit_depth(p) for p in ("yuv420p", "yuv420p10le", "gray16le", "p010le",
                                                "rgb48le", "nv12")] == [8, 10, 16, 10, 8, 8]


def test_split_extra_arguments():
    assert wrap.split_extra(["-i", "a", "--", "-crf", "20"]) == (["-i", "a"], ["-crf", "20"])
    assert wrap.split_extra(["-i", "a"]) == (["-i", "a"], [])


def test_encode_command_reasserts_colour_and_copies_audio():
    tools = wrap.FFmpeg("ffmpeg", "x")
    info = wrap.VideoInfo(64, 48, "yuv420p", Fraction(30000, 1001), Fraction(1, 30000),
                          "bt709", "bt709", "bt709", "tv", 8, True, 30, 1.0)
    cmd = wrap.encode_command(tools, "in.mp4", "out.mp4", info, "yuv420p", "tv",
                              extra=["-crf", "30"])
    joined = " ".join(cmd)
    for part in ("-map 1:a? ", "-c:a copy", "-colorspace bt709", "-color_primaries bt709",
                 "-color_trc bt709", "-color_range tv", "-video_track_timescale 30000"):
        assert part in joined
    assert cmd[-3:] == ["-crf", "30", "out.mp4"]  # extra options last, then the output


def test_rgb_sources_are_converted_and_tagged_bt709():
    tools = wrap.FFmpeg("ffmpeg", "x")
    assert wrap.is_rgb("gbrp") and wrap.is_rgb("rgb24") and not wrap.is_rgb("yuv444p")
    dec = wrap.decode_command(tools, "in.mkv", "yuv444p", Fraction(25), from_rgb=True)
    assert "scale=out_color_matrix=bt709:out_range=tv" in dec
    info = wrap.VideoInfo(64, 48, "gbrp", Fraction(25), Fraction(1, 1000), "gbr", None, None,
                          "pc", 8, False, 10, 0.4)
    enc = " ".join(wrap.encode_command(tools, "in.mkv", "out.mkv", info, "yuv444p", "tv"))
    assert "-colorspace bt709" in enc and "gbr" not in enc


def test_missing_ffmpeg_is_a_clear_error():
    with pytest.raises(VMMError, match="ffmpeg was not found"):
        wrap.find_ffmpeg("/nonexistent/ffmpeg")


# --------------------------------------------------------------------------- real ffmpeg
def ffmpeg_y4m(path: Path, pix_fmt: str, frames: int = 30, extra: list[str] | None = None):
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
         f"testsrc2=s=64x48:r=30:d={frames / 30}", *(extra or []), "-pix_fmt", pix_fmt,
         "-strict", "-1", "-f", "yuv4mpegpipe", str(path)],
        check=True,
    )
    return path


def ffprobe(path: Path | str, *entries: str, count: bool = False) -> list[dict]:
    cmd = ["ffprobe", "-v", "error", "-of", "json", "-show_entries",
           "stream=" + ",".join(entries)]
    if count:
        cmd.append("-count_frames")
    res = subprocess.run([*cmd, str(path)], check=True, capture_output=True, text=True)
    return json.loads(res.stdout)["streams"]


ENV_1THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


def vmm_filter(args: list[str], stdin=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ffmpeg_filter", *args], cwd=ROOT,
                          stdin=stdin, capture_output=True, env=ENV_1THREAD, **kw)


@pytest.mark.ffmpeg
@needs_ffmpeg
@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv444p", "gray16le"])
def test_filter_keeps_frame_count_and_bit_depth(tmp_path, pix_fmt):
    src = ffmpeg_y4m(tmp_path / "in.y4m", pix_fmt)
    dst = tmp_path / "out.y4m"
    assert cli.main(["-i", str(src), "-o", str(dst), *MAGNIFY, "--chunk", "7"]) == 0
    (s_in,) = ffprobe(src, "pix_fmt", "nb_read_frames", "r_frame_rate", "color_range",
                      count=True)
    (s_out,) = ffprobe(dst, "pix_fmt", "nb_read_frames", "r_frame_rate", "color_range",
                       count=True)
    assert s_out == s_in
    assert s_out["nb_read_frames"] == "30"
    header_in, planes_in = read_all(src.read_bytes())
    header_out, planes_out = read_all(dst.read_bytes())
    assert header_out == header_in  # XCOLORRANGE and all other fields kept
    assert not np.array_equal(planes_out[0], planes_in[0])  # luma magnified
    for cin, cout in zip(planes_in[1:], planes_out[1:], strict=True):
        np.testing.assert_array_equal(cin, cout)
    assert not list(tmp_path.glob(".vmm-filter-*"))  # no temporary left behind


@pytest.mark.ffmpeg
@needs_ffmpeg
def test_filter_in_a_real_pipe_chain(tmp_path):
    src = ffmpeg_y4m(tmp_path / "in.y4m", "yuv420p10le")
    with open(src, "rb") as f:
        res = vmm_filter([*MAGNIFY, "--temporal", "ideal", "--window", "8", "--latency", "4"],
                         stdin=f)
    assert res.returncode == 0, res.stderr.decode()
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries",
         "stream=pix_fmt,nb_read_frames", "-of", "csv=p=0", "-"],
        input=res.stdout, capture_output=True, check=True,
    )
    assert probe.stdout.decode().strip() == "yuv420p10le,30"
    assert res.stderr == b""


@pytest.mark.ffmpeg
@needs_ffmpeg
@pytest.mark.parametrize("damage, words", [
    (lambda d: b"YUV4MPEG2 W64 H48 F30:1 Ip C420jpeg\n" + d[200:], "FRAME"),  # wrong header
    (lambda d: d[:-1000], "truncated y4m stream: frame 30"),
    (lambda d: b"\x00\x01garbage" * 100, "not a YUV4MPEG2"),
    (lambda d: d.replace(b" Ip ", b" It ", 1), "interlaced"),
])
def test_malformed_and_truncated_streams_are_refused(tmp_path, damage, words, capfd):
    data = ffmpeg_y4m(tmp_path / "in.y4m", "yuv420p").read_bytes()
    bad = tmp_path / "bad.y4m"
    bad.write_bytes(damage(data))
    rc = cli.main(["-i", str(bad), "-o", str(tmp_path / "out.y4m"), *MAGNIFY])
    err = capfd.readouterr().err
    assert rc == 1
    assert words in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.y4m", "in.y4m"]  # no output


@pytest.mark.ffmpeg
@needs_ffmpeg
def test_downstream_closing_early_is_quiet(tmp_path):
    src = ffmpeg_y4m(tmp_path / "in.y4m", "yuv444p", frames=60)  # 60 x 9 kB >> pipe buffer
    with open(src, "rb") as f:
        proc = subprocess.Popen([sys.executable, "-m", "ffmpeg_filter", *MAGNIFY], cwd=ROOT,
                                stdin=f, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=ENV_1THREAD)
        head = proc.stdout.read(1000)  # like `| head -c 1000`
        proc.stdout.close()
        err = proc.stderr.read().decode()
        rc = proc.wait(timeout=120)
    assert head.startswith(b"YUV4MPEG2 W64 H48")
    assert rc == 0
    assert err == ""


@pytest.mark.ffmpeg
@needs_ffmpeg
def test_refuses_to_write_video_to_a_terminal(tmp_path):
    pty = pytest.importorskip("pty")
    src = ffmpeg_y4m(tmp_path / "in.y4m", "gray", frames=2)
    master, slave = pty.openpty()
    try:
        with open(src, "rb") as f:
            res = subprocess.run([sys.executable, "-m", "ffmpeg_filter", *MAGNIFY], cwd=ROOT,
                                 stdin=f, stdout=slave, stderr=subprocess.PIPE, timeout=120,
                                 env=ENV_1THREAD)
    finally:
        os.close(slave)
        os.close(master)
    assert res.returncode == 1
    assert b"refusing to write video to a terminal" in res.stderr


@pytest.fixture(scope="module")
def av_clip(tmp_path_factory) -> Path:
    """64x48, 30 frames at 30000/1001 fps, bt709-tagged H.264 with AAC audio."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
         "testsrc2=s=64x48:r=30000/1001:d=1.001", "-f", "lavfi", "-i", "sine=f=440:d=1.001",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-colorspace",
         "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
         "-c:a", "aac", "-shortest", str(path)],
        check=True,
    )
    return path


@pytest.mark.ffmpeg
@needs_ffmpeg
@pytest.mark.parametrize("bit_depth, out_name", [(None, "out.mp4"), (10, "out10.mkv")])
def test_wrapper_keeps_audio_duration_rate_and_colour(tmp_path, av_clip, bit_depth, out_name,
                                                      capfd):
    dst = tmp_path / out_name
    args = ["-i", str(av_clip), "-o", str(dst), *MAGNIFY]
    if bit_depth:
        args += ["--bit-depth", str(bit_depth)]
    assert wrap.main([*args, "--", "-preset", "ultrafast"]) == 0
    err = capfd.readouterr().err
    assert re.search(r"using \S*ffmpeg \(ffmpeg \S+\)", err)
    fields = ("codec_type", "pix_fmt", "r_frame_rate", "time_base", "color_space",
              "color_primaries", "color_transfer", "color_range", "nb_read_frames")
    v_in, a_in = ffprobe(av_clip, *fields, count=True)
    out_streams = ffprobe(dst, *fields, count=True)
    assert [s["codec_type"] for s in out_streams] == ["video", "audio"]
    v_out = out_streams[0]
    assert v_out["nb_read_frames"] == v_in["nb_read_frames"] == "30"
    for key in ("r_frame_rate", "color_space", "color_primaries", "color_transfer",
                "color_range"):
        assert v_out[key] == v_in[key], key
    assert v_out["pix_fmt"] == ("yuv420p10le" if bit_depth == 10 else "yuv420p")
    if out_name.endswith(".mp4"):
        assert v_out["time_base"] == v_in["time_base"]

    def duration(path):
        return float(subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
             str(path)], capture_output=True, text=True, check=True).stdout)

    assert duration(dst) == pytest.approx(duration(av_clip), abs=0.05)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.ffmpeg
@needs_ffmpeg
def test_wrapper_refuses_to_overwrite_its_input(tmp_path, av_clip, capfd):
    before = av_clip.read_bytes()
    assert wrap.main(["-i", str(av_clip), "-o", str(av_clip), "-y", *MAGNIFY]) == 1
    assert "refusing to overwrite the input" in capfd.readouterr().err
    assert av_clip.read_bytes() == before


@pytest.mark.ffmpeg
@needs_ffmpeg
def test_wrapper_reports_a_failing_encoder_and_leaves_no_output(tmp_path, av_clip, capfd):
    dst = tmp_path / "out.mp4"
    rc = wrap.main(["-i", str(av_clip), "-o", str(dst), *MAGNIFY, "-q", "--",
                    "-c:v", "no_such_encoder"])
    err = capfd.readouterr().err
    assert rc == 1 and "encoding ffmpeg" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_wrapper_without_ffmpeg_says_so(tmp_path, capfd):
    clip = tmp_path / "in.mp4"
    clip.write_bytes(b"not really a video")
    rc = wrap.main(["-i", str(clip), "-o", str(tmp_path / "o.mp4"), "--ffmpeg",
                    str(tmp_path / "no-ffmpeg-here"), *MAGNIFY])
    assert rc == 1
    assert "ffmpeg was not found" in capfd.readouterr().err
