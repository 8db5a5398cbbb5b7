"""Worker generators of the Magnify widget (Qt-free): the engine route and the Dask route."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from napari_vmm.core.errors import Cancelled


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

    Returns the filled ``out`` array, or ``zarr_path`` once the store is complete. ``cancel``
    stops it within about a second (the blocks still pending are cancelled, on the cluster
    too, and a partial Zarr store is removed). With ``fallback``, a scheduler that cannot be
    reached (one remembered from an earlier session) is replaced by local threads, and the
    job yields one warning string saying so.
    """
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
            yield f"napari-vmm: {exc}; running on local threads instead"
        x = frames
        if not hasattr(x, "dask"):
            import dask.array as da

            x = da.from_array(np.asarray(x), chunks=(min(16, x.shape[0]),) + tuple(x.shape[1:]))
        lazy = parallel.magnify_dask(x, keep_chunks=False, **kwargs)
        steps = parallel.iter_compute(lazy, out, zarr_path=zarr_path, fps=kwargs.get("fps"),
                                      client=client, protect=source_paths(frames))
        for step in steps:
            if cancel.is_set():
                raise Cancelled("magnification cancelled")
            if step is not None:  # None: a heartbeat while blocks run
                yield step
    except RuntimeError as exc:
        raise WorkerError(exc) from exc
    finally:
        if steps is not None:
            steps.close()  # cancels pending blocks; removes a partial Zarr store
        parallel.close_client(client)
    return zarr_path if zarr_path is not None else out


def source_paths(frames: Any) -> list[str]:
    """Files behind a lazy array (e.g. its Zarr store) that an output must not overwrite."""
    store = getattr(getattr(frames, "store", None), "path", None)
    return [str(store)] if store else []


class WorkerError(Exception):
    """Carries a RuntimeError out of the worker thread."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original

