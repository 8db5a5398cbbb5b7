"""Losses and the SSIM metric used for training, validation and evaluation.

Oh et al. (``magnification_loss``, oh2018 and realtime) and FD4MM (``fd4mm_loss``: Charbonnier,
Laplacian-of-Gaussian edge loss and the contrastive regularisation in FFT-magnitude space).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .config import GAIN_POOLINGS


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
    (no pretrained VGG can be downloaded); it is on by default only for the real-time model
    (``--ssim-weight`` turns it on for oh2018).
    """
    l1 = (out - target).abs().mean()
    reg = (tex_c - tex_a).abs().mean() + (shape_c - shape_b).abs().mean()
    loss = l1 + reg_weight * reg
    parts = {"l1": float(l1.detach()), "reg": float(reg.detach())}
    if ssim_weight > 0:
        loss = loss + ssim_weight * structure_loss(out, target, parts)
    parts["loss"] = float(loss.detach())
    return loss, parts


def structure_loss(out: torch.Tensor, target: torch.Tensor,
                   parts: dict[str, float] | None = None) -> torch.Tensor:
    """1 − SSIM(out, target) for frames in [−1, 1] units, SSIM on [0, 1] (the metric's range).

    The optional ``parts`` dict receives the SSIM as ``parts["ssim"]``.
    """
    s = ssim((out.clamp(-1, 1) + 1) / 2, (target + 1) / 2)
    if parts is not None:
        parts["ssim"] = float(s.detach())
    return 1 - s


# -- FD4MM (digest §3.3, Eq. 7-9) -------------------------------------------------------------

def charbonnier(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-3,
                reduction: str = "mean") -> torch.Tensor:
    """Charbonnier distance mean(sqrt((x − y)² + ε²)) (FD4MM's L_mag, ε = 1e-3).

    Parameters
    ----------
    x, y : Tensor (N, ...), same shape.
    eps : float
        ε of the Charbonnier penalty.
    reduction : "mean" (scalar) or "none" (per sample, shape (N,)).
    """
    d = torch.sqrt((x.float() - y.float()) ** 2 + eps * eps)
    return d.flatten(1).mean(dim=1) if reduction == "none" else d.mean()


def log_kernel(sigma: float = 1.0, device=None) -> torch.Tensor:
    """Scale-normalised Laplacian-of-Gaussian kernel σ²∇²G, (2r+1, 2r+1) with r = ⌈3σ⌉.

    The kernel sums to zero (its mean is removed), so flat regions give no response.
    """
    r = max(1, math.ceil(3 * sigma))
    x = torch.arange(-r, r + 1, dtype=torch.float32, device=device)
    xx, yy = torch.meshgrid(x, x, indexing="ij")
    q = (xx ** 2 + yy ** 2) / (2 * sigma ** 2)
    k = (q - 1) / (math.pi * sigma ** 2) * torch.exp(-q)  # σ²∇²G, q = r²/2σ²
    return k - k.mean()


def log_edges(x: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Laplacian-of-Gaussian response of every channel, replicate borders; (N,C,H,W) -> same."""
    x = x.float()
    c = x.shape[1]
    k = log_kernel(sigma, x.device)
    r = k.shape[-1] // 2
    xp = F.pad(x, (r, r, r, r), mode="replicate")
    return F.conv2d(xp, k.expand(c, 1, -1, -1), groups=c)


def edge_loss(out: torch.Tensor, target: torch.Tensor, sigma: float = 1.0,
              eps: float = 1e-3) -> torch.Tensor:
    """FD4MM's L_edge: Charbonnier distance between LoG edge maps (paper Eq. 8)."""
    return charbonnier(log_edges(out, sigma), log_edges(target, sigma), eps)


def fft_features(x: torch.Tensor, window: int = 16, stride: int = 8) -> torch.Tensor:
    """Feature space Λ of the contrastive term: log(1 + |FFT|) of local, Hann-windowed patches.

    Parameters
    ----------
    x : Tensor (N, C, H, W)
    window : int
        Patch size in pixels (a short-time Fourier transform); 0 gives the global spectrum
        log(1 + |FFT2(x)|) of the authors' ``ContrastLoss_fft``.
    stride : int
        Patch step in pixels.

    Returns
    -------
    Tensor (N, C, L, window, window) for patches (L of them), or (N, C, H, W) for window 0.

    Notes
    -----
    The global magnitude spectrum is invariant to (cyclic) translation, so a magnified frame
    and the unmagnified query of a translating scene have the *same* features and the term
    cannot tell them apart; local spectra keep the texture and sharpness information (what
    VGG conv3 features encode) but move with the content at the scale of the window.
    Orthonormal FFT (no growth with size), float32 (half FFTs need power-of-two sizes).
    """
    x = x.float()
    if window <= 0 or min(x.shape[-2:]) < window:
        return torch.log1p(torch.fft.fft2(x, dim=(-2, -1), norm="ortho").abs())
    n, c = x.shape[:2]
    p = F.unfold(x.reshape(n * c, 1, *x.shape[-2:]), window, stride=stride)  # (NC, w², L)
    p = p.reshape(n, c, window, window, -1).permute(0, 1, 4, 2, 3)
    hann = torch.hann_window(window, periodic=False, dtype=x.dtype, device=x.device)
    p = p * (hann[:, None] * hann[None, :])
    return torch.log1p(torch.fft.fft2(p, dim=(-2, -1), norm="ortho").abs())


def contrastive_loss(out: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                     eps: float = 1e-3, window: int = 16) -> torch.Tensor:
    """FD4MM's contrastive regularisation L_CR (Eq. 9) in FFT-magnitude space.

    Per sample n: D(Λ(out), Λ(positive)) / D(Λ(out), Λ(negative)), D the Charbonnier distance
    (ε = 1e-3), averaged over the batch. The anchor is the output, the positive the ground
    truth and the negative the unmagnified query frame. Λ = :func:`fft_features` (local
    spectra of ``window`` px; 0: the global spectrum). No pretrained VGG is needed.

    Parameters
    ----------
    out, positive, negative : Tensor (N, C, H, W)

    Returns
    -------
    Tensor, scalar
    """
    fo = fft_features(out, window)
    with torch.no_grad():
        fp, fn = fft_features(positive, window), fft_features(negative, window)
    d_ap = charbonnier(fo, fp, eps, reduction="none")
    d_an = charbonnier(fo, fn, eps, reduction="none")
    return (d_ap / (d_an + 1e-7)).mean()


def motion_alignment_loss(out: torch.Tensor, base: torch.Tensor, target: torch.Tensor,
                          eps: float = 1e-8) -> torch.Tensor:
    """1 − cos(out − base, target − base), averaged over the samples that move.

    With decode twice, ``out − base`` is exactly the change the motion path makes. L1 alone
    lets a network whose change starts out wrong shrink it to nothing (fd4mm learned that:
    its change fell to 1e-4 of the target's); the cosine does not reward a smaller change,
    only a better-aimed one. ``out``, ``base``, ``target``: (N, 3, H, W); a scalar.
    """
    d = (out - base).flatten(1)
    t = (target - base).flatten(1)
    t_norm = t.norm(dim=1)
    moving = t_norm > 1e-6
    if not bool(moving.any()):
        return out.new_zeros(())
    cos = (d * t).sum(1) / (d.norm(dim=1) * t_norm + eps)
    return (1 - cos[moving]).mean()


#: per-sample gain term: samples whose target's rms change (image units, [−1, 1]) is at or
#: below this are left out (static scenes; about 0.1 grey level)
PER_SAMPLE_FLOOR = 1e-3


def motion_gain_loss(out: torch.Tensor, base: torch.Tensor, target: torch.Tensor,
                     eps: float = 1e-12, target_base: torch.Tensor | None = None,
                     pooling: str = "batch") -> torch.Tensor:
    """(1 − G)², G = Σ⟨out − base, target − t_b⟩ / Σ|target − t_b|² over the batch.

    G is the share of the target's change that the output delivers (the validation's
    ``motion_gain``): 1 for a magnifier that gives the requested motion, 0 for a copy. L1
    lets a network hedge an uncertain change towards zero, which is the under-magnification
    measured on every learned model; this term asks for the whole change along the target's
    direction, and only that component counts. ``out``, ``base``, ``target``: (N, 3, H, W);
    ``target_base`` (t_b, default ``base``): the noise-free input, when ``base`` is noisy and
    the target clean (the noise is not a change to deliver). Returns a scalar.

    ``pooling`` (one of :data:`.config.GAIN_POOLINGS`):

    - ``"batch"``: one G for the batch, so small motions do not make it noisy, but the
      batch's largest change sets it;
    - ``"sample"``: the mean of (1 − G_i)² over the samples whose target changes (rms change
      above :data:`PER_SAMPLE_FLOOR`): a 0.1 px motion counts as much as a 10 px one;
    - ``"sqrt-energy"``: the same per-sample terms weighted by |t_i| (the square root of the
      change's energy): between the two, so a small motion counts, but less than a large one
      whose G_i is measured more reliably.
    """
    if pooling not in GAIN_POOLINGS:
        raise ValueError(f"pooling must be one of {GAIN_POOLINGS}, not {pooling!r}")
    d = (out - base).flatten(1)
    t = (target - (base if target_base is None else target_base)).flatten(1)
    if pooling != "batch":
        energy_i = (t * t).sum(1)
        moving = energy_i > PER_SAMPLE_FLOOR ** 2 * t.shape[1]
        if not bool(moving.any()):
            return out.new_zeros(())
        loss_i = (1 - (d * t).sum(1)[moving] / energy_i[moving]) ** 2
        if pooling == "sample":
            return loss_i.mean()
        weight = energy_i[moving].sqrt()
        return (weight * loss_i).sum() / weight.sum()
    energy = (t * t).sum()
    if float(energy) <= eps:
        return out.new_zeros(())
    gain = (d * t).sum() / energy
    return (1 - gain) ** 2


def fd4mm_loss(out: torch.Tensor, target: torch.Tensor, negative: torch.Tensor,
               cr_weight: float = 0.1, edge_weight: float = 1.0, log_sigma: float = 1.0,
               cr_window: int = 16, ssim_weight: float = 0.0,
               ) -> tuple[torch.Tensor, dict[str, float]]:
    """FD4MM's training loss L = L_mag + L_edge + λ·L_CR (paper Eq. 7-9, λ = 0.1).

    With ``ssim_weight`` > 0 the project adds w·(1 − SSIM) (:func:`structure_loss`; not in the
    paper): the structure term of the real-time model's loss.

    Parameters
    ----------
    out : Tensor (N, 3, H, W)
        Network output, [−1, 1] units.
    target : Tensor (N, 3, H, W)
        Ground-truth magnified frame Y′ (the positive).
    negative : Tensor (N, 3, H, W)
        The unmagnified query frame in the target's colours, B′ (the negative).
    cr_weight : float
        λ of the contrastive term; 0 turns it off (the ablation, paper Table 6 D2).
    edge_weight : float
        Weight of the LoG edge term (paper: 1).
    log_sigma : float
        Scale of the LoG operator in pixels.
    cr_window : int
        Patch size of the local spectra of the contrastive term (0: global spectrum).
    ssim_weight : float
        Weight of the added (1 − SSIM) term (0: off, the paper's loss).

    Returns
    -------
    loss : Tensor, scalar
    parts : dict of float
        ``charbonnier``, ``edge``, ``cr`` (when λ > 0) and ``loss``.
    """
    l_mag = charbonnier(out, target)
    l_edge = edge_loss(out, target, log_sigma)
    loss = l_mag + edge_weight * l_edge
    parts = {"charbonnier": float(l_mag.detach()), "edge": float(l_edge.detach())}
    if cr_weight > 0:
        l_cr = contrastive_loss(out, target, negative, window=cr_window)
        loss = loss + cr_weight * l_cr
        parts["cr"] = float(l_cr.detach())
    if ssim_weight > 0:
        loss = loss + ssim_weight * structure_loss(out, target, parts)
    parts["loss"] = float(loss.detach())
    return loss, parts
