"""Denoising the frame a magnifier adds its change to (the ``denoise`` option of every method).

Every magnifier returns the input frame plus a change: Eulerian methods ``x + α·filtered``,
the learned models decoding twice ``x + D(V, M_out) − D(V, M)``. The input frame passes
through with its noise, so on noisy footage the output is no cleaner than the input. With
the option ``denoise`` the engine swaps that frame for a denoised one,
``out − x + denoise_frames(x)``, leaving the change as it is.

:func:`denoise_frames` is a local Wiener (Lee) filter of the detail ``r = x − G(x)`` above a
Gaussian-smoothed frame ``G(x)``: in each 5×5 window the detail is kept in proportion
``max(0, var(r) − σ²) / var(r)`` around its local mean, so edges and texture that stand above
the noise stay and the noise in flat parts goes. ``σ`` is each frame's and channel's noise
level, estimated with Immerkær's Laplacian-difference operator (a robust median version, so
edges and texture do not count as noise); on the whole-clip route's spatial tiles it is
estimated per tile (its halo included). On noise-free frames it is nearly the identity.
On single real frames it cleans better than the learned decoders' own reconstruction used
the same way (``docs/evaluation.md``, "Noisy footage").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Immerkær's operator: the difference of two Laplacians, blind to planes and linear ramps;
#: white noise of std σ comes out with std 6σ (the sum of its squared weights is 36)
_NOISE_KERNEL = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
_MAD_TO_STD = 1.0 / 0.6745  # median absolute deviation of a Gaussian -> its std
WIENER_WINDOW = 5  # px: side of the square window of the local detail statistics
SMOOTH_SIGMA = 1.0  # px: the Gaussian whose residual is the detail
#: pixels of context each side that the filter reads (for the tiles of the whole-clip route)
SUPPORT = WIENER_WINDOW // 2 + 3


def noise_sigma(x: torch.Tensor) -> torch.Tensor:
    """Noise std of each frame and channel of ``x`` (N, C, H, W), in its units: (N, C, 1, 1).

    The median of ``|N * x|`` / 0.6745 / 6 over the pixels, N Immerkær's operator, taken at
    every second pixel each way (a quarter of the work; the median of that many samples is
    as good).
    """
    n, c, h, w = x.shape
    if h < 3 or w < 3:
        return x.new_zeros(n, c, 1, 1)
    k = _NOISE_KERNEL.to(device=x.device, dtype=torch.float32).view(1, 1, 3, 3)
    resp = F.conv2d(x.detach().float().reshape(n * c, 1, h, w), k, stride=2)
    med = resp.abs().reshape(n * c, -1).median(dim=1).values
    return (med * (_MAD_TO_STD / 6.0)).view(n, c, 1, 1).to(x.dtype)


def _box(t: torch.Tensor, size: int) -> torch.Tensor:
    pad = size // 2
    return F.avg_pool2d(F.pad(t, (pad, pad, pad, pad), mode="replicate"), size, stride=1)


def _gaussian(t: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = 3
    taps = torch.arange(-radius, radius + 1, device=t.device, dtype=t.dtype)
    k = torch.exp(-taps ** 2 / (2 * sigma * sigma))
    k = k / k.sum()
    c = t.shape[1]
    t = F.pad(t, (radius, radius, radius, radius), mode="replicate")
    t = F.conv2d(t, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(t, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def denoise_frames(x: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
    """The frames ``x`` (N, C, H, W) with their noise removed (same shape and dtype).

    ``sigma``: noise std per frame and channel, (N, C, 1, 1) or broadcastable, in the units
    of ``x``; default :func:`noise_sigma` of ``x``.
    """
    if min(x.shape[-2:]) < 3:
        return x
    xf = x.float()
    sigma = noise_sigma(xf) if sigma is None else sigma.float()
    smooth = _gaussian(xf, SMOOTH_SIGMA)
    r = xf - smooth
    mean = _box(r, WIENER_WINDOW)
    var = (_box(r * r, WIENER_WINDOW) - mean * mean).clamp_(min=0)
    keep = (var - sigma * sigma).clamp_(min=0) / var.clamp(min=1e-12)
    return (smooth + mean + keep * (r - mean)).to(x.dtype)


__all__ = ["SUPPORT", "WIENER_WINDOW", "denoise_frames", "noise_sigma"]
