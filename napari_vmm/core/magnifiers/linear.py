"""Linear Eulerian magnification on a Laplacian pyramid (Wu et al. 2012)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..registry import Option
from .base import Magnifier
from .pyramids import KERNEL_RADIUS, max_levels, weighted_collapse


def level_alphas(alpha: float, levels: int, lambda_c: float) -> list[float]:
    """Per-level magnification from the paper's bound (1 + alpha) * delta < lambda / 8.

    Level ``l`` (finest is 0; the last is the low-pass residual) holds spatial wavelengths
    around ``lambda_l = 4 * 2**l`` px. With ``delta = lambda_c / (8 (1 + alpha))`` the bound
    gives ``alpha_l = lambda_l (1 + alpha) / lambda_c - 1``, clipped to ``[0, alpha]``:
    wavelengths at or above ``lambda_c`` get the full alpha, shorter ones a linearly reduced
    one (Wu et al. 2012, Sec. 3.2).
    """
    out = []
    for level in range(levels):
        wavelength = 4.0 * 2**level
        out.append(float(min(alpha, max(0.0, wavelength * (1 + alpha) / lambda_c - 1))))
    return out


class LinearMagnifier(Magnifier):
    """Laplacian-pyramid linear magnification (Wu et al. 2012).

    The output is ``x + collapse(alpha_l * filtered_l)`` over the Laplacian pyramid of every
    channel (YIQ for colour input), with the chroma channels' alpha scaled by
    ``chroma_attenuation``. The pyramid and the temporal filter are both linear, so they
    commute: the filter runs once on the frame itself (the motion signal is the frame) and the
    alpha-weighted pyramid is applied to the filtered frame. Levels past the first one at the
    full alpha collapse to ``alpha * G_k`` exactly, so the pyramid stops there.
    """

    name = "linear"
    color_space = "yiq"
    luma_only = False
    options: ClassVar[dict[str, Option]] = {
        "levels": Option(0, int, "pyramid levels (0: as many as the frame allows)", min=0, max=12),
        "lambda_c": Option(16.0, float, "spatial cut-off wavelength in px (Wu et al. lambda_c)",
                           min=1.0),
        "chroma_attenuation": Option(0.1, float, "alpha multiplier for the chroma channels",
                                     min=0.0, max=1.0),
    }

    def level_weights(self, levels: int) -> list[float]:
        """Per-level alphas of a ``levels``-deep pyramid, cut after the first full-alpha level."""
        alphas = level_alphas(self.alpha, levels, self.opts["lambda_c"])
        depth = next(i for i, a in enumerate(alphas) if a == alphas[-1]) + 1
        return alphas[:depth]

    def _depth(self, height: int, width: int) -> int:
        auto = max_levels(height, width)
        levels = min(self.opts["levels"], auto) if self.opts["levels"] else auto
        return len(self.level_weights(levels))

    @property
    def spatial_support(self) -> int:
        return 2 ** len(self.level_weights(self.opts["levels"] or 6)) * KERNEL_RADIUS * 2

    def frame_options(self, height: int, width: int) -> dict[str, Any]:
        return {"levels": self._depth(height, width)}

    def encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], Any]:
        return [x], None

    def decode(self, x: torch.Tensor, filtered: list[torch.Tensor], ctx: Any) -> torch.Tensor:
        weights = self.level_weights(self._depth(x.shape[-2], x.shape[-1]))
        motion = weighted_collapse(filtered[0], weights)
        if x.shape[1] > 1:
            gain = torch.full((x.shape[1],), self.opts["chroma_attenuation"], dtype=x.dtype,
                              device=x.device)
            gain[0] = 1.0
            motion.mul_(gain.view(1, -1, 1, 1))
        return motion.add_(x)
