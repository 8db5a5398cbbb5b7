"""Reader: open .mp4/.avi/.mov/.mkv as a lazy (dask) T,Y,X,3 image layer.

Frames are decoded on demand by ``napari_vmm.io.video_as_dask``, a few frames per dask chunk,
so opening a long video costs nothing and the magnification widget can process it chunk by
chunk. The frame interval becomes the time scale (``units[0] = "s"``), so the widget reads the
frame rate from the layer.

Following the npe2 contract, neither :func:`napari_get_reader` nor the reader it returns ever
raises: a file that cannot be decoded gives ``None``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

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
        from napari_vmm.io import open_video

        open_video(path).close()
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
        from napari_vmm.io import video_as_dask

        data, source = video_as_dask(path, CHUNK_FRAMES)
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
