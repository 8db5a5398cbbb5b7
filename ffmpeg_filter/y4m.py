"""YUV4MPEG2 (y4m) stream format: header parse/emit, frame reader and writer.

The wire format (as written by FFmpeg's ``yuv4mpegpipe`` muxer) is one ASCII header line::

    YUV4MPEG2 W<w> H<h> F<num>:<den> I<p|t|b|m|?> A<n>:<d> C<tag> [X<ext> ...]\\n

followed by frames, each the line ``FRAME[ params]\\n`` and the raw planes (Y, Cb, Cr, then alpha
when present) with no padding. Chroma planes are ``ceil(W / 2**sx) x ceil(H / 2**sy)``. Samples
above 8 bits are 16-bit little-endian words holding the value in the low bits (10-bit: 0..1023).

Frames are read with ``readinto`` into preallocated numpy buffers, so a reader allocates nothing
per frame and memory does not depend on the stream's length.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import BinaryIO

import numpy as np

from napari_vmm.core.errors import VMMError

MAGIC = b"YUV4MPEG2"
FRAME_MAGIC = b"FRAME"
#: Longest header or FRAME line accepted; protects against reading a binary file as text.
MAX_LINE = 4096
#: Largest frame accepted, FFmpeg's own rule (``av_image_check_size``):
#: ``(W + 128) * (H + 128) < INT_MAX / 8``, about 268 megapixels (16384 x 16256).
MAX_PIXELS_RULE = (2**31 - 1) // 8

#: Chroma subsampling (log2 of the horizontal and vertical factors) of each base colour tag;
#: ``None`` means no chroma planes (mono).
_SUBSAMPLING: dict[str, tuple[int, int] | None] = {
    "420jpeg": (1, 1),
    "420paldv": (1, 1),
    "420mpeg2": (1, 1),
    "420": (1, 1),
    "411": (2, 0),
    "422": (1, 0),
    "444": (0, 0),
    "mono": None,
}
# Base tags that can carry a bit depth: "420p10", "422p12", "444p16", "mono10", ...
_DEEP_BASES = {"420": "p", "422": "p", "444": "p", "mono": ""}
_DEPTHS = (9, 10, 12, 14, 16)
_TAG_RE = re.compile(r"^(420jpeg|420paldv|420mpeg2|420|411|422|444|mono)(?:p?(\d+))?(alpha)?$")

#: The FFmpeg pix_fmt that corresponds to each supported colour tag, for messages and ffmpeg
#: command lines (``-pix_fmt``).
_PIX_FMT_BASE = {"420": "yuv420p", "411": "yuv411p", "422": "yuv422p", "444": "yuv444p"}


def supported_colorspaces() -> list[str]:
    """Every ``C`` tag this module reads and writes.

    Returns
    -------
    list of str
        E.g. ``["420jpeg", ..., "444p16", "444alpha", "mono", "mono10", ...]``.
    """
    tags = list(_SUBSAMPLING)
    for base, sep in _DEEP_BASES.items():
        tags += [f"{base}{sep}{d}" for d in _DEPTHS]
    tags.append("444alpha")
    return tags


@dataclass(frozen=True)
class Colorspace:
    """What a ``C`` tag means for the frame layout.

    Attributes
    ----------
    tag : str
        The tag as written in the header, e.g. ``"420jpeg"`` or ``"444p10"``.
    subsampling : (int, int) or None
        log2 of the chroma subsampling (horizontal, vertical); ``None`` for mono.
    bit_depth : int
        Bits per sample (8, 9, 10, 12, 14 or 16).
    alpha : bool
        Whether a full-resolution alpha plane follows the chroma planes.
    """

    tag: str
    subsampling: tuple[int, int] | None
    bit_depth: int
    alpha: bool

    @property
    def dtype(self) -> np.dtype:
        """Sample type on the wire: ``uint8``, or little-endian ``uint16`` above 8 bits."""
        return np.dtype(np.uint8) if self.bit_depth == 8 else np.dtype("<u2")

    @property
    def max_value(self) -> int:
        """Largest sample value, ``2**bit_depth - 1``."""
        return (1 << self.bit_depth) - 1

    @property
    def pix_fmt(self) -> str:
        """FFmpeg's name for this layout, e.g. ``yuv420p10le`` or ``gray16le``."""
        if self.subsampling is None:
            base = "gray"
        else:
            base = _PIX_FMT_BASE[self.tag[:3]]
            if self.alpha:
                base = base.replace("yuv", "yuva")
        if self.bit_depth == 8:
            return base
        return f"{base}{self.bit_depth}le"


def parse_colorspace(tag: str) -> Colorspace:
    """Interpret a ``C`` tag.

    Parameters
    ----------
    tag : str
        The tag without its leading ``C``, e.g. ``"420jpeg"``, ``"422p10"``, ``"mono16"``.

    Returns
    -------
    Colorspace

    Raises
    ------
    VMMError
        If the tag is not one FFmpeg writes for a planar YUV or gray format.
    """
    m = _TAG_RE.match(tag)
    if m is None:
        raise VMMError(
            f"unsupported y4m colour space C{tag}; supported: {', '.join(supported_colorspaces())}"
        )
    base, depth_s, alpha = m.group(1), m.group(2), bool(m.group(3))
    depth = 8
    if depth_s is not None:
        depth = int(depth_s)
        sep = _DEEP_BASES.get(base)
        if sep is None or depth not in _DEPTHS or not tag.startswith(f"{base}{sep}{depth}"):
            raise VMMError(
                f"unsupported y4m colour space C{tag}; supported: "
                f"{', '.join(supported_colorspaces())}"
            )
    if alpha and (base != "444" or depth != 8):
        raise VMMError(f"unsupported y4m colour space C{tag}: only C444alpha carries alpha")
    return Colorspace(tag=tag, subsampling=_SUBSAMPLING[base], bit_depth=depth, alpha=alpha)


@dataclass(frozen=True)
class Y4MHeader:
    """A YUV4MPEG2 stream header.

    Attributes
    ----------
    width, height : int
        Frame size in pixels (the luma plane).
    rate : Fraction or None
        Frame rate from the ``F`` field; ``None`` when the header has none.
    interlace : str
        ``"p"`` (progressive), ``"t"``/``"b"`` (top/bottom field first), ``"m"`` (mixed), ``"?"``.
    aspect : str
        Pixel aspect ratio as written, e.g. ``"1:1"`` or ``"0:0"`` (unknown); ``""`` if absent.
    colorspace : Colorspace
        Layout of the planes (``C`` field, ``420jpeg`` when absent, as in FFmpeg).
    extensions : tuple of str
        ``X`` fields without the ``X``, in order (``"YSCSS=420JPEG"``, ``"COLORRANGE=FULL"``).
    """

    width: int
    height: int
    rate: Fraction | None
    colorspace: Colorspace
    interlace: str = "p"
    aspect: str = ""
    extensions: tuple[str, ...] = field(default_factory=tuple)

    # ----------------------------------------------------------------- derived layout
    @property
    def plane_shapes(self) -> list[tuple[int, int]]:
        """(rows, columns) of each plane in wire order: Y, then Cb, Cr, then alpha."""
        shapes = [(self.height, self.width)]
        sub = self.colorspace.subsampling
        if sub is not None:
            sx, sy = sub
            c = (-(-self.height // (1 << sy)), -(-self.width // (1 << sx)))
            shapes += [c, c]
        if self.colorspace.alpha:
            shapes.append((self.height, self.width))
        return shapes

    @property
    def samples_per_frame(self) -> int:
        """Number of samples in one frame, all planes together."""
        return sum(h * w for h, w in self.plane_shapes)

    @property
    def frame_bytes(self) -> int:
        """Size of one frame's payload in bytes (without the ``FRAME`` line)."""
        return self.samples_per_frame * self.colorspace.dtype.itemsize

    @property
    def color_range(self) -> str | None:
        """``"FULL"`` or ``"LIMITED"`` from ``XCOLORRANGE``, or ``None`` when not stated."""
        for ext in self.extensions:
            if ext.startswith("COLORRANGE="):
                return ext.split("=", 1)[1]
        return None

    @property
    def fps(self) -> float | None:
        """Frame rate as a float, or ``None``."""
        return None if self.rate is None else float(self.rate)

    # ----------------------------------------------------------------- text form
    def to_bytes(self) -> bytes:
        """The header line, newline included, with every field kept as read."""
        parts = [MAGIC.decode(), f"W{self.width}", f"H{self.height}"]
        if self.rate is not None:
            parts.append(f"F{self.rate.numerator}:{self.rate.denominator}")
        parts.append(f"I{self.interlace}")
        if self.aspect:
            parts.append(f"A{self.aspect}")
        parts.append(f"C{self.colorspace.tag}")
        parts += [f"X{e}" for e in self.extensions]
        return (" ".join(parts) + "\n").encode("ascii")

    def replace(self, **changes) -> Y4MHeader:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return replace(self, **changes)


def parse_header(line: bytes) -> Y4MHeader:
    """Parse a YUV4MPEG2 header line.

    Parameters
    ----------
    line : bytes
        The first line of the stream, with or without its trailing newline.

    Returns
    -------
    Y4MHeader

    Raises
    ------
    VMMError
        If the line is not a y4m header, lacks ``W``/``H``, has a malformed field, or uses an
        unsupported colour space.
    """
    if not line.startswith(MAGIC):
        shown = line[:20]
        raise VMMError(
            f"input is not a YUV4MPEG2 (y4m) stream: it starts with {shown!r}, expected "
            f"{MAGIC.decode()!r} (give ffmpeg '-f yuv4mpegpipe')"
        )
    try:
        text = line.rstrip(b"\r\n").decode("ascii")
    except UnicodeDecodeError:
        raise VMMError("malformed y4m header: it is not ASCII text") from None
    width = height = None
    rate: Fraction | None = None
    interlace, aspect, ctag = "p", "", "420jpeg"
    extensions: list[str] = []
    for tok in text.split(" ")[1:]:
        if not tok:
            continue
        key, val = tok[0], tok[1:]
        try:
            if key == "W":
                width = int(val)
            elif key == "H":
                height = int(val)
            elif key == "F":
                num, den = (int(v) for v in val.split(":"))
                if max(abs(num), abs(den)) >= 2**31:
                    raise ValueError  # FFmpeg reads each as a 32-bit int
                rate = Fraction(num, den)
            elif key == "I":
                interlace = val
            elif key == "A":
                aspect = val
            elif key == "C":
                ctag = val
            elif key == "X":
                extensions.append(val)
            else:
                raise ValueError
        except (ValueError, ZeroDivisionError):
            raise VMMError(f"malformed y4m header field {tok!r} in {text!r}") from None
    if width is None or height is None:
        raise VMMError(f"malformed y4m header (no W or H field): {text!r}")
    if width <= 0 or height <= 0:
        raise VMMError(f"malformed y4m header: frame size {width}x{height} is not positive")
    if (width + 128) * (height + 128) >= MAX_PIXELS_RULE:
        raise VMMError(
            f"y4m frame size {width}x{height} is too large: FFmpeg accepts at most "
            f"(W+128)*(H+128) < {MAX_PIXELS_RULE} (about 16384x16256); is the header corrupt?"
        )
    if rate is not None and rate <= 0:
        raise VMMError(f"malformed y4m header: frame rate {rate} is not positive")
    if interlace not in {"p", "t", "b", "m", "?"}:
        raise VMMError(f"malformed y4m header: unknown interlace mode I{interlace}")
    return Y4MHeader(
        width=width,
        height=height,
        rate=rate,
        colorspace=parse_colorspace(ctag),
        interlace=interlace,
        aspect=aspect,
        extensions=tuple(extensions),
    )


def available_memory() -> int:
    """Bytes of memory this process can still take: ``MemAvailable`` (psutil), else free pages."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except (ImportError, OSError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_memory(header: Y4MHeader, buffered_frames: int, bytes_per_pixel: float = 0.0,
                 available: int | None = None, hint: str = "scale the video down") -> None:
    """Refuse, before any allocation, a stream whose frames cannot fit in memory.

    Parameters
    ----------
    header : Y4MHeader
        The stream's layout.
    buffered_frames : int
        Frames held at once (all buffers together).
    bytes_per_pixel : float
        Further working memory per luma pixel of each buffered frame (the engine's).
    available : int, optional
        Bytes available; default :func:`available_memory`.
    hint : str
        What the user can do, ending the message.

    Raises
    ------
    VMMError
        When the frames need more than the available memory.
    """
    pixels = header.width * header.height
    needed = buffered_frames * (header.frame_bytes + bytes_per_pixel * pixels)
    available = available_memory() if available is None else available
    if needed > available:
        raise VMMError(
            f"y4m frames of {header.width}x{header.height} {header.colorspace.pix_fmt} "
            f"({header.frame_bytes / 2**20:.0f} MiB each) need at least "
            f"{needed / 2**30:.1f} GiB ({buffered_frames} frames buffered) but only "
            f"{available / 2**30:.1f} GiB of memory is available; {hint}"
        )


class FrameBuffer:
    """Preallocated storage for ``n`` frames, with zero-copy views of each plane.

    Parameters
    ----------
    header : Y4MHeader
        Layout of the frames.
    n : int
        Number of frames the buffer holds.

    Attributes
    ----------
    data : ndarray, shape (n, samples_per_frame)
        The raw samples, one row per frame, exactly as on the wire.
    planes : list of ndarray
        One view per plane, each of shape ``(n, rows, columns)``: ``planes[0]`` is luma.
    """

    def __init__(self, header: Y4MHeader, n: int = 1) -> None:
        self.header = header
        self.data = np.empty((n, header.samples_per_frame), dtype=header.colorspace.dtype)
        self.planes: list[np.ndarray] = []
        start = 0
        for h, w in header.plane_shapes:
            self.planes.append(self.data[:, start : start + h * w].reshape(n, h, w))
            start += h * w

    def __len__(self) -> int:
        return self.data.shape[0]

    @property
    def luma(self) -> np.ndarray:
        """The Y plane of every frame, shape ``(n, H, W)``; a view into :attr:`data`."""
        return self.planes[0]


class Y4MReader:
    """Read a y4m stream frame by frame into preallocated buffers.

    Parameters
    ----------
    stream : binary file object
        Opened for reading (``sys.stdin.buffer``, a file, a subprocess pipe).

    Attributes
    ----------
    header : Y4MHeader
        Parsed on construction.
    frames_read : int
        Number of complete frames read so far.

    Raises
    ------
    VMMError
        On construction, if the stream is empty, the header is malformed or interlaced.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        line = stream.readline(MAX_LINE)
        if not line:
            raise VMMError("input is empty: expected a YUV4MPEG2 (y4m) stream")
        if not line.endswith(b"\n"):
            if line.startswith(MAGIC) and len(line) < MAX_LINE:
                raise VMMError("truncated y4m stream: the header line does not end")
            parse_header(line)  # names what is wrong when it is not y4m at all
            raise VMMError(f"malformed y4m header: longer than {MAX_LINE} bytes")
        self.header = parse_header(line)
        if self.header.interlace in {"t", "b", "m"}:
            kind = {"t": "top field first", "b": "bottom field first", "m": "mixed"}
            raise VMMError(
                f"interlaced y4m input (I{self.header.interlace}, "
                f"{kind[self.header.interlace]}) is not supported; deinterlace first, "
                "e.g. ffmpeg -vf bwdif"
            )
        self.frames_read = 0
        self._frame_bytes = self.header.frame_bytes

    def _read_frame_line(self) -> bool:
        line = self._stream.readline(MAX_LINE)
        if not line:
            return False
        if not line.startswith(FRAME_MAGIC) or not line.endswith(b"\n"):
            if FRAME_MAGIC.startswith(line.rstrip(b"\n")) or (
                line.startswith(FRAME_MAGIC) and len(line) < MAX_LINE
            ):
                raise VMMError(
                    f"truncated y4m stream: frame {self.frames_read + 1} ends inside its "
                    "FRAME line"
                )
            raise VMMError(
                f"malformed y4m stream: frame {self.frames_read + 1} does not start with "
                f"'FRAME' (got {line[:16]!r}); is the header's size or colour space wrong?"
            )
        return True

    def read_into(self, buf: FrameBuffer, start: int = 0) -> int:
        """Fill ``buf`` rows ``start..`` with the next frames.

        Parameters
        ----------
        buf : FrameBuffer
            Destination; must have been made for this stream's header.
        start : int
            First row of ``buf`` to fill.

        Returns
        -------
        int
            Number of frames read (less than requested only at the end of the stream).

        Raises
        ------
        VMMError
            If the stream ends inside a frame or a ``FRAME`` line is malformed.
        """
        n = 0
        for i in range(start, len(buf)):
            if not self._read_frame_line():
                break
            view = memoryview(buf.data[i]).cast("B")
            got = 0
            while got < self._frame_bytes:
                k = self._stream.readinto(view[got:])
                if not k:
                    raise VMMError(
                        f"truncated y4m stream: frame {self.frames_read + 1} has {got} of "
                        f"{self._frame_bytes} bytes"
                    )
                got += k
            self.frames_read += 1
            n += 1
        return n

    def __iter__(self):
        """Yield each frame as a fresh single-frame :class:`FrameBuffer` (convenience, tests)."""
        while True:
            buf = FrameBuffer(self.header, 1)
            if self.read_into(buf) == 0:
                return
            yield buf


class Y4MWriter:
    """Write a y4m stream: the header on construction, then frames.

    Parameters
    ----------
    stream : binary file object
        Opened for writing.
    header : Y4MHeader
        Written at once.
    """

    _FRAME_LINE = FRAME_MAGIC + b"\n"

    def __init__(self, stream: BinaryIO, header: Y4MHeader) -> None:
        self._stream = stream
        self.header = header
        self.frames_written = 0
        stream.write(header.to_bytes())

    def write(self, buf: FrameBuffer, count: int | None = None, start: int = 0) -> None:
        """Write frames ``start .. start + count - 1`` of ``buf`` (to the end when ``None``)."""
        stop = len(buf) if count is None else start + count
        for i in range(start, stop):
            self._stream.write(self._FRAME_LINE)
            self._stream.write(memoryview(buf.data[i]).cast("B"))
            self.frames_written += 1

    def flush(self) -> None:
        """Flush the underlying stream."""
        self._stream.flush()
