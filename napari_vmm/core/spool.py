"""A clip in a scratch file: decoded once, read back by rows (the whole-clip file path).

``vmm magnify`` with a whole-clip filter reads its input once per pass and tile; a video is
decoded once into a :class:`FrameSpool` instead, and the result goes to another one. Unlike a
memory map, what a spool reads and writes stays in the page cache, not in the process's
resident memory.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import numpy as np

from .errors import VMMError
from .frames import iter_frame_chunks


class FrameSpool:
    """A raw (T, H, W[, C]) array in a scratch file, read and written by frame rows.

    The whole-clip path reads a clip once per pass and tile: a video decoded once into a
    spool is read back by rows instead of being decoded again. Unlike a memory map, what it
    reads and writes stays in the page cache, not in the process's resident memory.

    Parameters
    ----------
    path : str or Path
        The scratch file (created or truncated; removed by :meth:`close`).
    shape : tuple
        (T, H, W) or (T, H, W, C).
    dtype : numpy dtype

    Notes
    -----
    Keys are ``[t0:t1]`` or ``[t0:t1, y0:y1, x0:x1]`` with steps of 1, for reading and for
    assignment; ``reads`` and ``writes`` count the frames read and written.
    """

    def __init__(self, path: str | os.PathLike, shape: tuple[int, ...], dtype: Any) -> None:
        self.path = str(path)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self._pixel = int(np.prod(self.shape[3:], dtype=np.int64)) * self.dtype.itemsize
        self._row = self.shape[2] * self._pixel
        self.reads = self.writes = 0
        self._fh = open(self.path, "w+b")  # noqa: SIM115 - closed by close()

    def __len__(self) -> int:
        return self.shape[0]

    def close(self) -> None:
        """Close and remove the scratch file."""
        self._fh.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    def __enter__(self) -> FrameSpool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _bounds(self, key: Any) -> tuple[int, int, int, int, int, int]:
        key = key if isinstance(key, tuple) else (key,)
        if len(key) not in (1, 3) or not all(isinstance(k, slice) for k in key):
            raise TypeError("a FrameSpool is indexed by [t0:t1] or [t0:t1, y0:y1, x0:x1]")
        out = []
        for k, size in zip(key + (slice(None),) * (3 - len(key)), self.shape[:3], strict=True):
            start, stop, step = k.indices(size)
            if step != 1:
                raise TypeError("FrameSpool slices take no step")
            out += [start, max(start, stop)]
        return tuple(out)

    def _offset(self, t: int, y: int) -> int:
        return (t * self.shape[1] + y) * self._row

    def __getitem__(self, key: Any) -> np.ndarray:
        t0, t1, y0, y1, x0, x1 = self._bounds(key)
        out = np.empty((t1 - t0, y1 - y0) + self.shape[2:], self.dtype)
        for i in range(t1 - t0):
            self._fh.seek(self._offset(t0 + i, y0))
            got = self._fh.readinto(memoryview(out[i]).cast("B"))
            if got != out[i].nbytes:
                raise VMMError(f"cannot read frame {t0 + i} back from {self.path}")
        self.reads += t1 - t0
        return out if (x0, x1) == (0, self.shape[2]) else out[:, :, x0:x1]

    def __setitem__(self, key: Any, value: Any) -> None:
        t0, t1, y0, y1, x0, x1 = self._bounds(key)
        value = np.broadcast_to(np.asarray(value, dtype=self.dtype),
                                (t1 - t0, y1 - y0, x1 - x0) + self.shape[3:])
        full = (x0, x1) == (0, self.shape[2])
        for i in range(t1 - t0):
            if full:  # whole rows: one write per frame
                self._fh.seek(self._offset(t0 + i, y0))
                self._fh.write(np.ascontiguousarray(value[i]).data)
                continue
            for j in range(y1 - y0):
                self._fh.seek(self._offset(t0 + i, y0 + j) + x0 * self._pixel)
                self._fh.write(np.ascontiguousarray(value[i, j]).data)
        self.writes += t1 - t0

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        data = self[:]
        return data if dtype is None else data.astype(dtype)


def spool_frames(frames: Any, path: str | os.PathLike, chunk: int = 8,
                 progress: Any = None) -> FrameSpool:
    """Read ``frames`` (a video, a lazy stack, a dask array) once into a :class:`FrameSpool`.

    Refuses with a VMMError when the folder has less free space than the raw frames need.
    ``progress(n)`` is called with the frames of each chunk read. The spool's ``shape`` is
    shorter than ``frames.shape`` when the source ends early (a truncated video).
    """
    import shutil

    need = int(np.prod(frames.shape, dtype=np.int64)) * np.dtype(frames.dtype).itemsize
    free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
    if need > free:
        raise VMMError(f"the whole-clip filter needs {need / 2**30:.1f} GiB of scratch space "
                       f"beside the output ({free / 2**30:.1f} GiB free); use a causal filter "
                       "or free some space")
    spool = FrameSpool(path, frames.shape, frames.dtype)
    try:
        t = 0
        for part in iter_frame_chunks(frames, chunk):
            spool[t:t + len(part)] = part
            t += len(part)
            if progress is not None:
                progress(len(part))
        if t == 0:
            raise VMMError("no frames could be read")
        spool.shape = (t,) + spool.shape[1:]  # shorter when a truncated video ends early
    except BaseException:
        spool.close()
        raise
    return spool
