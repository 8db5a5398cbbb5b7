"""Colour (intensity) magnification on a Gaussian pyramid (Wu et al. 2012, Sec. 4).

The classic pulse demo: a face's colour changes slightly with each heartbeat. Wu et al. blur
and downsample each frame to a coarse Gaussian-pyramid level (a spatial low-pass that averages
out noise), band-pass that level in time around the heart rate, multiply it by a large alpha
and add it back at full resolution. There is no motion term: the amplified signal is the
low-passed colour itself, so no lambda_c bound limits alpha.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..registry import Option
from .base import Magnifier
from .pyramids import KERNEL_RADIUS, downsample, max_levels, upsample


class ColorMagnifier(Magnifier):
    """Gaussian-pyramid colour magnification (Wu et al. 2012's ``Gdown`` pipeline).

    ``encode`` returns the frame blurred and downsampled ``level`` times, the signal the
    temporal filter runs on (``(H / 2**level) x (W / 2**level)`` values per channel, so even an
    ideal filter over the whole clip holds little). ``decode`` upsamples the filtered level back
    to the frame and returns ``x + alpha * g * up(filtered)`` with ``g = 1`` for luma and
    ``chroma_attenuation`` for the chroma channels (YIQ): the band's intensity variation
    becomes ``(1 + alpha)`` times the input's, the project's alpha convention.
    """

    name = "color"
    color_space = "yiq"
    luma_only = False
    options: ClassVar[dict[str, Option]] = {
        "level": Option(4, int, "Gaussian pyramid level the colour is taken at: a spatial "
                        "low-pass over about 2**level px (Wu et al. use 4 to 6)", min=1, max=10),
        "chroma_attenuation": Option(1.0, float, "alpha multiplier for the chroma channels "
                                     "(1: amplify colour fully, as for the pulse)",
                                     min=0.0, max=1.0),
    }

    @property
    def spatial_support(self) -> int:
        return 2 ** self.opts["level"] * KERNEL_RADIUS * 2

    def frame_options(self, height: int, width: int) -> dict[str, Any]:
        return {"level": min(self.opts["level"], max_levels(height, width) - 1)}

    def encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], Any]:
        level = min(self.opts["level"], max_levels(x.shape[-2], x.shape[-1]) - 1)
        sizes = []
        low = x
        for _ in range(level):
            sizes.append(tuple(low.shape[-2:]))
            low = downsample(low)
        return [low], sizes

    def decode(self, x: torch.Tensor, filtered: list[torch.Tensor], ctx: Any) -> torch.Tensor:
        up = filtered[0]
        for size in reversed(ctx):
            up = upsample(up, size)
        gain = torch.full((x.shape[1],), self.opts["chroma_attenuation"], dtype=x.dtype,
                          device=x.device)
        gain[0] = 1.0
        return up.mul_(gain.view(1, -1, 1, 1) * self.alpha).add_(x)
