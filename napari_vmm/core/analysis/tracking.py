"""Reading ROI crops with bounded memory and tracking their sub-pixel translation."""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any

import numpy as np
from scipy import ndimage

from ..errors import VMMError
from ..frames import RGB_TO_YIQ

#: Luma weights (the Y row of RGB->YIQ), used to turn colour crops into intensity.
LUMA = RGB_TO_YIQ[0].astype(np.float64)


def to_luma(crop: np.ndarray, ndim_frame: int) -> np.ndarray:
    """(N, h, w[, C]) crop -> (N, h, w) float64 intensity."""
    x = np.asarray(crop)
    if x.ndim == ndim_frame + 1 and ndim_frame == 3:  # (N, h, w, C)
        c = x.shape[-1]
        x = x[..., 0] if c == 1 else np.tensordot(x[..., :3].astype(np.float64), LUMA, axes=1)
    return x.astype(np.float64, copy=False)


class RoiTracker:
    """Sub-pixel translation of one ROI's content relative to a reference crop.

    ``ref`` is the padded crop (bbox plus ``margin`` on each side, clipped to the frame);
    ``inner`` is the bbox's slice inside it and ``weights`` the ROI mask over the bbox.

    Each frame starts from the previous frame's estimate. Phase correlation, searched only
    within :attr:`search_px` of that estimate (so a periodic texture such as striated muscle
    cannot make it jump by one period), gives the integer part; inverse-compositional
    Lucas-Kanade on zero-mean, gain-normalised intensities refines it.
    """

    max_iter = 20
    tol = 1e-4  # px
    search_px = 3
    _deriv = np.array([1.0, -8.0, 0.0, 8.0, -1.0]) / 12.0  # 5-point central difference

    def __init__(self, ref: np.ndarray, inner: tuple[slice, slice], weights: np.ndarray) -> None:
        self.inner = inner
        self.w = weights.astype(np.float64)
        self.wsum = self.w.sum()
        ref_in = ref[inner]
        # Zero-mean, unit-gain template: brightness and contrast changes are not motion.
        self.ref_in = ref_in - np.sum(self.w * ref_in) / self.wsum
        self.ref_std = math.sqrt(np.sum(self.w * self.ref_in**2) / self.wsum)
        gy = ndimage.correlate1d(ref, self._deriv, axis=0, mode="nearest")[inner]
        gx = ndimage.correlate1d(ref, self._deriv, axis=1, mode="nearest")[inner]
        self.gy, self.gx = gy * self.w, gx * self.w
        hess = np.array([[np.sum(self.gy * gy), np.sum(self.gy * gx)],
                         [np.sum(self.gx * gy), np.sum(self.gx * gx)]])
        eig = np.linalg.eigvalsh(hess)
        energy = np.sum(self.w * self.ref_in**2)
        # Trackable when the weakest gradient direction carries some of the texture energy.
        self.ok = bool(eig[0] > 1e-6 * max(energy, 1e-12) and eig[0] > 0)
        self.hess_inv = np.linalg.inv(hess) if self.ok else None
        ys, xs = inner
        self.grid = np.mgrid[ys, xs].astype(np.float64)
        self.window = np.outer(np.hanning(ref.shape[0]), np.hanning(ref.shape[1]))
        self.ref_fft = np.fft.fft2((ref - ref.mean()) * self.window)
        size = np.array(ref.shape)
        # Signed shift of every cell of the correlation surface.
        self.shifts = [np.where(np.arange(n) > n / 2, np.arange(n) - n, np.arange(n))
                       for n in size]

    def _integer_shift(self, frame: np.ndarray, prior: np.ndarray) -> np.ndarray:
        """Phase-correlation peak (integer px) within ``search_px`` of ``prior``."""
        cross = np.fft.fft2((frame - frame.mean()) * self.window) * np.conj(self.ref_fft)
        corr = np.fft.ifft2(cross / (np.abs(cross) + 1e-12)).real
        near_y = np.abs(self.shifts[0] - np.round(prior[0])) <= self.search_px
        near_x = np.abs(self.shifts[1] - np.round(prior[1])) <= self.search_px
        if not (near_y.any() and near_x.any()):  # the prior has left the crop: no estimate
            return np.round(prior)
        sub = corr[np.ix_(near_y, near_x)]
        iy, ix = np.unravel_index(np.argmax(sub), sub.shape)
        return np.array([self.shifts[0][near_y][iy], self.shifts[1][near_x][ix]], float)

    def _refine(self, coeffs: np.ndarray, start: np.ndarray) -> np.ndarray | None:
        """Lucas-Kanade from ``start``; None when it diverges (moves beyond ``search_px``)."""
        d = np.asarray(start, dtype=np.float64).copy()
        for _ in range(self.max_iter):
            warped = ndimage.map_coordinates(
                coeffs, [self.grid[0] + d[0], self.grid[1] + d[1]], order=3, mode="nearest",
                prefilter=False)
            warped -= np.sum(self.w * warped) / self.wsum
            std = math.sqrt(np.sum(self.w * warped**2) / self.wsum)
            err = warped * (self.ref_std / std if std > 0 else 1.0) - self.ref_in
            step = self.hess_inv @ np.array([np.sum(self.gy * err), np.sum(self.gx * err)])
            d -= step
            if not np.isfinite(d).all() or np.abs(d - start).max() > self.search_px:
                return None
            if np.abs(step).max() < self.tol:
                break
        return d

    def track(self, frame: np.ndarray, prior: np.ndarray) -> np.ndarray:
        """Displacement ``(dy, dx)`` of ``frame``'s content (padded crop) from the reference.

        ``prior`` is the previous frame's estimate. Refinement starts there, then (if it
        diverges) from the phase-correlation peak; if both diverge (strong deformation, blur)
        the previous estimate is kept.
        """
        if not self.ok:
            return np.zeros(2)
        coeffs = ndimage.spline_filter(frame, order=3, mode="nearest")
        d = self._refine(coeffs, prior)
        if d is None:
            coarse = self._integer_shift(frame, prior)
            d = self._refine(coeffs, coarse) if np.abs(coarse - prior).max() > 0.5 else None
        return prior.copy() if d is None else d


def source_info(frames: Any) -> tuple[int, tuple[int, int], int]:
    """``(n_frames, (H, W), frame_ndim)`` of an array or video source; refuse bad shapes."""
    shape = tuple(int(s) for s in frames.shape)
    if not (len(shape) == 3 or (len(shape) == 4 and shape[3] in (1, 3, 4))):
        raise VMMError(
            f"frames must have shape (T, H, W) or (T, H, W, C) with C in 1, 3, 4; got {shape}"
        )
    dtype = np.dtype(getattr(frames, "dtype", np.float32))
    if dtype.kind not in "uif":
        raise VMMError(f"frames have dtype {dtype}; expected integers or floats")
    n = int(getattr(frames, "n_frames", shape[0]) or shape[0])
    return n, (shape[1], shape[2]), len(shape) - 1


def iter_crop_chunks(frames: Any, boxes: list[tuple[int, int, int, int]],
                      chunk: int) -> Generator[tuple[int, list[np.ndarray]], None, None]:
    """Yield ``(t0, [crop per box])`` per chunk of frames, reading as little as possible.

    Video sources (objects with ``iter_chunks``) decode whole frames, so each chunk is cropped
    as soon as it is read. Arrays are sliced to each box directly (lazy for memory maps and
    dask, which computes all boxes of a chunk in one pass).
    """
    if hasattr(frames, "iter_chunks") and not isinstance(frames, np.ndarray):
        t0 = 0
        for block in frames.iter_chunks(chunk):
            block = np.asarray(block)
            yield t0, [block[:, r0:r1, c0:c1] for r0, r1, c0, c1 in boxes]
            t0 += len(block)
        return
    n = int(frames.shape[0])
    is_dask = hasattr(frames, "dask") and hasattr(frames, "compute")
    for t0 in range(0, n, chunk):
        t1 = min(n, t0 + chunk)
        parts = [frames[t0:t1, r0:r1, c0:c1] for r0, r1, c0, c1 in boxes]
        if is_dask:
            import dask

            parts = list(dask.compute(*parts))
        yield t0, [np.asarray(p) for p in parts]


def read_frame_crop(frames: Any, t: int, box: tuple[int, int, int, int]) -> np.ndarray:
    r0, r1, c0, c1 = box
    if hasattr(frames, "iter_chunks") and not isinstance(frames, np.ndarray):
        return np.asarray(frames[t])[r0:r1, c0:c1]
    return np.asarray(frames[t, r0:r1, c0:c1])
