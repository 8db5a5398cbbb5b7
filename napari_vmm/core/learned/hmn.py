"""HMN, the hierarchical magnification network of the Singh thesis (Ch. 7; digest §3.8), with
its multi-scale manipulator (MSM) in the paper's form and the project's two forms.

The thesis models' common conventions are in :mod:`.thesis`; HMN computes its motion
features non-linearly from both frames (Sobel-edge differences with the raw frames), so its
``encode`` returns the frame itself as the motion signal.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .models import MagNet, ResBlock, arch_choice, conv, per_sample, upsample_nearest
from .table import MANIPULATOR_FORMS
from .thesis import sobel

#: HMN's manipulator forms: the paper's, the project's linear one, and linear with the gates
#: of the still scene (:class:`MSM`)
HMN_MANIPULATORS = ("paper", *MANIPULATOR_FORMS["hmn"])


class MSM(nn.Module):
    """Multi-scale manipulator of one level (Ch. 7, Eqs. 7.2–7.3).

    F = conv3×3_{d_1}(concat(E_d, F_t, F_{t−1})) (12 → w); W_1 = F + F·BN(σ(F));
    W_{n+1} = W_1 + W_1·BN(σ(conv3×3_{d_{n+1}}(concat(W_n, F)))), n = 1..3;
    out = ResBlocks(conv3×3(amp · W_4)). Dilations d = (r+1, r+2, r+3, r+4).

    ``form`` is one of :data:`HMN_MANIPULATORS`:

    - "paper": as above; amp scales the frames' features as well as the motion's, and the
      output changes with α on a still scene (docs/training_log.md, "Why five thesis models do not
      magnify").
    - "linear": the gated value is the edge difference's part of the first conv,
      F_d = conv3×3_{d_1}(concat(E_d, 0, 0)), and F only sets the gates:
      W_1 = F_d + F_d·BN(σ(F)). W_4 is then 0 where nothing moves, so amp scales motion alone.
    - "still-gated": as "linear" with every gate the one of the still scene (E_d = 0, so
      W_n = 0 inside the gates and F is the frames' part). W_4 is then exactly linear in E_d:
      the gates cannot open for large motions and stay shut for small ones (docs/training_log.md,
      "HMN's dead zone").
    """

    def __init__(self, w: int, r: int, blocks: int, form: str = "paper") -> None:
        super().__init__()
        arch_choice("manipulator", form, HMN_MANIPULATORS)
        self.form = form
        d = [r + 1, r + 2, r + 3, r + 4]
        self.first = nn.Conv2d(12, w, 3, padding=d[0], dilation=d[0], bias=False)
        self.bn = nn.ModuleList(nn.BatchNorm2d(w) for _ in range(4))
        self.gates = nn.ModuleList(nn.Conv2d(2 * w, w, 3, padding=di, dilation=di, bias=False)
                                   for di in d[1:])
        self.post = conv(w, w, 3)
        self.res = nn.Sequential(*[ResBlock(w) for _ in range(blocks)])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """W_4 of the inputs concat(E_d, F_t, F_{t−1}) (N, 12, h, w) -> (N, w, h, w)."""
        if self.form == "paper":
            f = value = self.first(x)
        else:  # the conv has no bias: F = F_d + the frames' part
            value, frames = (self._conv_part(self.first, x[:, part], part)
                             for part in (slice(0, 6), slice(6, 12)))
            f = frames if self.form == "still-gated" else value + frames
        w1 = value + value * self.bn[0](torch.sigmoid(f))
        if self.form == "still-gated":  # W_n = 0 in the still scene: only the last gate acts
            gate = self.gates[-1]
            frames_half = slice(w1.shape[1], 2 * w1.shape[1])
            return w1 + w1 * self.bn[-1](torch.sigmoid(self._conv_part(gate, f, frames_half)))
        wn = w1
        for g, bn in zip(self.gates, self.bn[1:], strict=True):
            wn = w1 + w1 * bn(torch.sigmoid(g(torch.cat([wn, f], 1))))
        return wn

    @staticmethod
    def _conv_part(c: nn.Conv2d, x: torch.Tensor, part: slice) -> torch.Tensor:
        """The bias-free conv ``c`` applied to input channels ``part`` only, given as ``x``."""
        return F.conv2d(x, c.weight[:, part], padding=c.padding, dilation=c.dilation)

    def forward(self, w4: torch.Tensor, amp: torch.Tensor | float) -> torch.Tensor:
        return self.res(self.post(w4 * amp))


class HMNNet(MagNet):
    """HMN, the hierarchical magnification network (thesis Ch. 7; digest §3.8), M1 and M2.

    Parameters
    ----------
    variant : {"base", "light"}
        M1 (c = 24, 2.5 M parameters in the thesis) or M2 (c = 8, 0.28 M).
    manipulator : {"paper", "linear", "still-gated"}
        "paper": amp scales W_4, which carries the frames' features as well as the edge
        difference E_d. "linear" (the project's fix): W_4 carries E_d alone (the frames and
        E_d gate it, :class:`MSM`), so a still scene stays still at any α.
        "still-gated": as "linear" with the still scene's gates, so W_4 is linear in E_d
        (:class:`MSM`). The same parameters: weights of any form load into
        the others.

    Notes
    -----
    Shapes, input pair (N, 3, H, W), H and W multiples of 4 (``stride``); level m = 1, 2, 3 at
    H/2^{m−1} with width c·m and base dilation r = 8, 4, 1:

    - inputs of level m: F^m_t, F^m_{t−1} = the frames average-pooled to the level (N, 3, ·),
      E^m_d = Sobel(F^m_t) − Sobel(F^m_{t−1}) (gx, gy per RGB channel, N, 6, ·).
    - MSM (class :class:`MSM`): W_4 (N, c·m, ·) → ×amp → conv3×3 → 5 ResBlocks.
    - MD: texture T_m = ReLU(conv3×3(concat(F^m_t, F^m_{t−1}) 6 → c·m)); X_m = 8 ResBlocks(MSM_m
      + T_m); coarse to fine X_m ← conv3×3(concat(X_m, NN-up(X_{m+1}))) + ReLU; at level 1:
      3 ResBlocks(c) → conv3×3 c→3 + tanh.

    ``manipulate`` returns the tuple (MSM outputs per level, W_4 per level, frames per level);
    ``msm_features`` gives the W_4 the contrastive stage compares.

    Choices where the thesis is silent or ambiguous:

    1. F^m_t are the raw pooled frames (not conv features), so the engine's image difference
       gives both frames (module docstring); the edges of level m are the Sobel maps of the
       pooled frames.
    2. (m, r) = (1, 8), (2, 4), (3, 1); MSM dilations r+1 … r+4 (the superscripts).
    3. 5 ResBlocks after the MSM, 8 in each MD level, 3 final: 2,518,632 parameters (M1,
       thesis 2.5 M) and 285,432 (M2, 0.28 M). Nearest upsampling, tanh output.
    4. ⊕ is addition, ⊙ element-wise product; BN only inside the MSM (eval mode at inference).
    5. The "upsampled MSM difference features" (ablation H1) reach the finer levels through the
       upsampled MD features, which contain them; there is no separate path.
    """

    shape_fixed_at_zero = False  # decoding twice decodes the shape manipulated at 0

    stride = 4
    texture_factors = (1,)
    shape_factor = 1
    LEVELS = ((1, 8), (2, 4), (3, 1))

    def __init__(self, variant: str = "base", manipulator: str = "paper") -> None:
        super().__init__()
        arch_choice("variant", variant, ("base", "light"))
        arch_choice("manipulator", manipulator, HMN_MANIPULATORS)
        self.arch = {"variant": variant, "manipulator": manipulator}
        c = 24 if variant == "base" else 8
        ws = [c * m for m, _ in self.LEVELS]
        self.msm = nn.ModuleList(MSM(w, r, 5, form=manipulator)
                                 for w, (_, r) in zip(ws, self.LEVELS, strict=True))
        self.tex = nn.ModuleList(conv(6, w, 3) for w in ws)
        self.md = nn.ModuleList(nn.Sequential(*[ResBlock(w) for _ in range(8)]) for w in ws)
        self.merge = nn.ModuleList(conv(ws[i] + ws[i + 1], ws[i], 3) for i in range(2))
        self.final = nn.Sequential(*[ResBlock(c) for _ in range(3)])
        self.out = conv(c, 3, 3)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, H, W) -> (texture I, shape I): the frame itself (module docstring)."""
        return x, x

    def msm_features(self, i_t: torch.Tensor, i_ref: torch.Tensor,
                     ) -> tuple[list[torch.Tensor], list[tuple[torch.Tensor, torch.Tensor]]]:
        """W_4 of the three levels, and the pooled frames (F^m_t, F^m_{t−1})."""
        feats, frames = [], []
        ft, fr = i_t, i_ref
        for lvl, msm in enumerate(self.msm):
            if lvl:
                ft, fr = F.avg_pool2d(ft, 2), F.avg_pool2d(fr, 2)
            ed = sobel(ft) - sobel(fr)
            feats.append(msm.features(torch.cat([ed, ft, fr], 1)))
            frames.append((ft, fr))
        return feats, frames

    def manipulate(self, m_ref: torch.Tensor | None, m: torch.Tensor,
                   amp: torch.Tensor | float, delta: torch.Tensor | None = None) -> tuple:
        """(MSM outputs, W_4 features, pooled frames), each a list over the three levels."""
        i_ref = m - delta if delta is not None else m_ref
        a = per_sample(amp, m)
        feats, frames = self.msm_features(m, i_ref)
        outs = [msm(w4, a) for msm, w4 in zip(self.msm, feats, strict=True)]
        return outs, feats, frames

    def decode(self, v: torch.Tensor, m: tuple) -> torch.Tensor:
        """``v`` = I_t, ``m`` = :meth:`manipulate`'s tuple -> tanh image (N, 3, H, W)."""
        outs, _, frames = m
        x = None
        for lvl in (2, 1, 0):
            ft, fr = frames[lvl]
            t = F.relu(self.tex[lvl](torch.cat([ft, fr], 1)))
            y = self.md[lvl](outs[lvl] + t)
            if x is not None:
                y = F.relu(self.merge[lvl](torch.cat([y, upsample_nearest(x, y.shape[-2:])], 1)))
            x = y
        return torch.tanh(self.out(self.final(x)))


__all__ = ["HMN_MANIPULATORS", "HMNNet", "MSM"]
