"""Tracking a grid of cells at once: the displacement of every cell of a ROI, frame by frame.

Each cell is tracked like a ROI (:class:`~.tracking.RoiTracker`), but the small motions that
vibration analysis is about are measured for all cells in one vectorised step: an efficient
second-order (ESM) Gauss-Newton step on zero-mean, gain-normalised intensities, using the mean
of the reference's and the frame's gradients, which for a translation is exact to second
order. Cells that move more than :data:`ESM_LIMIT_PX` (or moved that much on the previous
frame) are handed to the ROI tracker, which warps and iterates. Frames are read one chunk at a
time, cropped to the grid (plus ``max_shift``), so memory does not grow with the frame size,
and only the traces (16 bytes per cell and frame) grow with the clip's length.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from ..errors import VMMError
from .rois import ROI
from .tracking import RoiTracker, iter_crop_chunks, read_frame_crop, source_info, to_luma

#: Above this displacement (px, either axis) a cell is tracked by warping and iterating.
ESM_LIMIT_PX = 0.5
#: 9-point central difference (8th order: 1e-4 relative error at a wavelength of 8 px).
_DERIV = np.array([1 / 280, -4 / 105, 1 / 5, -4 / 5, 0.0, 4 / 5, -1 / 5, 4 / 105, -1 / 280])
#: Gaussian pre-smoothing (px) of reference and frames: the single ESM step then sees content
#: its derivative filter differentiates exactly; it changes no translation.
SMOOTH_SIGMA = 1.0


@dataclass
class GridLayout:
    """A ``rows x cols`` grid of equal cells inside a frame region.

    Attributes
    ----------
    rows, cols : int
    origin : (row, col)
        Top-left pixel of the grid.
    cell : (height, width)
        Cell size in px.
    """

    rows: int
    cols: int
    origin: tuple[int, int]
    cell: tuple[int, int]

    @property
    def n_cells(self) -> int:
        return self.rows * self.cols

    def centres(self) -> np.ndarray:
        """``(rows * cols, 2)`` cell centres ``(row, col)`` in px, row-major."""
        r = self.origin[0] + (np.arange(self.rows) + 0.5) * self.cell[0] - 0.5
        c = self.origin[1] + (np.arange(self.cols) + 0.5) * self.cell[1] - 0.5
        rr, cc = np.meshgrid(r, c, indexing="ij")
        return np.stack([rr.ravel(), cc.ravel()], axis=1)

    def box(self) -> tuple[int, int, int, int]:
        """``(r0, r1, c0, c1)`` of the whole grid, end exclusive."""
        r0, c0 = self.origin
        return r0, r0 + self.rows * self.cell[0], c0, c0 + self.cols * self.cell[1]


def parse_grid(spec: str) -> tuple[int, int]:
    """``"16x12"`` -> ``(16, 12)`` (rows, cols)."""
    parts = str(spec).lower().replace("×", "x").split("x")
    try:
        rows, cols = (int(p) for p in parts)
    except ValueError:
        raise VMMError(f"grid must be ROWSxCOLS, for example 8x16; got {spec!r}") from None
    if rows < 1 or cols < 1:
        raise VMMError(f"grid must have at least one row and one column, got {spec!r}")
    return rows, cols


def grid_layout(frame_shape: tuple[int, int], rows: int, cols: int,
                roi: ROI | None = None, min_cell: int = 6) -> GridLayout:
    """Equal cells covering the ROI's bounding box (or the frame), centred in it.

    Raises
    ------
    VMMError
        When a cell would be smaller than ``min_cell`` px on a side.
    """
    h, w = frame_shape
    r0, r1, c0, c1 = roi.bbox((h, w)) if roi is not None else (0, h, 0, w)
    ch, cw = (r1 - r0) // rows, (c1 - c0) // cols
    if ch < min_cell or cw < min_cell:
        raise VMMError(
            f"a {rows}x{cols} grid on a {r1 - r0}x{c1 - c0} px region gives {ch}x{cw} px cells;"
            f" cells need at least {min_cell} px a side: use fewer rows or columns")
    origin = (r0 + ((r1 - r0) - rows * ch) // 2, c0 + ((c1 - c0) - cols * cw) // 2)
    return GridLayout(rows, cols, origin, (ch, cw))


def _blocks(img: np.ndarray, lay: GridLayout, off: tuple[int, int]) -> np.ndarray:
    """(rows*cols, ch, cw) view of the grid's cells in ``img`` whose (0, 0) is at ``off``."""
    (ch, cw), r, c = lay.cell, lay.origin[0] - off[0], lay.origin[1] - off[1]
    sub = img[r:r + lay.rows * ch, c:c + lay.cols * cw]
    return sub.reshape(lay.rows, ch, lay.cols, cw).transpose(0, 2, 1, 3).reshape(
        lay.n_cells, ch, cw)


def _normalise(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zero-mean cells and their standard deviations."""
    z = b - b.mean(axis=(1, 2), keepdims=True)
    return z, np.sqrt((z**2).mean(axis=(1, 2)))


class GridTracker:
    """Sub-pixel translation of every cell of a grid relative to a reference crop.

    Parameters
    ----------
    ref : ndarray (h, w)
        Luma of the reference frame, cropped to ``crop_box`` (the grid plus a margin).
    layout : GridLayout
    crop_box : (r0, r1, c0, c1)
        Where ``ref`` (and every frame given to :meth:`track`) lies in the frame.
    """

    def __init__(self, ref: np.ndarray, layout: GridLayout,
                 crop_box: tuple[int, int, int, int]) -> None:
        self.layout, self.crop_box = layout, crop_box
        self.off = (crop_box[0], crop_box[2])
        self.ref = ref
        ref = ndimage.gaussian_filter(ref, SMOOTH_SIGMA, mode="nearest")
        self.rblocks = _blocks(ref, layout, self.off)
        self.rz, self.rstd = _normalise(self.rblocks)
        gy, gx = (ndimage.correlate1d(ref, _DERIV, axis=a, mode="nearest") for a in (0, 1))
        self.rgy, self.rgx = _blocks(gy, layout, self.off), _blocks(gx, layout, self.off)
        hyy, hxx = (self.rgy**2).sum(axis=(1, 2)), (self.rgx**2).sum(axis=(1, 2))
        hxy = (self.rgy * self.rgx).sum(axis=(1, 2))
        lam_min = (hyy + hxx) / 2 - np.sqrt(((hyy - hxx) / 2) ** 2 + hxy**2)
        energy = (self.rz**2).sum(axis=(1, 2))
        #: Cells with texture in both directions (others get zero displacement).
        self.ok = (lam_min > 1e-6 * np.maximum(energy, 1e-12)) & (lam_min > 0) & (self.rstd > 0)
        # float32 work arrays for the per-frame step: rows gy, gx (per frame), ref, 1.
        n = layout.n_cells
        self.rgy32 = self.rgy.reshape(n, -1).astype(np.float32)
        self.rgx32 = self.rgx.reshape(n, -1).astype(np.float32)
        self.rblocks32 = self.rblocks.reshape(n, -1, 1).astype(np.float32)
        self._cols = np.empty((n, 4, self.rgy32.shape[1]), np.float32)
        self._cols[:, 2] = self.rz.reshape(n, -1)
        self._cols[:, 3] = 1.0
        self._trackers: dict[int, tuple[RoiTracker, tuple[int, int, int, int]]] = {}
        self.n_refined = 0

    def _esm(self, frame: np.ndarray) -> np.ndarray:
        """One ESM step from zero for every cell: (n_cells, 2) ``(dy, dx)``.

        Per cell, ``frame - ref = -g . d + a (ref - mean) + b`` is solved by least squares,
        with ``g`` the mean of both gradients and ``a``, ``b`` a change of contrast and
        brightness (estimated jointly, so that neither takes up part of the motion).
        """
        frame = ndimage.gaussian_filter(frame.astype(np.float32), SMOOTH_SIGMA, mode="nearest")
        gy, gx = (ndimage.correlate1d(frame, _DERIV, axis=a, mode="nearest") for a in (0, 1))
        n_cells, lay, cols = self.layout.n_cells, self.layout, self._cols
        np.add(self.rgy32, _blocks(gy, lay, self.off).reshape(n_cells, -1), out=cols[:, 0])
        np.add(self.rgx32, _blocks(gx, lay, self.off).reshape(n_cells, -1), out=cols[:, 1])
        cols[:, :2] *= 0.5
        err = _blocks(frame, lay, self.off).reshape(n_cells, -1, 1) - self.rblocks32
        gram = (cols @ cols.transpose(0, 2, 1)).astype(np.float64)  # batched BLAS
        rhs = (cols @ err).astype(np.float64)
        gram[~self.ok] = np.eye(4)
        return -np.linalg.solve(gram, rhs)[:, :2, 0]

    def _tracker(self, i: int) -> tuple[RoiTracker, tuple[int, int, int, int]]:
        """The iterating ROI tracker of cell ``i`` and its crop box (built on first use)."""
        if i not in self._trackers:
            lay, (ch, cw) = self.layout, self.layout.cell
            r = lay.origin[0] - self.off[0] + (i // lay.cols) * ch
            c = lay.origin[1] - self.off[1] + (i % lay.cols) * cw
            h, w = self.ref.shape
            m = RoiTracker.search_px + 2
            pad = (max(0, r - m), min(h, r + ch + m), max(0, c - m), min(w, c + cw + m))
            inner = (slice(r - pad[0], r - pad[0] + ch), slice(c - pad[2], c - pad[2] + cw))
            self._trackers[i] = (RoiTracker(self.ref[pad[0]:pad[1], pad[2]:pad[3]], inner,
                                            np.ones((ch, cw), bool)), pad)
        return self._trackers[i]

    def track(self, frame: np.ndarray, prior: np.ndarray) -> np.ndarray:
        """Displacements (n_cells, 2) ``(dy, dx)`` of ``frame`` (same crop as the reference).

        ``prior`` is the previous frame's result; cells beyond :data:`ESM_LIMIT_PX` in either
        are re-tracked by warping and iterating from ``prior``.
        """
        d = self._esm(frame)
        big = ~(np.abs(d).max(axis=1) <= ESM_LIMIT_PX)  # NaN (ill-conditioned) counts as big
        big |= np.abs(prior).max(axis=1) > ESM_LIMIT_PX
        for i in np.flatnonzero(big & self.ok):
            tr, (r0, r1, c0, c1) = self._tracker(int(i))
            d[i] = tr.track(frame[r0:r1, c0:c1], prior[i]) if tr.ok else prior[i]
            self.n_refined += 1
        d[~self.ok] = 0.0
        return d


def iter_track_grid(frames: Any, layout: GridLayout, *, reference: int = 0,
                    max_shift: int = 8, chunk_frames: int = 32
                    ) -> Generator[tuple[int, int], None, tuple[np.ndarray, np.ndarray]]:
    """Track every cell of ``layout``; yields ``(frames_done, n_frames)`` per chunk.

    Returns
    -------
    disp : ndarray (T, n_cells, 2)
        ``(dy, dx)`` per frame and cell, px.
    ok : ndarray (n_cells,) bool
        Cells with enough texture to track (the others are 0).
    """
    n, (h, w), frame_ndim = source_info(frames)
    if not 0 <= reference < n:
        raise VMMError(f"reference frame {reference} is outside the clip (0..{n - 1})")
    r0, r1, c0, c1 = layout.box()
    m = int(max(1, max_shift))
    crop = (max(0, r0 - m), min(h, r1 + m), max(0, c0 - m), min(w, c1 + m))
    ref = to_luma(read_frame_crop(frames, reference, crop)[None], frame_ndim)[0]
    tracker = GridTracker(ref, layout, crop)
    disp = np.zeros((n, layout.n_cells, 2))
    done = 0
    for t0, (block,) in iter_crop_chunks(frames, [crop], chunk_frames):
        for j in range(len(block)):
            t = t0 + j
            if t >= n:
                break
            frame = to_luma(block[j:j + 1], frame_ndim)[0]  # one float frame at a time
            disp[t] = tracker.track(frame, disp[t - 1] if t else np.zeros((layout.n_cells, 2)))
        done = min(n, t0 + len(block))
        yield done, n
    if done < n:
        raise VMMError(f"the source ended after {done} of {n} frames")
    return disp, tracker.ok


def track_grid(frames: Any, layout: GridLayout, **options: Any) -> tuple[np.ndarray, np.ndarray]:
    """Blocking form of :func:`iter_track_grid`."""
    from .motion import drive

    return drive(iter_track_grid(frames, layout, **options))
