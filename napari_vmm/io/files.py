"""Any input by its extension: videos, stacks and Zarr stores, read lazily.

:func:`open_input` opens a video or a stack; :func:`open_any` a Zarr store too (with its frame
rate); :func:`as_dask` gives a dask array whose tasks read the file by path (:func:`video_as_dask`
one whose chunks share one decoder, for napari); :func:`media_in`
lists the inputs in a folder.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

from .stacks import STACK_EXTENSIONS, open_stack, read_stack
from .video import VIDEO_EXTENSIONS, VideoSource, open_video
from .zarr import ZARR_EXTENSIONS, open_zarr


def is_zarr(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a Zarr store (by its extension)."""
    return Path(path).suffix.lower() in ZARR_EXTENSIONS


def media_in(folder: str | os.PathLike) -> list[str]:
    """The videos, stacks and ``.zarr`` stores in ``folder`` (hidden names skipped), sorted."""
    known = VIDEO_EXTENSIONS + STACK_EXTENSIONS + ZARR_EXTENSIONS
    return sorted(str(p) for p in Path(folder).iterdir()
                  if p.suffix.lower() in known and not p.name.startswith("."))


def open_input(path: str | os.PathLike):
    """Open a video or a stack by extension (anything else is tried as a video)."""
    suffix = Path(path).suffix.lower()
    if suffix in STACK_EXTENSIONS:
        return open_stack(path)
    return open_video(path)


def open_any(path: str | os.PathLike) -> tuple[Any, float | None]:
    """Open a video, stack or Zarr store lazily; return it and its frame rate (or None)."""
    if is_zarr(path):
        arr, attrs = open_zarr(path)
        return arr, attrs.get("fps")
    src = open_input(path)
    return src, (src.fps if isinstance(src, VideoSource) else None)


def as_dask(path: str | os.PathLike, segment: int) -> Any:
    """A file as a dask array whose tasks read it by path (nothing large is pickled)."""
    import dask
    import dask.array as da

    from .segments import video_to_dask

    path = str(path)
    if is_zarr(path):
        return open_zarr(path)[0]
    if Path(path).suffix.lower() in STACK_EXTENSIONS:
        data = open_stack(path)
        shape, dtype = tuple(data.shape), data.dtype
        del data
        read = dask.delayed(read_stack, pure=True)
        parts = [da.from_delayed(read(path, a, min(shape[0], a + segment)),
                                 shape=(min(shape[0], a + segment) - a,) + shape[1:],
                                 dtype=dtype) for a in range(0, shape[0], segment)]
        return da.concatenate(parts, axis=0)
    return video_to_dask(path, min_frames=segment)


def video_as_dask(path: str | os.PathLike, chunk_frames: int = 8) -> tuple[Any, VideoSource]:
    """A lazy dask array ``(T, H, W, 3)`` of a video and the ``VideoSource`` it reads from.

    Each chunk of ``chunk_frames`` frames is decoded only when napari (or the engine) needs it
    (the napari reader's layers).
    """
    import dask.array as da

    source = open_video(path)
    shape = tuple(int(s) for s in source.shape)
    if len(shape) != 4 or shape[0] < 1:
        raise ValueError(f"unexpected video shape {shape}")
    # the source decodes sequentially and is not thread-safe: one dask task at a time
    data = da.from_array(_RecentChunks(source), chunks=(chunk_frames, *shape[1:]),
                         asarray=True, fancy=False, lock=True, name=False)
    return data, source


class _RecentChunks:
    """Array-like over a VideoSource that keeps the last ``keep`` decoded time ranges.

    The engine reads a few frames at a time, so consecutive reads hit the same dask chunk,
    and dask computes a chunk again on every read. Without this cache every such read would
    decode the chunk again, seeking back to its keyframe.
    """

    def __init__(self, source: Any, keep: int = 2) -> None:
        self.source = source
        self.shape = tuple(int(s) for s in source.shape)
        self.dtype = source.dtype
        self.ndim = len(self.shape)
        self.keep = keep
        self._recent: OrderedDict[tuple[int, int], Any] = OrderedDict()

    def __getitem__(self, key: Any) -> Any:
        key = key if isinstance(key, tuple) else (key,)
        tkey, rest = key[0], key[1:]
        if not isinstance(tkey, slice):
            return self.source[key]
        start, stop, step = tkey.indices(self.shape[0])
        frames = self._recent.get((start, stop))
        if frames is None:
            frames = self.source[start:stop]
            self._recent[(start, stop)] = frames
            while len(self._recent) > self.keep:
                self._recent.popitem(last=False)
        else:
            self._recent.move_to_end((start, stop))
        return frames[(slice(None, None, step), *rest)]
