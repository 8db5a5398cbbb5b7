"""Reader: open .mp4/.avi/.mov/.mkv as a lazy (dask) T,Y,X,3 image layer.

Frames are decoded on demand by ``napari_vmm.core.io.open_video``, a few frames per dask chunk,
so opening a long video costs nothing and the magnification widget can process it chunk by
chunk. The frame interval becomes the time scale (``units[0] = "s"``), so the widget reads the
frame rate from the layer.

Following the npe2 contract, neither :func:`napari_get_reader` nor the reader it returns ever
raises: a file that cannot be decoded gives ``None``.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv")
#: Frames per dask chunk: small enough for quick scrubbing, large enough to decode efficiently.
CHUNK_FRAMES = 8


def napari_get_reader(path: str | list[str]):
    """Return :func:`read_video` when ``path`` is one readable video file, else None."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    path = os.fspath(path)
    if not path.lower().endswith(VIDEO_EXTENSIONS) or not os.path.isfile(path):
        return None
    try:
        _open(path)
    except Exception as exc:  # unreadable: let napari try another reader
        log.info("napari-vmm: cannot read %s as a video: %s", path, exc)
        return None
    return read_video


def read_video(path: str | list[str]) -> list[tuple] | None:
    """Read a video as one lazy RGB image layer.

    Returns
    -------
    list of LayerDataTuple or None
        ``[(dask_array (T, Y, X, 3) uint8, kwargs, "image")]``, or None if it cannot be read.
    """
    if isinstance(path, (list, tuple)):
        path = path[0]
    path = os.fspath(path)
    try:
        data, source = video_as_dask(path)
    except Exception as exc:
        log.warning("napari-vmm: cannot read %s as a video: %s", path, exc)
        return None
    fps = float(source.fps)
    kwargs = {
        "name": Path(path).stem,
        "rgb": True,
        "scale": (1.0 / fps, 1.0, 1.0),
        "units": ("s", "pixel", "pixel"),
        "axis_labels": ("t", "y", "x"),
        "metadata": {"napari_vmm": {"video": {"path": path, "fps": fps,
                                              "n_frames": int(data.shape[0])}}},
    }
    return [(data, kwargs, "image")]


def _open(path: str):
    from napari_vmm.core.io import open_video

    return open_video(path)


def video_as_dask(path: str, chunk_frames: int = CHUNK_FRAMES):
    """A lazy dask array ``(T, H, W, 3)`` of a video and the ``VideoSource`` it reads from.

    Each chunk of ``chunk_frames`` frames is decoded only when napari (or the engine) needs it.
    """
    import dask.array as da

    source = _open(path)
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
    decode the chunk again, restarting the decoder from the first frame when it has moved past.
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
