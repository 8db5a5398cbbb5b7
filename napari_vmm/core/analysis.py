"""ROI motion analysis: displacement and intensity traces, spectra, peaks and a suggested band.

What it answers: *what* moves in a region and *at what frequency*, before anything is magnified.

Coordinates
-----------
Frames are indexed ``(t, row, col)``. A ROI is a rectangle, an ellipse or a polygon given by its
vertices in ``(row, col)`` order, the napari Shapes convention; pixel ``(r, c)`` covers
``[r - 0.5, r + 0.5] x [c - 0.5, c + 0.5]`` and belongs to a ROI when its centre lies inside.
On the command line a rectangle is ``x,y,w,h`` with ``x, y`` the top-left column and row, so it
covers columns ``x .. x+w-1`` and rows ``y .. y+h-1`` (see :func:`parse_roi`).

Displacement
------------
For each frame, the translation of the ROI's content relative to a reference frame is found by
phase correlation (integer pixels) and refined to sub-pixel precision by inverse-compositional
Lucas-Kanade on the ROI's pixels (cubic-spline warping). A positive ``dx`` means the content moved
right (towards larger columns), a positive ``dy`` means it moved down (towards larger rows).

Spectra and peaks
-----------------
Spectra are Welch amplitude spectra: a sinusoid of amplitude ``A`` shows a peak of height about
``A``. Peaks are located on the Welch spectrum, their frequency is refined on a zero-padded
periodogram of the whole trace, and their amplitudes come from a joint least-squares fit of
sinusoids at the refined frequencies (so they do not suffer from the window's scalloping loss).
The amplitude of a 2-D displacement peak is the semi-major axis of its orbit, the largest
displacement it reaches; for motion along a line this is ``sqrt(Ax**2 + Ay**2)``.

Memory
------
Only the bounding box of each ROI (plus a margin of ``max_shift`` pixels) is read, one chunk of
frames at a time, from numpy arrays (including memory maps), dask arrays and
``napari_vmm.core.io`` video sources. What is kept is proportional to ROI area times the
number of frames, never to the frame size.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage, signal

from .errors import Cancelled, VMMError
from .frames import RGB_TO_YIQ

ROI_KINDS = ("rectangle", "ellipse", "polygon")

#: Luma weights (the Y row of RGB->YIQ), used to turn colour crops into intensity.
_LUMA = RGB_TO_YIQ[0].astype(np.float64)


# --------------------------------------------------------------------------------------------
# ROIs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ROI:
    """A region of interest in frame coordinates.

    Parameters
    ----------
    kind : {"rectangle", "ellipse", "polygon"}
        Rectangles and ellipses are given by the 4 corners of their (possibly rotated) bounding
        box, as napari stores them; polygons by 3 or more vertices.
    vertices : ndarray, shape (N, 2)
        ``(row, col)`` vertices in pixel coordinates.
    name : str
        A label used in tables and plots.
    """

    kind: str
    vertices: np.ndarray
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ROI_KINDS:
            raise VMMError(f"ROI type must be one of {list(ROI_KINDS)}, got {self.kind!r}")
        v = np.asarray(self.vertices, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != 2 or not np.isfinite(v).all():
            raise VMMError(f"ROI vertices must be finite (row, col) pairs, got shape {v.shape}")
        need = 3 if self.kind == "polygon" else 4
        if len(v) < need or (self.kind != "polygon" and len(v) != 4):
            raise VMMError(
                f"a {self.kind} ROI needs {'at least 3' if need == 3 else 'exactly 4'} vertices,"
                f" got {len(v)}"
            )
        object.__setattr__(self, "vertices", v)

    @classmethod
    def rectangle(cls, x: float, y: float, w: float, h: float, name: str = "") -> ROI:
        """Axis-aligned rectangle covering columns ``x..x+w-1`` and rows ``y..y+h-1``."""
        if not (w > 0 and h > 0):
            raise VMMError(f"ROI width and height must be positive, got w={w}, h={h}")
        r0, c0, r1, c1 = y - 0.5, x - 0.5, y + h - 0.5, x + w - 0.5
        return cls("rectangle", np.array([[r0, c0], [r0, c1], [r1, c1], [r1, c0]]), name)

    @classmethod
    def ellipse(cls, cx: float, cy: float, rx: float, ry: float, name: str = "") -> ROI:
        """Axis-aligned ellipse centred on column ``cx``, row ``cy`` with radii ``rx``, ``ry``."""
        if not (rx > 0 and ry > 0):
            raise VMMError(f"ellipse radii must be positive, got rx={rx}, ry={ry}")
        v = np.array([[cy - ry, cx - rx], [cy - ry, cx + rx],
                      [cy + ry, cx + rx], [cy + ry, cx - rx]])
        return cls("ellipse", v, name)

    def bounds(self) -> tuple[float, float, float, float]:
        """``(row_min, row_max, col_min, col_max)`` of the vertices (ellipses: of their box)."""
        v = self.vertices
        return v[:, 0].min(), v[:, 0].max(), v[:, 1].min(), v[:, 1].max()

    def bbox(self, frame_shape: tuple[int, int]) -> tuple[int, int, int, int]:
        """Pixel bounding box ``(r0, r1, c0, c1)`` (end exclusive), clipped to the frame.

        Raises
        ------
        VMMError
            If the ROI lies entirely outside the frame.
        """
        h, w = frame_shape
        rmin, rmax, cmin, cmax = self.bounds()
        r0, r1 = max(0, math.ceil(rmin)), min(h, math.floor(rmax) + 1)
        c0, c1 = max(0, math.ceil(cmin)), min(w, math.floor(cmax) + 1)
        if r1 <= r0 or c1 <= c0:
            raise VMMError(
                f"ROI {self.label()} lies outside the {h}x{w} frame"
                f" (rows {rmin + 0.5:g}..{rmax - 0.5:g}, columns {cmin + 0.5:g}..{cmax - 0.5:g})"
            )
        return r0, r1, c0, c1

    def mask(self, frame_shape: tuple[int, int],
             box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """Boolean mask of the pixels whose centres lie inside the ROI.

        Parameters
        ----------
        frame_shape : (H, W)
        box : (r0, r1, c0, c1), optional
            Return only this window of the full-frame mask (e.g. the ROI's :meth:`bbox`).
        """
        r0, r1, c0, c1 = box if box is not None else (0, frame_shape[0], 0, frame_shape[1])
        rr, cc = np.mgrid[r0:r1, c0:c1].astype(np.float64)
        v = self.vertices
        if self.kind == "ellipse":
            centre = v.mean(axis=0)
            # Half-axes along two adjacent edges of the (possibly rotated) bounding box.
            basis = np.stack([(v[1] - v[0]) / 2, (v[3] - v[0]) / 2], axis=1)  # columns u, w
            if abs(np.linalg.det(basis)) < 1e-12:
                return np.zeros(rr.shape, dtype=bool)
            pts = np.stack([rr - centre[0], cc - centre[1]], axis=-1) @ np.linalg.inv(basis).T
            return (pts**2).sum(axis=-1) <= 1.0
        return _points_in_polygon(rr, cc, v)

    def label(self) -> str:
        """The ROI's name, or a short description of where it is."""
        if self.name:
            return self.name
        rmin, rmax, cmin, cmax = self.bounds()
        return f"{self.kind} at x={cmin + 0.5:g}, y={rmin + 0.5:g}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description, readable by :func:`as_rois` (napari vertex order)."""
        d: dict[str, Any] = {"type": self.kind, "vertices": self.vertices.tolist()}
        if self.name:
            d["name"] = self.name
        return d


def _points_in_polygon(rr: np.ndarray, cc: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Even-odd rule for points ``(rr, cc)`` against polygon ``v`` (N, 2), one edge at a time."""
    inside = np.zeros(rr.shape, dtype=bool)
    for (ra, ca), (rb, cb) in zip(v, np.roll(v, -1, axis=0), strict=True):
        if ra == rb:
            continue
        crosses = (ra > rr) != (rb > rr)
        c_at = ca + (rr - ra) * (cb - ca) / (rb - ra)
        inside ^= crosses & (cc < c_at)
    return inside


def parse_roi(spec: str, name: str = "") -> ROI:
    """Parse a command-line rectangle ``"x,y,w,h"`` (top-left column, row, width, height)."""
    parts = [p.strip() for p in str(spec).split(",")]
    try:
        x, y, w, h = (float(p) for p in parts)
    except ValueError:
        raise VMMError(
            f"ROI must be 'x,y,w,h' (top-left column, row, width, height in px), got {spec!r}"
        ) from None
    return ROI.rectangle(x, y, w, h, name=name)


def rois_from_shapes(data: Sequence[np.ndarray], shape_types: Sequence[str] | str,
                     names: Sequence[str] | None = None) -> list[ROI]:
    """ROIs from napari Shapes data.

    Parameters
    ----------
    data : list of ndarray (N, D)
        ``shapes.data``. Only the last two coordinates ``v[:, -2:]`` (row, col) are used, so a
        shape drawn on any frame of a (T, Y, X) viewer applies to all frames.
    shape_types : list of str or str
        ``shapes.shape_type``. Lines and paths have no area: they raise a :class:`VMMError`;
        filter them out first (see :func:`area_shape_indices`).
    names : list of str, optional
    """
    types = [shape_types] * len(data) if isinstance(shape_types, str) else list(shape_types)
    if len(types) != len(data):
        raise VMMError(f"got {len(data)} shapes but {len(types)} shape types")
    rois = []
    for i, (v, kind) in enumerate(zip(data, types, strict=True)):
        if kind not in ROI_KINDS:
            raise VMMError(
                f"shape {i + 1} is a {kind}; ROIs must be rectangles, ellipses or polygons"
            )
        name = names[i] if names is not None else f"ROI {i + 1}"
        rois.append(ROI(kind, np.asarray(v, dtype=np.float64)[:, -2:], name))
    return rois


def area_shape_indices(shape_types: Sequence[str]) -> list[int]:
    """Indices of the shapes that enclose an area (rectangles, ellipses, polygons)."""
    return [i for i, k in enumerate(shape_types) if k in ROI_KINDS]


def _roi_from_dict(d: dict[str, Any], index: int) -> ROI:
    name = str(d.get("name", f"ROI {index + 1}"))
    if "rect" in d:
        rect = d["rect"]
        if not (isinstance(rect, (list, tuple)) and len(rect) == 4):
            raise VMMError(f"ROI {index + 1}: 'rect' must be [x, y, w, h], got {rect!r}")
        return parse_roi(",".join(str(v) for v in rect), name=name)
    if "type" in d and "vertices" in d:
        try:
            v = np.asarray(d["vertices"], dtype=np.float64)
        except (TypeError, ValueError):
            raise VMMError(f"ROI {index + 1}: 'vertices' must be a list of [row, col]") from None
        if v.ndim != 2 or v.shape[1] < 2:
            raise VMMError(f"ROI {index + 1}: 'vertices' must be a list of [row, col]")
        return ROI(str(d["type"]), v[:, -2:], name)
    raise VMMError(
        f"ROI {index + 1} must have 'rect': [x, y, w, h] or 'type' and 'vertices', got {d!r}"
    )


def load_rois(path: str | os.PathLike) -> list[ROI]:
    """Read ROIs from a JSON file.

    The file holds ``{"rois": [...]}`` or a bare list; each entry is either
    ``{"rect": [x, y, w, h]}`` (command-line convention) or
    ``{"type": "rectangle"|"ellipse"|"polygon", "vertices": [[row, col], ...]}`` (napari
    convention, what :func:`save_rois` writes), with an optional ``"name"``.
    """
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except FileNotFoundError:
        raise VMMError(f"ROI file not found: {path}") from None
    except (OSError, json.JSONDecodeError) as err:
        raise VMMError(f"cannot read ROI file {path}: {err}") from None
    entries = obj.get("rois") if isinstance(obj, dict) else obj
    if not isinstance(entries, list) or not entries:
        raise VMMError(f"ROI file {path} must contain a non-empty list of ROIs under 'rois'")
    return [_roi_from_dict(e if isinstance(e, dict) else {"bad": e}, i)
            for i, e in enumerate(entries)]


def save_rois(path: str | os.PathLike, rois: Sequence[ROI]) -> None:
    """Write ROIs to a JSON file (atomically) that :func:`load_rois` reads back."""
    text = json.dumps({"rois": [r.to_dict() for r in rois]}, indent=1)
    _atomic_write_text(path, text)


def as_rois(rois: Any) -> list[ROI]:
    """Normalise ROIs given in any supported form to a list of :class:`ROI`.

    Accepted: a :class:`ROI`; an ``"x,y,w,h"`` string; a path to a ``.json`` file (see
    :func:`load_rois`); a dict as in the JSON file; an (N, 2) ``(row, col)`` array (a polygon);
    or a list of any of these.
    """
    if isinstance(rois, ROI):
        return [rois]
    if isinstance(rois, (str, os.PathLike)):
        s = os.fspath(rois)
        return load_rois(s) if s.lower().endswith(".json") else [parse_roi(s)]
    if isinstance(rois, dict):
        return [_roi_from_dict(rois, 0)]
    if isinstance(rois, np.ndarray) and rois.ndim == 2:
        return [ROI("polygon", rois[:, -2:], "ROI 1")]
    if isinstance(rois, Iterable):
        out: list[ROI] = []
        for i, item in enumerate(rois):
            if isinstance(item, ROI):
                out.append(item)
            elif isinstance(item, dict):
                out.append(_roi_from_dict(item, i))
            elif isinstance(item, str):
                out.append(parse_roi(item, name=f"ROI {i + 1}"))
            else:
                out.append(ROI("polygon", np.asarray(item, dtype=np.float64)[:, -2:],
                               f"ROI {i + 1}"))
        if not out:
            raise VMMError("no ROI given")
        return out
    raise VMMError(f"cannot interpret {type(rois).__name__} as ROIs")


def roi_mask(frame_shape: tuple[int, int], rois: Any, feather_px: float = 8.0) -> np.ndarray:
    """Soft mask of the union of ROIs, for ROI-restricted magnification.

    The engine blends ``output = input + mask * (magnified - input)``.

    Parameters
    ----------
    frame_shape : (H, W)
    rois : ROIs in any form :func:`as_rois` accepts (``ROI`` objects, ``"x,y,w,h"``, a JSON
        path, ...).
    feather_px : float
        Width of the smooth edge outside the ROIs: the mask is 1 on every ROI pixel and falls
        to 0 over ``feather_px`` pixels outside (smoothstep of the distance to the nearest ROI
        pixel). 0 gives a hard-edged mask.

    Returns
    -------
    ndarray, float32, shape (H, W), values in [0, 1]
    """
    h, w = (int(s) for s in frame_shape[:2])
    if feather_px < 0 or not math.isfinite(feather_px):
        raise VMMError(f"feather must be a finite number of px >= 0, got {feather_px}")
    inside = np.zeros((h, w), dtype=bool)
    for roi in as_rois(rois):
        box = roi.bbox((h, w))
        r0, r1, c0, c1 = box
        inside[r0:r1, c0:c1] |= roi.mask((h, w), box)
    if feather_px == 0 or not inside.any():
        return inside.astype(np.float32)
    dist = ndimage.distance_transform_edt(~inside)  # 0 inside, distance to ROI outside
    t = np.clip(1.0 - dist / feather_px, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass
class Peak:
    """One spectral peak of a trace.

    ``amplitude`` is in the trace's unit (px for displacement, raw intensity for intensity):
    the largest excursion of the fitted sinusoid (for displacement, combined over x and y).
    """

    hz: float
    amplitude: float
    amplitude_x: float = float("nan")
    amplitude_y: float = float("nan")

    def to_dict(self, scale: float | None = None, unit: str = "") -> dict[str, float]:
        d = {"hz": self.hz, "amplitude_px": self.amplitude}
        if not math.isnan(self.amplitude_x):
            d["amplitude_x_px"] = self.amplitude_x
            d["amplitude_y_px"] = self.amplitude_y
        if scale is not None:
            d[f"amplitude_{unit}"] = self.amplitude * scale
        return d


@dataclass
class RoiAnalysis:
    """Everything computed for one ROI. Displacements in px, frequencies in Hz."""

    roi: ROI
    fps: float
    dx: np.ndarray
    dy: np.ndarray
    intensity: np.ndarray
    freqs: np.ndarray
    spectrum: np.ndarray
    spectrum_x: np.ndarray
    spectrum_y: np.ndarray
    spectrum_intensity: np.ndarray
    peaks: list[Peak]
    intensity_peaks: list[Peak]
    band: tuple[float, float] | None
    intensity_band: tuple[float, float] | None
    pixel_size: float | None = None
    unit: str = "px"
    warnings: list[str] = field(default_factory=list)

    @property
    def times(self) -> np.ndarray:
        """Frame times in seconds."""
        return np.arange(len(self.dx)) / self.fps

    @property
    def dominant_hz(self) -> float:
        """Frequency of the strongest displacement peak (NaN if none)."""
        return self.peaks[0].hz if self.peaks else float("nan")

    @property
    def amplitude_px(self) -> float:
        """Displacement amplitude at the dominant frequency, combined over x and y."""
        return self.peaks[0].amplitude if self.peaks else float("nan")

    @property
    def scale(self) -> float:
        """Physical size of one pixel (1 when no pixel size was given)."""
        return self.pixel_size if self.pixel_size is not None else 1.0

    def to_dict(self) -> dict[str, Any]:
        """Summary without the traces (what ``vmm analyze --json`` prints per ROI)."""
        scale = self.pixel_size
        d: dict[str, Any] = {
            "name": self.roi.label(),
            "dominant_hz": _num(self.dominant_hz),
            "amplitude_px": _num(self.amplitude_px),
            "band": list(self.band) if self.band else None,
            "peaks": [p.to_dict(scale, self.unit) for p in self.peaks],
            "intensity_dominant_hz": _num(self.intensity_peaks[0].hz)
            if self.intensity_peaks else None,
            "intensity_band": list(self.intensity_band) if self.intensity_band else None,
            "rms_displacement_px": _num(float(np.sqrt(np.mean(
                (self.dx - self.dx.mean()) ** 2 + (self.dy - self.dy.mean()) ** 2)))),
        }
        if scale is not None:
            d["unit"] = self.unit
            d["pixel_size"] = scale
            d[f"amplitude_{self.unit}"] = _num(self.amplitude_px * scale)
        if self.warnings:
            d["warnings"] = list(self.warnings)
        return d


@dataclass
class MotionAnalysis:
    """Results for all ROIs of one clip."""

    rois: list[RoiAnalysis]
    fps: float
    n_frames: int
    pixel_size: float | None = None
    unit: str = "px"

    @property
    def times(self) -> np.ndarray:
        """Frame times in seconds."""
        return np.arange(self.n_frames) / self.fps

    def to_dict(self) -> dict[str, Any]:
        """``{"fps", "n_frames", "rois": [...]}``, ROIs in input order."""
        return {"fps": self.fps, "n_frames": self.n_frames,
                "rois": [r.to_dict() for r in self.rois]}


def _num(x: float) -> float | None:
    """JSON-safe float (NaN -> None)."""
    return None if x is None or not math.isfinite(x) else float(x)


# --------------------------------------------------------------------------------------------
# Displacement tracking
# --------------------------------------------------------------------------------------------


def _to_luma(crop: np.ndarray, ndim_frame: int) -> np.ndarray:
    """(N, h, w[, C]) crop -> (N, h, w) float64 intensity."""
    x = np.asarray(crop)
    if x.ndim == ndim_frame + 1 and ndim_frame == 3:  # (N, h, w, C)
        c = x.shape[-1]
        x = x[..., 0] if c == 1 else np.tensordot(x[..., :3].astype(np.float64), _LUMA, axes=1)
    return x.astype(np.float64, copy=False)


class _Tracker:
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


# --------------------------------------------------------------------------------------------
# Reading crops
# --------------------------------------------------------------------------------------------


def _source_info(frames: Any) -> tuple[int, tuple[int, int], int]:
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


def _iter_crop_chunks(frames: Any, boxes: list[tuple[int, int, int, int]],
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


def _read_frame_crop(frames: Any, t: int, box: tuple[int, int, int, int]) -> np.ndarray:
    r0, r1, c0, c1 = box
    if hasattr(frames, "iter_chunks") and not isinstance(frames, np.ndarray):
        return np.asarray(frames[t])[r0:r1, c0:c1]
    return np.asarray(frames[t, r0:r1, c0:c1])


# --------------------------------------------------------------------------------------------
# Spectra, peaks, band
# --------------------------------------------------------------------------------------------


def default_nperseg(n_frames: int) -> int:
    """Welch segment length: the whole trace up to 512 frames, then 512 (50 % overlap)."""
    return int(min(n_frames, 512))


def amplitude_spectrum(traces: np.ndarray, fps: float,
                       nperseg: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Welch amplitude spectra of one or more traces.

    Parameters
    ----------
    traces : ndarray, shape (T,) or (K, T)
    fps : float
    nperseg : int, optional
        Segment length (default :func:`default_nperseg`).

    Returns
    -------
    freqs : ndarray (F,)
        Hz.
    amplitude : ndarray (F,) or (K, F)
        ``sqrt(2 * power)``: a sinusoid of amplitude ``A`` on a bin reads ``A``; the traces'
        linear trend is removed per segment.
    """
    x = np.atleast_2d(np.asarray(traces, dtype=np.float64))
    n = x.shape[-1]
    seg = default_nperseg(n) if nperseg is None else int(min(nperseg, n))
    freqs, power = signal.welch(x, fs=fps, window="hann", nperseg=seg, noverlap=seg // 2,
                                detrend="linear", scaling="spectrum", axis=-1)
    amp = np.sqrt(2.0 * power)
    return freqs, (amp[0] if np.ndim(traces) == 1 else amp)


def _refine_frequency(x: np.ndarray, fps: float, f_guess: float, half_width: float) -> float:
    """Peak of the zero-padded, Hann-windowed periodogram of ``x`` (K, T) near ``f_guess``."""
    n = x.shape[-1]
    nfft = 1 << int(math.ceil(math.log2(16 * n)))
    t = np.arange(n)
    detr = x - np.polynomial.polynomial.polyval(t, np.polynomial.polynomial.polyfit(t, x.T, 1))
    power = (np.abs(np.fft.rfft(detr * np.hanning(n), nfft, axis=-1)) ** 2).sum(axis=0)
    f = np.fft.rfftfreq(nfft, 1.0 / fps)
    sel = np.flatnonzero(np.abs(f - f_guess) <= half_width)
    if sel.size == 0:
        return f_guess
    k = sel[np.argmax(power[sel])]
    if 0 < k < len(power) - 1:  # parabolic interpolation on log power
        a, b, c = np.log(power[k - 1:k + 2] + 1e-300)
        denom = a - 2 * b + c
        if denom < 0:
            return float(f[k] + 0.5 * (a - c) / denom * (f[1] - f[0]))
    return float(f[k])


def _fit_sinusoids(x: np.ndarray, fps: float, freqs_hz: Sequence[float]) -> np.ndarray:
    """Joint least-squares fit of offset, trend and sinusoids; complex phasors (P, K)."""
    n = x.shape[-1]
    t = np.arange(n) / fps
    cols = [np.ones(n), t - t.mean()]
    for f in freqs_hz:
        cols += [np.cos(2 * np.pi * f * t), np.sin(2 * np.pi * f * t)]
    design = np.stack(cols, axis=1)
    coef, *_ = np.linalg.lstsq(design, x.T, rcond=None)
    cos_c, sin_c = coef[2::2], coef[3::2]  # (P, K)
    return cos_c - 1j * sin_c  # x_k(t) = Re(P_k exp(i w t))


def _orbit_amplitude(phasors: np.ndarray) -> float:
    """Largest excursion of ``Re(P exp(i w t))`` over t for a phasor vector P (K,)."""
    m = np.stack([phasors.real, phasors.imag], axis=1)  # (K, 2)
    return float(np.linalg.svd(m, compute_uv=False)[0])


def suggest_band(freqs: np.ndarray, amplitude: np.ndarray, f0: float, fps: float,
                 n_frames: int, rel_width: float = 0.2) -> tuple[float, float]:
    """Pass band around a peak at ``f0``.

    Half-width = the largest of ``rel_width * f0``, the peak's half-power half-width on the
    amplitude spectrum, and one frequency bin of the whole clip (``fps / n_frames``, what an
    ideal filter can resolve). The band stays within ``(0, 0.99 * Nyquist)``.
    """
    nyq = fps / 2.0
    df_clip = fps / max(n_frames, 1)
    power = np.asarray(amplitude, dtype=np.float64) ** 2
    k = int(np.argmin(np.abs(freqs - f0)))
    half = power[k] / 2.0
    lo_k, hi_k = k, k
    while lo_k > 0 and power[lo_k - 1] > half:
        lo_k -= 1
    while hi_k < len(power) - 1 and power[hi_k + 1] > half:
        hi_k += 1
    hwhm = (freqs[hi_k] - freqs[lo_k]) / 2.0 + (freqs[1] - freqs[0] if len(freqs) > 1 else 0) / 2
    hw = max(rel_width * f0, hwhm, df_clip)
    lo = max(f0 - hw, f0 / 2.0, df_clip / 2.0)
    hi = min(f0 + hw, 0.99 * nyq)
    if hi <= f0:
        hi = (f0 + nyq) / 2.0
    if lo >= f0:
        lo = f0 / 2.0
    return float(lo), float(hi)


def harmonic_series(peaks: Sequence[Peak], bin_hz: float,
                    min_ratio: float = 0.5) -> tuple[float, float] | None:
    """Fundamental and highest strong harmonic when the dominant peak is part of a series.

    Periodic but non-sinusoidal motion (a heartbeat, a contraction) puts comparable energy
    at a fundamental ``f1`` and its multiples. Peaks count when their amplitude is at least
    ``min_ratio`` times the dominant one and their frequency is within
    ``max(bin_hz, 5 %)`` of an integer multiple of ``f1``.

    Returns
    -------
    (f1, f_top) or None
        None when the dominant peak stands alone (no strong sub-harmonic or harmonic).
    """
    if not peaks:
        return None
    top = peaks[0]
    strong = [p for p in peaks if p.amplitude >= min_ratio * top.amplitude]

    def multiple(f: float, f1: float) -> bool:
        k = round(f / f1)
        return k >= 1 and abs(f - k * f1) <= max(bin_hz, 0.05 * f)

    below = sorted(p.hz for p in strong if p.hz < top.hz - bin_hz and multiple(top.hz, p.hz))
    f1 = below[0] if below else top.hz
    series = [p.hz for p in strong if multiple(p.hz, f1)]
    if len(series) < 2:
        return None
    return f1, max(series)


def band_for_peaks(freqs: np.ndarray, amplitude: np.ndarray, peaks: Sequence[Peak], fps: float,
                   n_frames: int) -> tuple[float, float] | None:
    """Suggested band: around the dominant peak, or spanning its harmonic series.

    See :func:`suggest_band` (one peak) and :func:`harmonic_series`.
    """
    if not peaks:
        return None
    bin_hz = float(freqs[1] - freqs[0]) if len(freqs) > 1 else fps / max(n_frames, 1)
    series = harmonic_series(peaks, bin_hz)
    if series is None:
        return suggest_band(freqs, amplitude, peaks[0].hz, fps, n_frames)
    lo = suggest_band(freqs, amplitude, series[0], fps, n_frames)[0]
    hi = suggest_band(freqs, amplitude, series[1], fps, n_frames)[1]
    return lo, hi


def find_peaks(traces: np.ndarray, fps: float, n_peaks: int = 5,
               fmin: float | None = None, fmax: float | None = None,
               nperseg: int | None = None) -> tuple[np.ndarray, np.ndarray, list[Peak]]:
    """Spectral peaks of one trace or of a vector trace (e.g. dx and dy together).

    Parameters
    ----------
    traces : ndarray, shape (T,) or (K, T)
    fps : float
    n_peaks : int
        At most this many peaks, strongest first.
    fmin, fmax : float, optional
        Search range in Hz. Default: from 1.5 Welch bins (ignoring the residual trend) to
        Nyquist.
    nperseg : int, optional

    Returns
    -------
    freqs : ndarray (F,)
    combined : ndarray (F,)
        Root-sum-square of the components' amplitude spectra.
    peaks : list of Peak
        Strongest first. Amplitudes are the largest excursion of the fitted sinusoid (the
        orbit's semi-major axis for K = 2); ``amplitude_x``/``amplitude_y`` are filled for K = 2.
    """
    x = np.atleast_2d(np.asarray(traces, dtype=np.float64))
    n = x.shape[-1]
    freqs, amp = amplitude_spectrum(x, fps, nperseg)
    combined = np.sqrt((amp**2).sum(axis=0))
    if n < 8 or len(freqs) < 3 or not np.any(combined > 0):
        return freqs, combined, []
    df = freqs[1] - freqs[0]
    lo = 1.5 * df if fmin is None else float(fmin)
    hi = freqs[-1] if fmax is None else float(fmax)
    allowed = np.flatnonzero((freqs >= lo) & (freqs <= hi))
    if allowed.size == 0:
        return freqs, combined, []
    idx, _ = signal.find_peaks(np.concatenate([[0.0], combined, [0.0]]))
    idx = np.intersect1d(idx - 1, allowed)
    if idx.size == 0:  # no local maximum inside the range: take its largest value
        idx = np.array([allowed[np.argmax(combined[allowed])]])
    idx = idx[np.argsort(combined[idx])[::-1]]
    strongest = combined[idx[0]]
    idx = idx[combined[idx] >= 0.05 * strongest][:n_peaks]
    fine = [_refine_frequency(x, fps, freqs[k], df) for k in idx]
    phasors = _fit_sinusoids(x, fps, fine)
    peaks = []
    for f, p in zip(fine, phasors, strict=True):
        amp_xy = np.abs(p)
        peaks.append(Peak(
            hz=float(f), amplitude=_orbit_amplitude(p),
            amplitude_x=float(amp_xy[0]) if len(p) == 2 else float("nan"),
            amplitude_y=float(amp_xy[1]) if len(p) == 2 else float("nan")))
    peaks.sort(key=lambda pk: pk.amplitude, reverse=True)
    return freqs, combined, peaks


# --------------------------------------------------------------------------------------------
# The analysis
# --------------------------------------------------------------------------------------------


def iter_analyze_motion(
    frames: Any,
    rois: Any,
    fps: float | None = None,
    *,
    reference: int = 0,
    pixel_size: float | None = None,
    unit: str = "px",
    n_peaks: int = 5,
    fmin: float | None = None,
    fmax: float | None = None,
    nperseg: int | None = None,
    max_shift: int = 8,
    chunk_frames: int = 32,
) -> Generator[tuple[int, int], None, MotionAnalysis]:
    """Generator form of :func:`analyze_motion`: yields ``(frames_done, n_frames)`` per chunk.

    Its return value (``StopIteration.value``, or a napari ``GeneratorWorker``'s ``returned``
    signal) is the :class:`MotionAnalysis`. Closing the generator stops the work.
    """
    n, (h, w), frame_ndim = _source_info(frames)
    if fps is None:
        fps = getattr(frames, "fps", None)
    if fps is None or not (float(fps) > 0 and math.isfinite(float(fps))):
        raise VMMError(f"a positive frame rate is needed (fps), got {fps!r}")
    fps = float(fps)
    if pixel_size is not None and not (pixel_size > 0 and math.isfinite(pixel_size)):
        raise VMMError(f"pixel size must be a positive number, got {pixel_size!r}")
    if n < 8:
        raise VMMError(f"need at least 8 frames to analyse motion, got {n}")
    if not 0 <= reference < n:
        raise VMMError(f"reference frame {reference} is outside the clip (0..{n - 1})")
    roi_list = as_rois(rois)
    max_shift = int(max(1, max_shift))

    boxes, padded, trackers, masks = [], [], [], []
    for roi in roi_list:
        box = roi.bbox((h, w))
        r0, r1, c0, c1 = box
        pad = (max(0, r0 - max_shift), min(h, r1 + max_shift),
               max(0, c0 - max_shift), min(w, c1 + max_shift))
        inner = (slice(r0 - pad[0], r1 - pad[0]), slice(c0 - pad[2], c1 - pad[2]))
        mask = roi.mask((h, w), box)
        if not mask.any():
            raise VMMError(f"ROI {roi.label()} contains no pixel centre")
        ref = _to_luma(_read_frame_crop(frames, reference, pad)[None], frame_ndim)[0]
        boxes.append(box)
        padded.append((pad, inner))
        trackers.append(_Tracker(ref, inner, mask))
        masks.append(mask)

    disp = [np.zeros((n, 2)) for _ in roi_list]
    inten = [np.zeros(n) for _ in roi_list]
    done = 0
    for t0, crops in _iter_crop_chunks(frames, [p for p, _ in padded], chunk_frames):
        for i, crop in enumerate(crops):
            luma = _to_luma(crop, frame_ndim)
            inner = padded[i][1]
            for j, frame in enumerate(luma):
                t = t0 + j
                if t >= n:
                    break
                disp[i][t] = trackers[i].track(frame, disp[i][t - 1] if t else np.zeros(2))
                inten[i][t] = frame[inner][masks[i]].mean()
        done = min(n, t0 + len(crops[0]) if crops else n)
        yield done, n
    if done < n:
        raise VMMError(f"the source ended after {done} of {n} frames")

    results = []
    for roi, d, it, tr in zip(roi_list, disp, inten, trackers, strict=True):
        dy, dx = d[:, 0], d[:, 1]
        freqs, amp_xy = amplitude_spectrum(np.stack([dx, dy]), fps, nperseg)
        _, combined, peaks = find_peaks(np.stack([dx, dy]), fps, n_peaks, fmin, fmax, nperseg)
        _, spec_i, ipeaks = find_peaks(it, fps, n_peaks, fmin, fmax, nperseg)
        warnings = [] if tr.ok else [
            f"{roi.label()} has too little texture to track: displacement set to 0"]
        results.append(RoiAnalysis(
            roi=roi, fps=fps, dx=dx, dy=dy, intensity=it, freqs=freqs, spectrum=combined,
            spectrum_x=amp_xy[0], spectrum_y=amp_xy[1], spectrum_intensity=spec_i,
            peaks=peaks, intensity_peaks=ipeaks,
            band=band_for_peaks(freqs, combined, peaks, fps, n),
            intensity_band=band_for_peaks(freqs, spec_i, ipeaks, fps, n),
            pixel_size=pixel_size, unit=unit if pixel_size is not None else "px",
            warnings=warnings))
    return MotionAnalysis(results, fps, n, pixel_size, unit if pixel_size is not None else "px")


def analyze_motion(
    frames: Any,
    rois: Any,
    fps: float | None = None,
    *,
    progress: Callable[[int, int], Any] | None = None,
    **options: Any,
) -> MotionAnalysis:
    """Displacement, intensity, spectra, peaks and a suggested band for each ROI.

    Parameters
    ----------
    frames : array-like (T, H, W) or (T, H, W, C), or a video source
        numpy (uint8, uint16, float), a memory map, a dask array, or a
        ``napari_vmm.core.io`` source (``iter_chunks``, ``fps``). Colour is reduced to luma.
    rois : ROIs in any form :func:`as_rois` accepts.
    fps : float, optional
        Frame rate in Hz; taken from ``frames.fps`` when omitted.
    progress : callable(done, total), optional
        Called after each chunk; returning ``False`` stops with :class:`Cancelled`.
    **options
        ``reference`` (frame index, 0), ``pixel_size`` and ``unit`` (physical units),
        ``n_peaks`` (5), ``fmin``/``fmax`` (peak search range, Hz), ``nperseg`` (Welch segment),
        ``max_shift`` (px margin read around each ROI, 8), ``chunk_frames`` (32).

    Returns
    -------
    MotionAnalysis
    """
    gen = iter_analyze_motion(frames, rois, fps, **options)
    try:
        while True:
            done, total = next(gen)
            if progress is not None and progress(done, total) is False:
                gen.close()
                raise Cancelled("analysis cancelled")
    except StopIteration as stop:
        return stop.value


# --------------------------------------------------------------------------------------------
# Output: CSV and plots
# --------------------------------------------------------------------------------------------


def _atomic_write_text(path: str | os.PathLike, text: str) -> None:
    from .io import atomic_output

    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def _rows_to_csv(rows: list[list[Any]]) -> str:
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def traces_table(analysis: MotionAnalysis) -> list[list[Any]]:
    """Rows (header first): frame, time, then per ROI dx, dy (px, physical), intensity."""
    header: list[Any] = ["frame", "time_s"]
    cols: list[np.ndarray] = []
    for i, r in enumerate(analysis.rois, start=1):
        header += [f"roi{i}_dx_px", f"roi{i}_dy_px"]
        cols += [r.dx, r.dy]
        if r.pixel_size is not None:
            header += [f"roi{i}_dx_{r.unit}", f"roi{i}_dy_{r.unit}"]
            cols += [r.dx * r.pixel_size, r.dy * r.pixel_size]
        header.append(f"roi{i}_intensity")
        cols.append(r.intensity)
    rows: list[list[Any]] = [header]
    times = analysis.times
    for t in range(analysis.n_frames):
        rows.append([t, f"{times[t]:.6g}"] + [f"{c[t]:.6g}" for c in cols])
    return rows


def spectra_table(analysis: MotionAnalysis) -> list[list[Any]]:
    """Rows (header first): frequency, then displacement and intensity amplitude per ROI."""
    header: list[Any] = ["freq_hz"]
    cols: list[np.ndarray] = []
    for i, r in enumerate(analysis.rois, start=1):
        header += [f"roi{i}_disp_amp_px", f"roi{i}_dx_amp_px", f"roi{i}_dy_amp_px",
                   f"roi{i}_intensity_amp"]
        cols += [r.spectrum, r.spectrum_x, r.spectrum_y, r.spectrum_intensity]
    freqs = analysis.rois[0].freqs
    return [header] + [[f"{freqs[k]:.6g}"] + [f"{c[k]:.6g}" for c in cols]
                       for k in range(len(freqs))]


def write_traces_csv(path: str | os.PathLike, analysis: MotionAnalysis) -> None:
    """Write the traces, one row per frame (see :func:`traces_table`), atomically."""
    _atomic_write_text(path, _rows_to_csv(traces_table(analysis)))


def write_spectra_csv(path: str | os.PathLike, analysis: MotionAnalysis) -> None:
    """Write the amplitude spectra, one row per frequency (see :func:`spectra_table`)."""
    _atomic_write_text(path, _rows_to_csv(spectra_table(analysis)))


def format_report(analysis: MotionAnalysis) -> str:
    """Human-readable summary, one block per ROI."""
    lines = [f"{analysis.n_frames} frames at {analysis.fps:g} fps"
             f" ({analysis.n_frames / analysis.fps:.3g} s)"]
    for i, r in enumerate(analysis.rois, start=1):
        lines.append(f"ROI {i} ({r.roi.label()}):")
        for msg in r.warnings:
            lines.append(f"  warning: {msg}")
        if not r.peaks:
            lines.append("  no displacement peak found")
        for k, p in enumerate(r.peaks):
            phys = f" = {p.amplitude * r.pixel_size:.4g} {r.unit}" if r.pixel_size else ""
            tag = "dominant" if k == 0 else "peak"
            lines.append(f"  {tag:8s} {p.hz:8.4g} Hz  amplitude {p.amplitude:.4g} px{phys}"
                         f"  (x {p.amplitude_x:.3g}, y {p.amplitude_y:.3g})")
        if r.band:
            lines.append(f"  suggested band {r.band[0]:.3g}-{r.band[1]:.3g} Hz")
        if r.intensity_peaks:
            p = r.intensity_peaks[0]
            lines.append(f"  intensity  {p.hz:8.4g} Hz  amplitude {p.amplitude:.4g}"
                         f"  band {r.intensity_band[0]:.3g}-{r.intensity_band[1]:.3g} Hz")
    return "\n".join(lines)


def draw_roi(ax_wave: Any, ax_spec: Any, result: RoiAnalysis, color: Any = None,
             label: str | None = None, show_band: bool = True) -> None:
    """Draw one ROI's waveform (dx solid, dy dashed) and displacement spectrum on two axes.

    Shared by ``vmm analyze --plot`` and the napari dock widget. Values are in the result's
    unit (px unless a pixel size was given).
    """
    label = label or result.roi.label()
    s, u = result.scale, result.unit
    ax_wave.plot(result.times, (result.dx - result.dx.mean()) * s, color=color, lw=1,
                 label=f"{label} x")
    ax_wave.plot(result.times, (result.dy - result.dy.mean()) * s, color=color, lw=1, ls="--",
                 label=f"{label} y")
    ax_wave.set_xlabel("time (s)")
    ax_wave.set_ylabel(f"displacement ({u})")
    ax_spec.plot(result.freqs, result.spectrum * s, color=color, lw=1, label=label)
    for p in result.peaks[:3]:
        ax_spec.plot([p.hz], [p.amplitude * s], "v", color=color, ms=5)
    if show_band and result.band:
        ax_spec.axvspan(*result.band, color=color or "C0", alpha=0.12, lw=0)
    ax_spec.set_xlabel("frequency (Hz)")
    ax_spec.set_ylabel(f"amplitude ({u})")
    ax_spec.set_xlim(0, result.fps / 2)


def plot_analysis(analysis: MotionAnalysis, path: str | os.PathLike | None = None,
                  dpi: int = 120) -> Any:
    """One figure with a waveform and a spectrum per ROI (matplotlib, Agg backend).

    Parameters
    ----------
    analysis : MotionAnalysis
    path : path, optional
        Save the figure there (atomically; the format follows the extension).
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure  # no pyplot: works without a display

    n = len(analysis.rois)
    fig = Figure(figsize=(10, 2.6 * n + 0.4), layout="constrained")
    axes = fig.subplots(n, 2, squeeze=False, width_ratios=[3, 2])
    for i, r in enumerate(analysis.rois):
        color = f"C{i % 10}"
        draw_roi(axes[i, 0], axes[i, 1], r, color=color)
        title = f"ROI {i + 1}: {r.roi.label()}"
        if r.peaks:
            title += (f" - {r.dominant_hz:.3g} Hz, {r.amplitude_px * r.scale:.3g} {r.unit}")
        axes[i, 0].set_title(title, fontsize=9, loc="left")
        axes[i, 0].legend(fontsize=7, loc="upper right")
        if r.band:
            axes[i, 1].set_title(f"suggested band {r.band[0]:.3g}-{r.band[1]:.3g} Hz",
                                 fontsize=9, loc="left")
    if path is not None:
        from .io import atomic_output

        fmt = Path(path).suffix.lstrip(".").lower() or "png"
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format=fmt)
    return fig
