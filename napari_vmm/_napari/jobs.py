"""Worker generators of the Magnify widget (Qt-free): the engine route and the Dask route."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from napari_vmm.core.errors import Cancelled

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

def dask_memory_line(layer: Any, scheduler: str, zarr_out: str,
                     kwargs: dict[str, Any]) -> str:
    """``"Dask: N MiB per task (...)"`` for a Run of ``layer`` on the Dask route, or ``""``
    when Run would not take it (no Zarr output, and no scheduler for a dask-backed layer).

    The estimate (:func:`napari_vmm.core.parallel.task_memory_summary`) runs nothing.
    """
    import logging

    from napari_vmm._napari.layers import check_image_layer
    from napari_vmm.core.errors import VMMError

    data = getattr(layer, "data", None)
    dask_route = bool((zarr_out or "").strip()) or (
        bool((scheduler or "").strip()) and hasattr(data, "dask"))
    if layer is None or not dask_route:
        return ""
    try:
        check_image_layer(layer)
        from napari_vmm.core.parallel import task_memory_summary

        return "Dask: " + task_memory_summary(tuple(data.shape), data.dtype, **kwargs)
    except VMMError as exc:
        return f"Dask: cannot run: {exc}"
    except Exception as exc:  # the estimate is advice; never break the widget
        logging.getLogger(__name__).warning("napari-vmm: memory estimate failed: %s", exc)
        return ""


def engine_job(frames: Any, out: np.ndarray, kwargs: dict[str, Any]):
    """Generator run in the worker thread: yields ``(done, total)`` after each engine chunk."""
    from napari_vmm.core.engine import iter_magnify

    try:
        yield from iter_magnify(frames, out, **kwargs)
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
    closes the client once the block in progress is done. With ``fallback``, a scheduler
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
    from napari_vmm.core import parallel
    from napari_vmm.core.errors import VMMError

    client = None
    steps = None
    try:
        try:
            client = parallel.get_client(scheduler)
        except VMMError as exc:
            if not fallback:
                raise
            events.put(("warning", f"napari-vmm: {exc}; running on local threads instead"))
        x = frames
        if not hasattr(x, "dask"):
            import dask.array as da

            x = da.from_array(np.asarray(x), chunks=(min(16, x.shape[0]),) + tuple(x.shape[1:]))
        lazy = parallel.magnify_dask(x, keep_chunks=False, **kwargs)
        steps = parallel.iter_compute(lazy, out, zarr_path=zarr_path, fps=kwargs.get("fps"),
                                      client=client, protect=source_paths(frames))
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
        parallel.close_client(client)


def source_paths(frames: Any) -> list[str]:
    """Files behind a lazy array (e.g. its Zarr store) that an output must not overwrite."""
    store = getattr(getattr(frames, "store", None), "path", None)
    return [str(store)] if store else []


class WorkerError(Exception):
    """Carries a RuntimeError out of the worker thread."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original

