"""Losses and the SSIM metric used for training, validation and evaluation."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _gauss_window(size: int = 11, sigma: float = 1.5, device=None) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0,
         reduction: str = "mean") -> torch.Tensor:
    """SSIM (Wang et al. 2004; 11×11 Gaussian window, σ 1.5, K1 0.01, K2 0.03, 'valid' borders).

    Parameters
    ----------
    x, y : Tensor (N, C, H, W), same range ``data_range``; H, W >= 11.
    reduction : "mean" (scalar over everything) or "none" (per image, shape (N,)).
    """
    x = x.float()
    y = y.float()
    n, c, h, w = x.shape
    g = _gauss_window(device=x.device)
    kh = g.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    kw = g.view(1, 1, 1, -1).expand(c, 1, 1, -1)

    def filt(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, kh, groups=c), kw, groups=c)

    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mx, my = filt(x), filt(y)
    sxx = filt(x * x) - mx * mx
    syy = filt(y * y) - my * my
    sxy = filt(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    if reduction == "none":
        return s.mean(dim=(1, 2, 3))
    return s.mean()


def magnification_loss(out: torch.Tensor, target: torch.Tensor, tex_c: torch.Tensor,
                       tex_a: torch.Tensor, shape_c: torch.Tensor, shape_b: torch.Tensor,
                       reg_weight: float = 0.1, ssim_weight: float = 0.0,
                       ) -> tuple[torch.Tensor, dict[str, float]]:
    """Oh et al.'s loss as in the official code (digest §1.2), in [−1, 1] image units:

    L1(out, Y') + λ·(L1(V(C), V(A)) + L1(M(C), M(B'))) [+ w·(1 − SSIM(out, Y'))].

    The SSIM term (``ssim_weight`` > 0) is our offline stand-in for S2's VGG16 perceptual loss
    (no pretrained VGG can be downloaded); it is used only for the real-time model.
    """
    l1 = (out - target).abs().mean()
    reg = (tex_c - tex_a).abs().mean() + (shape_c - shape_b).abs().mean()
    loss = l1 + reg_weight * reg
    parts = {"l1": float(l1.detach()), "reg": float(reg.detach())}
    if ssim_weight > 0:
        s = ssim((out.clamp(-1, 1) + 1) / 2, (target + 1) / 2)
        loss = loss + ssim_weight * (1 - s)
        parts["ssim"] = float(s.detach())
    parts["loss"] = float(loss.detach())
    return loss, parts
