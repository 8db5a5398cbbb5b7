"""The route: how a magnification runs, decided once from the parameters and the input.

=============  ===============================================================================
``stream``     chunks of frames through a causal filter that carries its state; memory does
               not depend on the clip length (:class:`~napari_vmm.core.pipeline.Pipeline`).
``whole``      the whole clip in memory or in a file: spatial tiles with a halo, each filtered
               over all T frames (:mod:`napari_vmm.core.wholeclip`); non-causal filters, and
               the static mode against a frame other than 0.
``tiles``      a dask array with a non-causal filter: full-T spatial tiles as Dask tasks
               (:func:`napari_vmm.scale.magnify_dask`).
``segments``   a dask array (or a video on a cluster) with a causal filter: time segments,
               each with a warm-up, as Dask tasks; a video is cut at its keyframes and the
               encoded segments are joined (:func:`napari_vmm.scale.magnify_video_segments`).
``window``     a stream (a pipe) with a non-causal filter: the filter over a sliding window
               (``vmm-filter --window``).
=============  ===============================================================================

Every front end (``magnify``, ``vmm magnify``, ``vmm magnify --cluster``, ``vmm-filter``, the
napari widget, Dask) asks :func:`choose_route` instead of deciding for itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import VMMError

STREAM, WHOLE, TILES, SEGMENTS, WINDOW = "stream", "whole", "tiles", "segments", "window"
#: Values of ``path`` (the user's forced route) and the routes they allow.
PATHS = ("auto", "stream", "whole", "segments")


@dataclass(frozen=True)
class Route:
    """How a magnification runs (see the module's table).

    Attributes
    ----------
    kind : str
        ``stream``, ``whole``, ``tiles``, ``segments`` or ``window``.
    whole_clip : bool
        The temporal filter is not causal: it needs every frame of a pixel at once.
    reference : int or None
        The frame the filter takes differences to (static mode, or the ``none`` filter), fed
        to every stream or segment before its first frame; None for band-pass filters and
        the dynamic mode.
    video : bool
        ``segments`` of a video file, cut at keyframes and encoded in parallel.
    """

    kind: str
    whole_clip: bool
    reference: int | None = None
    video: bool = False

    @property
    def streams(self) -> bool:
        """Frames go through in chunks with the filter's state carried (stream, segments)."""
        return self.kind in (STREAM, SEGMENTS)


def _field(params: Any, name: str, default: Any) -> Any:
    if isinstance(params, Mapping):
        return params.get(name, default)
    return getattr(params, name, default)


def choose_route(params: Any, shape: tuple[int, ...] | None = None, *, path: str = "auto",
                 lazy: bool = False, stream: bool = False, video: bool = False) -> Route:
    """Decide how a magnification with ``params`` runs on an input.

    Parameters
    ----------
    params : MagnifyParams or mapping
        The parameters (``temporal``, ``mode``, ``zero_phase`` and ``reference`` are read).
    shape : tuple, optional
        The input's (T, H, W[, C]); with it the reference frame is checked against T.
    path : str
        ``auto``, or a forced route: ``stream``, ``whole`` (full-T tiles even for a causal
        filter) or ``segments`` (time segments of a dask array).
    lazy : bool
        The input is a dask array, or is run on a Dask cluster: ``tiles`` or ``segments``.
    stream : bool
        The input is an iterator or a pipe, whose length is not known: ``stream`` or
        ``window``.
    video : bool
        With ``lazy``: the input is a video file written to a video, so that a causal filter
        runs in keyframe segments.

    Returns
    -------
    Route

    Raises
    ------
    VMMError
        For a forced path the filter cannot take, or a reference frame outside the clip.
    """
    temporal = _field(params, "temporal", "butterworth")
    mode = _field(params, "mode", "temporal")
    zero_phase = bool(_field(params, "zero_phase", False))
    reference = int(_field(params, "reference", 0) or 0)
    if path not in PATHS:
        raise VMMError(f"path must be one of {', '.join(PATHS)}, got {path!r}")
    whole_clip = mode == "temporal" and (temporal == "ideal" or (
        zero_phase and temporal in ("butterworth", "fir")))
    uses_reference = mode == "static" or (mode == "temporal" and temporal == "none")
    ref = reference if uses_reference else None
    if ref is not None and shape is not None and not 0 <= ref < shape[0]:
        raise VMMError(f"reference frame {ref} is outside the clip (0..{shape[0] - 1})")
    if whole_clip and path in ("stream", "segments"):
        raise VMMError(f"the {temporal!r} filter needs the whole clip; it cannot run "
                       + ("in time segments" if lazy else "on the streaming path"))
    if stream:
        return Route(WINDOW if whole_clip else STREAM, whole_clip, ref)
    if lazy:
        if whole_clip or path == "whole":
            return Route(TILES, whole_clip, ref)
        return Route(SEGMENTS, whole_clip, ref, video=video)
    # In memory or a file: a stream starts at frame 0, so another reference needs the clip.
    if path == "whole" or whole_clip or ref:
        if path == "stream":
            raise VMMError("this filter needs the whole clip; it cannot run on the streaming "
                           "path")
        return Route(WHOLE, whole_clip, ref)
    return Route(STREAM, whole_clip, ref)
