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
from typing import Any

import numpy as np

from ..errors import VMMError
from .ods import DeflectionShape, GridAnalysis

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
    from ...io.video import write_video

    one = list(render_shape_frames(frame, shape, rows, cols, n_steps, exaggeration))
    write_video(path, (f for _ in range(max(1, cycles)) for f in one), fps, protect=protect)


def plot_shape(grid: GridAnalysis, shape: DeflectionShape, frame: np.ndarray,
               path: str | os.PathLike | None = None, dpi: int = 120) -> Any:
    """Figure: the averaged spectrum with its noise floor, and the shape over the frame.

    The right panel draws the mesh at rest (grey) and at the phase of largest excursion
    (exaggerated as in the video), coloured by each cell's amplitude.
    """
    from matplotlib.figure import Figure

    from ...io.atomic import atomic_output

    cal = grid.calibration
    s, u = cal.scale, cal.unit
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_s, ax_f = fig.subplots(1, 2, width_ratios=[2, 3])
    ax_s.semilogy(grid.freqs, grid.spectrum * s, lw=1, label="mean over cells")
    ax_s.semilogy(grid.freqs, grid.noise_line * s, lw=0.8, ls=":", color="0.3",
                  label="noise floor")
    ax_s.axvline(shape.frequency_hz, color="C3", lw=0.8, label=f"{shape.frequency_hz:.4g} Hz")
    ax_s.set_xlabel("frequency (Hz)")
    ax_s.set_ylabel(f"amplitude ({u})")
    ax_s.set_xlim(0, grid.fps / 2)
    ax_s.legend(fontsize=8)
    rows, cols = grid.layout.rows, grid.layout.cols
    pos = shape.positions
    spacing = min(grid.layout.cell)
    k = auto_exaggeration(shape, spacing)
    # Phase of largest total excursion.
    phases = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    norms = [np.nansum(shape.displacement(ph) ** 2) for ph in phases]
    p = pos + k * shape.displacement(phases[int(np.argmax(norms))])
    ax_f.imshow(_background(frame), interpolation="nearest")
    grid_p = p.reshape(rows, cols, 2)
    grid_0 = pos.reshape(rows, cols, 2)
    for g, style in ((grid_0, {"color": "0.6", "lw": 0.6}), (grid_p, {"color": "c", "lw": 1.2})):
        for r in range(rows):
            ax_f.plot(g[r, :, 1], g[r, :, 0], **style)
        for c in range(cols):
            ax_f.plot(g[:, c, 1], g[:, c, 0], **style)
    amp = np.where(shape.ok, shape.amplitude * s, np.nan)
    sc = ax_f.scatter(p[:, 1], p[:, 0], c=amp, s=14, cmap="plasma", zorder=3)
    fig.colorbar(sc, ax=ax_f, label=f"amplitude ({u})", shrink=0.85)
    ax_f.set_title(f"deflection shape at {shape.frequency_hz:.4g} Hz, displacement x{k:.3g}",
                   fontsize=9, loc="left")
    ax_f.set_axis_off()
    if path is not None:
        fmt = os.path.splitext(os.fspath(path))[1].lstrip(".").lower() or "png"
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format=fmt)
    return fig
