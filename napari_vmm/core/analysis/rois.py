"""ROIs: rectangles, ellipses and polygons; parsing, JSON files, napari Shapes and soft masks."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from ..errors import VMMError
from .files import write_text_atomic

ROI_KINDS = ("rectangle", "ellipse", "polygon")


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
    write_text_atomic(path, text)


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
