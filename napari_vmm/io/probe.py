"""What a video file says about itself, read with PyAV without decoding (as ffprobe would).

:func:`probe_video` gives the first video stream's size, pixel format, frame rate, time base,
colour tags (FFmpeg's names, as ``ffmpeg -colorspace`` takes them), bit depth, frame count and
duration, and whether the file has audio: what the ``vmm-ffmpeg`` wrapper passes on to ffmpeg.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fractions import Fraction

from ..core.errors import VMMError

# FFmpeg's names of the colour tags (libavutil av_color_*_name), unset/unknown values left out.
_RANGE_NAMES = {1: "tv", 2: "pc"}
_MATRIX_NAMES = {0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
                 8: "ycgco", 9: "bt2020nc", 10: "bt2020c", 11: "smpte2085",
                 12: "chroma-derived-nc", 13: "chroma-derived-c", 14: "ictcp"}
_PRIMARIES_NAMES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
                    8: "film", 9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432",
                    22: "ebu3213"}
_TRANSFER_NAMES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
                   8: "linear", 9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e",
                   13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084",
                   17: "smpte428", 18: "arib-std-b67"}


@dataclass(frozen=True)
class VideoInfo:
    """The first video stream of a file, as :func:`probe_video` reads it."""

    width: int
    height: int
    pix_fmt: str
    rate: Fraction  # r_frame_rate
    time_base: Fraction
    color_space: str | None  # matrix, e.g. bt709
    color_primaries: str | None
    color_transfer: str | None
    color_range: str | None  # tv | pc
    bit_depth: int
    has_audio: bool
    frames: int | None  # estimate, for progress
    duration: float | None
    declared_frames: int | None = None  # the container's frame count (nb_frames), if stated


def pix_fmt_bit_depth(pix_fmt: str) -> int:
    """Bits per sample of an FFmpeg pixel format name (``yuv420p10le`` -> 10, ``nv12`` -> 8)."""
    if pix_fmt.startswith(("p010", "p210", "p410")):
        return 10
    if pix_fmt.startswith(("p016", "p216", "p416")):
        return 16
    m = re.search(r"(\d+)(le|be)$", pix_fmt)
    return int(m.group(1)) if m and not pix_fmt.startswith(("rgb", "bgr")) else 8


def _name(table: dict[int, str], value: object) -> str | None:
    try:
        return table.get(int(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _fraction(value: object) -> Fraction | None:
    if not value:
        return None
    value = Fraction(value.numerator, value.denominator)  # type: ignore[attr-defined]
    return value if value > 0 else None


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Read the first video stream's format, rate, time base and colour tags (no decoding).

    Attached pictures (cover art) are not video streams here.

    Raises
    ------
    VMMError
        If the file cannot be opened or has no video stream.
    """
    import av

    path = str(path)
    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise VMMError(f"cannot read {path}: {exc}") from None
    with container:
        video = next((s for s in container.streams.video
                      if not s.disposition & av.stream.Disposition.attached_pic), None)
        if video is None:
            raise VMMError(f"{path} has no video stream")
        ctx = video.codec_context
        rate = _fraction(video.base_rate) or _fraction(video.average_rate)
        if rate is None:
            raise VMMError(f"no frame rate in {path}; give it with -- -r N")
        time_base = _fraction(video.time_base) or Fraction(1, rate.numerator)
        duration = None  # in whole microseconds, as ffprobe gives it
        if video.duration is not None and video.time_base:
            duration = round(float(video.duration * video.time_base), 6)
        elif container.duration is not None:
            duration = round(container.duration / av.time_base, 6)
        declared = int(video.frames) or None
        frames = declared if declared else (round(duration * rate) if duration else None)
        pix_fmt = ctx.format.name if ctx.format is not None else "yuv420p"
        return VideoInfo(
            width=int(ctx.width), height=int(ctx.height), pix_fmt=pix_fmt, rate=rate,
            time_base=time_base, color_space=_name(_MATRIX_NAMES, ctx.colorspace),
            color_primaries=_name(_PRIMARIES_NAMES, ctx.color_primaries),
            color_transfer=_name(_TRANSFER_NAMES, ctx.color_trc),
            color_range=_name(_RANGE_NAMES, ctx.color_range),
            bit_depth=pix_fmt_bit_depth(pix_fmt), has_audio=bool(container.streams.audio),
            frames=frames, duration=duration, declared_frames=declared)
