"""Gaussian/Laplacian pyramids with a 5-tap binomial kernel, in torch.

All functions take and return tensors of shape (N, C, H, W); levels are listed finest first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
KERNEL_RADIUS = 2


def blur(x: torch.Tensor) -> torch.Tensor:
    """Separable 5-tap binomial blur with reflect padding, per channel."""
    n, c, h, w = x.shape
    k = _BINOMIAL.to(x.device, x.dtype)
    y = x.reshape(n * c, 1, h, w)
    mode = "reflect" if min(h, w) > KERNEL_RADIUS else "replicate"
    y = F.pad(y, (KERNEL_RADIUS, KERNEL_RADIUS, 0, 0), mode=mode)
    y = F.conv2d(y, k.view(1, 1, 1, 5))
    y = F.pad(y, (0, 0, KERNEL_RADIUS, KERNEL_RADIUS), mode=mode)
    y = F.conv2d(y, k.view(1, 1, 5, 1))
    return y.reshape(n, c, h, w)


def downsample(x: torch.Tensor) -> torch.Tensor:
    """Blur then keep every second row and column."""
    return blur(x)[..., ::2, ::2]


def upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero-insert to ``size`` and blur (gain 4 keeps the mean)."""
    n, c, h, w = x.shape
    up = x.new_zeros((n, c, size[0], size[1]))
    up[..., ::2, ::2] = x[..., : (size[0] + 1) // 2, : (size[1] + 1) // 2] * 4.0
    return blur(up)


def max_levels(h: int, w: int, min_size: int = 4) -> int:
    """Deepest pyramid whose coarsest level is still at least ``min_size`` pixels."""
    levels = 1
    while min(h, w) >> levels >= min_size:
        levels += 1
    return levels


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Band-pass levels (finest first) plus the low-pass residual as the last entry."""
    bands = []
    current = x
    for _ in range(levels - 1):
        low = downsample(current)
        bands.append(current - upsample(low, current.shape[-2:]))
        current = low
    bands.append(current)
    return bands


def collapse(bands: list[torch.Tensor]) -> torch.Tensor:
    """Inverse of :func:`laplacian_pyramid`."""
    current = bands[-1]
    for band in reversed(bands[:-1]):
        current = band + upsample(current, band.shape[-2:])
    return current


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) with reflect padding."""
    if sigma <= 0:
        return x
    radius = max(1, int(round(2.5 * sigma)))
    radius = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)
    if radius < 1:
        return x
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    n, c, h, w = x.shape
    y = x.reshape(n * c, 1, h, w)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1))
    return y.reshape(n, c, h, w)


def amplitude_weighted_blur(values: torch.Tensor, amplitude: torch.Tensor,
                            sigma: float) -> torch.Tensor:
    """Smooth ``values`` spatially, weighting each pixel by its local amplitude."""
    if sigma <= 0:
        return values
    num = gaussian_blur(values * amplitude, sigma)
    den = gaussian_blur(amplitude, sigma) + 1e-8
    return num / den
