"""Zarr and OME-Zarr: open lazily, write block by block with a completion marker, rechunk.

Every Zarr array vmm writes carries ``vmm_complete`` (:data:`ZARR_COMPLETE`): False from its
creation, True written last, so a store left by a stopped run is refused on reading.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from ..core.errors import VMMError
from ..core.frames import check_dtype, check_frame_shape, iter_frame_chunks
from ..core.plan import chunk_bounds
from .atomic import atomic_output_dir

ZARR_EXTENSIONS = (".zarr",)
#: Frames per Zarr chunk along time in the files vmm writes frame by frame.
ZARR_TIME_CHUNK = 8


def rechunk_through_zarr(x: Any, chunks: Any, store: str | os.PathLike,
                         client: Any = None):
    """Rechunk ``x`` once by writing it to a Zarr store with the target chunks.

    Each input chunk is read once and written into the target chunks it overlaps (dask's
    rechunk plan, computed now, on ``client`` when given); the result is read back lazily, so
    no task of the following graph shuffles data between workers.

    Parameters
    ----------
    x : dask.array.Array
    chunks : tuple
        Target chunks (regular: every chunk but the last of an axis has the same size).
    store : path
        A folder for the Zarr array; it is overwritten.

    Returns
    -------
    dask.array.Array
        The stored array, chunked as ``chunks``.
    """
    import dask.array as da

    target = x.rechunk(chunks)
    shutil.rmtree(store, ignore_errors=True)
    stored = target.to_zarr(str(store), overwrite=True, compute=False)
    if client is not None:
        client.compute(stored).result()
    else:
        stored.compute()
    return da.from_zarr(str(store))


#: Attribute of every Zarr array vmm writes: False from its creation, True written last.
ZARR_COMPLETE = "vmm_complete"


def mark_zarr(z: Any, complete: bool) -> None:
    """Set the completion marker of a Zarr array vmm writes (False first, True last)."""
    z.attrs[ZARR_COMPLETE] = bool(complete)


def open_zarr(path: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """Open a Zarr array or an OME-Zarr image lazily as (T, H, W[, C]) with its attributes.

    OME-Zarr: the full-resolution dataset of the first multiscale; axes ``t``, ``c``, ``z``,
    ``y``, ``x`` are reordered to (T, H, W, C); ``z`` must have size 1 and ``c`` 1 or 3.
    The frame rate is read from the ``fps`` attribute or from an OME ``t`` axis scale in
    seconds. A store vmm began but did not finish (``vmm_complete`` false) is refused.

    Returns
    -------
    array : dask.array.Array
    attrs : dict
        ``fps`` (or None) and the store's attributes.
    """
    import dask.array as da
    import zarr

    path = str(path)
    if not os.path.exists(path):
        raise VMMError(f"cannot read {path}: no such file or folder")
    try:
        node = zarr.open(path, mode="r")
    except Exception as exc:  # noqa: BLE001 - any zarr error means an unreadable store
        raise VMMError(f"cannot read {path}: not a Zarr store ({exc})") from None
    attrs = dict(node.attrs)
    if attrs.get(ZARR_COMPLETE) is False:
        raise VMMError(f"cannot read {path}: the run that wrote this Zarr store stopped before "
                       "the end (no completion marker); write it again")
    fps = attrs.get("fps")
    if hasattr(node, "shape"):
        arr = da.from_zarr(node)
    else:
        ome = attrs.get("ome", attrs)
        multiscales = ome.get("multiscales")
        if not multiscales:
            arrays = sorted(k for k, v in node.members() if hasattr(v, "shape"))
            if not arrays:
                raise VMMError(f"cannot read {path}: the Zarr group holds no array")
            arr = da.from_zarr(node[arrays[0]])
        else:
            ms = multiscales[0]
            ds = ms["datasets"][0]
            arr = da.from_zarr(node[ds["path"]])
            axes = [a["name"] if isinstance(a, dict) else a for a in ms.get("axes", [])]
            if axes:
                arr, fps_ome = _ome_to_thwc(arr, axes, ms, ds, path)
                fps = fps or fps_ome
    check_frame_shape(arr.shape, what=f"{path}")
    check_dtype(arr.dtype, what=f"{path}")
    return arr, {**attrs, "fps": fps}


def _ome_to_thwc(arr, axes: list[str], ms: dict, ds: dict, path: str):
    if sorted(set(axes) - {"t", "c", "z", "y", "x"}) or "t" not in axes:
        raise VMMError(f"cannot read {path}: OME axes {axes} need a 't' axis and y, x")
    fps = None
    for tr in ds.get("coordinateTransformations", []):
        if tr.get("type") == "scale":
            dt = tr["scale"][axes.index("t")]
            unit = next((a.get("unit") for a in ms.get("axes", [])
                         if isinstance(a, dict) and a.get("name") == "t"), None)
            if dt and unit in ("second", "s", None):
                fps = 1.0 / float(dt)
            elif dt and unit == "millisecond":
                fps = 1000.0 / float(dt)
    index = {a: i for i, a in enumerate(axes)}
    if "z" in index and arr.shape[index["z"]] != 1:
        raise VMMError(f"cannot read {path}: z has {arr.shape[index['z']]} planes; "
                       "magnify one plane at a time")
    order = [index["t"], index["y"], index["x"]] + ([index["c"]] if "c" in index else [])
    rest = [i for i in range(arr.ndim) if i not in order]
    arr = arr.transpose(order + rest)
    arr = arr.reshape(arr.shape[:len(order)])
    if arr.ndim == 4 and arr.shape[3] == 1:
        arr = arr[..., 0]
    return arr, fps


def write_zarr_blocks(x: Any, path: str | os.PathLike, fps: float | None = None,
                      client: Any = None, progress: Callable[[int, int], Any] | None = None,
                      protect: Iterable[str | os.PathLike] = (),
                      zarr_chunks: Sequence[int] | None = None) -> None:
    """Compute ``x`` block by block into a Zarr array at ``path``, atomically.

    The store is written beside ``path`` and renamed at the end; ``progress(done, total)`` is
    called as each block's future completes.

    Parameters
    ----------
    x : dask.array.Array
        Any chunks. Each block is written by one task into the Zarr chunks it covers, so
        blocks are rechunked first where they do not cover whole Zarr chunks.
    path : path
        The ``.zarr`` folder to create (replaced when it exists).
    fps : float, optional
        Stored as the ``fps`` attribute.
    client : distributed.Client, optional
        Where to compute (default: the local threaded scheduler).
    progress : callable, optional
    protect : paths
        Inputs that must never be overwritten.
    zarr_chunks : sequence of int, optional
        The store's chunks (default: the blocks' regular size); finer than the blocks lets
        readers take a few frames of a full-T tile, e.g. ``(8, ty, tx)``.
    """
    import dask
    import zarr

    from ..scale.tasks import run_tasks

    regular = tuple(int(c) for c in (zarr_chunks or [max(c) for c in x.chunks]))
    aligned = all(all(e % z == 0 or e == size for e in np.cumsum(c))
                  for c, z, size in zip(x.chunks, regular, x.shape, strict=True))
    if not aligned:
        x = x.rechunk(regular)
    with atomic_output_dir(path, protect) as tmp:
        z = zarr.create_array(tmp, shape=x.shape, chunks=regular, dtype=x.dtype,
                              overwrite=True)
        mark_zarr(z, False)
        if fps:
            z.attrs["fps"] = float(fps)
        blocks = x.to_delayed()
        starts = [chunk_bounds(c) for c in x.chunks]
        tasks = []
        for index in np.ndindex(*x.numblocks):
            region = tuple(slice(*starts[d][i]) for d, i in enumerate(index))
            tasks.append(dask.delayed(store_block, pure=False)(blocks[index], tmp, region))
        run_tasks(tasks, client, progress)
        mark_zarr(z, True)


def store_block(block: np.ndarray, store: str, region: tuple[slice, ...]) -> int:
    import zarr

    zarr.open_array(store, mode="r+")[region] = block
    return int(block.shape[0])


def write_zarr_frames(path: str | os.PathLike, chunks: Iterable[np.ndarray],
                      shape: tuple[int, ...], dtype: np.dtype, fps: float | None,
                      protect: Iterable[str | os.PathLike] = ()) -> None:
    """Write chunks of frames in order to a new ``.zarr`` array, atomically."""
    import zarr

    with atomic_output_dir(path, protect) as tmp:
        z = zarr.create_array(tmp, shape=tuple(shape), dtype=dtype, overwrite=True,
                              chunks=(min(ZARR_TIME_CHUNK, shape[0]),) + tuple(shape[1:]))
        mark_zarr(z, False)
        if fps:
            z.attrs["fps"] = float(fps)
        t = 0
        for chunk in iter_frame_chunks(chunks, ZARR_TIME_CHUNK):
            z[t:t + len(chunk)] = chunk
            t += len(chunk)
        if t != shape[0]:
            raise VMMError(f"cannot write {path}: got {t} frames, expected {shape[0]}")
        mark_zarr(z, True)


def read_zarr_frames(store: str | os.PathLike,
                     step: int = ZARR_TIME_CHUNK) -> Iterator[np.ndarray]:
    """Chunks of ``step`` frames of a Zarr array, in order."""
    import zarr

    z = zarr.open_array(str(store), mode="r")
    for t in range(0, z.shape[0], step):
        yield np.asarray(z[t:t + step])
