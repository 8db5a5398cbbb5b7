"""The pass-through frame of a decode-twice network, optionally denoised.

A network that decodes twice returns ``x + D(V, M_out) − D(V, M)``: the input frame ``x``
passes through untouched, noise included, and only the change is decoded. Its still decode
``D(V, M)`` is a reconstruction of ``x`` that the training noise taught the decoder to keep
clean. With the option ``denoise``, the pass-through frame becomes

    D(V, M) + W(x − D(V, M))

where ``W`` is a local Wiener (Lee) filter of the residual for the frame's noise level: the
residual's structure (detail the decoder lost) is kept where its local variance stands above
the noise, and the noise is removed where it does not. On noise-free frames ``W`` is nearly the
identity and the output is the plain decode-twice one.

The noise level is estimated per frame with Immerkær's Laplacian-difference operator (a robust
median version, so edges and texture do not count as noise).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Immerkær's operator: the difference of two Laplacians, blind to planes and linear ramps;
#: white noise of std σ comes out with std 6σ (the sum of its squared weights is 36)
_NOISE_KERNEL = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
_MAD_TO_STD = 1.0 / 0.6745  # median absolute deviation of a Gaussian -> its std
WIENER_WINDOW = 5  # px: side of the square window of the local residual statistics


def noise_sigma(x: torch.Tensor) -> torch.Tensor:
    """Per-frame noise std of ``x`` (N, C, H, W), in its own units: (N, 1, 1, 1).

    The median over channels and pixels of ``|N * x|`` / 0.6745 / 6, N Immerkær's operator,
    taken at every second pixel each way (a quarter of the work; the median of that many
    samples is as good).
    """
    n, c, h, w = x.shape
    k = _NOISE_KERNEL.to(device=x.device, dtype=torch.float32).view(1, 1, 3, 3)
    resp = F.conv2d(x.detach().float().reshape(n * c, 1, h, w), k, stride=2)
    med = resp.abs().reshape(n, -1).median(dim=1).values
    return (med * (_MAD_TO_STD / 6.0)).view(n, 1, 1, 1)


def wiener_pass_through(x: torch.Tensor, still: torch.Tensor,
                        sigma: torch.Tensor) -> torch.Tensor:
    """``still + W(x − still)``: the frame ``x`` with the noise of its residual removed.

    ``x``, ``still``: (N, C, H, W), ``still`` the network's reconstruction of ``x``;
    ``sigma``: noise std (N, 1, 1, 1) in the same units. Returns (N, C, H, W).
    """
    r = (x - still).float()
    pad = WIENER_WINDOW // 2
    rp = F.pad(r, (pad, pad, pad, pad), mode="replicate")
    mean = F.avg_pool2d(rp, WIENER_WINDOW, stride=1)
    var = (F.avg_pool2d(rp * rp, WIENER_WINDOW, stride=1) - mean * mean).clamp_(min=0)
    noise_var = sigma.float() ** 2
    keep = (var - noise_var).clamp_(min=0) / var.clamp(min=1e-12)
    return (still.float() + mean + keep * (r - mean)).to(x.dtype)


__all__ = ["WIENER_WINDOW", "noise_sigma", "wiener_pass_through"]
