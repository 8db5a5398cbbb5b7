"""Videos (PyAV): the one reader, :class:`VideoSource`, and :func:`write_video`.

Reading is lazy: a :class:`VideoSource` is an array-like with ``shape``, ``dtype`` and NumPy
slicing along time (and space), decoding only what is asked for. Writing is atomic
(:mod:`napari_vmm.io.atomic`).
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import VMMError, VMMWarning
from ..core.frames import iter_frame_chunks
from .atomic import atomic_output, check_output_path

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v")
# Encoder settings per name: (codec, pix_fmt for 8-bit, options).
CODECS = {
    "h264": ("libx264", "yuv420p", {"crf": "17", "preset": "medium"}),
    "h264-lossless": ("libx264", "yuv444p", {"qp": "0", "preset": "medium"}),
    "hevc": ("libx265", "yuv420p", {"crf": "20", "x265-params": "log-level=error"}),
    "ffv1": ("ffv1", None, {}),
}
# swscale's RGB<->YUV matrix for a stream's colorspace tag (AVColorSpace). PyAV decodes with the
# tagged matrix and range; the writer encodes with the same ones, so a frame read and written
# back unchanged keeps its values (untagged streams use swscale's default on both sides).
_SWS_MATRIX = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "ITU601", 7: "SMPTE240M", 9: "BT2020",
               10: "BT2020"}
_FULL_RANGE = 2  # AVCOL_RANGE_JPEG


@dataclass(frozen=True)
class VideoIndex:
    """Presentation timestamps of a video's frames and its keyframes (no decoding).

    Attributes
    ----------
    pts : ndarray of int
        The video stream's packet timestamps in presentation order (one per frame).
    keyframes : list of int
        Frame indices (presentation order) of the keyframes, starting with 0.
    """

    pts: np.ndarray
    keyframes: list[int]

    def keyframe_before(self, frame: int) -> int:
        """The last keyframe at or before ``frame``."""
        return self.keyframes[bisect.bisect_right(self.keyframes, frame) - 1]


def index_video(path: str | os.PathLike) -> VideoIndex:
    """Read the packet timestamps and keyframes of a video by demuxing it (PyAV, no decode)."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            pts, key = [], []
            for packet in container.demux(stream):
                if packet.size and packet.pts is not None:
                    pts.append(int(packet.pts))
                    key.append(bool(packet.is_keyframe))
    except (av.error.FFmpegError, IndexError) as exc:
        raise VMMError(f"cannot index {path}: {exc}") from None
    if not pts:
        raise VMMError(f"cannot index {path}: no timestamps in the video stream")
    order = np.argsort(pts, kind="stable")
    sorted_pts = np.asarray(pts, dtype=np.int64)[order]
    keyframes = sorted(int(np.nonzero(order == i)[0][0]) for i, k in enumerate(key) if k)
    if not keyframes or keyframes[0] != 0:
        keyframes = [0] + keyframes
    return VideoIndex(sorted_pts, keyframes)


class VideoSource:
    """A video file as a lazy array (T, H, W, 3) of uint8 RGB (uint16 for >8-bit sources).

    Frames are decoded sequentially; a read that starts before the last frame decoded, or past
    the next keyframe, seeks to the keyframe at or before it (found by demuxing the file once,
    :func:`index_video`) instead of decoding from the start.

    Parameters
    ----------
    path : str or Path
        Any file PyAV can decode.
    index : VideoIndex, optional
        The file's keyframe index when already known (Dask tasks share one).

    Attributes
    ----------
    fps : float
        The stream's average frame rate (override it where the capture rate differs).
    shape : tuple
        (n_frames, height, width, 3).
    dtype : numpy dtype
    time_base : Fraction
    color : dict
        The stream's colour tags (range, matrix, primaries, transfer) as PyAV names.
    """

    def __init__(self, path: str | os.PathLike, index: VideoIndex | None = None) -> None:
        import av

        self.path = str(path)
        if not os.path.isfile(self.path):
            raise VMMError(f"cannot read {self.path}: no such file")
        try:
            container = av.open(self.path)
        except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
            raise VMMError(f"cannot read {self.path}: not a readable video ({exc})") from None
        try:
            if not container.streams.video:
                raise VMMError(f"cannot read {self.path}: it has no video stream")
            stream = container.streams.video[0]
            ctx = stream.codec_context
            self.width, self.height = ctx.width, ctx.height
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            self.fps = float(rate) if rate else 0.0
            self.time_base = Fraction(stream.time_base.numerator, stream.time_base.denominator)
            self.has_audio = bool(container.streams.audio)
            pix = ctx.format.name if ctx.format is not None else ""
            deep = any(tag in pix for tag in ("10", "12", "16"))
            self.dtype = np.dtype(np.uint16 if deep else np.uint8)
            self._format = "rgb48le" if deep else "rgb24"
            self.color = {
                key: getattr(ctx, key, None)
                for key in ("color_range", "colorspace", "color_primaries", "color_trc")
            }
            # an alpha plane (yuva, rgba, ya8...; VP8/VP9 keep it beside the frames) is not
            # decoded: the frames are RGB
            self.has_alpha = (ctx.format is not None and len(ctx.format.components) in (2, 4)
                              ) or stream.metadata.get("alpha_mode") == "1"
            n = stream.frames if index is None else len(index.pts)
            if not n:  # count packets (no decoding) when the container does not say
                n = sum(1 for p in container.demux(stream) if p.size)
        except av.error.FFmpegError as exc:
            raise VMMError(f"cannot read {self.path}: {exc}") from None
        finally:
            container.close()
        if n == 0 or self.width == 0:
            raise VMMError(f"cannot read {self.path}: the video has no frames")
        if self.fps <= 0:
            raise VMMError(f"cannot read {self.path}: no frame rate; give one with --fps")
        self.n_frames = int(n)
        self.shape = (self.n_frames, self.height, self.width, 3)
        self.ndim = 4
        self._container = None
        self._decoder: Iterator | None = None
        self._next = 0
        # None: not read yet; False: frames cannot be addressed by timestamp (no seeking)
        self._index: VideoIndex | bool | None = index

    @property
    def rotation(self) -> int:
        """The display rotation in degrees counter-clockwise (the display matrix of a phone
        video; the frames themselves are not rotated), read from the first frame once."""
        if getattr(self, "_rotation", None) is None:
            import av

            self._rotation = 0
            with contextlib.suppress(av.error.FFmpegError, StopIteration), \
                    av.open(self.path) as container:
                frame = next(container.decode(container.streams.video[0]))
                self._rotation = int(round(getattr(frame, "rotation", 0) or 0)) % 360
        return self._rotation

    def __len__(self) -> int:
        return self.n_frames

    def close(self) -> None:
        """Release the decoder."""
        if self._container is not None:
            self._container.close()
        self._container, self._decoder, self._next = None, None, 0

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def keyframe_index(self) -> VideoIndex | None:
        """The keyframe index (demuxed once), or None when frames cannot be addressed by
        timestamp (one timestamp per declared frame, strictly increasing)."""
        if self._index is None:
            try:
                index = index_video(self.path)
            except VMMError:
                index = None
            usable = (index is not None and len(index.pts) == self.n_frames
                      and bool(np.all(np.diff(index.pts) > 0)))
            self._index = index if usable else False
        return self._index or None

    def _restart(self, start: int) -> None:
        """Open a decoder positioned at frame ``start`` (or at 0 when it cannot seek)."""
        import av

        self.close()
        self._container = av.open(self.path)
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        index = self.keyframe_index() if start > 0 else None
        if index is None or index.keyframe_before(start) == 0:
            self._decoder = self._container.decode(stream)
            return
        target = int(index.pts[start])
        self._container.seek(target, stream=stream, backward=True, any_frame=False)
        frames = self._container.decode(stream)
        for frame in frames:  # from the keyframe before ``start`` up to it
            if frame.pts is None or frame.pts < target:
                continue
            if frame.pts != target:  # the timestamps do not address frames: never seek again
                self._index = False
                self._restart(start)
                return
            self._decoder = itertools.chain([frame], frames)
            self._next = start
            return
        self._decoder, self._next = iter(()), start  # nothing decodes there: truncated

    def _frames_from(self, start: int) -> Iterator[np.ndarray]:
        """Decode sequentially from frame ``start``, seeking by keyframe when that is shorter
        than decoding on from the current position."""
        import av

        try:
            if self._decoder is None or start < self._next:
                self._restart(start)
            elif start > self._next:
                index = self.keyframe_index()
                if index is not None and index.keyframe_before(start) > self._next:
                    self._restart(start)
            while self._next < start:
                next(self._decoder)
                self._next += 1
            while True:
                frame = next(self._decoder)
                self._next += 1
                yield frame_to_rgb(frame, self._format)
        except StopIteration:
            return
        except av.error.FFmpegError as exc:
            raise VMMError(f"cannot decode {self.path} at frame {self._next}: {exc}") from None

    def iter_chunks(self, n: int, start: int = 0,
                    stop: int | None = None) -> Iterator[np.ndarray]:
        """Yield (N, H, W, 3) arrays of up to ``n`` consecutive frames."""
        stop = self.n_frames if stop is None else min(stop, self.n_frames)
        buf: list[np.ndarray] = []
        index = start
        for frame in self._frames_from(start):
            if index >= stop:
                break
            buf.append(frame)
            index += 1
            if len(buf) == n:
                yield np.stack(buf)
                buf = []
        if buf:
            yield np.stack(buf)
        if index < stop:
            self._warn_truncated(index)

    def _warn_truncated(self, n_read: int) -> None:
        """Warn once that decoding stopped before the container's declared frame count."""
        if getattr(self, "_truncation_warned", False):
            return
        self._truncation_warned = True
        warnings.warn(f"{self.path}: read {n_read} frames of the {self.n_frames} the container "
                      "declares (truncated or damaged file?); the output has the frames read",
                      VMMWarning, stacklevel=3)

    def __iter__(self) -> Iterator[np.ndarray]:
        for chunk in self.iter_chunks(8):
            yield from chunk

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        tkey, rest = key[0], key[1:]
        if isinstance(tkey, (int, np.integer)):
            t = int(tkey) + (self.n_frames if tkey < 0 else 0)
            if not 0 <= t < self.n_frames:
                raise IndexError(f"frame {tkey} out of range for {self.n_frames} frames")
            data = self._read_range(t, t + 1)[0]
        elif isinstance(tkey, slice):
            start, stop, step = tkey.indices(self.n_frames)
            data = self._read_range(start, stop)[::step] if stop > start else np.empty(
                (0,) + self.shape[1:], self.dtype)
        else:
            raise TypeError("videos are indexed by an int or a slice along time")
        return data[(slice(None),) * (data.ndim - 3) + rest] if rest else data

    def _read_range(self, start: int, stop: int) -> np.ndarray:
        chunks = list(self.iter_chunks(max(1, stop - start), start, stop))
        if not chunks:
            raise VMMError(f"cannot decode frames {start}..{stop} of {self.path}")
        return np.concatenate(chunks)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        data = self._read_range(0, self.n_frames)
        return data if dtype is None else data.astype(dtype)


def open_video(path: str | os.PathLike, index: VideoIndex | None = None) -> VideoSource:
    """Open a video lazily; see :class:`VideoSource`."""
    return VideoSource(path, index=index)


def read_video_frames(path: str | os.PathLike, start: int, stop: int,
                      index: VideoIndex | None = None) -> np.ndarray:
    """Frames ``[start, stop)`` of a video, decoded from the keyframe at or before ``start``.

    A :class:`VideoSource` read (a Dask task's: ``index`` spares each task a demux of the file).

    Returns
    -------
    ndarray
        (N, H, W, 3) uint8 RGB, uint16 for sources deeper than 8 bits.
    """
    with VideoSource(path, index=index) as src:
        n = src.n_frames
        if not 0 <= start < stop <= n:
            raise VMMError(f"frames {start}..{stop} are outside the video's 0..{n}")
        frames = src[start:stop]
    if len(frames) != stop - start:
        raise VMMError(f"cannot decode frames {start}..{stop} of {path}: got {len(frames)}")
    return frames


def _to_rgb8_or_16(chunk: np.ndarray, deep: bool) -> np.ndarray:
    """Frames (N,H,W[,C]) of any supported dtype to packed RGB for the encoder."""
    from ..core.frames import to_float

    if chunk.ndim == 3:
        chunk = chunk[..., None]
    if chunk.shape[-1] == 1:
        chunk = np.repeat(chunk, 3, axis=-1)
    if deep:
        if chunk.dtype == np.uint16:
            return np.ascontiguousarray(chunk)
        return np.clip(np.rint(to_float(chunk) * 65535), 0, 65535).astype(np.uint16)
    if chunk.dtype == np.uint8:
        return np.ascontiguousarray(chunk)
    if chunk.dtype == np.uint16:
        return (chunk >> 8).astype(np.uint8)
    return np.clip(np.rint(to_float(chunk) * 255), 0, 255).astype(np.uint8)


def frame_to_rgb(frame: Any, fmt: str = "rgb24") -> np.ndarray:
    """A decoded PyAV frame as packed RGB (``rgb24`` or ``rgb48le``): every reader's one way.

    Uses the frame's tagged matrix and range, with rounding (swscale's fast truncation darkens
    8-bit frames by ~0.7 levels on a round trip) and full chroma interpolation, so unchanged
    frames are written back exactly (8-bit) or within 1/255 (10-bit) by :func:`write_video`.
    About 6 ms more per 720p frame than the fast path.
    """
    from av.video.reformatter import Interpolation

    exact = Interpolation.POINT | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
    return frame.to_ndarray(format=fmt, interpolation=exact)


def _tag_int(value: Any) -> int | None:
    """A colour tag (int, IntEnum or None) as an int, None when unset."""
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def yuv_conversion(color: dict[str, Any] | None) -> dict[str, Any]:
    """``VideoFrame.reformat`` arguments that turn RGB frames into YUV with a stream's tags.

    Parameters
    ----------
    color : dict or None
        :attr:`VideoSource.color` of the source; None: BT.709, limited range (and tagged so).

    Returns
    -------
    dict
        ``src_colorspace``/``dst_colorspace`` (the tagged matrix, None for swscale's default),
        ``src_color_range`` (RGB is full range) and ``dst_color_range`` (the source's range).
    """
    if color is None:
        color = {"color_range": 1, "colorspace": 1}
    matrix = _SWS_MATRIX.get(_tag_int(color.get("colorspace")) or 0)
    full = _tag_int(color.get("color_range")) == _FULL_RANGE
    return {"src_colorspace": matrix, "dst_colorspace": matrix, "src_color_range": "JPEG",
            "dst_color_range": "JPEG" if full else "MPEG"}


def write_video(path: str | os.PathLike, frames: Any, fps: float, *,
                audio_from: str | os.PathLike | None = None, codec: str | None = None,
                crf: int | None = None, color_from: VideoSource | None = None,
                ten_bit: bool = False, protect: Iterable[str | os.PathLike] = (),
                overwrite: bool = True) -> None:
    """Encode frames to a video file atomically, copying audio from ``audio_from``.

    Parameters
    ----------
    path : str
        Destination (.mp4, .mkv, .mov, .avi).
    frames : array-like (T, H, W[, C]) or iterable of frames or chunks
        Any supported dtype; float is taken as [0, 1].
    fps : float
        Frame rate written to the file.
    audio_from : str, optional
        A file whose audio streams are copied (no re-encoding).
    codec : str, optional
        ``h264`` (default for .mp4/.mov), ``h264-lossless``, ``hevc`` or ``ffv1`` (default
        for .mkv; lossless, keeps 16-bit).
    crf : int, optional
        Quality for h264/hevc (lower is better).
    color_from : VideoSource, optional
        Keep its colour: YUV output uses its matrix and range (full-range stays full range)
        and carries its tags (range, matrix, primaries, transfer); a deeper-than-8-bit source
        gives 10-bit h264/hevc. Without it, YUV output is BT.709 limited range, tagged so.
    ten_bit : bool
        Encode 10-bit (h264/hevc) from 16-bit or float frames.
    protect : iterable of paths
        Inputs that must never be overwritten.
    overwrite : bool
        Replace an existing ``path`` (default); False refuses it.
    """
    import av

    suffix = Path(path).suffix.lower()
    if suffix not in VIDEO_EXTENSIONS:
        raise VMMError(f"cannot write {path}: unknown video extension {suffix!r}")
    codec = codec or ("ffv1" if suffix == ".mkv" else "h264")
    if codec not in CODECS:
        raise VMMError(f"unknown codec {codec!r}; choose one of {', '.join(CODECS)}")
    if not fps or fps <= 0:
        raise VMMError(f"cannot write {path}: fps must be positive, got {fps!r}")
    encoder, pix8, options = CODECS[codec]
    options = dict(options)
    if crf is not None and "crf" in options:
        options["crf"] = str(int(crf))
    check_output_path(path, protect, overwrite)  # before computing the first frames
    if getattr(color_from, "has_alpha", False):
        warnings.warn(f"{color_from.path} has an alpha channel; {path} has none (the RGB "
                      "is magnified, the alpha plane is dropped)", VMMWarning, stacklevel=2)
    rate = Fraction(fps).limit_denominator(100000)
    chunks = iter_frame_chunks(frames, 8)
    try:
        first = next(chunks)
    except StopIteration:
        raise VMMError(f"cannot write {path}: no frames") from None
    src_deep = np.dtype(getattr(color_from, "dtype", np.uint8)) != np.uint8
    deep = ten_bit or (codec == "ffv1" and first.dtype != np.uint8) or (
        codec != "ffv1" and src_deep)
    gray = first.ndim == 3 or first.shape[-1] == 1
    h, w = first.shape[1:3]
    if codec == "ffv1":
        pix_fmt = ("gray16le" if gray else "bgr0") if deep else ("gray" if gray else "bgr0")
        if deep and not gray:
            pix_fmt = "rgb48le"
    elif deep:
        pix_fmt = "yuv420p10le" if pix8 == "yuv420p" else "yuv444p10le"
    else:
        pix_fmt = pix8
    if pix_fmt and pix_fmt.startswith("yuv420") and (h % 2 or w % 2):
        pix_fmt = pix_fmt.replace("420", "444")  # 4:2:0 needs even sizes
    in_fmt = ("gray16le" if gray else "rgb48le") if deep else ("gray" if gray else "rgb24")
    yuv_out = pix_fmt.startswith("yuv")
    color = dict(color_from.color) if color_from is not None else None
    convert = yuv_conversion(color) if yuv_out and not gray else None
    if yuv_out:  # the tags say what the conversion did
        color = {**(color or {}), "color_range": 2 if (
            convert or {}).get("dst_color_range") == "JPEG" else 1}
        if convert is not None and convert["dst_colorspace"] is None:
            color.pop("colorspace", None)
        elif color_from is None:
            color.update(colorspace=1, color_primaries=1, color_trc=1)
    elif color is not None:  # RGB or grey output: only primaries and transfer apply
        color = {k: v for k, v in color.items() if k in ("color_primaries", "color_trc")}

    with atomic_output(path, protect=protect, overwrite=overwrite) as tmp:
        audio_in = av.open(str(audio_from)) if audio_from else None
        try:
            with av.open(tmp, "w") as out:
                vstream = out.add_stream(encoder, rate=rate, options=options)
                vstream.width, vstream.height = w, h
                vstream.pix_fmt = pix_fmt
                frame_time = Fraction(rate.denominator, rate.numerator)
                vstream.time_base = frame_time
                if color is not None:
                    for key, value in color.items():
                        with contextlib.suppress(AttributeError, TypeError, ValueError):
                            if value is not None:
                                setattr(vstream.codec_context, key, value)
                if color_from is not None and getattr(color_from, "rotation", 0):
                    # the frames keep their coded orientation; so does the display matrix
                    vstream.set_display_rotation(color_from.rotation)
                audio_pairs = []
                if audio_in is not None:
                    for ia in audio_in.streams.audio:
                        audio_pairs.append((ia, out.add_stream_from_template(ia)))
                audio_packets = (
                    audio_in.demux([a for a, _ in audio_pairs]) if audio_pairs else iter(())
                )
                mapping = {a.index: o for a, o in audio_pairs}
                pending = None
                index = 0

                def mux_audio_until(seconds: float | None) -> None:
                    nonlocal pending
                    while True:
                        if pending is None:
                            pending = next(audio_packets, None)
                            if pending is None:
                                return
                        if not pending.size or pending.dts is None:
                            pending = None
                            continue
                        t = float(pending.dts * pending.time_base)
                        if seconds is not None and t > seconds:
                            return
                        pending.stream = mapping[pending.stream.index]
                        out.mux(pending)
                        pending = None

                for chunk in _chain(first, chunks):
                    if chunk.shape[1:3] != (h, w):
                        raise VMMError(f"frame size changed while writing {path}")
                    data = _to_rgb8_or_16(chunk, deep)
                    if gray:
                        data = data[..., 0]
                    for img in data:
                        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img),
                                                           format=in_fmt)
                        if convert is not None:
                            frame = frame.reformat(format=pix_fmt, **convert)
                        frame.pts = index
                        frame.time_base = frame_time
                        index += 1
                        for packet in vstream.encode(frame):
                            out.mux(packet)
                        mux_audio_until(index / float(rate))
                for packet in vstream.encode(None):
                    out.mux(packet)
                mux_audio_until(None)
        except av.error.FFmpegError as exc:
            raise VMMError(f"cannot write {path}: {exc}") from None
        finally:
            if audio_in is not None:
                audio_in.close()


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


