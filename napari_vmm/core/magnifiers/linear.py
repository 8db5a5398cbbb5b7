"""Linear Eulerian magnification on a Laplacian pyramid (Wu et al. 2012)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..registry import Option
from .base import Magnifier
from .pyramids import KERNEL_RADIUS, collapse, laplacian_pyramid, max_levels


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

    The motion signal is the Laplacian pyramid of every channel (YIQ for colour input); the
    output is ``x + collapse(alpha_l * filtered_l)``, with the chroma channels' alpha scaled by
    ``chroma_attenuation``.
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

    @property
    def spatial_support(self) -> int:
        return 2 ** (self.opts.get("levels") or 6) * KERNEL_RADIUS * 2

    def _levels(self, x: torch.Tensor) -> int:
        auto = max_levels(x.shape[-2], x.shape[-1])
        return min(self.opts["levels"], auto) if self.opts["levels"] else auto

    def frame_options(self, height: int, width: int) -> dict[str, Any]:
        auto = max_levels(height, width)
        return {"levels": min(self.opts["levels"], auto) if self.opts["levels"] else auto}

    def encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], Any]:
        return laplacian_pyramid(x, self._levels(x)), None

    def decode(self, x: torch.Tensor, filtered: list[torch.Tensor], ctx: Any) -> torch.Tensor:
        alphas = level_alphas(self.alpha, len(filtered), self.opts["lambda_c"])
        gain = torch.ones(x.shape[1], device=x.device, dtype=x.dtype)
        gain[1:] = self.opts["chroma_attenuation"]
        scaled = [f * (a * gain.view(1, -1, 1, 1)) for f, a in zip(filtered, alphas, strict=True)]
        return x + collapse(scaled)
