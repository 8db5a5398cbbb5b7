"""What the dock widgets run (Qt-free): building a magnify job from the layers and the
parameters, and the worker generators (engine, Dask, motion traces, deflection shapes)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from napari_vmm.core.errors import Cancelled, VMMError

if TYPE_CHECKING:
    from napari_vmm.core.params import MagnifyParams

#: Bytes of motion signal the in-process engine may hold (whole-clip filters tile above it),
#: so that napari stays under 1.5 GB on a 301-frame 448 x 576 video (benchmarks/bench_napari.py).
ENGINE_MEMORY_BUDGET = 384 << 20
#: Pixels per engine chunk in napari: a method's working memory grows with the chunk (riesz
#: holds about 35 MB per 448 x 576 frame), and progress and Cancel come once per chunk.
ENGINE_CHUNK_PIXELS = 600_000


def engine_kwargs(kwargs: dict[str, Any], shape: tuple[int, ...]) -> dict[str, Any]:
    """``kwargs`` for :func:`engine_job` in the napari process: the signal budget and the
    chunk size above, unless given."""
    h, w = int(shape[1]), int(shape[2])
    chunk = max(2, min(16, ENGINE_CHUNK_PIXELS // max(1, h * w)))
    return {"memory_budget": ENGINE_MEMORY_BUDGET, "chunk_size": chunk, **kwargs}


def dask_settings(scheduler: str | None, zarr_out: str | None) -> tuple[str | None, str | None]:
    """The validated Dask scheduler (None: local threads) and Zarr output (None: none).

    Raises
    ------
    VMMError
        For a scheduler address that cannot be used, or a Zarr output not ending in .zarr.
    """
    from napari_vmm.scale import check_scheduler

    scheduler = check_scheduler(scheduler or "")
    zarr_out = (zarr_out or "").strip() or None
    if zarr_out is not None and not zarr_out.rstrip("/\\").endswith(".zarr"):
        raise VMMError(f"Zarr output must be a folder ending in .zarr, got {zarr_out!r}")
    return scheduler, zarr_out


def runs_on_dask(frames: Any, scheduler: str | None, zarr_out: str | None,
                 preview: bool = False) -> bool:
    """Whether a Run goes to Dask instead of the engine in this process: the one place the
    widget decides it (the engine then chooses stream or whole clip, Dask tiles or segments).

    A Run goes to Dask with a Zarr output, or with a scheduler for a dask-backed layer; a
    preview never does.
    """
    if preview:
        return False
    return bool((zarr_out or "").strip()) or (
        bool((scheduler or "").strip()) and hasattr(frames, "dask"))


@dataclass
class MagnifyJob:
    """Everything a Run or Preview worker needs, built by :func:`prepare_job`.

    ``dask`` is None for the in-process engine, else ``(scheduler, zarr_output)``; ``out`` is
    None when a Zarr store receives the result. ``warnings`` are for the user (the view
    shows them).
    """

    frames: Any
    out: np.ndarray | None
    kwargs: dict[str, Any]
    source: Any
    name: str
    provenance: dict[str, Any]
    offset: tuple[int, int] = (0, 0)
    dask: tuple[str | None, str | None] | None = None
    warnings: list[str] = field(default_factory=list)


def prepare_job(source: Any, params: MagnifyParams, *, roi_layer: Any = None,
                feather_px: float = 4.0, preview: bool = False, preview_frames: int = 0,
                scheduler: str = "", zarr_output: str = "") -> MagnifyJob:
    """Validate the input and build the job of a Run (or a Preview) of ``source``.

    A preview takes the first ``preview_frames`` frames (0: :func:`preview_length`), cropped
    to the ROI when one is set. The Dask route is taken by a Run with a Dask scheduler set
    (for dask-backed layers) or a Zarr output; everything else, file-backed videos included,
    streams through the engine in this process: progress every chunk, Cancel within one
    chunk, bounded memory. A file-backed video gets ``params.fps`` as its capture rate.

    Raises
    ------
    VMMError
        For a layer, ROI, preview or Dask setting the engine cannot use.
    """
    from napari_vmm import __version__
    from napari_vmm._napari.layers import (
        allocate_output,
        check_image_layer,
        fps_from_layer,
        mask_bbox,
        output_name,
        preview_length,
        roi_mask_from_shapes,
        set_capture_rate,
        video_file_info,
    )
    from napari_vmm.core.frames import check_frame_shape

    check_image_layer(source)
    warnings = []
    video = video_file_info(source)
    if video is not None:
        set_capture_rate(source, params.fps)  # the rate in the widget is the true one
    elif fps_from_layer(source) is None:
        warnings.append(f"layer {source.name!r} has no time scale; using fps = "
                        f"{params.fps:g} as set in the widget")
    frames = source.data
    mask = (roi_mask_from_shapes(roi_layer, source, feather_px)
            if roi_layer is not None else None)
    offset = (0, 0)
    if preview:
        n = int(preview_frames) or preview_length(
            params.fps, params.band[0] if params.band else 0.0, frames.shape[0])
        n = min(n, frames.shape[0])
        frames = frames[:n]
        if mask is not None:
            ys, xs = mask_bbox(mask, margin=int(np.ceil(feather_px)) + 8)
            frames = frames[:, ys, xs]
            mask = mask[ys, xs]
            offset = (ys.start, xs.start)
        if params.mode == "static" and params.reference >= n:
            raise VMMError(f"reference frame {params.reference} is outside the {n} "
                           "preview frames")
    check_frame_shape(tuple(frames.shape), what=f"the frames of layer {source.name!r}")
    scheduler, zarr_out = dask_settings(scheduler, zarr_output)
    dask = (scheduler, zarr_out) if runs_on_dask(frames, scheduler, zarr_out, preview) else None
    out = (None if dask is not None and zarr_out is not None
           else allocate_output(tuple(frames.shape), frames.dtype))
    kwargs = {**params.engine_kwargs(), "roi_mask": mask}
    if dask is None:
        kwargs = engine_kwargs(kwargs, tuple(frames.shape))
    path = getattr(source.source, "path", None)
    provenance = {
        "version": __version__,
        "params": params.to_dict(),
        "source": source.name,
        "source_path": str(path) if path else None,
        "video": (None if video is None else
                  {"path": video["path"], "container_fps": video.get("fps"),
                   "capture_fps": params.fps}),
        "roi": roi_layer.name if roi_layer is not None else None,
        "feather_px": float(feather_px) if roi_layer is not None else None,
        "preview": ({"frames": int(frames.shape[0]), "yx_offset": list(offset)}
                    if preview else None),
        "dask": (None if dask is None else
                 {"scheduler": scheduler or "local threads", "zarr_output": zarr_out}),
    }
    return MagnifyJob(frames, out, kwargs, source, output_name(source.name, params.method,
                                                                preview),
                      provenance, offset, dask, warnings)


def dask_memory_line(layer: Any, scheduler: str, zarr_out: str,
                     kwargs: dict[str, Any]) -> str:
    """``"Dask: N MiB per task (...)"`` for a Run of ``layer`` on the Dask route, or ``""``
    when Run would not take it (no Zarr output, and no scheduler for a dask-backed layer).

    The estimate (:func:`napari_vmm.core.plan.task_memory_summary`) runs nothing.
    Whether Run takes the Dask route is :func:`runs_on_dask`'s answer.
    """
    import logging

    from napari_vmm._napari.layers import check_image_layer

    data = getattr(layer, "data", None)
    if layer is None or not runs_on_dask(data, scheduler, zarr_out):
        return ""
    try:
        check_image_layer(layer)
        from napari_vmm.core.plan import task_memory_summary

        return "Dask: " + task_memory_summary(tuple(data.shape), data.dtype, **kwargs)
    except VMMError as exc:
        return f"Dask: cannot run: {exc}"
    except Exception as exc:  # the estimate is advice; never break the widget
        logging.getLogger(__name__).warning("napari-vmm: memory estimate failed: %s", exc)
        return ""


def engine_job(frames: Any, out: np.ndarray, kwargs: dict[str, Any]):
    """Generator run in the worker thread: yields ``(done, total)`` after each engine chunk.

    The public :func:`napari_vmm.iter_magnify` chooses the route (stream or whole clip)."""
    import napari_vmm

    try:
        yield from napari_vmm.iter_magnify(frames, out, **kwargs)
    except RuntimeError as exc:
        # superqt swallows RuntimeError from a generator as "aborted thread"; re-raise it as
        # something the errored signal carries
        raise WorkerError(exc) from exc
    return out


def dask_job(frames: Any, out: np.ndarray | None, zarr_path: str | None,
             scheduler: str | None, kwargs: dict[str, Any], cancel: threading.Event,
             fallback: bool = False):
    """Worker generator of the Dask route: yields ``(done, total)`` per block.

    Returns the filled ``out`` array, or ``zarr_path`` once the store is complete. The blocks
    are computed by a helper thread; this generator polls it every :data:`HEARTBEAT` s, so
    ``cancel`` stops it within that time even while a long block runs. The helper then
    cancels the blocks still pending (on the cluster too), removes a partial Zarr store and
    closes the client once the block in progress stops (on local threads, within one engine
    chunk; on a cluster, when it ends). With ``fallback``, a scheduler
    that cannot be reached (one remembered from an earlier session) is replaced by local
    threads, and the job yields one warning string saying so.
    """
    import queue

    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    helper = threading.Thread(target=_compute_blocks, name="vmm-dask-job", daemon=True,
                              args=(frames, out, zarr_path, scheduler, kwargs, fallback,
                                    events, stop))
    helper.start()
    try:
        while True:
            if cancel.is_set():
                raise Cancelled("magnification cancelled")
            try:
                kind, value = events.get(timeout=HEARTBEAT)
            except queue.Empty:
                continue
            if kind == "error":
                if isinstance(value, RuntimeError):
                    raise WorkerError(value) from value
                raise value
            if kind == "done":
                break
            yield value  # (done, total), or a warning string
    finally:
        stop.set()
    return zarr_path if zarr_path is not None else out


#: Seconds between the Dask job's checks for a cancel while blocks run.
HEARTBEAT = 0.25


def _compute_blocks(frames: Any, out: np.ndarray | None, zarr_path: str | None,
                    scheduler: str | None, kwargs: dict[str, Any], fallback: bool,
                    events: Any, stop: threading.Event) -> None:
    """Helper thread of :func:`dask_job`: puts ``(kind, value)`` events on ``events``."""
    import napari_vmm
    from napari_vmm import scale

    client = None
    steps = None
    try:
        try:
            client = scale.get_client(scheduler)
        except VMMError as exc:
            if not fallback:
                raise
            events.put(("warning", f"napari-vmm: {exc}; running on local threads instead"))
        x = frames
        if not hasattr(x, "dask"):
            import dask.array as da

            x = da.from_array(np.asarray(x), chunks=(min(16, x.shape[0]),) + tuple(x.shape[1:]))
        # the public entry: a dask array gets a lazy graph (tiles or time segments)
        lazy = napari_vmm.magnify(x, keep_chunks=False, **kwargs)
        steps = scale.iter_compute(lazy, out, zarr_path=zarr_path, fps=kwargs.get("fps"),
                                      client=client, protect=source_paths(frames),
                                      stop=stop)  # a cancel stops the blocks running
        for step in steps:
            if stop.is_set():
                return
            events.put(("step", step))
    except BaseException as exc:
        events.put(("error", exc))
    else:
        events.put(("done", None))
    finally:
        if steps is not None:
            steps.close()  # cancels pending blocks; removes a partial Zarr store
        scale.close_client(client)


def source_paths(frames: Any) -> list[str]:
    """Files behind a lazy array (e.g. its Zarr store) that an output must not overwrite."""
    store = getattr(getattr(frames, "store", None), "path", None)
    return [str(store)] if store else []


class WorkerError(Exception):
    """Carries a RuntimeError out of the worker thread."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original



#: Frames the analysis jobs read per step (one progress tick and one cancel point each).
CHUNK_FRAMES = 32


def analysis_job(frames: Any, rois: list, fps: float, options: dict[str, Any]):
    """Worker generator of "Motion traces": yields ``(done, total)``, returns the analysis.

    Float frames are checked for NaN and infinity first (one clear message); a RuntimeError
    is carried out as :class:`WorkerError` (superqt would swallow it).
    """
    from napari_vmm.core.analysis import iter_analyze_motion
    from napari_vmm.core.frames import to_float

    try:
        if np.dtype(frames.dtype).kind == "f":
            for t in range(0, frames.shape[0], CHUNK_FRAMES):
                to_float(np.asarray(frames[t:t + CHUNK_FRAMES]))  # raises on NaN/inf
        return (yield from iter_analyze_motion(frames, rois, fps, chunk_frames=CHUNK_FRAMES,
                                               **options))
    except RuntimeError as exc:
        raise WorkerError(exc) from exc


def grid_job(frames: Any, grid: tuple[int, int], fps: float, options: dict[str, Any]):
    """Worker generator of "Deflection shapes": yields ``(done, total)``, returns the grid
    analysis."""
    from napari_vmm.core.analysis import iter_analyze_grid

    return (yield from iter_analyze_grid(frames, grid, fps, chunk_frames=CHUNK_FRAMES,
                                         **options))
