"""Planning: frames per chunk, tiles, pyramid depth, warm-up and memory per task.

Plain functions over shapes and the engine's pipeline; nothing here imports dask. The
whole-clip path (:mod:`.wholeclip`) and the Dask graphs (:mod:`napari_vmm.scale`) take their
tiles, depth and sizes from here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import VMMError
from .frames import check_dtype, check_frame_shape
from .params import ARRAY_METHOD, ARRAY_TEMPORAL, DEFAULT_BAND, MagnifyParams
from .pipeline import Pipeline
from .route import choose_route

DEFAULT_MEMORY_BUDGET = 1 << 30  # bytes of motion signal held by the whole-clip path
#: Keyword options of a run that are not parameters of the magnification
#: (:class:`~napari_vmm.core.params.MagnifyParams`): how it is cut up, not what it computes.
RUN_OPTIONS = ("chunk_size", "memory_budget", "tile_size", "path", "segment_frames", "warmup")


def default_chunk(height: int, width: int) -> int:
    """Frames per chunk: about 2 megapixels of frames at a time, 1 to 16 frames."""
    return int(max(1, min(16, 2_000_000 // max(1, height * width))))


def tile_alignment(halo: int) -> int:
    """Multiple of which tiles start, for a magnifier's ``spatial_support`` of ``halo`` px.

    The pyramids' support is ``2^levels x 4`` px plus extras that keep it a multiple of
    ``2^levels``, so the largest power of two <= ``halo / 4`` is their decimation step: tiles
    (and their halo windows) that start on it sample the whole frame's pyramid grid.
    """
    return 1 << max(0, int(math.log2(max(1, halo // 4))))


def tile_windows(h: int, w: int, tile: int, halo: int, periodic: bool = False):
    """(core window, halo window) pairs covering an (h, w) frame.

    The halo window is clamped at the frame edges, or with ``periodic`` wraps around them
    (its bounds then run below 0 or past the frame; :func:`.wholeclip.read_frames` wraps them).
    """
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(h, y0 + tile), min(w, x0 + tile)
            if periodic:
                yield (y0, y1, x0, x1), (y0 - halo, y1 + halo, x0 - halo, x1 + halo)
                continue
            yield (y0, y1, x0, x1), (max(0, y0 - halo), min(h, y1 + halo),
                                     max(0, x0 - halo), min(w, x1 + halo))



def pin_depth(magnifier: Any, height: int, width: int, fits: Callable[[dict[str, Any]], bool],
              auto: bool) -> dict[str, Any]:
    """The method options to pin for tiles of a ``(height, width)`` frame.

    Every tile must build the pyramid the whole frame would (``Magnifier.frame_options``,
    e.g. the depth for ``levels=0``), so that tiles meet without seams. With ``auto`` (the
    depth is automatic and the tiles are sized by the budget) the depth is then lowered, down
    to 2 levels, until ``fits(options)`` is true: the deepest pyramid whose halo fits.

    Parameters
    ----------
    magnifier : Magnifier
        The method, built with the user's options.
    height, width : int
        The whole frame.
    fits : callable(options) -> bool
        Whether the tiles fit the memory budget with these pinned options.
    auto : bool
        Whether the depth may be lowered.

    Returns
    -------
    dict
        The options to pin (possibly empty), to be merged into the method's options.
    """
    pinned = dict(magnifier.frame_options(height, width))
    if not auto or "levels" not in pinned:
        return pinned
    while pinned["levels"] > 2 and not fits(pinned):
        pinned["levels"] -= 1
    return pinned


def whole_clip_tiles(magnifier: Any, n: int, height: int, width: int, held_bytes_per_px: float,
                     memory_budget: int, tile_size: int | None = None) -> list[tuple]:
    """The tiles of the in-memory whole-clip path, and the pyramid depth they use.

    The held motion signal (``held_bytes_per_px`` per pixel, see
    :func:`napari_vmm.core.wholeclip.whole_signal_frames`) must fit ``memory_budget``: the
    whole frame when it does, else square tiles with the magnifier's halo, aligned to its
    pyramid's decimation step (:func:`tile_alignment`). When tiling, the magnifier's options
    are pinned for the whole frame (:func:`pin_depth`; this changes ``magnifier.opts``).

    Returns
    -------
    list of ((y0, y1, x0, x1), (wy0, wy1, wx0, wx1))
        Core and halo windows, as :func:`tile_windows`.
    """
    h, w = height, width
    mag = magnifier
    max_area = memory_budget / max(1.0, held_bytes_per_px)
    if (tile_size is None and h * w > max_area) or (tile_size or max(h, w)) < max(h, w):
        def fits(options: dict[str, Any]) -> bool:
            mag.opts.update(options)  # spatial_support follows the options
            return int(math.sqrt(max_area)) - 2 * mag.spatial_support >= 32

        auto = not mag.opts.get("levels") and tile_size is None
        mag.opts.update(pin_depth(mag, h, w, fits, auto))
    if tile_size is None:
        if h * w <= max_area:
            tile_size = max(h, w)
        else:
            tile_size = int(math.sqrt(max_area)) - 2 * mag.spatial_support
            if tile_size < 32:
                raise VMMError(
                    f"the {n}-frame clip needs more than memory_budget={memory_budget} bytes "
                    "for whole-clip filtering even with 32 px tiles; use a causal filter or a "
                    "larger budget"
                )
    halo = 0 if tile_size >= max(h, w) else mag.spatial_support
    if halo:
        step = tile_alignment(halo)
        tile_size = max(step, tile_size // step * step)
    return list(tile_windows(h, w, tile_size, halo, mag.boundary == "periodic"))


# -- warm-up and memory per task ------------------------------------------------------

#: Relative size the filter's impulse response must decay to over the warm-up.
WARMUP_TOLERANCE = 1e-3

#: Motion signal held per pixel by the whole-clip path on the FFT route: the signal, its
#: filtered copy and the FFT.
FFT_SIGNAL_FACTOR = 2.5


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


def signal_bytes_per_px(pipe: Pipeline, channels: int, size: int = 64) -> float:
    """Motion-signal bytes per pixel and frame of ``pipe``'s magnifier, on a blank frame."""
    torch = pipe.torch
    shape = (1, size, size) if channels == 1 else (1, size, size, channels)
    with torch.inference_mode():
        pipe.reset()
        x, _ = pipe.prepare(np.full(shape, 0.5, dtype=np.float32))
        signal, _ = pipe.magnifier.encode(x)
        pipe.reset()
    return sum(s.numel() * s.element_size() for s in signal) / (size * size)


def memory_formula(path: str, frames: int, out_frames: int, window: tuple[int, int],
                    channels: int, itemsize: int, signal: float, chunk: int,
                    state_frames: int, work_factor: float = 3.0) -> int:
    area = window[0] * window[1]
    # float32 frames and YIQ, plus the magnifier's own transients (signal, ctx, decode)
    work = chunk * area * (12 * channels + work_factor * signal)
    if path == "whole":
        data = frames * area * (2 * channels * itemsize + FFT_SIGNAL_FACTOR * signal)
    else:
        data = ((frames + 2 * out_frames) * area * channels * itemsize
                + state_frames * area * signal)
    return int(data + work)


def filter_state_frames(pipe: Pipeline) -> int:
    from .temporal import FIRFilter, SOSFilter

    filt = pipe.filter
    if isinstance(filt, SOSFilter):
        return 2 * filt.sos.shape[0]
    if isinstance(filt, FIRFilter):
        return len(filt.taps)
    return 2


def estimate_task_memory(shape: Sequence[int], dtype: Any, fps: float,
                         method: str = ARRAY_METHOD, temporal: str = ARRAY_TEMPORAL,
                         band: tuple[float, float] | None = DEFAULT_BAND,
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
        Frames per time segment of the causal path (default: :func:`plan_tasks`' choice).
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
    params = MagnifyParams(fps=fps, method=method, alpha=1.0, band=band, temporal=temporal,
                           mode=mode, reference=0, device=device, order=order, taps=taps,
                           zero_phase=zero_phase, options=method_options)
    _, plan = pinned_plan(shape, itemsize, params, Pipeline(params).magnifier, tile_size,
                          segment_frames, warmup, chunk_size, memory_budget)
    return plan.memory


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


@dataclass(frozen=True)
class Plan:
    """Sizes of the Dask tasks of a clip (:func:`plan_tasks`)."""

    whole: bool
    tile: tuple[int, int]
    halo: int
    segment: int
    warmup: int
    chunk: int
    memory: TaskMemory
    periodic: bool = False  # the halo wraps around the frame edges (FFT-based magnifiers)


def plan_tasks(shape: tuple[int, ...], itemsize: int, params: MagnifyParams,
               tile_size: int | None, segment_frames: int | None, warmup: int | None,
               chunk_size: int | None, memory_budget: int, whole: bool | None = None) -> Plan:
    """Tile, segment and warm-up sizes for a clip, and the memory per task."""
    n, h, w = shape[:3]
    c = shape[3] if len(shape) == 4 else 1
    pipe = Pipeline(params.replace(reference=0))
    signal = signal_bytes_per_px(pipe, c)
    halo = int(pipe.magnifier.spatial_support)
    periodic = pipe.magnifier.boundary == "periodic"
    chunk = int(chunk_size or default_chunk(h, w))
    if whole is None:
        whole = choose_route(params).whole_clip

    def memory(frames, out_frames, tile, wu):
        clamp = (lambda v, n: v) if periodic else min
        window = (clamp(tile[0] + 2 * halo, h) if tile[0] < h else h,
                  clamp(tile[1] + 2 * halo, w) if tile[1] < w else w)
        path = "whole" if whole else "segments"
        return TaskMemory(memory_formula(path, frames, out_frames, window, c, itemsize,
                                          signal, min(chunk, frames),
                                          0 if whole else filter_state_frames(pipe),
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
        return Plan(True, tile, halo, n, 0, chunk, memory(n, n, tile, 0), periodic)
    wu = warmup_frames(params.fps, params.temporal, params.band, params.mode, params.order,
                       params.taps) if warmup is None else int(warmup)
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
    return Plan(False, tile, halo, segment, wu, chunk,
                 memory(min(n, segment + wu), segment, tile, wu), periodic)


def pinned_plan(shape: tuple[int, ...], itemsize: int, params: MagnifyParams,
                magnifier: Any, tile_size: int | None, segment_frames: int | None,
                warmup: int | None, chunk_size: int | None, memory_budget: int,
                whole: bool | None = None) -> tuple[MagnifyParams, Plan]:
    """Pin the frame options (:func:`pin_depth`), then plan: with automatic depth
    (``levels=0``) and tiles sized by the budget, the deepest pyramid whose tiles fit the
    budget (the same depth in every tile, so no seams; the whole frame's depth when it fits).

    Returns the parameters with the pinned options and the plan; raises the planner's
    VMMError when nothing fits.
    """
    plans: dict[str, tuple[MagnifyParams, Plan]] = {}

    def with_options(pinned: dict[str, Any]) -> MagnifyParams:
        if not pinned:
            return params
        return params.replace(options={**params.options, **pinned})

    def fits(pinned: dict[str, Any]) -> bool:
        p = with_options(pinned)
        try:
            plans[repr(pinned)] = p, plan_tasks(shape, itemsize, p, tile_size, segment_frames,
                                                warmup, chunk_size, memory_budget, whole)
        except VMMError:
            return False
        return True

    auto = not params.options.get("levels") and tile_size is None
    pinned = pin_depth(magnifier, shape[1], shape[2], fits, auto)
    if repr(pinned) in plans:
        return plans[repr(pinned)]
    p = with_options(pinned)
    return p, plan_tasks(shape, itemsize, p, tile_size, segment_frames, warmup, chunk_size,
                         memory_budget, whole)


# -- chunk layouts ------------------------------------------------------------------------


def tile_chunks(length: int, target: int, halo: int,
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


def chunk_bounds(chunks: Sequence[int]) -> list[tuple[int, int]]:
    edges = np.concatenate([[0], np.cumsum(chunks)]).astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def window_index(lo: int, hi: int, n: int) -> slice | np.ndarray:
    """Indices ``lo..hi`` of an axis of length ``n``: a slice, or wrapped past the edges."""
    if lo >= 0 and hi <= n:
        return slice(lo, hi)
    return np.arange(lo, hi) % n
