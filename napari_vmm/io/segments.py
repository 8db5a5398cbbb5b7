"""Videos by keyframe segments, for Dask and ``vmm --cluster``: segment bounds cut at
keyframes, and a video as a lazy dask array with one chunk per segment.

The keyframe index and the seeking read are the one video reader's
(:func:`~napari_vmm.io.video.index_video`, :func:`~napari_vmm.io.video.read_video_frames`).
"""

from __future__ import annotations

import os

from .video import VideoIndex, index_video, open_video, read_video_frames

__all__ = ["video_segments", "video_to_dask"]


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

    index = index_video(path)
    with open_video(path, index=index) as src:
        shape, dtype = (len(index.pts),) + tuple(src.shape[1:]), src.dtype
    read = dask.delayed(read_video_frames, pure=True)
    parts = [da.from_delayed(read(str(path), a, b, index), shape=(b - a,) + shape[1:],
                             dtype=dtype) for a, b in video_segments(index, min_frames)]
    return da.concatenate(parts, axis=0)
