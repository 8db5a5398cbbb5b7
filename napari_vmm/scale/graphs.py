"""Dask graphs: :func:`magnify_dask`, a lazy dask array in and out.

:func:`napari_vmm.core.route.choose_route` maps the engine's two paths onto Dask (see
``docs/dask.md``):

- **Whole-clip filters** (``ideal``, zero-phase Butterworth/FIR): ``dask.array.map_overlap``
  over spatial tiles that hold the full time axis, with a spatial halo of
  ``magnifier.spatial_support`` pixels (at the frame edges the tile is clamped, as in the
  engine, or for ``magnifier.boundary == "periodic"`` the halo wraps around). The method's
  frame-size dependent options (``levels=0``) are pinned for the whole frame
  (``Magnifier.frame_options``), so every tile builds the whole frame's pyramid. Inputs
  chunked along time are rechunked once to ``(T, ty, tx[, C])`` (through Zarr for large
  data, :func:`napari_vmm.io.zarr.rechunk_through_zarr`). Each task runs the engine's
  whole-clip path on one tile.
- **Causal filters** (``butterworth``, ``fir``, ``iir``, ``none``, static and dynamic modes):
  time segments, each decoded with a warm-up of :func:`napari_vmm.core.plan.warmup_frames`
  frames before it that is discarded. Each segment encodes frame 0 first, so that phase
  methods use the same phase reference as the in-memory path; the static mode feeds frame
  ``reference`` to the filter before the segment (:meth:`Pipeline.prime`); a causal filter
  starts in the steady state of the segment's first frame (as the in-memory stream does at
  frame 0), so only the motion inside the warm-up is missing.
- **Video files with a causal filter**: :func:`napari_vmm.scale.video.magnify_video_segments`
  cuts at keyframes, processes and encodes the segments in parallel, joins them with the
  ffmpeg concat demuxer (``-c copy``, no re-encoding) and muxes the audio once.

Memory per task is :func:`napari_vmm.core.plan.estimate_task_memory` (the formula is in
``docs/dask.md``).

Every task builds (once per worker thread) the same engine pipeline as the in-memory path, so
the magnifier and filter code is the engine's own.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from ..core.frames import check_dtype, check_frame_shape
from ..core.params import (
    ARRAY_ALPHA,
    ARRAY_METHOD,
    ARRAY_TEMPORAL,
    DEFAULT_BAND,
    MagnifyParams,
)
from ..core.pipeline import Pipeline
from ..core.plan import (
    DEFAULT_MEMORY_BUDGET,
    chunk_bounds,
    pinned_plan,
    tile_chunks,
    window_index,
)
from ..core.route import TILES, choose_route
from ..core.wholeclip import whole_clip
from ..io.zarr import rechunk_through_zarr
from .tasks import check_stop

_local = threading.local()


def thread_pipeline(params: MagnifyParams, roi_mask: np.ndarray | None = None) -> Pipeline:
    """The engine pipeline for ``params``, built once per worker thread (weights load once)."""
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    key = repr(params)
    pipe = cache.get(key)
    if pipe is None:
        if len(cache) >= 4:
            cache.clear()
        pipe = cache[key] = Pipeline(params)
    pipe.roi_mask = None if roi_mask is None else np.asarray(roi_mask, dtype=np.float32)
    return pipe


def magnify_dask(frames: Any, fps: float, method: str = ARRAY_METHOD,
                 alpha: float = ARRAY_ALPHA, band: tuple[float, float] | None = DEFAULT_BAND,
                 temporal: str = ARRAY_TEMPORAL,
                 mode: str = "temporal", reference: int = 0, device: str = "cpu",
                 roi_mask: np.ndarray | None = None, *, order: int = 2, taps: int | None = None,
                 zero_phase: bool = False, chunk_size: int | None = None,
                 memory_budget: int = DEFAULT_MEMORY_BUDGET, tile_size: int | None = None,
                 segment_frames: int | None = None, warmup: int | None = None,
                 path: str = "auto", rechunk_store: str | os.PathLike | None = None,
                 keep_chunks: bool = True, **method_options: Any):
    """Magnify a dask array lazily; the result is a dask array with the same chunks.

    Nothing is computed here except a one-frame probe of the method's signal size. Compute
    the result with any Dask scheduler (``.compute()``, a ``distributed.Client``,
    ``.to_zarr()``).

    Parameters
    ----------
    frames : dask.array.Array (T, H, W) or (T, H, W, C)
        Any supported dtype (uint8, uint16, float32, float64).
    fps, method, alpha, band, temporal, mode, reference, device, roi_mask
        As for :func:`napari_vmm.core.engine.magnify`.
    order, taps, zero_phase, chunk_size
        Engine options, as for :func:`napari_vmm.core.engine.magnify`.
    memory_budget : int
        Bytes one task may hold; chooses the tile (whole clip) or segment (causal) size.
    tile_size : int, optional
        Tile side in pixels without the halo (whole-clip path: default from the budget or the
        input's spatial chunks; causal path: default the whole frame or the input's chunks).
    segment_frames : int, optional
        Frames per time segment on the causal path (default: the input's time chunks when
        they are long enough, else ``max(4 x warm-up, 8 x chunk, 32)`` within the budget).
    warmup : int, optional
        Warm-up frames per segment (default :func:`warmup_frames`).
    path : str
        ``auto``, ``whole`` (tiles over all T even for a causal filter) or ``segments``.
    rechunk_store : path, optional
        A Zarr store (a scratch folder) through which a time-chunked input is rechunked to
        full-T tiles, computed now; without it the rechunk stays in the lazy graph.
    keep_chunks : bool
        Rechunk the result back to the input's chunks (default). ``False`` returns the
        processing chunks (full-T tiles or time segments) and skips that shuffle.
    **method_options
        The method's own options.

    Returns
    -------
    dask.array.Array
        Same shape, dtype and (with ``keep_chunks``) chunks as ``frames``.
    """
    import dask.array as da

    if not isinstance(frames, da.Array):
        frames = da.asarray(frames)
    shape = tuple(int(s) for s in frames.shape)
    h, w, c = check_frame_shape(shape)
    dtype = check_dtype(frames.dtype)
    params = MagnifyParams(fps=fps, method=method, alpha=alpha, band=band, temporal=temporal,
                           mode=mode, reference=reference, device=device, order=order,
                           taps=taps, zero_phase=zero_phase, options=method_options)
    # Validate everything (method, options, alpha, band, mask) in the driver, once.
    probe = Pipeline(params.replace(reference=0), roi_mask)
    if probe.roi_mask is not None:
        probe.mask_for((h, w))
    route = choose_route(params, shape, path="segments" if path == "stream" else path,
                         lazy=True)
    if route.kind == TILES:  # a causal filter may be forced onto full-T tiles
        result = _magnify_whole(frames, params, roi_mask, tile_size, chunk_size, memory_budget,
                                rechunk_store, probe.magnifier)
    else:
        result = _magnify_segments(frames, params, roi_mask, tile_size, segment_frames,
                                   warmup, chunk_size, memory_budget, probe.magnifier)
    if keep_chunks and result.chunks != frames.chunks:
        result = result.rechunk(frames.chunks)
    assert result.dtype == dtype
    return result


def _magnify_whole(frames, params, roi_mask, tile_size, chunk_size, memory_budget,
                   rechunk_store, magnifier):
    import dask.array as da

    n, h, w = frames.shape[:3]
    if tile_size is None and len(frames.chunks[0]) == 1 and (
            len(frames.chunks[1]) > 1 or len(frames.chunks[2]) > 1):
        tile_size = max(max(frames.chunks[1]), max(frames.chunks[2]))  # the input's tiles
    params, plan = pinned_plan(tuple(frames.shape), frames.dtype.itemsize, params, magnifier,
                                tile_size, None, None, chunk_size, memory_budget, whole=True)
    halo = plan.halo
    ychunks = tile_chunks(h, plan.tile[0], halo, plan.periodic)
    xchunks = tile_chunks(w, plan.tile[1], halo, plan.periodic)
    target = (n, ychunks, xchunks) + ((frames.shape[3],) if frames.ndim == 4 else ())
    if frames.chunks != tuple((t,) if isinstance(t, int) else t for t in target):
        if rechunk_store is not None:
            frames = rechunk_through_zarr(frames, target, rechunk_store)
        else:
            frames = frames.rechunk(target)
    dy = halo if len(ychunks) > 1 else 0
    dx = halo if len(xchunks) > 1 else 0
    depth = {0: 0, 1: dy, 2: dx}
    arrays = [frames]
    if frames.ndim == 4:
        depth[3] = 0
    if roi_mask is not None:
        ones = (1,) * (frames.ndim - 3)
        mask = np.asarray(roi_mask, dtype=np.float32).reshape((1, h, w) + ones)
        arrays.append(da.from_array(mask, chunks=(1, ychunks, xchunks) + ones))
    meta = np.empty((0,) * frames.ndim, dtype=frames.dtype)
    boundary = "periodic" if plan.periodic else "none"
    return da.map_overlap(_whole_task, *arrays, depth=depth, boundary=boundary, trim=True,
                          dtype=frames.dtype, meta=meta, params=params, chunk=plan.chunk,
                          align_arrays=False)


def _whole_task(block: np.ndarray, mask: np.ndarray | None = None, *,
                params: MagnifyParams, chunk: int) -> np.ndarray:
    """One tile with its halo over all T: the engine's whole-clip path on a single tile."""
    if block.size == 0:
        return block
    mask2d = None if mask is None else mask.reshape(mask.shape[1:3])
    pipe = thread_pipeline(params, mask2d)
    out = np.empty_like(block)
    h, w = block.shape[1:3]
    for _ in whole_clip(block, out, pipe, chunk, 1 << 62, max(h, w)):
        pass
    return out


def _magnify_segments(frames, params, roi_mask, tile_size, segment_frames, warmup,
                      chunk_size, memory_budget, magnifier):
    import dask
    import dask.array as da

    shape = tuple(frames.shape)
    n, h, w = shape[:3]
    tchunks = frames.chunks[0]
    params, plan = pinned_plan(shape, frames.dtype.itemsize, params, magnifier, tile_size,
                                segment_frames, warmup, chunk_size, memory_budget)
    wu, halo = plan.warmup, plan.halo
    if segment_frames is None and len(tchunks) > 1 and min(tchunks[:-1]) >= max(
            2 * wu, plan.chunk):
        seg_bounds = chunk_bounds(tchunks)  # the input's time chunks are long enough
    else:
        seg = plan.segment if plan.segment >= n else max(8, plan.segment // 8 * 8)
        seg_bounds = chunk_bounds((seg,) * (n // seg) + ((n % seg,) if n % seg else ()))
    if tile_size is None and (len(frames.chunks[1]) > 1 or len(frames.chunks[2]) > 1):
        ybounds = chunk_bounds(tile_chunks(h, max(frames.chunks[1]), halo, plan.periodic))
        xbounds = chunk_bounds(tile_chunks(w, max(frames.chunks[2]), halo, plan.periodic))
    else:
        ybounds = chunk_bounds(tile_chunks(h, plan.tile[0], halo, plan.periodic))
        xbounds = chunk_bounds(tile_chunks(w, plan.tile[1], halo, plan.periodic))
    reference = choose_route(params).reference
    static = reference is not None
    seg_params = params.replace(reference=0)
    tail = (shape[3],) if len(shape) == 4 else ()
    mask = None if roi_mask is None else np.asarray(roi_mask, dtype=np.float32)
    task = dask.delayed(segment_task, pure=True)
    rows = []
    for t0, t1 in seg_bounds:
        m = max(0, t0 - wu)
        plane = []
        for y0, y1 in ybounds:
            row = []
            wy0 = max(0, y0 - halo) if len(ybounds) > 1 else 0
            wy1 = min(h, y1 + halo) if len(ybounds) > 1 else h
            for x0, x1 in xbounds:
                wx0 = max(0, x0 - halo) if len(xbounds) > 1 else 0
                wx1 = min(w, x1 + halo) if len(xbounds) > 1 else w
                if plan.periodic:  # the halo wraps around the frame edges
                    wy0, wy1 = (y0 - halo, y1 + halo) if len(ybounds) > 1 else (0, h)
                    wx0, wx1 = (x0 - halo, x1 + halo) if len(xbounds) > 1 else (0, w)
                iy, ix = window_index(wy0, wy1, h), window_index(wx0, wx1, w)

                def cut(a, t, iy=iy, ix=ix):
                    return a[t][:, iy][:, :, ix]

                block = cut(frames, slice(m, t1))
                ref0 = cut(frames, slice(0, 1)) if (m > 0 or static) else None
                refr = cut(frames, slice(reference, reference + 1)) if static else None
                crop = (t0 - m, y0 - wy0, y1 - wy0, x0 - wx0, x1 - wx0)
                d = task(block, ref0, refr, params=seg_params, crop=crop,
                         mask=None if mask is None else mask[iy][:, ix], chunk=plan.chunk)
                piece = da.from_delayed(d, shape=(t1 - t0, y1 - y0, x1 - x0) + tail,
                                        dtype=frames.dtype,
                                        meta=np.empty((0,) * len(shape), frames.dtype))
                row.append([piece] if tail else piece)
            plane.append(row)
        rows.append(plane)
    return da.block(rows)


def segment_task(block: np.ndarray, ref0: np.ndarray | None, refr: np.ndarray | None, *,
                 params: MagnifyParams, crop: tuple[int, int, int, int, int],
                 mask: np.ndarray | None, chunk: int) -> np.ndarray:
    """One time segment (with its warm-up) of one tile (with its halo) on the streaming path.

    ``ref0`` is frame 0 (the magnifier's phase reference) and ``refr`` the static mode's
    reference frame (:meth:`Pipeline.prime`); causal filters start in the steady state of
    the block's first frame by themselves.
    """
    pipe = thread_pipeline(params, mask)
    pipe.prime(ref0, refr)
    out = []
    for t in range(0, block.shape[0], chunk):
        check_stop()  # a cancelled local run stops here, within one chunk
        out.append(pipe.stream_chunk(np.asarray(block[t:t + chunk])))
    result = np.concatenate(out)
    t, y0, y1, x0, x1 = crop
    return np.ascontiguousarray(result[t:, y0:y1, x0:x1])
