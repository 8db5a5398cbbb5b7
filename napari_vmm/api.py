"""The top-level :func:`magnify`: dask arrays to :mod:`napari_vmm.scale`, the rest to the engine.

The engine (:func:`napari_vmm.core.engine.magnify`) takes NumPy arrays, anything with NumPy
slicing, and iterables of frames; it never imports Dask. A dask array given here stays lazy:
:func:`napari_vmm.scale.magnify_dask` returns a dask array with the same chunks.
"""

from __future__ import annotations

import inspect
from typing import Any


def magnify(frames: Any, *args: Any, **kwargs: Any) -> Any:
    """Magnify the motion in a time series: NumPy in, NumPy out; dask in, dask out.

    Parameters are those of :func:`napari_vmm.core.engine.magnify` (``fps``, ``method``,
    ``alpha`` with output displacement = ``(1 + alpha)`` x input, ``band``, ``temporal``,
    ``mode``, ``reference``, ``device``, ``roi_mask``, ``progress``, engine and method
    options). A dask array goes to :func:`napari_vmm.scale.magnify_dask`, which also takes
    ``segment_frames``, ``warmup``, ``rechunk_store`` and ``keep_chunks``; ``progress`` is
    not called then (the computation happens later, on whatever scheduler computes it).

    Returns
    -------
    ndarray, dask.array.Array or generator of frames
        Same shape and dtype as ``frames``: an array for an array, a lazy dask array for a
        dask array, a generator of frames for an iterable.

    Raises
    ------
    VMMError
        Bad input or parameters, with a message that names the problem.
    """
    from .core import engine

    if not hasattr(frames, "dask"):
        return engine.magnify(frames, *args, **kwargs)
    from .scale.graphs import magnify_dask

    bound = inspect.signature(engine.magnify).bind(frames, *args, **kwargs)
    arguments = dict(bound.arguments)
    arguments.pop("progress", None)
    options = arguments.pop("options", {})
    return magnify_dask(**arguments, **options)
