"""`vmm magnify` keeps a video's colour: range, matrix, tags and bit depth (issue 24, item 1).

Clips are made on the fly with PyAV: lossless x264 with luma spanning the whole legal range
(0..255 full, 16..235 limited; x4 at 10 bits) and mild chroma only where luma is mid-grey, so
every sample is inside the RGB gamut and a read-write round trip can be exact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_vmm.cli import main

av = pytest.importorskip("av")

FULL, LIMITED = 2, 1  # AVCOL_RANGE_JPEG, AVCOL_RANGE_MPEG
BT709 = 1


def make_yuv_clip(path: Path, bits: int = 8, full: bool = False, n: int = 10,
                  h: int = 48, w: int = 64, fps: int = 30) -> Path:
    """Write a smooth, in-gamut YUV 4:2:0 clip tagged BT.709 with the given range."""
    top = (1 << bits) - 1
    scale = 1 << (bits - 8)
    lo, hi = (0, top) if full else (16 * scale, 235 * scale)
    mid = 1 << (bits - 1)
    cspan = 0.05 * (top if full else 224 * scale)
    x = np.linspace(0, 1, w)[None, :]
    y = np.linspace(0, 1, h)[:, None]
    fmt = "yuv420p" if bits == 8 else "yuv420p10le"
    dtype = np.uint8 if bits == 8 else np.uint16
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"qp": "0", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = w, h, fmt
        ctx = stream.codec_context
        ctx.color_range = FULL if full else LIMITED
        ctx.colorspace = ctx.color_primaries = ctx.color_trc = BT709
        for t in range(n):
            luma = lo + (hi - lo) * np.clip(x + 0.02 * np.sin(2 * np.pi * (y + t / n)), 0, 1)
            window = np.exp(-((x - 0.5) / 0.15) ** 2)
            u = mid + cspan * window * np.sin(2 * np.pi * (2 * y + t / n))
            v = mid + cspan * window * np.cos(2 * np.pi * (2 * y + t / n))
            planes = [luma, u[::2, ::2] * np.ones((h // 2, w // 2)),
                      v[::2, ::2] * np.ones((h // 2, w // 2))]
            frame = av.VideoFrame(w, h, fmt)
            for plane, data in zip(frame.planes, planes, strict=True):
                data = np.rint(data).astype(dtype)
                buf = np.zeros((data.shape[0], plane.line_size // data.itemsize), dtype)
                buf[:, :data.shape[1]] = data
                plane.update(buf.tobytes())
            frame.color_range = ctx.color_range
            frame.pts = t
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def luma_and_tags(path: Path) -> tuple[np.ndarray, dict]:
    """The Y plane of every frame (as int) and the stream's format and colour tags."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        tags = {"bits": 10 if "10" in ctx.format.name else 8, "range": int(ctx.color_range),
                "matrix": int(ctx.colorspace), "primaries": int(ctx.color_primaries),
                "transfer": int(ctx.color_trc)}
        ys = []
        for frame in container.decode(stream):
            dtype = np.uint16 if tags["bits"] > 8 else np.uint8
            plane = np.frombuffer(frame.planes[0], dtype).reshape(frame.height, -1)
            ys.append(plane[:, :frame.width].astype(int))
    return np.stack(ys), tags


@pytest.mark.parametrize("bits,full", [(8, False), (8, True), (10, False), (10, True)])
@pytest.mark.parametrize("method", ["linear", "phase", "riesz"])
def test_alpha_zero_gives_back_the_input(tmp_path, method, bits, full):
    src = make_yuv_clip(tmp_path / "in.mp4", bits, full)
    out = tmp_path / "out.mp4"
    assert main(["magnify", str(src), str(out), "--method", method, "--alpha", "0",
                 "--band", "2", "6", "--codec", "h264-lossless", "-q"]) == 0
    y_in, tags_in = luma_and_tags(src)
    y_out, tags_out = luma_and_tags(out)
    assert tags_out == tags_in  # bit depth, range, matrix, primaries, transfer
    # one 8-bit grey level: 1 code at 8 bits, 4 codes at 10 bits
    assert np.abs(y_out - y_in).max() <= 1 << (bits - 8)
    assert y_out.min() == y_in.min() and y_out.max() == y_in.max()  # no washed-out blacks


def test_full_range_default_codec_is_not_washed_out(tmp_path):
    """The default lossy h264 keeps full range: Y_out ~ Y_in, not 0.857 Y_in + 15.5."""
    src = make_yuv_clip(tmp_path / "in.mp4", 8, True)
    out = tmp_path / "out.mp4"
    assert main(["magnify", str(src), str(out), "--method", "linear", "--alpha", "0", "-q"]) == 0
    y_in, tags_in = luma_and_tags(src)
    y_out, tags_out = luma_and_tags(out)
    assert tags_out["range"] == FULL and tags_out["matrix"] == BT709
    slope, offset = np.polyfit(y_in.ravel(), y_out.ravel(), 1)
    assert abs(slope - 1) < 0.01 and abs(offset) < 1.5
    assert y_out.min() <= 2 and y_out.max() >= 253
