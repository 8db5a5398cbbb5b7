"""Compute a dask array block by block into an array or a Zarr store, with progress and
cancellation (the napari widget's Dask job)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..core.errors import VMMError
from ..core.plan import chunk_bounds
from ..io.atomic import atomic_output_dir
from ..io.zarr import mark_zarr, store_block
from .tasks import bind_stop, check_stop, task_result


def iter_compute(x: Any, out: Any = None, *, zarr_path: str | os.PathLike | None = None,
                 fps: float | None = None, client: Any = None,
                 protect: Iterable[str | os.PathLike] = (),
                 max_workers: int | None = None,
                 stop: threading.Event | None = None) -> Iterable[tuple[int, int]]:
    """Compute a dask array block by block, yielding ``(done, total)`` as blocks finish.

    Closing the generator (a cancel) cancels the blocks not yet computed: the futures still
    pending on a cluster, or the blocks not yet started on the local threads.

    Parameters
    ----------
    x : dask.array.Array
        E.g. :func:`magnify_dask`'s result (``keep_chunks=False`` avoids a rechunk).
    out : array, optional
        Writable array of ``x``'s shape and dtype that receives the blocks (in this process).
    zarr_path : path, optional
        A ``.zarr`` folder to write instead (atomically, as :func:`write_zarr_blocks`; the
        blocks are stored by the tasks, so cluster workers must see the path). Chunks: 8
        frames by the blocks' regular spatial size.
    fps : float, optional
        Stored as the Zarr array's ``fps`` attribute.
    client : distributed.Client, optional
        Where to compute; default: a local pool of ``max_workers`` threads (default: the
        number of CPUs), each block with the synchronous scheduler.
    protect : paths
        Inputs that the Zarr output must never overwrite.
    stop : threading.Event, optional
        Set from another thread (a cancel): on the local threads, the blocks running stop
        within one engine chunk, the others do not start, and the generator raises
        :class:`~napari_vmm.core.errors.Cancelled` after the same cleanup as a close.

    Yields
    ------
    (int, int)
        Blocks done and the number of blocks.
    """
    import dask

    if (out is None) == (zarr_path is None):
        raise VMMError("give exactly one of out (an array) or zarr_path (a .zarr folder)")
    if out is not None and tuple(out.shape) != tuple(x.shape):
        raise VMMError(f"out has shape {tuple(out.shape)}, expected {tuple(x.shape)}")
    with contextlib.ExitStack() as stack:
        if zarr_path is not None:
            import zarr

            chunks = (min(8, x.shape[0]),) + tuple(max(c) for c in x.chunks[1:])
            if not all(all(e % z == 0 or e == size for e in np.cumsum(c)) for c, z, size in
                       zip(x.chunks, chunks, x.shape, strict=True)):
                x = x.rechunk(chunks)  # each block must cover whole Zarr chunks
            # a cancel from napari (stop given) returns before the partial store is deleted
            tmp = stack.enter_context(atomic_output_dir(zarr_path, protect,
                                                        background_cleanup=stop is not None))
            z = zarr.create_array(tmp, shape=x.shape, chunks=chunks, dtype=x.dtype,
                                  overwrite=True)
            mark_zarr(z, False)
            if fps:
                z.attrs["fps"] = float(fps)
        starts = [chunk_bounds(c) for c in x.chunks]
        blocks = x.to_delayed()
        regions, tasks = [], []
        for index in np.ndindex(*x.numblocks):
            region = tuple(slice(*starts[d][i]) for d, i in enumerate(index))
            regions.append(region)
            tasks.append(blocks[index] if zarr_path is None else
                         dask.delayed(store_block, pure=False)(blocks[index], tmp, region))
        yield from _iter_tasks(tasks, regions, out, client, max_workers, stop)
        if zarr_path is not None:
            mark_zarr(z, True)


def _iter_tasks(tasks: list[Any], regions: list[tuple[slice, ...]], out: Any, client: Any,
                max_workers: int | None,
                stop: threading.Event | None = None) -> Iterable[tuple[int, int]]:
    total = len(tasks)
    if client is not None:
        from distributed import as_completed

        futures = client.compute(tasks)
        where = {f.key: r for f, r in zip(futures, regions, strict=True)}
        try:
            for done, fut in enumerate(as_completed(futures), start=1):
                result = task_result(fut)  # raises the task's exception here
                if out is not None:
                    out[where[fut.key]] = result
                yield done, total
        finally:
            client.cancel([f for f in futures if not f.done()])
        return
    from concurrent.futures import ThreadPoolExecutor, as_completed

    import dask

    workers = max(1, min(total, max_workers or os.cpu_count() or 1))
    stop = stop or threading.Event()  # set on close too: running blocks stop within a chunk
    between = [(None, None, check_stop, None, None)]  # the sync scheduler's pretask hook
    with ThreadPoolExecutor(workers, thread_name_prefix="vmm-dask", initializer=bind_stop,
                            initargs=(stop,)) as pool:
        futures = {pool.submit(dask.compute, t, scheduler="sync", callbacks=between): r
                   for t, r in zip(tasks, regions, strict=True)}
        try:
            for done, fut in enumerate(as_completed(futures), start=1):
                result = fut.result()[0]
                if out is not None:
                    out[futures[fut]] = result
                yield done, total
        finally:
            stop.set()
            for fut in futures:
                fut.cancel()
