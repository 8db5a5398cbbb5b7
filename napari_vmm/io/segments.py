"""Videos by keyframe segments: an index of timestamps and keyframes, seeking reads, and a
video as a lazy dask array with one chunk per segment (for Dask and ``vmm --cluster``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..core.errors import VMMError
from .video import frame_to_rgb


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


def read_video_frames(path: str | os.PathLike, start: int, stop: int,
                      index: VideoIndex | None = None, deep: bool = False) -> np.ndarray:
    """Decode frames ``[start, stop)`` by seeking to the keyframe before ``start``.

    Returns (N, H, W, 3) uint8 RGB (uint16 with ``deep``), as :class:`io.VideoSource`.
    """
    import av

    index = index or index_video(path)
    n = len(index.pts)
    if not 0 <= start < stop <= n:
        raise VMMError(f"frames {start}..{stop} are outside the video's 0..{n}")
    first, last = int(index.pts[start]), int(index.pts[stop - 1])
    frames = []
    fmt = "rgb48le" if deep else "rgb24"
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        container.seek(first, stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            if frame.pts is None or frame.pts < first:
                continue
            frames.append(frame_to_rgb(frame, fmt))
            if frame.pts >= last:
                break
    if len(frames) != stop - start:
        raise VMMError(f"cannot decode frames {start}..{stop} of {path}: got {len(frames)}")
    return np.stack(frames)


def video_segments(index: VideoIndex, min_frames: int) -> list[tuple[int, int]]:
    """Keyframe-aligned ``[start, stop)`` segments, merged to at least ``min_frames`` each."""
    n = len(index.pts)
    cuts = [k for k in index.keyframes if 0 < k < n]
    bounds = [0]
    for k in cuts:
        if k - bounds[-1] >= min_frames and n - k >= min_frames:
            bounds.append(k)
    bounds.append(n)
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def video_to_dask(path: str | os.PathLike, min_frames: int = 32):
    """A video as a lazy dask array (T, H, W, 3), one chunk per keyframe segment."""
    import dask
    import dask.array as da

    from .video import open_video

    with open_video(path) as src:
        shape, dtype = src.shape, src.dtype
    index = index_video(path)
    if len(index.pts) != shape[0]:
        shape = (len(index.pts),) + tuple(shape[1:])
    deep = dtype == np.uint16
    read = dask.delayed(read_video_frames, pure=True)
    parts = [da.from_delayed(read(str(path), a, b, index, deep), shape=(b - a,) + shape[1:],
                             dtype=dtype) for a, b in video_segments(index, min_frames)]
    return da.concatenate(parts, axis=0)
