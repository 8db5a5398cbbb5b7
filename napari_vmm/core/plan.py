"""Planning: frames per chunk, tiles, pyramid depth, warm-up and memory per task.

Plain functions over shapes and the engine's pipeline; nothing here imports dask. The
whole-clip path (:mod:`.wholeclip`) and the Dask graphs (:mod:`napari_vmm.scale`) take their
tiles, depth and sizes from here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .errors import VMMError

DEFAULT_MEMORY_BUDGET = 1 << 30  # bytes of motion signal held by the whole-clip path


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
