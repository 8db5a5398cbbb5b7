"""Drawing a deflection shape over a frame: the frames of the ``--video`` animation.

The grid is drawn as a mesh (lines between neighbouring cells) whose nodes move by the shape's
displacement at successive phases of one cycle, exaggerated so that the largest excursion is
a visible fraction of the cell spacing; the mesh at rest is drawn faintly beneath it.
Drawing uses Pillow (installed with matplotlib).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import numpy as np

from ..errors import VMMError
from .ods import DeflectionShape

#: The largest drawn excursion, as a fraction of the smaller cell spacing.
EXCURSION_OF_SPACING = 0.45


def auto_exaggeration(shape: DeflectionShape, spacing_px: float) -> float:
    """Factor that makes the largest orbit ``EXCURSION_OF_SPACING`` of the cell spacing."""
    amp = np.nanmax(np.where(shape.ok, shape.amplitude, np.nan)) if shape.ok.any() else 0.0
    if not (amp > 0 and math.isfinite(amp)):
        return 1.0
    return float(EXCURSION_OF_SPACING * spacing_px / amp)


def _background(frame: np.ndarray) -> np.ndarray:
    """A frame as dimmed uint8 RGB (H, W, 3)."""
    f = np.asarray(frame)
    if f.ndim == 3 and f.shape[-1] == 1:
        f = f[..., 0]
    if f.dtype != np.uint8:
        lo, hi = np.percentile(f, [0.5, 99.5])
        f = np.clip((f.astype(np.float64) - lo) / max(hi - lo, 1e-12) * 255, 0, 255)
    f = f.astype(np.float64)
    if f.ndim == 2:
        f = np.repeat(f[..., None], 3, axis=-1)
    return (40 + 0.6 * f[..., :3]).astype(np.uint8)


def render_shape_frames(frame: np.ndarray, shape: DeflectionShape, rows: int, cols: int,
                        n_steps: int = 30, exaggeration: float | None = None
                        ) -> Iterator[np.ndarray]:
    """uint8 RGB frames (H, W, 3) of the shape animated over one cycle.

    Parameters
    ----------
    frame : ndarray (H, W) or (H, W, C)
        The background (the reference frame).
    shape : DeflectionShape
    rows, cols : int
        The grid, to connect neighbouring cells.
    n_steps : int
        Frames per cycle.
    exaggeration : float, optional
        Drawn displacement = ``exaggeration`` x true displacement (default
        :func:`auto_exaggeration`).
    """
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        raise VMMError("drawing the ODS video needs Pillow (pip install pillow)") from None
    pos = shape.positions
    spacing = min(np.ptp(pos[:, 0]) / max(rows - 1, 1) if rows > 1 else np.inf,
                  np.ptp(pos[:, 1]) / max(cols - 1, 1) if cols > 1 else np.inf)
    spacing = spacing if math.isfinite(spacing) else 20.0
    k = auto_exaggeration(shape, spacing) if exaggeration is None else float(exaggeration)
    amp = np.where(shape.ok, shape.amplitude, 0.0)
    rel = amp / amp.max() if amp.max() > 0 else amp
    base = Image.fromarray(_background(frame))
    edges = [(i, i + 1) for i in range(rows * cols) if (i % cols) < cols - 1]
    edges += [(i, i + cols) for i in range(rows * cols - cols)]
    edges = [(a, b) for a, b in edges if shape.ok[a] and shape.ok[b]]
    cal = shape.calibration
    label = (f"{shape.frequency_hz:.4g} Hz   x{k:.3g}   max {amp.max() * cal.scale:.3g} "
             f"{cal.unit}")
    for step in range(n_steps):
        img = base.copy()
        draw = ImageDraw.Draw(img)
        for a, b in edges:  # the mesh at rest
            draw.line([tuple(pos[a, ::-1]), tuple(pos[b, ::-1])], fill=(90, 90, 90), width=1)
        p = pos + k * shape.displacement(2 * np.pi * step / n_steps)
        for a, b in edges:
            draw.line([tuple(p[a, ::-1]), tuple(p[b, ::-1])], fill=(80, 220, 255), width=2)
        for i in np.flatnonzero(shape.ok):
            r = 2 + 2 * rel[i]
            y, x = p[i]
            color = (255, int(230 - 180 * rel[i]), int(60 - 50 * rel[i]))
            draw.ellipse([x - r, y - r, x + r, y + r], fill=color)
        draw.text((6, 4), label, fill=(255, 255, 255))
        yield np.asarray(img)


def write_shape_video(path: str | os.PathLike, frame: np.ndarray, shape: DeflectionShape,
                      rows: int, cols: int, *, n_steps: int = 30, cycles: int = 4,
                      fps: float = 20.0, exaggeration: float | None = None,
                      protect: tuple = ()) -> None:
    """Write the animation (one cycle of ``n_steps`` frames, repeated ``cycles`` times)."""
    from ..io import write_video

    one = list(render_shape_frames(frame, shape, rows, cols, n_steps, exaggeration))
    write_video(path, (f for _ in range(max(1, cycles)) for f in one), fps, protect=protect)
