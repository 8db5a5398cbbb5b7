"""Achieved magnification: how far the content of a magnified clip really moves.

SSIM alone rewards a method that returns its input (Ha et al.): on a noisy clip, copying the
input is a safe answer. The evaluation therefore measures the motion each output actually
has, against the motion that was asked for:

    achieved magnification = (measured output amplitude) / (true input amplitude)

and reports it over the requested 1 + α.

The estimator knows the scene: it renders the clean scene with its motion scaled by ``c`` on a
grid of ``c`` values (the "family" of the ground truth: ``c = 1`` is the input's motion,
``c = 1 + α`` the requested output) and reads, for every output frame, the ``c`` whose render
is closest in a region around the moving object (sum of squared differences, parabolic
refinement between grid points). Edges count as well as texture, so objects with weak
texture are measured, and a blurred or distorted output still gets the position it looks
closest to. The amplitude is a least-squares sinusoid fit at the known motion frequency
(phase-agnostic, so a causal filter's lag does not count as a loss).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..core.magnifiers.fidelity import sinusoid_amplitude

#: a method whose achieved/requested ratio is below this fails the row, whatever its SSIM
FAIL_BELOW = 0.5


def motion_grid(amplitude_px: float, top: float, step_px: float = 0.1,
                max_points: int = 201) -> np.ndarray:
    """Grid of motion scales ``c`` in [−top, top] with steps of at most ``step_px`` pixels of
    motion (for a motion of ``amplitude_px`` at c = 1), at least 33 points, at most
    ``max_points``."""
    n = int(np.ceil(2 * top * amplitude_px / step_px)) + 1
    n = int(np.clip(n | 1, 33, max_points))
    return np.linspace(-top, top, n)


def swept_region(mask: np.ndarray, top: float, amplitude_px: float) -> np.ndarray:
    """Where a moving object can be: ``mask`` (H, W) grown by the largest motion of its
    family (``top`` × ``amplitude_px``) plus 3 px."""
    from scipy import ndimage

    reach = int(np.ceil(top * amplitude_px)) + 3
    return ndimage.binary_dilation(mask, iterations=min(reach, max(mask.shape)))


class MotionFamily:
    """Renders of a scene on a grid of motion scales, restricted to a region.

    ``render(c) -> (H, W[, C])`` frame with the scene's motion scaled by ``c``; ``region``:
    boolean (H, W) mask of the pixels compared (around the moving object).
    """

    def __init__(self, render: Callable[[float], np.ndarray], grid: np.ndarray,
                 region: np.ndarray) -> None:
        self.grid = np.asarray(grid, float)
        self.region = np.asarray(region, bool)
        self.renders = np.stack([np.asarray(render(float(c)))[self.region] for c in self.grid])

    def positions(self, frames: np.ndarray) -> np.ndarray:
        """The motion scale ``c`` (T,) each frame of ``frames`` (T, H, W[, C]) looks like."""
        out = np.empty(len(frames))
        g = self.grid
        for t, f in enumerate(frames):
            v = np.asarray(f, np.float32)[self.region]
            ssd = ((self.renders - v[None]) ** 2).reshape(len(g), -1).sum(axis=1)
            i = int(np.argmin(ssd))
            if 0 < i < len(g) - 1:  # parabola through the three grid points around the min
                a, b, c = ssd[i - 1], ssd[i], ssd[i + 1]
                den = a - 2 * b + c
                off = 0.5 * (a - c) / den if den > 0 else 0.0
                out[t] = g[i] + float(np.clip(off, -1, 1)) * (g[1] - g[0])
            else:
                out[t] = g[i]
        return out

    def achieved(self, frames: np.ndarray, fps: float, freq: float,
                 waveform_amplitude: float = 1.0) -> float:
        """Output motion over input motion: the amplitude of :meth:`positions` at ``freq``
        over ``waveform_amplitude`` (the amplitude of ``c`` in the input itself)."""
        return sinusoid_amplitude(self.positions(frames), fps, freq) / waveform_amplitude
