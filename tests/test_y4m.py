"""YUV4MPEG2 format: header parsing and emission, plane layout, frame reading and writing."""

from __future__ import annotations

import io
import shutil
import subprocess
from fractions import Fraction

import numpy as np
import pytest

from ffmpeg_filter.y4m import (
    FrameBuffer,
    Y4MReader,
    Y4MWriter,
    parse_colorspace,
    parse_header,
    supported_colorspaces,
)
from napari_vmm.core.errors import VMMError

HEADER = b"YUV4MPEG2 W64 H48 F30000:1001 Ip A1:1 C420jpeg XYSCSS=420JPEG XCOLORRANGE=FULL\n"


def make_stream(header: bytes, n_frames: int, seed: int = 0) -> tuple[bytes, list[np.ndarray]]:
    """A y4m stream with random frames; returns the bytes and each frame's raw samples."""
    h = parse_header(header)
    rng = np.random.default_rng(seed)
    frames = [
        rng.integers(0, h.colorspace.max_value + 1, h.samples_per_frame).astype(
            h.colorspace.dtype
        )
        for _ in range(n_frames)
    ]
    body = b"".join(b"FRAME\n" + f.tobytes() for f in frames)
    return header + body, frames


def test_header_fields_and_round_trip():
    h = parse_header(HEADER)
    assert (h.width, h.height) == (64, 48)
    assert h.rate == Fraction(30000, 1001)
    assert h.fps == pytest.approx(29.97, abs=1e-3)
    assert h.interlace == "p" and h.aspect == "1:1"
    assert h.colorspace.tag == "420jpeg" and h.colorspace.bit_depth == 8
    assert h.color_range == "FULL"
    assert h.extensions == ("YSCSS=420JPEG", "COLORRANGE=FULL")
    assert h.to_bytes() == HEADER


@pytest.mark.parametrize(
    "tag, depth, shapes",
    [
        ("420jpeg", 8, [(49, 67), (25, 34), (25, 34)]),
        ("420paldv", 8, [(49, 67), (25, 34), (25, 34)]),
        ("420mpeg2", 8, [(49, 67), (25, 34), (25, 34)]),
        ("420", 8, [(49, 67), (25, 34), (25, 34)]),
        ("411", 8, [(49, 67), (49, 17), (49, 17)]),
        ("422", 8, [(49, 67), (49, 34), (49, 34)]),
        ("444", 8, [(49, 67)] * 3),
        ("444alpha", 8, [(49, 67)] * 4),
        ("mono", 8, [(49, 67)]),
        ("420p10", 10, [(49, 67), (25, 34), (25, 34)]),
        ("422p12", 12, [(49, 67), (49, 34), (49, 34)]),
        ("444p16", 16, [(49, 67)] * 3),
        ("mono10", 10, [(49, 67)]),
        ("mono12", 12, [(49, 67)]),
        ("mono16", 16, [(49, 67)]),
    ],
)
def test_plane_layout(tag, depth, shapes):
    h = parse_header(f"YUV4MPEG2 W67 H49 F25:1 Ip C{tag}\n".encode())
    assert h.colorspace.bit_depth == depth
    assert h.plane_shapes == shapes
    itemsize = 1 if depth == 8 else 2
    assert h.frame_bytes == sum(a * b for a, b in shapes) * itemsize


def test_every_supported_tag_parses_and_pix_fmts():
    for tag in supported_colorspaces():
        assert parse_colorspace(tag).tag == tag
    assert parse_colorspace("420p10").pix_fmt == "yuv420p10le"
    assert parse_colorspace("mono16").pix_fmt == "gray16le"
    assert parse_colorspace("444alpha").pix_fmt == "yuva444p"
    assert parse_colorspace("420paldv").pix_fmt == "yuv420p"


def test_missing_c_tag_defaults_to_420jpeg():
    assert parse_header(b"YUV4MPEG2 W8 H8 F25:1\n").colorspace.tag == "420jpeg"


@pytest.mark.parametrize(
    "line, words",
    [
        (b"RIFF....WAVEfmt \n", "not a YUV4MPEG2"),
        (b"YUV4MPEG2 H48 F25:1\n", "no W or H"),
        (b"YUV4MPEG2 W64 H48 F25\n", "F25"),
        (b"YUV4MPEG2 W64 H48 F25:0\n", "F25:0"),
        (b"YUV4MPEG2 W0 H48\n", "not positive"),
        (b"YUV4MPEG2 W64 H48 Wx\n", "Wx"),
        (b"YUV4MPEG2 W64 H48 Z1\n", "Z1"),
        (b"YUV4MPEG2 W64 H48 Crgb\n", "unsupported y4m colour space Crgb"),
        (b"YUV4MPEG2 W64 H48 C420p11\n", "C420p11"),
        (b"YUV4MPEG2 W64 H48 C422alpha\n", "alpha"),
        (b"YUV4MPEG2 W64 H48 Ix\n", "interlace"),
    ],
)
def test_malformed_headers_are_refused_with_a_clear_message(line, words):
    with pytest.raises(VMMError, match=words.replace("(", r"\(")):
        Y4MReader(io.BytesIO(line))


@pytest.mark.parametrize("mode", ["t", "b", "m"])
def test_interlaced_is_refused(mode):
    with pytest.raises(VMMError, match="interlaced"):
        Y4MReader(io.BytesIO(f"YUV4MPEG2 W64 H48 F25:1 I{mode} C420jpeg\n".encode()))


def test_empty_and_unterminated_headers():
    with pytest.raises(VMMError, match="empty"):
        Y4MReader(io.BytesIO(b""))
    with pytest.raises(VMMError, match="truncated"):
        Y4MReader(io.BytesIO(b"YUV4MPEG2 W64 H48"))
    with pytest.raises(VMMError, match="not a YUV4MPEG2"):
        Y4MReader(io.BytesIO(b"\x00" * 10000))


@pytest.mark.parametrize("header", [HEADER, b"YUV4MPEG2 W30 H18 F25:1 Ip C444p10\n",
                                    b"YUV4MPEG2 W30 H17 F25:1 Ip Cmono16 XCOLORRANGE=FULL\n"])
def test_read_write_round_trip_is_byte_exact(header):
    data, frames = make_stream(header, 7)
    reader = Y4MReader(io.BytesIO(data))
    out = io.BytesIO()
    writer = Y4MWriter(out, reader.header)
    buf = FrameBuffer(reader.header, 3)
    counts = []
    while n := reader.read_into(buf):
        counts.append(n)
        writer.write(buf, n)
    assert counts == [3, 3, 1]
    assert reader.frames_read == writer.frames_written == 7
    assert out.getvalue() == data


def test_plane_views_point_into_the_buffer():
    data, frames = make_stream(b"YUV4MPEG2 W6 H4 F25:1 C420mpeg2\n", 2)
    reader = Y4MReader(io.BytesIO(data))
    buf = FrameBuffer(reader.header, 2)
    assert reader.read_into(buf) == 2
    y, cb, cr = buf.planes
    assert y.shape == (2, 4, 6) and cb.shape == (2, 2, 3) and cr.shape == (2, 2, 3)
    np.testing.assert_array_equal(y[1].ravel(), frames[1][:24])
    np.testing.assert_array_equal(cr[1].ravel(), frames[1][30:36])
    y[0, 0, 0] = 7  # a view, not a copy
    assert buf.data[0, 0] == 7


def test_high_bit_depth_is_little_endian_low_bits():
    header = b"YUV4MPEG2 W2 H1 F25:1 Cmono10\n"
    payload = np.array([1023, 5], dtype="<u2").tobytes()
    reader = Y4MReader(io.BytesIO(header + b"FRAME\n" + payload))
    buf = FrameBuffer(reader.header)
    reader.read_into(buf)
    assert buf.luma.tolist() == [[[1023, 5]]]


def test_frame_params_are_accepted():
    data, frames = make_stream(b"YUV4MPEG2 W4 H2 F25:1 Cmono\n", 1)
    data = data.replace(b"FRAME\n", b"FRAME Ixyz\n")
    reader = Y4MReader(io.BytesIO(data))
    buf = FrameBuffer(reader.header)
    assert reader.read_into(buf) == 1


def test_truncated_last_frame_is_refused():
    data, _ = make_stream(HEADER, 3)
    reader = Y4MReader(io.BytesIO(data[:-100]))
    buf = FrameBuffer(reader.header, 4)
    with pytest.raises(VMMError, match=r"truncated y4m stream: frame 3 has \d+ of 4608 bytes"):
        reader.read_into(buf)


def test_truncated_frame_line_and_garbage_between_frames():
    data, _ = make_stream(HEADER, 2)
    reader = Y4MReader(io.BytesIO(data + b"FRA"))
    with pytest.raises(VMMError, match="frame 3 ends inside its FRAME line"):
        reader.read_into(FrameBuffer(reader.header, 4))
    reader = Y4MReader(io.BytesIO(data + b"xxxxxxxxxxxxxxxxxxx"))
    with pytest.raises(VMMError, match="frame 3 does not start with 'FRAME'"):
        reader.read_into(FrameBuffer(reader.header, 4))


@pytest.mark.ffmpeg
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
@pytest.mark.parametrize(
    "pix_fmt, tag",
    [
        ("yuv420p", "420jpeg"),
        ("yuv422p", "422"),
        ("yuv444p", "444"),
        ("yuv420p10le", "420p10"),
        ("yuv444p12le", "444p12"),
        ("gray", "mono"),
        ("gray16le", "mono16"),
        ("yuva444p", "444alpha"),
    ],
)
def test_reads_what_ffmpeg_writes_and_ffmpeg_reads_what_we_write(tmp_path, pix_fmt, tag):
    cmd = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=34x22:r=25:d=0.12",
           "-vf", "scale=35:21", "-pix_fmt", pix_fmt, "-strict", "-1", "-f", "yuv4mpegpipe", "-"]
    if pix_fmt.endswith("le") and not pix_fmt.startswith("gray"):
        cmd[8] = "scale=36:21"  # FFmpeg's muxer mis-sizes odd-width chroma above 8 bits
    data = subprocess.run(cmd, check=True, capture_output=True).stdout
    reader = Y4MReader(io.BytesIO(data))
    assert reader.header.colorspace.tag == tag
    out = io.BytesIO()
    writer = Y4MWriter(out, reader.header)
    buf = FrameBuffer(reader.header, 2)
    while n := reader.read_into(buf):
        writer.write(buf, n)
    assert reader.frames_read == 3
    assert out.getvalue() == data
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries",
         "stream=pix_fmt,nb_read_frames", "-of", "csv=p=0", "-"],
        input=out.getvalue(), check=True, capture_output=True,
    ).stdout.decode().strip()
    assert probe.split(",")[1] == "3"
