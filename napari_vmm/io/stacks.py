"""Image stacks as time series: ``.npy`` (memory-mapped) and ``.tif``/``.tiff``.

Reading is lazy (a memory map, or Zarr over a compressed TIFF); writing is atomic, one chunk of
frames in memory at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import VMMError
from ..core.frames import iter_frame_chunks
from .atomic import atomic_output

STACK_EXTENSIONS = (".npy", ".tif", ".tiff")


def open_stack(path: str | os.PathLike):
    """Open a .npy (memory-mapped) or .tif stack lazily as an array-like."""
    path = str(path)
    if not os.path.isfile(path):
        raise VMMError(f"cannot read {path}: no such file")
    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".npy":
            data = np.load(path, mmap_mode="r")
        else:
            import tifffile

            try:
                data = tifffile.memmap(path, mode="r")
            except ValueError:  # compressed or non-contiguous: read through zarr lazily
                import zarr

                data = zarr.open(tifffile.imread(path, aszarr=True), mode="r")
    except VMMError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser error means an unreadable file
        raise VMMError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    if data.size == 0:
        raise VMMError(f"cannot read {path}: the stack is empty")
    return data


def read_stack(path: str | os.PathLike, start: int, stop: int) -> np.ndarray:
    """Frames ``[start, stop)`` of a stack as a NumPy array (a task of :func:`as_dask`)."""
    return np.array(open_stack(path)[start:stop])


def write_stack(path: str | os.PathLike, frames: Any, shape: tuple[int, ...], dtype: np.dtype,
                protect: Iterable[str | os.PathLike] = (), overwrite: bool = True) -> None:
    """Write chunks to a .npy or .tif stack atomically, one chunk in memory at a time."""
    suffix = Path(path).suffix.lower()
    if suffix not in STACK_EXTENSIONS:
        raise VMMError(f"cannot write {path}: unknown stack extension {suffix!r}")
    with atomic_output(path, protect=protect, overwrite=overwrite) as tmp:
        if suffix == ".npy":
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=tuple(shape))
            if hasattr(os, "posix_fallocate"):  # reserve the blocks: a full disk is an
                with open(tmp, "r+b") as fh:     # error now, not a SIGBUS in the memmap
                    os.posix_fallocate(fh.fileno(), 0, os.fstat(fh.fileno()).st_size)
            t = 0
            for chunk in iter_frame_chunks(frames):
                out[t:t + len(chunk)] = chunk
                t += len(chunk)
            out.flush()
            del out
        else:
            import tifffile

            big = np.prod(shape) * np.dtype(dtype).itemsize > 2**31
            with tifffile.TiffWriter(tmp, bigtiff=big) as tif:
                for chunk in iter_frame_chunks(frames):
                    for frame in chunk:
                        tif.write(frame, contiguous=True,
                                  photometric="rgb" if frame.ndim == 3 and frame.shape[-1] == 3
                                  else "minisblack")
