"""Writer: save an image layer (T,Y,X or T,Y,X,3) as a .mp4, .mkv or .mov video.

The frame rate comes from the layer's time scale (first axis in time units), else from the
video it was read from (``metadata["napari_vmm"]["video"]["fps"]``), else 30 fps with a warning.
Encoding, dtype conversion and the atomic write (temporary name, then rename) are done by
``napari_vmm.io.write_video``, which applies the file policy of every command before any
frame is computed: a missing or read-only folder, or the source video itself, is refused with
one notification. Replacing an existing file is allowed here because napari's save dialog has
already asked the user (the CLIs ask for ``-y``/``--overwrite`` instead).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0


def fps_from_scale(scale: Any, units: Any) -> float | None:
    """``1 / frame interval`` when the first axis is in time units, else None.

    Parameters
    ----------
    scale : sequence of float
        Layer scale; ``scale[0]`` is the frame interval.
    units : sequence of pint.Unit or str
        Layer units; ``units[0]`` must have the dimension of time.
    """
    try:
        import pint

        unit = units[0]
        if isinstance(unit, str):
            unit = pint.get_application_registry().Unit(unit)
        interval = float((float(scale[0]) * unit).to("s").magnitude)
    except Exception:  # missing, or not a time unit (pint.DimensionalityError)
        return None
    return 1.0 / interval if interval > 0 and interval != float("inf") else None


def layer_fps(meta: dict[str, Any]) -> float | None:
    """Frame rate of a layer from its writer ``meta`` (scale/units, else reader metadata)."""
    fps = fps_from_scale(meta.get("scale"), meta.get("units"))
    if fps is not None:
        return fps
    video = (meta.get("metadata") or {}).get("napari_vmm", {}).get("video", {})
    fps = video.get("fps") if isinstance(video, dict) else None
    return float(fps) if fps else None


def write_video_layer(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write one image layer to a video file.

    Parameters
    ----------
    path : str
        Destination ending in .mp4, .mkv or .mov.
    data : array-like
        Layer data, (T, Y, X) or (T, Y, X, 3), numpy or dask (written chunk by chunk).
    meta : dict
        Layer attributes as napari passes them to writers.

    Returns
    -------
    list of str
        ``[path]`` on success, ``[]`` when the layer cannot be written (a notification says why).
    """
    from napari_vmm.core.errors import VMMError
    from napari_vmm.io import write_video

    shape = tuple(getattr(data, "shape", ()))
    if len(shape) - (1 if meta.get("rgb") else 0) < 3:
        _notify_error(f"cannot write {path}: the layer is 2-D (shape {shape}); a video needs "
                      "a time series T,Y,X or T,Y,X,3")
        return []
    fps = layer_fps(meta)
    if fps is None:
        fps = DEFAULT_FPS
        _notify_warning(f"layer has no time scale: writing {path} at {fps:g} fps")
    # a layer read lazily from a video must not be written over that video
    video = (meta.get("metadata") or {}).get("napari_vmm", {}).get("video", {})
    protect = [video["path"]] if isinstance(video, dict) and video.get("path") else []
    try:
        write_video(path, data, fps, protect=protect)
    except VMMError as exc:
        _notify_error(f"cannot write {path}: {exc}")
        return []
    return [path]


def _notify_warning(msg: str) -> None:
    try:
        from napari.utils.notifications import show_warning

        show_warning(msg)
    except ImportError:
        log.warning(msg)


def _notify_error(msg: str) -> None:
    try:
        from napari.utils.notifications import show_error

        show_error(msg)
    except ImportError:
        log.error(msg)
