"""Training losses and stages of the thesis models, used by :func:`.train.train`.

Stages (``vmm train MODEL --stage ...``):

``main``        the model's own loss on noisy inputs (all models; the default).
``proxy``       LNVMM and HMN: the same loss on **noise-free** inputs; its export is the
                frozen proxy of the other stages (``--proxy RUN/export/MODEL.pt``).
``contrastive`` HMN only: fine-tuning of the best weights (``--init PATH.pt``) with the
                contrastive loss against the proxy (positive) and the previous epoch
                (negative), thesis Ch. 7 (15 epochs there).

Losses, in [−1, 1] image units (L1 terms are means, not sums; the thesis writes sums):

- LNVMM (Ch. 3): 10·L1 + 0.1·P + E + L_A + L_M, with L_A = |φ(A) − F_t| + |φ(A) − F_{t−1}|
  against the noise-free frames (2×2-pooled, φ works at H/2) and, when a proxy is given,
  L_M = |(E*_t − E*_ref)·α − (E_t − E_ref)·α| (proxy on clean frames, model on noisy ones).
- MDLMM (Ch. 5): 10·L1 + 0.1·P + E + |wrap(φ_m − φ_gt)| + |A_m − A_gt| (FFT of the target).
- σ-θ Net (Ch. 6), HMN (Ch. 7) and a KL-DNAS student (fine-tuning after the search, the
  teacher's L_mag of Ch. 4): 10·L1 + 1·E + 0.1·P; HMN's contrastive stage adds
  C = Σ_levels |N_e − N*| / max(|N_e − N_{e−1}|, 0.01) on the MSM features W_4.

E is the finite-difference edge loss |∇ŷ − ∇y| (horizontal and vertical). P stands for the
thesis' VGG-16 perceptual loss, which needs pretrained weights the project cannot download;
like the real-time model, we use 1 − SSIM in its place with the same weight.

Choices: the proxy of LNVMM is optional in ``main`` (without it the run is the thesis'
"w/o proxy loss" ablation and says so in its provenance); HMN's negative N_{e−1} is a frozen
copy of the network refreshed every ``epoch_steps`` steps (the thesis' epoch), and the
floor 0.01 on the denominator keeps the steps right after a refresh (N_e = N_{e−1}) finite;
LNVMM pairs each stream with the other frame, or (probability ``share_dropout``, 0.5) with
itself, so that the per-frame inference of the engine is in the training distribution.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F

from ..core.errors import VMMError
from ..core.learned import weights as W
from ..core.learned.table import build_model
from ..core.learned.thesis import spectrum, wrap_phase
from .losses import motion_gain_loss, structure_loss

STAGES = {"main", "proxy", "contrastive"}


def edge_l1(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean |∇ŷ − ∇y| over horizontal and vertical forward differences."""
    dx = (out[..., :, 1:] - out[..., :, :-1]) - (target[..., :, 1:] - target[..., :, :-1])
    dy = (out[..., 1:, :] - out[..., :-1, :]) - (target[..., 1:, :] - target[..., :-1, :])
    return 0.5 * (dx.abs().mean() + dy.abs().mean())


def base_loss(out: torch.Tensor, target: torch.Tensor, l1_weight: float = 10.0,
              edge_weight: float = 1.0, perc_weight: float = 0.1,
              ) -> tuple[torch.Tensor, dict[str, float]]:
    """λ1·L1 + λ_e·E + λ_p·(1 − SSIM) (the thesis' reconstruction loss, P → 1 − SSIM).

    Parameters
    ----------
    out, target : Tensor (N, 3, H, W) in [−1, 1]; H, W >= 11 for the SSIM term.

    Returns
    -------
    loss : scalar Tensor
    parts : dict with ``l1``, ``edge``, ``ssim``
    """
    l1 = (out - target).abs().mean()
    e = edge_l1(out, target)
    parts = {"l1": float(l1.detach()), "edge": float(e.detach())}
    loss = l1_weight * l1 + edge_weight * e + perc_weight * structure_loss(out, target, parts)
    return loss, parts


def describe_loss(model: str, stage: str, proxy: str, noise: float) -> dict[str, Any]:
    """The loss description recorded in the provenance."""
    base = {"l1": 10.0, "perceptual_as_1_minus_ssim": 0.1,
            "edge_finite_diff": 1.0, "poisson_noise_max": noise, "stage": stage}
    if model.startswith("lnvmm"):
        base["appearance_L_A"] = 1.0
        base["proxy_L_M"] = 1.0 if proxy else 0.0
        base["proxy"] = proxy or "none (the thesis' 'w/o proxy loss' ablation)"
    elif model.startswith("mdlmm"):
        base.update({"phase_l1": 1.0, "amplitude_l1": 1.0})
    elif model.startswith("hmn") and stage == "contrastive":
        base.update({"contrastive": 1.0, "proxy": proxy})
    return base


def _load_frozen(model: str, path: str, device) -> torch.nn.Module:
    sd, prov = W.load_weights(model, path)
    net = build_model(model, **dict(prov.get("arch") or {}))
    net.load_state_dict(sd)
    net = net.to(device).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


class ThesisStage:
    """The loss of one training step of a thesis model, with its frozen helper networks.

    Parameters
    ----------
    model : str
        A thesis model (``loss`` "thesis" in :data:`napari_vmm.core.learned.table.MODELS`).
    net : nn.Module
        The network being trained.
    stage : {"main", "proxy", "contrastive"}
    proxy : str
        Path of the proxy's weights (.pt with provenance), or "".
    device : torch.device
    seed : int
    epoch_steps : int
        HMN contrastive stage: steps between refreshes of the previous-epoch negative.
    share_dropout : float
        LNVMM: probability of pairing each stream with itself instead of the other frame.
    gain_weight : float
        With decode twice: weight of the motion-gain term
        (:func:`.losses.motion_gain_loss`) on every stage.
    gain_pooling : str
        How the gain term weighs the samples (:data:`.config.GAIN_POOLINGS`).

    With decode twice (the net's ``decode_twice``) every stage trains the output the engine
    runs, ``B + D(amp) − D(0)``, on its own two-frame path as well (``MagNet.with_change``).
    """

    def __init__(self, model: str, net, stage: str = "main", proxy: str = "",
                 device=None, seed: int = 0, epoch_steps: int = 1000,
                 share_dropout: float = 0.5, gain_weight: float = 0.0,
                 gain_pooling: str = "batch") -> None:
        if stage not in STAGES:
            raise VMMError(f"unknown --stage {stage!r}; choose from {sorted(STAGES)}")
        family = model.split("_")[0]
        if stage == "proxy" and family not in ("lnvmm", "hmn"):
            raise VMMError(f"--stage proxy applies to lnvmm and hmn, not {model}")
        if stage == "contrastive" and family != "hmn":
            raise VMMError(f"--stage contrastive applies to hmn, not {model}")
        if family == "kldnas" and stage != "main":
            raise VMMError("a kldnas student trains with --stage main only")
        if stage == "contrastive" and not proxy:
            raise VMMError("--stage contrastive needs --proxy PATH.pt (an hmn trained with "
                           "--stage proxy, i.e. without noise)")
        self.model, self.family, self.stage = model, family, stage
        self.seed, self.epoch_steps, self.share_dropout = seed, max(1, epoch_steps), share_dropout
        self.proxy_path = proxy
        self.gain_weight, self.gain_pooling = gain_weight, gain_pooling
        self.proxy = _load_frozen(model, proxy, device) if proxy and stage != "proxy" else None
        self.prev = None
        self.prev_step = -1

    @property
    def noise_free(self) -> bool:
        """The proxy stage trains on clean inputs."""
        return self.stage == "proxy"

    def _refresh_negative(self, net, step: int) -> None:
        if self.prev is None or step - self.prev_step >= self.epoch_steps:
            self.prev = copy.deepcopy(net).eval()
            for p in self.prev.parameters():
                p.requires_grad_(False)
            self.prev_step = step

    def loss(self, net, b: dict[str, torch.Tensor], step: int, device,
             ) -> tuple[torch.Tensor, tuple[torch.Tensor, dict[str, float]]]:
        """(output, (loss, logged parts)) of one batch ``b`` (keys A, B, Y, A_clean,
        B_clean, alpha)."""
        xa, xb, y = (b[k].to(device) for k in ("A", "B", "Y"))
        ca, cb = b["A_clean"].to(device), b["B_clean"].to(device)
        if self.noise_free:
            xa, xb = ca, cb
        amp = b["alpha"].to(device)
        extra: dict[str, torch.Tensor] = {}
        still_amp = torch.zeros_like(amp)
        if self.family == "lnvmm":
            g = torch.Generator().manual_seed(self.seed * 7919 + step)
            self_pair = bool(torch.rand((), generator=g) < self.share_dropout)
            if self_pair:
                ea, _, _, _ = net.streams(xa)
                eb, pb, _, _ = net.streams(xb)
                app = net.appearance(pb, pb)
            else:
                ea, pa, eb, pb = net.streams(xa, xb)
                app = net.appearance(pb, pa)
            out = net.with_change(xb, net.decode(app, net.manipulate(ea, eb, amp)),
                                  lambda: net.decode(app, net.manipulate(ea, eb, still_amp)))
            loss, parts = base_loss(out, y, 10.0, 1.0, 0.1)
            phi = net.appearance_image(app)
            extra["L_A"] = ((phi - F.avg_pool2d(cb, 2)).abs().mean()
                            + (phi - F.avg_pool2d(ca, 2)).abs().mean())
            if self.proxy is not None:
                with torch.no_grad():
                    if self_pair:
                        pea = self.proxy.streams(ca)[0]
                        peb = self.proxy.streams(cb)[0]
                    else:
                        pea, _, peb, _ = self.proxy.streams(ca, cb)
                a4 = amp.reshape(-1, 1, 1, 1)
                extra["L_M"] = ((peb - pea) * a4 - (eb - ea) * a4).abs().mean()
        elif self.family == "mdlmm":
            m = net.manipulate(xa, xb, amp)
            out = net.with_change(xb, net.decode(xb, m),
                                  lambda: net.decode(xb, net.manipulate(xa, xb, still_amp)))
            loss, parts = base_loss(out, y, 10.0, 1.0, 0.1)
            la_gt, p_gt = spectrum(y)
            extra["phase"] = wrap_phase(m[2] - p_gt).abs().mean()
            extra["amplitude"] = (m[1] - la_gt).abs().mean()
        elif self.family == "hmn" and self.stage == "contrastive":
            self._refresh_negative(net, step)
            m = net.manipulate(xa, xb, amp)
            out = net.with_change(xb, net.decode(xb, m),
                                  lambda: net.decode(xb, net.manipulate(xa, xb, still_amp)))
            loss, parts = base_loss(out, y, 10.0, 1.0, 0.1)
            with torch.no_grad():
                pos, _ = self.proxy.msm_features(cb, ca)
                neg, _ = self.prev.msm_features(xb, xa)
            c = out.new_zeros(())
            for n_e, n_p, n_n in zip(m[1], pos, neg, strict=True):
                c = c + (n_e - n_p).abs().mean() / (n_e - n_n).abs().mean().clamp(min=0.01)
            extra["contrastive"] = c
        else:
            out = net(xa, xb, amp)
            loss, parts = base_loss(out, y, 10.0, 1.0, 0.1)
        for k, v in extra.items():
            loss = loss + v
            parts[k] = float(v.detach())
        if self.gain_weight and net.decode_twice:  # the noise is no change to deliver
            gain_term = motion_gain_loss(out, xb, y, target_base=cb,
                                         pooling=self.gain_pooling)
            loss = loss + self.gain_weight * gain_term
            parts["gain"] = float(gain_term.detach())
        parts["loss"] = float(loss.detach())
        return out, (loss, parts)


__all__ = ["STAGES", "ThesisStage", "base_loss", "describe_loss",
           "edge_l1"]
