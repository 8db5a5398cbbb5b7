"""Scale out on Dask: lazy dask arrays in and out, tiles, time segments, video segments.

The engine's two paths map onto Dask as follows (see ``docs/dask.md``):

- **Whole-clip filters** (``ideal``, zero-phase Butterworth/FIR): ``dask.array.map_overlap``
  over spatial tiles that hold the full time axis, with a spatial halo of
  ``magnifier.spatial_support`` pixels (at the frame edges the tile is clamped, as in the
  engine, or for ``magnifier.boundary == "periodic"`` the halo wraps around). The method's
  frame-size dependent options (``levels=0``) are pinned for the whole frame
  (``Magnifier.frame_options``), so every tile builds the whole frame's pyramid. Inputs
  chunked along time are rechunked once to
  ``(T, ty, tx[, C])`` (through Zarr for large data, :func:`rechunk_through_zarr`). Each task
  runs the engine's whole-clip path on one tile.
- **Causal filters** (``butterworth``, ``fir``, ``iir``, ``none``, static and dynamic modes):
  time segments, each decoded with a warm-up of :func:`warmup_frames` frames before it that is
  discarded. Each segment encodes frame 0 first, so that phase methods use the same phase
  reference as the in-memory path; the static mode feeds frame ``reference`` to the filter
  before the segment; a causal filter starts in the steady state of the segment's first frame
  (as the in-memory stream does at frame 0), so only the motion inside the warm-up is missing.
- **Video files with a causal filter**: :func:`magnify_video_segments` cuts at keyframes,
  processes and encodes the segments in parallel, joins them with the ffmpeg concat demuxer
  (``-c copy``, no re-encoding) and muxes the audio once.

Memory per task is :func:`estimate_task_memory` (the formula is in ``docs/dask.md``).

Every task builds (once per worker thread) the same engine pipeline as the in-memory path, so
the magnifier and filter code is the engine's own.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import Cancelled, VMMError
from .frames import check_dtype, check_frame_shape
from .io import atomic_output_dir, frame_to_rgb
from .pipeline import Pipeline
from .plan import DEFAULT_MEMORY_BUDGET, default_chunk, tile_alignment
from .wholeclip import whole_clip

#: Engine options that are not method options.
ENGINE_KEYS = ("order", "taps", "zero_phase", "chunk_size", "memory_budget", "tile_size",
               "path", "segment_frames", "warmup")
#: Relative size the filter's impulse response must decay to over the warm-up.
WARMUP_TOLERANCE = 1e-3
#: Factor of the motion signal held by the whole-clip path (signal, filtered copy, FFT).
WHOLE_SIGNAL_FACTOR = 2.5


# -- parameters and the per-thread pipeline -------------------------------------------------


def _split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    engine = {k: options.pop(k) for k in list(options) if k in ENGINE_KEYS}
    return engine, options


def _params(fps: float, method: str, alpha: float, band, temporal: str, mode: str,
            reference: int, device: str, order: int, taps: int | None, zero_phase: bool,
            method_options: dict[str, Any]) -> dict[str, Any]:
    """The picklable keyword arguments of :class:`pipeline.Pipeline` (without the ROI mask)."""
    return {"fps": float(fps), "method": method, "alpha": float(alpha),
            "band": None if band is None else tuple(float(b) for b in band),
            "temporal": temporal, "mode": mode, "reference": int(reference),
            "device": str(device), "order": int(order), "taps": taps,
            "zero_phase": bool(zero_phase), "method_options": dict(method_options)}


_local = threading.local()


def _pipeline(params: dict[str, Any], roi_mask: np.ndarray | None = None) -> Pipeline:
    """The engine pipeline for ``params``, built once per worker thread (weights load once)."""
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    key = repr(sorted(params.items()))
    pipe = cache.get(key)
    if pipe is None:
        if len(cache) >= 4:
            cache.clear()
        pipe = cache[key] = Pipeline(roi_mask=None, **params)
    pipe.roi_mask = None if roi_mask is None else np.asarray(roi_mask, dtype=np.float32)
    return pipe


def _pin_frame_options(params: dict[str, Any], magnifier: Any, height: int,
                       width: int) -> dict[str, Any]:
    """``params`` with the method's frame-size dependent options (the pyramid depth for
    ``levels=0``) fixed for the whole ``(height, width)`` frame, so every tile builds the
    pyramid the whole frame would, and ``spatial_support`` is the one of that pyramid."""
    pinned = magnifier.frame_options(height, width)
    if not pinned:
        return params
    return {**params, "method_options": {**params["method_options"], **pinned}}


def _pinned_plan(shape: tuple[int, ...], itemsize: int, params: dict[str, Any],
                 magnifier: Any, tile_size: int | None, segment_frames: int | None,
                 warmup: int | None, chunk_size: int | None, memory_budget: int,
                 whole: bool | None = None) -> tuple[dict[str, Any], _Plan]:
    """Pin the frame options, then plan; with automatic depth (``levels=0``) and tiles
    sized by the budget, the deepest pyramid whose halo fits the budget (the same depth in
    every tile, so no seams; the whole frame's depth when it fits)."""
    auto = not params["method_options"].get("levels")
    params = _pin_frame_options(params, magnifier, shape[1], shape[2])
    while True:
        try:
            return params, _plan(shape, itemsize, params, tile_size, segment_frames, warmup,
                                 chunk_size, memory_budget, whole)
        except VMMError:
            levels = params["method_options"].get("levels", 0)
            if not auto or tile_size is not None or levels <= 2:
                raise
            params = {**params, "method_options": {**params["method_options"],
                                                   "levels": levels - 1}}


def needs_whole_clip(temporal: str, mode: str = "temporal", zero_phase: bool = False) -> bool:
    """True when the filter needs every frame of a pixel at once (spatial tiles, full T)."""
    return mode == "temporal" and (temporal == "ideal" or (
        zero_phase and temporal in ("butterworth", "fir")))


def warmup_frames(fps: float, temporal: str = "butterworth",
                  band: tuple[float, float] | None = (0.5, 3.0), mode: str = "temporal",
                  order: int = 2, taps: int | None = None,
                  tolerance: float = WARMUP_TOLERANCE) -> int:
    """Frames of warm-up a time segment needs before its first output frame.

    The warm-up lets the filter forget its start: it is the number of frames after which the
    filter's impulse response stays below ``tolerance`` times its peak (Butterworth),
    ``log(tolerance) / log(1 - r_low)`` for the difference of IIR low-passes (time constant
    ``1 / (2 pi f_low)``), ``taps - 1`` for FIR (exact), 1 for the dynamic mode (exact) and 0
    for the static mode and ``none`` (the reference frame is fed to each segment instead).

    Parameters
    ----------
    fps : float
        Frame rate in Hz.
    temporal, band, mode, order, taps
        As for :func:`napari_vmm.core.engine.magnify`.
    tolerance : float
        Relative size the filter's memory of the segment start decays to.

    Returns
    -------
    int
        Frames of warm-up.
    """
    from .temporal import DifferenceOfIIR, FIRFilter, ReferenceDifference, SOSFilter, make_filter

    filt = make_filter(temporal, band, fps, mode=mode, order=order, taps=taps)
    if isinstance(filt, ReferenceDifference):
        return 1 if filt.dynamic else 0
    if isinstance(filt, FIRFilter):
        return len(filt.taps) - 1
    if isinstance(filt, DifferenceOfIIR):
        return int(math.ceil(math.log(tolerance) / math.log(1.0 - filt.r_low)))
    if isinstance(filt, SOSFilter):
        from scipy.signal import sosfilt

        n = int(min(1_000_000, max(64, 40 * fps / max(band[0], 1e-3))))
        impulse = np.zeros(n)
        impulse[0] = 1.0
        h = np.abs(sosfilt(filt.sos, impulse))
        above = np.nonzero(h > tolerance * h.max())[0]
        return int(above[-1]) + 1 if above.size else 0
    raise VMMError(f"the {temporal!r} filter needs the whole clip; it has no warm-up")


# -- memory per task ----------------------------------------------------------------------


@dataclass(frozen=True)
class TaskMemory:
    """Peak memory of one Dask task, from the formula in ``docs/dask.md``.

    Attributes
    ----------
    bytes : int
        Estimated peak bytes of frames and motion signal held by one task.
    path : str
        ``"whole"`` (spatial tiles over all T) or ``"segments"`` (time segments).
    frames : int
        Frames one task holds (T, or segment + warm-up).
    window : (int, int)
        Tile height and width including the halo on both sides.
    halo : int
        Spatial halo in pixels.
    warmup : int
        Warm-up frames per segment (0 on the whole-clip path).
    signal_bytes_per_px : float
        Bytes of motion signal per pixel and frame (measured on the method).
    """

    bytes: int
    path: str
    frames: int
    window: tuple[int, int]
    halo: int
    warmup: int
    signal_bytes_per_px: float

    def __str__(self) -> str:
        return (f"{self.bytes / 2**20:.0f} MiB per task ({self.path}: {self.frames} frames x "
                f"{self.window[0]}x{self.window[1]} px)")


def _signal_bytes_per_px(pipe: Pipeline, channels: int, size: int = 64) -> float:
    """Motion-signal bytes per pixel and frame of ``pipe``'s magnifier, on a blank frame."""
    torch = pipe.torch
    shape = (1, size, size) if channels == 1 else (1, size, size, channels)
    with torch.inference_mode():
        pipe.reset()
        x, _ = pipe.prepare(np.full(shape, 0.5, dtype=np.float32))
        signal, _ = pipe.magnifier.encode(x)
        pipe.reset()
    return sum(s.numel() * s.element_size() for s in signal) / (size * size)


def _memory_formula(path: str, frames: int, out_frames: int, window: tuple[int, int],
                    channels: int, itemsize: int, signal: float, chunk: int,
                    state_frames: int, work_factor: float = 3.0) -> int:
    area = window[0] * window[1]
    # float32 frames and YIQ, plus the magnifier's own transients (signal, ctx, decode)
    work = chunk * area * (12 * channels + work_factor * signal)
    if path == "whole":
        data = frames * area * (2 * channels * itemsize + WHOLE_SIGNAL_FACTOR * signal)
    else:
        data = ((frames + 2 * out_frames) * area * channels * itemsize
                + state_frames * area * signal)
    return int(data + work)


def _filter_state_frames(pipe: Pipeline) -> int:
    from .temporal import FIRFilter, SOSFilter

    filt = pipe.filter
    if isinstance(filt, SOSFilter):
        return 2 * filt.sos.shape[0]
    if isinstance(filt, FIRFilter):
        return len(filt.taps)
    return 2


def estimate_task_memory(shape: Sequence[int], dtype: Any, fps: float, method: str = "phase",
                         temporal: str = "ideal", band: tuple[float, float] | None = (0.5, 3.0),
                         mode: str = "temporal", *, tile_size: int | None = None,
                         segment_frames: int | None = None, warmup: int | None = None,
                         chunk_size: int | None = None, order: int = 2,
                         taps: int | None = None, zero_phase: bool = False,
                         memory_budget: int = DEFAULT_MEMORY_BUDGET, device: str = "cpu",
                         alpha: float = 1.0, reference: int = 0,
                         **method_options: Any) -> TaskMemory:
    """Peak memory of one Dask task for a clip of ``shape``, before running anything.

    Parameters
    ----------
    shape : (T, H, W) or (T, H, W, C)
        The clip.
    dtype : numpy dtype
        The clip's dtype.
    fps, method, temporal, band, mode, order, taps, zero_phase, device, **method_options
        As for :func:`napari_vmm.core.engine.magnify`.
    tile_size : int, optional
        Tile side without halo (default: the largest that fits ``memory_budget``, or the whole
        frame).
    segment_frames : int, optional
        Frames per time segment of the causal path (default :func:`plan_segments`).
    warmup : int, optional
        Warm-up frames (default :func:`warmup_frames`).
    chunk_size : int, optional
        Frames per engine chunk inside a task.
    memory_budget : int
        Bytes one task may hold; used to choose the tile and segment sizes.
    alpha, reference
        Accepted so that the engine's keyword arguments can be passed as they are; they do
        not change the memory.

    Returns
    -------
    TaskMemory
        ``bytes`` and the sizes it was computed for.
    """
    shape = tuple(int(s) for s in shape)
    h, w, c = check_frame_shape(shape)
    itemsize = check_dtype(dtype).itemsize
    params = _params(fps, method, 1.0, band, temporal, mode, 0, device, order, taps,
                     zero_phase, method_options)
    _, plan = _pinned_plan(shape, itemsize, params, Pipeline(roi_mask=None, **params).magnifier,
                           tile_size, segment_frames, warmup, chunk_size, memory_budget)
    return plan.memory


@dataclass(frozen=True)
class _Plan:
    whole: bool
    tile: tuple[int, int]
    halo: int
    segment: int
    warmup: int
    chunk: int
    memory: TaskMemory
    periodic: bool = False  # the halo wraps around the frame edges (FFT-based magnifiers)


def _plan(shape: tuple[int, ...], itemsize: int, params: dict[str, Any],
          tile_size: int | None, segment_frames: int | None, warmup: int | None,
          chunk_size: int | None, memory_budget: int, whole: bool | None = None) -> _Plan:
    """Tile, segment and warm-up sizes for a clip, and the memory per task."""
    n, h, w = shape[:3]
    c = shape[3] if len(shape) == 4 else 1
    pipe = Pipeline(roi_mask=None, **{**params, "reference": 0})
    signal = _signal_bytes_per_px(pipe, c)
    halo = int(pipe.magnifier.spatial_support)
    periodic = pipe.magnifier.boundary == "periodic"
    chunk = int(chunk_size or default_chunk(h, w))
    if whole is None:
        whole = needs_whole_clip(params["temporal"], params["mode"], params["zero_phase"])

    def memory(frames, out_frames, tile, wu):
        clamp = (lambda v, n: v) if periodic else min
        window = (clamp(tile[0] + 2 * halo, h) if tile[0] < h else h,
                  clamp(tile[1] + 2 * halo, w) if tile[1] < w else w)
        path = "whole" if whole else "segments"
        return TaskMemory(_memory_formula(path, frames, out_frames, window, c, itemsize,
                                          signal, min(chunk, frames),
                                          0 if whole else _filter_state_frames(pipe),
                                          pipe.magnifier.work_factor),
                          path, frames, window, halo if tile != (h, w) else 0, wu, signal)

    if whole:
        if tile_size is None:
            tile_size = max(h, w)
            while memory(n, n, (min(h, tile_size), min(w, tile_size)), 0).bytes > memory_budget:
                tile_size = tile_size * 3 // 4
                if tile_size < max(32, halo):
                    need = memory(n, n, (min(h, max(32, halo)),) * 2, 0).bytes
                    raise VMMError(
                        f"whole-clip filtering of {n} frames needs {need / 2**20:.0f} MiB per "
                        f"task even with {max(32, halo)} px tiles (the method's halo is "
                        f"{halo} px), over memory_budget={memory_budget}; raise "
                        "memory_budget, pin fewer pyramid levels, or use a causal filter")
        tile = (min(h, int(tile_size)), min(w, int(tile_size)))
        return _Plan(True, tile, halo, n, 0, chunk, memory(n, n, tile, 0), periodic)
    wu = warmup_frames(params["fps"], params["temporal"], params["band"], params["mode"],
                       params["order"], params["taps"]) if warmup is None else int(warmup)
    if wu < 0:
        raise VMMError(f"warmup must be >= 0 frames, got {wu}")
    tile = (h, w) if tile_size is None else (min(h, int(tile_size)), min(w, int(tile_size)))
    if segment_frames is None:
        # Warm-up at most a quarter of the work, and within the budget.
        segment_frames = max(4 * wu, 8 * chunk, 32)
        while segment_frames > chunk and memory(segment_frames + wu, segment_frames, tile,
                                                wu).bytes > memory_budget:
            segment_frames //= 2
    segment = max(1, min(n, int(segment_frames)))
    return _Plan(False, tile, halo, segment, wu, chunk,
                 memory(min(n, segment + wu), segment, tile, wu), periodic)


# -- chunk layouts ------------------------------------------------------------------------


def _even_chunks(length: int, target: int, minimum: int = 1) -> tuple[int, ...]:
    """Split ``length`` into nearly equal chunks of about ``target``, each >= ``minimum``."""
    n = max(1, math.ceil(length / max(1, target)))
    while n > 1 and length // n < minimum:
        n -= 1
    base, extra = divmod(length, n)
    return tuple(base + (i < extra) for i in range(n))


def _tile_chunks(length: int, target: int, halo: int,
                 periodic: bool = False) -> tuple[int, ...]:
    """Regular spatial chunks of about ``target`` px, the last one >= ``halo``, aligned.

    Tiles are multiples of the pyramid's decimation step (:func:`plan.tile_alignment`: the
    largest power of two <= ``halo / 4``), so a tile's
    window samples the same pyramid grid as the whole frame does; the chunks are regular
    (all equal but the last), so Zarr chunks can match them.
    """
    align = tile_alignment(halo)
    if length <= target or target + (2 if periodic else 1) * halo >= length:
        return (length,)  # a tile's window would span the whole axis anyway
    base = max(align, int(round(target / align)) * align, halo)
    for step in range(0, base):
        for tile in (base + step * align, base - step * align):
            if tile < max(halo, align) or tile >= length:
                continue
            rest = length % tile
            if rest == 0 or rest >= halo:
                return (tile,) * (length // tile) + ((rest,) if rest else ())
    return (length,)


def _bounds(chunks: Sequence[int]) -> list[tuple[int, int]]:
    edges = np.concatenate([[0], np.cumsum(chunks)]).astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


# -- the lazy engine ----------------------------------------------------------------------


def magnify_dask(frames: Any, fps: float, method: str = "phase", alpha: float = 20.0,
                 band: tuple[float, float] | None = (0.5, 3.0), temporal: str = "ideal",
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
    params = _params(fps, method, alpha, band, temporal, mode, reference, device, order, taps,
                     zero_phase, method_options)
    # Validate everything (method, options, alpha, band, mask) in the driver, once.
    probe = Pipeline(roi_mask=roi_mask, **{**params, "reference": 0})
    if probe.roi_mask is not None:
        probe._mask_for((h, w))
    if path not in ("auto", "whole", "segments", "stream"):
        raise VMMError(f"path must be 'auto', 'whole' or 'segments', got {path!r}")
    whole = needs_whole_clip(temporal, mode, zero_phase)
    if path in ("segments", "stream") and whole:
        raise VMMError(f"the {temporal!r} filter needs the whole clip; it cannot run in time "
                       "segments")
    static = mode == "static" or (mode == "temporal" and temporal == "none")
    if static and not 0 <= int(reference) < shape[0]:
        raise VMMError(f"reference frame {reference} is outside the clip (0..{shape[0] - 1})")
    if whole or path == "whole":  # a causal filter may be forced onto full-T tiles
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
    params, plan = _pinned_plan(tuple(frames.shape), frames.dtype.itemsize, params, magnifier,
                                tile_size, None, None, chunk_size, memory_budget, whole=True)
    halo = plan.halo
    ychunks = _tile_chunks(h, plan.tile[0], halo, plan.periodic)
    xchunks = _tile_chunks(w, plan.tile[1], halo, plan.periodic)
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
                params: dict[str, Any], chunk: int) -> np.ndarray:
    """One tile with its halo over all T: the engine's whole-clip path on a single tile."""
    if block.size == 0:
        return block
    mask2d = None if mask is None else mask.reshape(mask.shape[1:3])
    pipe = _pipeline(params, mask2d)
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
    params, plan = _pinned_plan(shape, frames.dtype.itemsize, params, magnifier, tile_size,
                                segment_frames, warmup, chunk_size, memory_budget)
    wu, halo = plan.warmup, plan.halo
    if segment_frames is None and len(tchunks) > 1 and min(tchunks[:-1]) >= max(
            2 * wu, plan.chunk):
        seg_bounds = _bounds(tchunks)  # the input's time chunks are long enough
    else:
        seg = plan.segment if plan.segment >= n else max(8, plan.segment // 8 * 8)
        seg_bounds = _bounds((seg,) * (n // seg) + ((n % seg,) if n % seg else ()))
    if tile_size is None and (len(frames.chunks[1]) > 1 or len(frames.chunks[2]) > 1):
        ybounds = _bounds(_tile_chunks(h, max(frames.chunks[1]), halo, plan.periodic))
        xbounds = _bounds(_tile_chunks(w, max(frames.chunks[2]), halo, plan.periodic))
    else:
        ybounds = _bounds(_tile_chunks(h, plan.tile[0], halo, plan.periodic))
        xbounds = _bounds(_tile_chunks(w, plan.tile[1], halo, plan.periodic))
    static = params["mode"] == "static" or (params["mode"] == "temporal"
                                            and params["temporal"] == "none")
    reference = params["reference"]
    seg_params = {**params, "reference": 0}
    tail = (shape[3],) if len(shape) == 4 else ()
    mask = None if roi_mask is None else np.asarray(roi_mask, dtype=np.float32)
    task = dask.delayed(_segment_task, pure=True)
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
                iy, ix = _window_index(wy0, wy1, h), _window_index(wx0, wx1, w)

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


def _window_index(lo: int, hi: int, n: int) -> slice | np.ndarray:
    """Indices ``lo..hi`` of an axis of length ``n``: a slice, or wrapped past the edges."""
    if lo >= 0 and hi <= n:
        return slice(lo, hi)
    return np.arange(lo, hi) % n


def _segment_task(block: np.ndarray, ref0: np.ndarray | None, refr: np.ndarray | None, *,
                  params: dict[str, Any], crop: tuple[int, int, int, int, int],
                  mask: np.ndarray | None, chunk: int) -> np.ndarray:
    """One time segment (with its warm-up) of one tile (with its halo) on the streaming path."""
    pipe = _pipeline(params, mask)
    torch = pipe.torch
    pipe.reset()
    with torch.inference_mode():
        if ref0 is not None:  # the magnifier's phase reference is frame 0, as in memory
            x, _ = pipe.prepare(np.asarray(ref0))
            pipe.magnifier.encode(x)
        # The engine filters the signal flattened to one (N, K) tensor, stream key 0. Causal
        # filters start in the steady state of the block's first frame by themselves.
        if refr is not None:  # static mode: the filter's reference is frame `reference`
            x, _ = pipe.prepare(np.asarray(refr))
            signal, _ = pipe.magnifier.encode(x)
            pipe.filter.step(pipe.flatten(signal))
    out = [pipe.stream_chunk(np.asarray(block[t:t + chunk]))
           for t in range(0, block.shape[0], chunk)]
    result = np.concatenate(out)
    t, y0, y1, x0, x1 = crop
    return np.ascontiguousarray(result[t:, y0:y1, x0:x1])


# -- Zarr ---------------------------------------------------------------------------------


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
        starts = [_bounds(c) for c in x.chunks]
        tasks = []
        for index in np.ndindex(*x.numblocks):
            region = tuple(slice(*starts[d][i]) for d, i in enumerate(index))
            tasks.append(dask.delayed(_store_block, pure=False)(blocks[index], tmp, region))
        run_tasks(tasks, client, progress)
        mark_zarr(z, True)


def _store_block(block: np.ndarray, store: str, region: tuple[slice, ...]) -> int:
    import zarr

    zarr.open_array(store, mode="r+")[region] = block
    return int(block.shape[0])


def _result(future: Any) -> Any:
    """``future.result()``; a worker lost while running the task becomes one VMMError."""
    from distributed import KilledWorker

    try:
        return future.result()
    except KilledWorker as exc:
        raise VMMError(
            f"a Dask worker died while running a task ({exc.task}, lost {exc.allowed_failures + 1}"
            " times): it was killed or ran out of memory; lower --memory-budget or give the "
            "workers more memory") from None


def run_tasks(tasks: Sequence[Any], client: Any = None,
              progress: Callable[[int, int], Any] | None = None) -> list[Any]:
    """Compute delayed ``tasks``, reporting ``progress(done, total)`` as each one finishes.

    On a ``distributed.Client`` the progress comes from the futures (``as_completed``); a
    ``KeyboardInterrupt`` or a progress callback returning ``False`` cancels the futures that
    are still pending on the cluster. Without a client the tasks run one by one on the local
    threaded scheduler.

    Returns
    -------
    list
        The task results, in order.
    """
    total = len(tasks)
    if client is None:
        import dask

        results = []
        for i, t in enumerate(tasks):
            results.append(dask.compute(t)[0])
            if progress is not None and progress(i + 1, total) is False:
                raise Cancelled("cancelled")
        return results
    from distributed import as_completed

    futures = client.compute(list(tasks))
    try:
        for done, fut in enumerate(as_completed(futures), start=1):
            if fut.status == "error":
                _result(fut)  # raise the task's exception here
            if progress is not None and progress(done, total) is False:
                raise Cancelled("cancelled")
        return [_result(f) for f in futures]
    except BaseException:
        client.cancel(futures)
        raise


# -- videos: keyframe segments ------------------------------------------------------------


@dataclass(frozen=True)
class VideoIndex:
    """Presentation timestamps of a video's frames and its keyframes (no decoding).

    Attributes
    ----------
    pts : ndarray of int
        The video stream's packet timestamps in presentation order (one per frame).
    keyframes : list of int
        Frame indices (presentation order) of the keyframes, starting with 0.
    """

    pts: np.ndarray
    keyframes: list[int]


def index_video(path: str | os.PathLike) -> VideoIndex:
    """Read the packet timestamps and keyframes of a video by demuxing it (PyAV, no decode)."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            pts, key = [], []
            for packet in container.demux(stream):
                if packet.size and packet.pts is not None:
                    pts.append(int(packet.pts))
                    key.append(bool(packet.is_keyframe))
    except (av.error.FFmpegError, IndexError) as exc:
        raise VMMError(f"cannot index {path}: {exc}") from None
    if not pts:
        raise VMMError(f"cannot index {path}: no timestamps in the video stream")
    order = np.argsort(pts, kind="stable")
    sorted_pts = np.asarray(pts, dtype=np.int64)[order]
    keyframes = sorted(int(np.nonzero(order == i)[0][0]) for i, k in enumerate(key) if k)
    if not keyframes or keyframes[0] != 0:
        keyframes = [0] + keyframes
    return VideoIndex(sorted_pts, keyframes)


def read_video_frames(path: str | os.PathLike, start: int, stop: int,
                      index: VideoIndex | None = None, deep: bool = False) -> np.ndarray:
    """Decode frames ``[start, stop)`` by seeking to the keyframe before ``start``.

    Returns (N, H, W, 3) uint8 RGB (uint16 with ``deep``), as :class:`io.VideoSource`.
    """
    import av

    index = index or index_video(path)
    n = len(index.pts)
    if not 0 <= start < stop <= n:
        raise VMMError(f"frames {start}..{stop} are outside the video's 0..{n}")
    first, last = int(index.pts[start]), int(index.pts[stop - 1])
    frames = []
    fmt = "rgb48le" if deep else "rgb24"
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        container.seek(first, stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            if frame.pts is None or frame.pts < first:
                continue
            frames.append(frame_to_rgb(frame, fmt))
            if frame.pts >= last:
                break
    if len(frames) != stop - start:
        raise VMMError(f"cannot decode frames {start}..{stop} of {path}: got {len(frames)}")
    return np.stack(frames)


def video_segments(index: VideoIndex, min_frames: int) -> list[tuple[int, int]]:
    """Keyframe-aligned ``[start, stop)`` segments, merged to at least ``min_frames`` each."""
    n = len(index.pts)
    cuts = [k for k in index.keyframes if 0 < k < n]
    bounds = [0]
    for k in cuts:
        if k - bounds[-1] >= min_frames and n - k >= min_frames:
            bounds.append(k)
    bounds.append(n)
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def video_to_dask(path: str | os.PathLike, min_frames: int = 32):
    """A video as a lazy dask array (T, H, W, 3), one chunk per keyframe segment."""
    import dask
    import dask.array as da

    from .io import open_video

    with open_video(path) as src:
        shape, dtype = src.shape, src.dtype
    index = index_video(path)
    if len(index.pts) != shape[0]:
        shape = (len(index.pts),) + tuple(shape[1:])
    deep = dtype == np.uint16
    read = dask.delayed(read_video_frames, pure=True)
    parts = [da.from_delayed(read(str(path), a, b, index, deep), shape=(b - a,) + shape[1:],
                             dtype=dtype) for a, b in video_segments(index, min_frames)]
    return da.concatenate(parts, axis=0)


def magnify_video_segments(src_path: str | os.PathLike, dst_path: str | os.PathLike,
                           fps: float | None = None, *, client: Any = None,
                           roi_mask: np.ndarray | None = None, audio: bool = True,
                           codec: str | None = None, crf: int | None = None,
                           ten_bit: bool = False, segment_frames: int | None = None,
                           warmup: int | None = None, progress: Callable[[int, int], Any]
                           | None = None, **params: Any) -> int:
    """Magnify a video with a causal filter in keyframe segments processed in parallel.

    Each task decodes ``[start - warm-up, stop)`` of one keyframe segment (seeking, not
    decoding from the start), magnifies it as :func:`magnify_dask`'s segments do, and encodes
    it to its own file. The files are joined with the ffmpeg concat demuxer without
    re-encoding, and the audio of the input is muxed once.

    Parameters
    ----------
    src_path, dst_path : path
        Input video and output video (same container family: .mp4/.mov/.mkv).
    fps : float, optional
        The true capture rate (default: the file's); the output keeps the file's rate.
    client : distributed.Client, optional
        Where to run (default: the local threaded scheduler).
    roi_mask, audio, codec, crf, ten_bit
        As for ``vmm magnify``.
    segment_frames : int, optional
        Minimum frames per segment (default :func:`plan_segments`' choice).
    progress : callable(done, total), optional
        Called as each segment's future completes.
    **params
        ``method``, ``alpha``, ``band``, ``temporal``, ``mode``, ``reference``, ``device``,
        engine and method options, as for :func:`napari_vmm.core.engine.magnify`.

    Returns
    -------
    int
        The number of segments.
    """
    import dask

    from .io import VIDEO_EXTENSIONS, atomic_output, open_video

    if Path(dst_path).suffix.lower() not in VIDEO_EXTENSIONS:
        raise VMMError(f"cannot write {dst_path}: segments are joined into a video file")
    if shutil.which("ffmpeg") is None:
        raise VMMError("joining video segments needs the ffmpeg program on PATH")
    with open_video(src_path) as src:
        file_fps, color, has_audio, shape, dtype = (src.fps, dict(src.color), src.has_audio,
                                                     src.shape, src.dtype)
    fps = fps or file_fps
    engine, method_options = _split_options(dict(params))
    p = dict(method=method_options.pop("method", "riesz"),
             alpha=method_options.pop("alpha", 10.0),
             band=method_options.pop("band", (0.5, 3.0)),
             temporal=method_options.pop("temporal", "butterworth"),
             mode=method_options.pop("mode", "temporal"),
             reference=method_options.pop("reference", 0),
             device=method_options.pop("device", "cpu"))
    if needs_whole_clip(p["temporal"], p["mode"], engine.get("zero_phase", False)):
        raise VMMError(f"the {p['temporal']!r} filter needs the whole clip; video segments "
                       "need a causal filter")
    params_full = _params(fps, p["method"], p["alpha"], p["band"], p["temporal"], p["mode"],
                          p["reference"], p["device"], engine.get("order", 2),
                          engine.get("taps"), False, method_options)
    index = index_video(src_path)
    n = len(index.pts)
    plan = _plan((n,) + tuple(shape[1:]), dtype.itemsize, params_full, None, segment_frames,
                 warmup, engine.get("chunk_size"), engine.get("memory_budget",
                                                            DEFAULT_MEMORY_BUDGET))
    probe = Pipeline(roi_mask=roi_mask, **{**params_full, "reference": 0})
    if probe.roi_mask is not None:
        probe._mask_for(shape[1:3])
    static = p["mode"] == "static" or (p["mode"] == "temporal" and p["temporal"] == "none")
    if static and not 0 <= int(p["reference"]) < n:
        raise VMMError(f"reference frame {p['reference']} is outside the clip (0..{n - 1})")
    seg_params = {**params_full, "reference": 0}
    segments = video_segments(index, max(1, plan.segment))
    dest = Path(dst_path)
    work = os.path.abspath(tempfile.mkdtemp(prefix=f".{dest.stem}.", dir=dest.parent))
    try:
        encode = dask.delayed(_encode_video_segment, pure=False)
        tasks = []
        for i, (t0, t1) in enumerate(segments):
            m = max(0, t0 - plan.warmup)
            tasks.append(encode(
                str(src_path), os.path.join(work, f"seg{i:05d}{dest.suffix}"), index,
                (m, t0, t1), int(p["reference"]) if static else None,
                seg_params, roi_mask, plan.chunk, file_fps,
                dict(codec=codec, crf=crf, ten_bit=ten_bit, color=color),
                dtype == np.uint16))
        parts = run_tasks(tasks, client, progress)
        listing = os.path.join(work, "list.txt")
        with open(listing, "w") as fh:
            for part in parts:
                fh.write(f"file '{part}'\n")
        joined = os.path.join(work, f"joined{dest.suffix}")
        _ffmpeg(["-f", "concat", "-safe", "0", "-i", listing, "-c", "copy", joined])
        with atomic_output(dest, protect=[src_path]) as tmp:
            if audio and has_audio:
                _ffmpeg(["-i", joined, "-i", str(src_path), "-map", "0:v:0", "-map", "1:a?",
                         "-c", "copy", "-f", _muxer(dest), tmp])
            else:
                _ffmpeg(["-i", joined, "-map", "0:v:0", "-c", "copy", "-f", _muxer(dest), tmp])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return len(segments)


def _muxer(path: Path) -> str:
    return {".mkv": "matroska", ".webm": "webm", ".mov": "mov", ".avi": "avi"}.get(
        path.suffix.lower(), "mp4")


def _ffmpeg(args: list[str]) -> None:
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise VMMError(f"ffmpeg failed joining segments: {proc.stderr.strip()[-400:]}")


def _encode_video_segment(src: str, dst: str, index: VideoIndex, span: tuple[int, int, int],
                          reference: int | None, params: dict[str, Any],
                          mask: np.ndarray | None, chunk: int,
                          file_fps: float, out: dict[str, Any], deep: bool) -> str:
    """Decode one segment with its warm-up, magnify it and encode it (no audio)."""
    from types import SimpleNamespace

    from .io import write_video

    m, t0, t1 = span
    block = read_video_frames(src, m, t1, index, deep)
    static = reference is not None
    ref0 = read_video_frames(src, 0, 1, index, deep) if (m > 0 or static) else None
    refr = read_video_frames(src, reference, reference + 1, index, deep) if static else None
    h, w = block.shape[1:3]
    result = _segment_task(block, ref0, refr, params=params, crop=(t0 - m, 0, h, 0, w),
                           mask=mask, chunk=chunk)
    write_video(dst, result, file_fps, codec=out["codec"], crf=out["crf"],
                ten_bit=out["ten_bit"], color_from=SimpleNamespace(
                    color=out["color"], dtype=np.uint16 if deep else np.uint8))
    return dst


# -- clusters -----------------------------------------------------------------------------


@contextlib.contextmanager
def _signals_held():
    """Hold SIGINT and SIGTERM while worker processes start (yields the list of signals that
    came): interrupted mid-spawn, a worker prints a traceback and the cluster cannot close."""
    import signal
    import threading

    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    old = {sig: signal.signal(sig, lambda signum, frame: held.append(signum))
           for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield held
    finally:
        for sig, handler in old.items():
            if handler is not None:
                signal.signal(sig, handler)


def get_client(cluster: str | None):
    """A ``distributed.Client`` for ``local:N`` (a new LocalCluster of N worker processes,
    one thread each) or ``tcp://host:port`` (an existing scheduler); None for None."""
    if not cluster:
        return None
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise VMMError("--cluster needs dask.distributed: pip install 'napari-vmm[dask]'"
                       ) from None
    if cluster.startswith("local:") or cluster == "local":
        text = cluster.partition(":")[2] or str(os.cpu_count() or 1)
        try:
            workers = int(text)
        except ValueError:
            raise VMMError(f"--cluster local:N needs a number of workers, got {cluster!r}"
                           ) from None
        if workers < 1:
            raise VMMError(f"--cluster local:N needs N >= 1, got {workers}")
        import logging

        with _signals_held() as held:
            lc = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                              dashboard_address=None, silence_logs=logging.ERROR)
            client = Client(lc)
            client._vmm_owned_cluster = lc  # closed by close_client
        if held:  # Ctrl-C or SIGTERM while the workers started: stop them, then obey
            import signal

            close_client(client)
            signal.raise_signal(held[0])
        return client
    if cluster.startswith(("tcp://", "tls://", "ws://", "wss://", "inproc://", "ucx://")):
        try:
            return Client(cluster, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise VMMError(f"cannot connect to the Dask scheduler {cluster}: {exc}") from None
    raise VMMError(f"--cluster must be local:N or tcp://host:port, got {cluster!r}")


def close_client(client: Any) -> None:
    """Close a client from :func:`get_client` (and the LocalCluster it started)."""
    if client is None:
        return
    cluster = getattr(client, "_vmm_owned_cluster", None)
    with contextlib.suppress(Exception):
        client.close()
    if cluster is not None:
        with contextlib.suppress(Exception):
            cluster.close()


def check_scheduler(address: str | None) -> str | None:
    """Validate a Dask scheduler setting without connecting: None for local threads.

    Parameters
    ----------
    address : str or None
        ``""`` (or None): the local threaded scheduler; ``local:N``: a ``LocalCluster`` of N
        worker processes; ``tcp://host:port`` (or ``tls://``, ...): a running scheduler.

    Returns
    -------
    str or None
        The address, stripped, or None for the local threaded scheduler.

    Raises
    ------
    VMMError
        When the text is none of these.
    """
    text = (address or "").strip()
    if not text:
        return None
    if text == "local" or text.startswith("local:"):
        n = text.partition(":")[2]
        if n and (not n.isdigit() or int(n) < 1):
            raise VMMError(f"Dask scheduler local:N needs a number of workers N >= 1, got "
                           f"{text!r}")
        return text
    scheme, sep, rest = text.partition("://")
    if sep and scheme in ("tcp", "tls", "ws", "wss", "inproc", "ucx") and rest:
        return text
    raise VMMError(f"Dask scheduler must be empty (local threads), local:N or "
                   f"tcp://host:port, got {text!r}")


def task_memory_summary(shape: Sequence[int], dtype: Any, **params: Any) -> str:
    """One line for a user interface: :func:`estimate_task_memory` or why it cannot run.

    ``params`` are :func:`napari_vmm.core.engine.magnify`'s keyword arguments (``fps``,
    ``method``, ``alpha``, ``band``, ``temporal``, ``mode``, ``reference``, ``device``,
    engine and method options); ``roi_mask`` and ``progress`` are ignored.
    """
    params = {k: v for k, v in params.items() if k not in ("roi_mask", "progress", "path")}
    try:
        return str(estimate_task_memory(tuple(shape), dtype, **params))
    except VMMError as exc:
        return f"cannot run: {exc}"


def iter_compute(x: Any, out: Any = None, *, zarr_path: str | os.PathLike | None = None,
                 fps: float | None = None, client: Any = None,
                 protect: Iterable[str | os.PathLike] = (),
                 max_workers: int | None = None) -> Iterable[tuple[int, int]]:
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
            tmp = stack.enter_context(atomic_output_dir(zarr_path, protect))
            z = zarr.create_array(tmp, shape=x.shape, chunks=chunks, dtype=x.dtype,
                                  overwrite=True)
            mark_zarr(z, False)
            if fps:
                z.attrs["fps"] = float(fps)
        starts = [_bounds(c) for c in x.chunks]
        blocks = x.to_delayed()
        regions, tasks = [], []
        for index in np.ndindex(*x.numblocks):
            region = tuple(slice(*starts[d][i]) for d, i in enumerate(index))
            regions.append(region)
            tasks.append(blocks[index] if zarr_path is None else
                         dask.delayed(_store_block, pure=False)(blocks[index], tmp, region))
        yield from _iter_tasks(tasks, regions, out, client, max_workers)
        if zarr_path is not None:
            mark_zarr(z, True)


def _iter_tasks(tasks: list[Any], regions: list[tuple[slice, ...]], out: Any, client: Any,
                max_workers: int | None) -> Iterable[tuple[int, int]]:
    total = len(tasks)
    if client is not None:
        from distributed import as_completed

        futures = client.compute(tasks)
        where = {f.key: r for f, r in zip(futures, regions, strict=True)}
        try:
            for done, fut in enumerate(as_completed(futures), start=1):
                result = _result(fut)  # raises the task's exception here
                if out is not None:
                    out[where[fut.key]] = result
                yield done, total
        finally:
            client.cancel([f for f in futures if not f.done()])
        return
    from concurrent.futures import ThreadPoolExecutor, as_completed

    import dask

    workers = max(1, min(total, max_workers or os.cpu_count() or 1))
    with ThreadPoolExecutor(workers, thread_name_prefix="vmm-dask") as pool:
        futures = {pool.submit(dask.compute, t, scheduler="sync"): r
                   for t, r in zip(tasks, regions, strict=True)}
        try:
            for done, fut in enumerate(as_completed(futures), start=1):
                result = fut.result()[0]
                if out is not None:
                    out[futures[fut]] = result
                yield done, total
        finally:
            for fut in futures:
                fut.cancel()
