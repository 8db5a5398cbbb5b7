"""Side-by-side comparison figure: input and output frames plus space-time slices.

Built with NumPy and written as PNG with Pillow, so it needs no plotting library; Pillow also
draws the labels (input / output, the slice row, the time axis). The
slices are collected while streaming (one row per frame), so memory stays O(T x W).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def to_rgb8(frame: np.ndarray) -> np.ndarray:
    """(H, W[, C]) frame of any supported dtype to (H, W, 3) uint8 (float taken as [0, 1])."""
    from .frames import to_float

    f = to_float(frame[None])[0]
    if f.ndim == 2:
        f = f[..., None]
    if f.shape[-1] == 1:
        f = np.repeat(f, 3, axis=-1)
    return np.clip(np.rint(f * 255), 0, 255).astype(np.uint8)


class SliceRecorder:
    """Collects the input and output rows ``row`` of every frame and a pair of frames."""

    def __init__(self, row: int | None = None, frame_index: int | None = None) -> None:
        self.row = row
        self.frame_index = frame_index
        self.rows_in: list[np.ndarray] = []
        self.rows_out: list[np.ndarray] = []
        self.frames: tuple[np.ndarray, np.ndarray] | None = None
        self._seen = 0

    def add(self, chunk_in: np.ndarray, chunk_out: np.ndarray) -> None:
        """Record a chunk (N, H, W[, C]) of input and the matching output."""
        if self.row is None:
            self.row = chunk_in.shape[1] // 2
        for a, b in zip(chunk_in, chunk_out, strict=True):
            self.rows_in.append(to_rgb8(a)[self.row])
            self.rows_out.append(to_rgb8(b)[self.row])
            wanted = self.frame_index is None or self._seen >= self.frame_index
            if self.frames is None and wanted:
                self.frames = (to_rgb8(a), to_rgb8(b))
            self._seen += 1

    def image(self, labels: bool = True) -> np.ndarray:
        """Top: input | output frame (row marked red); bottom: x-t slices, time downwards.

        With ``labels`` (and Pillow installed) a caption strip names each panel.
        """
        a, b = self.frames
        a, b = a.copy(), b.copy()
        for img in (a, b):
            img[self.row, :, :] = (255, 0, 0)
        gap = 4
        top = np.concatenate([a, np.full((a.shape[0], gap, 3), 255, np.uint8), b], axis=1)
        sin, sout = np.stack(self.rows_in), np.stack(self.rows_out)
        bottom = np.concatenate([sin, np.full((sin.shape[0], gap, 3), 255, np.uint8), sout],
                                axis=1)
        scale = max(1, int(np.ceil(480 / top.shape[1])))
        top, bottom = (np.repeat(np.repeat(p, scale, axis=0), scale, axis=1)
                       for p in (top, bottom))
        if labels:
            half = (a.shape[1] + gap) * scale
            n = len(self.rows_in)
            top = _caption(top, ["input", "output"], half)
            bottom = _caption(bottom, [f"input, row {self.row}: x across, time down "
                                       f"({n} frames)", f"output, row {self.row}"], half)
        return np.concatenate([top, np.full((gap, top.shape[1], 3), 255, np.uint8), bottom])

    def save(self, path: str | Path) -> None:
        """Write :meth:`image` as PNG atomically."""
        from ..io.atomic import atomic_output

        with atomic_output(path) as tmp:
            write_png(tmp, self.image())


def _caption(panel: np.ndarray, texts: list[str], step: int) -> np.ndarray:
    """``panel`` with a white strip above it holding ``texts[i]`` at x = i * ``step``.

    Returns ``panel`` unchanged when Pillow is not installed.
    """
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        return panel
    strip = Image.new("RGB", (panel.shape[1], 14), "white")
    draw = ImageDraw.Draw(strip)
    font = ImageFont.load_default()
    for i, text in enumerate(texts):
        draw.text((i * step + 2, 1), text, fill="black", font=font)
    return np.concatenate([np.asarray(strip, np.uint8), panel])


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 array as an 8-bit RGB PNG (Pillow)."""
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(path, format="PNG")
