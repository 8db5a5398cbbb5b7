"""FD4MM: frequency decoupling for motion magnification (Wang et al., CVPR 2024; digest §3.3).

The network decouples every frame into high-frequency detail (kept for appearance) and a
low-frequency structure (the motion representation), on three isomorphic levels, magnifies only
the *deep* low-frequency difference, and recouples the levels coarse to fine.

Shapes for an input (N, 3, H, W) with H and W multiples of 8 (``FD4MMNet.stride``), C = 24:

- AFDE (adaptive frequency-decoupling encoder), shared by all frames:
  patch embedding conv3×3/2 3→C: (N, C, H/2, W/2) → split → H_s (N, C, H/2, W/2) and L_s;
  L_s → AvgPool 2 → conv1×1 C→2C → split → H_m (N, 2C, H/4, W/4) and L_m;
  L_m → AvgPool 2 → conv1×1 2C→4C → split → H_d (N, 4C, H/8, W/8) and **L_d (N, 4C, H/8,
  W/8)**, the motion representation.
  Each split (the authors' code): [x1, x2] = dw3×3(conv1×1 C→2C (F)); L = GELU(W_r ∗ x1)
  with W_r a depthwise 3×3 conv of dilation r = 2; H = GELU(W_1 ∗ x2 − W_r ∗ x1).
- sparse high-pass filters F_H: {2, 4, 4} transformer blocks with {4, 4, 8} heads on H_s, H_m,
  H_d; the texture handed to the decoder is (F_H(H_s), F_H(H_m), F_H(H_d)).
- manipulator (point-wise non-linear magnifier, Eq. 5): δ = L_d(b) − L_d(a) (or the engine's
  filtered δ), L′_d = L_d(b) + W_2(amp · W_1(F_L(δ))), with the deep sparse low-pass filter
  F_L (4 blocks, 8 heads) and W_p = conv1×1 (no bias) + GELU.
- decoder (recoupling): R_d = conv1×1(cat[L′_d, F_H(H_d)]) 8C→4C → 4 mixer blocks (8 heads)
  → conv3×3 4C→8C + PixelShuffle 2: (N, 2C, H/4, W/4); cat with F_H(H_m) → conv1×1 4C→2C →
  4 mixer blocks (4 heads) → conv3×3 + PixelShuffle: (N, C, H/2, W/2); cat with F_H(H_s) →
  conv1×1 2C→C → 6 mixer blocks (4 heads) → conv3×3 + PixelShuffle: (N, C/2, H, W) →
  conv3×3 C/2→3, linear: (N, 3, H, W).

Every transformer block is ``x + Attn(LN(x)); x + FFN(LN(x))``. Attention is the transposed
(channel) attention of Restormer with ReLU instead of softmax (Eq. 4):
Q, K, V = dw3×3(conv1×1(x)); Q is passed through a high-pass operator (F_H: MaxPool 3×3 s1 →
conv1×1 → GELU) or a low-pass operator (F_L: AvgPool 2×2 s2 → conv1×1 → GELU → bilinear back);
q and k are L2-normalised over the pixels, A = ReLU(τ_h · q kᵀ) per head (a C′×C′ matrix,
C′ = channels / heads), out = conv1×1(A v). In the mixer (Eq. 6) an AFDE split of the block
input gives the query (low-frequency part) and key and value (high-frequency part).

α convention: ``amp`` is the project α (output motion = (1 + α) × input motion), which is the
authors' ``amp − 1`` (digest §0.2): their code computes ``lo_b + W2(W1(F_L(lo_b − lo_a)) ·
(amp − 1))``.

Choices the paper leaves open, and where we follow the authors' code (``Jiafei127/FD4MM``,
``magnet_FD4MM.py``) instead of the paper text:

1. **AFDE split.** The paper writes L = GELU(W_r ∗ F), H = GELU(F − W_r ∗ F); the code first
   projects F with conv1×1 C→2C + dw3×3, splits the result in halves x1, x2 and computes
   L = GELU(W_r ∗ x1), H = GELU(W_1 ∗ x2 − W_r ∗ x1) (W_1 a depthwise 3×3). We follow the
   code: the paper's form is its special case x1 = x2, W_1 = identity, and with the code's
   split the parameter counts of all four rows of the paper's Table 4 are reproduced (B0
   0.30 M, B1 0.64 M, B2 1.09 M, B3 1.47 M; see item 4).
2. **Downsampling between levels** (silent in the paper): AvgPool 2×2 on L, then conv1×1 to
   double the channels; only L goes down (code).
3. **Temperature τ.** The paper says τ = √C′ and calls it learnable; we follow the code: q and
   k are L2-normalised over the pixels and multiplied by a learnable per-head temperature
   initialised to 1 (with unit vectors, dividing by √C′ would squash the logits).
4. **Feed-forward network.** The paper says ConvFFN; the code's blocks use a 1×1 MLP
   (conv1×1 C→2C → GELU → conv1×1 2C→C). We follow the code: with it the network has
   1,471,063 parameters (paper: 1.47 M) and the ablation variants 298,647 (no filters, no
   mixer; Table 4 B0: 0.30 M), 641,975 (+F_L; B1: 0.64 M) and 1,088,959 (+F_H; B2: 1.09 M).
   A depthwise 3×3 in every FFN would add 34,560 parameters (1.506 M).
5. **Query operators** (code): high-pass MaxPool 3×3 stride 1 → conv1×1 → GELU; low-pass
   AvgPool 2×2 stride 2 → conv1×1 → GELU → bilinear upsampling to the input size
   (align_corners=True). Attention convs have no bias (code).
6. **Layer norms.** Bias-included LayerNorm over channels (code), **except inside the
   manipulator**: there the norms have no bias and the FFN convs have no bias, so that
   F_L(0) = 0 and the manipulator maps δ = 0 to L′_d = L_d exactly. The authors' code has
   biases there, so an untrained (or imperfectly trained) net "magnifies" a still scene; the
   project's convention (Oh's no-bias manipulator) is that zero motion is a fixed point. W_1
   and W_2 have no bias (code) and GELU(0) = 0, so α = 0 is a fixed point as well.
7. **Mixer heads** {4, 4, 8} shallow → deep, as the F_H heads (code; the paper gives layers
   only). The mixer's key/value split uses the same AFDE unit as the encoder.
8. **Upsampling** (code): conv3×3 C→2C (no bias) + PixelShuffle 2, so each level halves the
   channels; the output head is conv3×3 C/2→3, linear (no tanh); callers clip.
9. **Magnifier** (Eq. 5 is ambiguous about which frame's L_d is updated): the query frame's,
   as in the code.
10. **Temporal mode** (not in the paper): the engine's temporal filter acts on L_d(t)
    pixel-wise over time and its output replaces δ, exactly as Oh's Eq. 4 does for M(t).

Ablation switches (``FD4MMNet(filters=..., mixer=..., attention=...)``, paper Tables 4 and 5):
``filters=False`` drops F_H and F_L (the H_i go straight to the decoder and δ straight to W_1),
``mixer=False`` drops the mixer blocks (the 1×1 fusion convs and the upsamplers stay), and
``attention="softmax"`` replaces ReLU by softmax everywhere.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .models import MagNet, arch_choice, per_sample
from .table import MANIPULATOR_FORMS

WIDTHS = (24, 48, 96)
HEADS = (4, 4, 8)
HIGHPASS_LAYERS = (2, 4, 4)
LOWPASS_LAYERS, LOWPASS_HEADS = 4, 8
MIXER_LAYERS = (6, 4, 4)


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of (N, C, H, W), with or without a bias.

    Both memory formats work; channels_last input normalises contiguous rows.
    """

    def __init__(self, c: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, 1e-5)
        return y.permute(0, 3, 1, 2)


class FreqSplit(nn.Module):
    """AFDE unit: (N, C, H, W) -> (high, low), each (N, C, H, W).

    [x1, x2] = dw3×3(conv1×1 C→2C (F)); low = GELU(W_r ∗ x1) with W_r a depthwise 3×3 conv of
    dilation ``rate``; high = GELU(W_1 ∗ x2 − W_r ∗ x1) with W_1 a depthwise 3×3 conv
    (the authors' code; the paper's H = F − W_r ∗ F is the case x1 = x2, W_1 = identity).
    """

    def __init__(self, c: int, rate: int = 2) -> None:
        super().__init__()
        self.pw = nn.Conv2d(c, 2 * c, 1)
        self.dw = nn.Conv2d(2 * c, 2 * c, 3, padding=1, groups=2 * c)
        self.feature = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.lowpass = nn.Conv2d(c, c, 3, padding=rate, dilation=rate, groups=c)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x1, x2 = self.dw(self.pw(x)).chunk(2, dim=1)
        if x1.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # under CPU bf16 autocast the backward of this dilated depthwise conv gave
            # non-finite weight gradients now and then: it runs in float32
            with torch.autocast("cpu", enabled=False):
                lo = self.lowpass(x1.float())
        else:
            lo = self.lowpass(x1)
        return F.gelu(self.feature(x2) - lo), F.gelu(lo)


def _heads(t: torch.Tensor, h: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, h, C/h, H·W)."""
    n, c = t.shape[:2]
    return t.reshape(n, h, c // h, -1)


def _channel_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int,
                       temperature: torch.Tensor, softmax: bool) -> torch.Tensor:
    """Transposed attention: q, k, v (N, C, H, W) -> (N, C, H, W); per head a C′×C′ matrix.

    q and k are L2-normalised over the pixels; A = ReLU(τ q kᵀ) (sparse, Eq. 4) or softmax.
    """
    n, c, hh, ww = v.shape
    q = F.normalize(_heads(q, heads), dim=-1)
    k = F.normalize(_heads(k, heads), dim=-1)
    a = (q @ k.transpose(-2, -1)) * temperature
    a = a.softmax(dim=-1) if softmax else F.relu(a)
    return (a @ _heads(v, heads)).reshape(n, c, hh, ww)


class SparseFilterAttention(nn.Module):
    """Sparse high-/low-pass filter attention of F_H / F_L: (N, C, H, W) -> (N, C, H, W).

    ``query="max"``: high-pass query operator MaxPool 3×3 s1 → conv1×1 → GELU (F_H).
    ``query="avg"``: low-pass query operator AvgPool 2×2 s2 → conv1×1 → GELU → bilinear up (F_L).
    """

    def __init__(self, c: int, heads: int, query: str, softmax: bool = False) -> None:
        super().__init__()
        arch_choice("query", query, ("max", "avg"))
        self.heads, self.query, self.softmax = heads, query, softmax
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(c, 3 * c, 1, bias=False)
        self.qkv_dw = nn.Conv2d(3 * c, 3 * c, 3, padding=1, groups=3 * c, bias=False)
        self.q_op = nn.Conv2d(c, c, 1)
        self.proj = nn.Conv2d(c, c, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv_dw(self.qkv(x)).chunk(3, dim=1)
        if self.query == "max":
            q = F.gelu(self.q_op(F.max_pool2d(q, 3, 1, 1)))
        else:
            size = q.shape[-2:]
            p = F.avg_pool2d(q, 2, 2) if min(size) >= 2 else q
            q = F.interpolate(F.gelu(self.q_op(p)), size=size, mode="bilinear",
                              align_corners=True)
        return self.proj(_channel_attention(q, k, v, self.heads, self.temperature,
                                            self.softmax))


class MixerAttention(nn.Module):
    """Sparse frequency mixer attention (Eq. 6): (N, C, H, W) -> (N, C, H, W).

    An AFDE split of the input gives Q (low-frequency part) and K = V (high-frequency part).
    """

    def __init__(self, c: int, heads: int, softmax: bool = False) -> None:
        super().__init__()
        self.heads, self.softmax = heads, softmax
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.split = FreqSplit(c)
        self.proj = nn.Conv2d(c, c, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hi, lo = self.split(x)
        return self.proj(_channel_attention(lo, hi, hi, self.heads, self.temperature,
                                            self.softmax))


class FFN(nn.Module):
    """conv1×1 C→eC → GELU → conv1×1 eC→C: (N, C, H, W) -> (N, C, H, W) (the authors' MLP)."""

    def __init__(self, c: int, expansion: int = 2, bias: bool = True) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(c, c * expansion, 1, bias=bias)
        self.fc2 = nn.Conv2d(c * expansion, c, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Transformer block x + Attn(LN(x)); x + FFN(LN(x)): (N, C, H, W) -> (N, C, H, W).

    ``kind``: "highpass" (F_H), "lowpass" (F_L) or "mixer" (M). ``bias=False`` removes every
    bias of the norms and the FFN, so that (with the bias-free attention) Block(0) = 0;
    ``norm=False`` drops the layer norms, so that the block does not undo the input's scale.
    """

    def __init__(self, c: int, heads: int, kind: str, softmax: bool = False,
                 bias: bool = True, norm: bool = True) -> None:
        super().__init__()
        self.norm1: nn.Module = ChannelNorm(c, bias) if norm else nn.Identity()
        self.norm2: nn.Module = ChannelNorm(c, bias) if norm else nn.Identity()
        if kind == "mixer":
            self.attn: nn.Module = MixerAttention(c, heads, softmax)
        else:
            self.attn = SparseFilterAttention(c, heads, "max" if kind == "highpass" else "avg",
                                              softmax)
        self.ffn = FFN(c, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


def _stack(n: int, c: int, heads: int, kind: str, softmax: bool, bias: bool = True,
           norm: bool = True) -> nn.Sequential:
    return nn.Sequential(*[Block(c, heads, kind, softmax, bias, norm) for _ in range(n)])


class Upsample(nn.Module):
    """conv3×3 C→2C (no bias) + PixelShuffle 2: (N, C, H, W) -> (N, C/2, 2H, 2W)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, 2 * c, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.conv(x), 2)


#: Mean |g δ| after :meth:`FD4MMNet.calibrate`: small enough that F_L's GELUs stay nearly
#: linear (measured at init: change(2δ) / change(δ) = 2.005, and change(−δ) cancels
#: change(δ) to 0.17 of its size; at 1.0 these are 2.04 and 0.51).
DELTA_SCALE = 0.1


class FD4MMNet(MagNet):
    """FD4MM (digest §3.3) on the project's encode / manipulate / decode interface.

    Parameters
    ----------
    filters : bool
        Keep the sparse high-pass (F_H) and low-pass (F_L) filters (ablation: False).
    mixer : bool
        Keep the sparse frequency mixer blocks (ablation: False).
    attention : {"relu", "softmax"}
        ReLU sparse attention (the paper) or softmax (its Table 5 ablation).
    manipulator : {"paper", "linear"}
        "paper": ``L_d + GELU(W_2(amp · GELU(W_1(F_L(δ)))))`` with layer norms in F_L.
        "linear" (the project's fix): no layer norms in F_L and no GELU around W_1 and W_2,
        ``L_d + W_2(amp · W_1(F_L(g ⊙ δ)))`` with a per-channel input gain g set to
        ``DELTA_SCALE`` / E|δ| by :meth:`calibrate`. The paper's layer norms rescale every δ to
        unit size, so the change they produce does not grow with the motion, and the outer GELU
        passes only one sign of it: trained so, the network learns to return its input
        (docs/training_log.md, "Why fd4mm returned its input").

    Notes
    -----
    - ``encode(x)``: (N, 3, H, W) -> texture ``(Hs (N, 24, H/2, W/2), Hm (N, 48, H/4, W/4),
      Hd (N, 96, H/8, W/8))`` (after F_H) and shape ``L_d`` (N, 96, H/8, W/8).
    - ``manipulate(L_a, L_b, amp)`` -> L′_d (N, 96, H/8, W/8).
    - ``decode(texture, L′_d)`` -> image (N, 3, H, W), linear (callers clip to [−1, 1]).

    H and W must be multiples of :attr:`stride` (8). See the module docstring for every
    choice made where the paper is silent or disagrees with the authors' code.
    """

    stride = 8
    #: downsampling factor of each texture tensor and of the shape tensor (for tiling)
    texture_factors = (2, 4, 8)
    shape_factor = 8

    def __init__(self, filters: bool = True, mixer: bool = True,
                 attention: str = "relu", manipulator: str = "paper") -> None:
        super().__init__()
        arch_choice("attention", attention, ("relu", "softmax"))
        arch_choice("manipulator", manipulator, ("paper", *MANIPULATOR_FORMS["fd4mm"]))
        self.arch = {"filters": bool(filters), "mixer": bool(mixer), "attention": attention,
                     "manipulator": manipulator}
        self.linear_manipulator = manipulator == "linear"
        sm = attention == "softmax"
        c0, c1, c2 = WIDTHS
        # AFDE
        self.embed = nn.Conv2d(3, c0, 3, stride=2, padding=1, bias=False)
        self.split = nn.ModuleList(FreqSplit(c) for c in WIDTHS)
        self.widen = nn.ModuleList([nn.Conv2d(c0, c1, 1), nn.Conv2d(c1, c2, 1)])
        self.highpass = nn.ModuleList(
            _stack(n, c, h, "highpass", sm) if filters else nn.Identity()
            for n, c, h in zip(HIGHPASS_LAYERS, WIDTHS, HEADS, strict=True))
        # manipulator: F_L and the point-wise magnifier W_2(amp · W_1(.))
        self.lowpass = (_stack(LOWPASS_LAYERS, c2, LOWPASS_HEADS, "lowpass", sm, bias=False,
                               norm=not self.linear_manipulator)
                        if filters else nn.Identity())
        self.w1 = nn.Conv2d(c2, c2, 1, bias=False)
        self.w2 = nn.Conv2d(c2, c2, 1, bias=False)
        if self.linear_manipulator:
            # δ is ~1e-5 of a unit (L_d barely moves with the scene), so the linear path gets
            # no gradient: a per-channel input gain, set once to 1 / E|δ| (:meth:`calibrate`),
            # gives it unit scale and stays linear in δ.
            self.delta_gain = nn.Parameter(torch.ones(1, c2, 1, 1))
            # L_d is small (mean |L_d| 0.076) beside the texture features it is fused with,
            # so the decoder barely sees a change of it (decoded difference 1.6e-3 of the
            # change, measured): the decoder reads it through a gain set to 1 / E|L_d|.
            self.shape_gain = nn.Parameter(torch.ones(1, c2, 1, 1))
            self.register_buffer("delta_gain_calibrated", torch.zeros(()))
        # recoupling, deep -> shallow (index = level)
        self.fuse = nn.ModuleList(nn.Conv2d(2 * c, c, 1) for c in WIDTHS)
        self.mix = nn.ModuleList(
            _stack(n, c, h, "mixer", sm) if mixer else nn.Identity()
            for n, c, h in zip(MIXER_LAYERS, WIDTHS, HEADS, strict=True))
        self.up = nn.ModuleList(Upsample(c) for c in WIDTHS)
        self.out = nn.Conv2d(c0 // 2, 3, 3, padding=1)
        self._init_encoder()

    def _init_encoder(self) -> None:
        """Variance-preserving init of the AFDE path that makes L_d (fan-in He normal, zero
        biases). With PyTorch's default init each of its ~14 layers scales the content by
        about 0.6 while the biases add a constant, so L_d was the same for any image (two
        different frames: 2e-5 apart, |L_d| 0.076; a motion moved it by 1e-4 of itself,
        and 9,378 steps of training did not change that). With this init a motion moves
        L_d by 0.40 of itself at step 0 (the realtime encoder: 0.30); docs/training_log.md."""
        for module in (self.embed, *self.split, *self.widen):
            for conv in module.modules():
                if isinstance(conv, nn.Conv2d):
                    nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
                    if conv.bias is not None:
                        nn.init.zeros_(conv.bias)

    def encode(self, x: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """(N, 3, H, W) -> (texture (Hs, Hm, Hd) after F_H, shape L_d (N, 96, H/8, W/8))."""
        f = self.embed(x)
        highs = []
        for i in range(3):
            if i:
                f = self.widen[i - 1](F.avg_pool2d(f, 2))
            hi, f = self.split[i](f)
            highs.append(self.highpass[i](hi))
        return tuple(highs), f

    def manipulate(self, m_ref: torch.Tensor | None, m: torch.Tensor,
                   amp: torch.Tensor | float, delta: torch.Tensor | None = None) -> torch.Tensor:
        """L′_d = L_d + W_2(amp · W_1(F_L(δ))), δ = ``delta`` if given else L_d − L_ref.

        ``m``, ``m_ref``, ``delta``: (N, 96, H/8, W/8); ``amp``: a float or a tensor
        broadcastable to (N, 1, 1, 1). δ = 0 or amp = 0 give back ``m`` exactly.
        """
        d = delta if delta is not None else m - m_ref
        amp = per_sample(amp, m)
        if self.linear_manipulator:
            return m + self.w2(self.w1(self.lowpass(d * self.delta_gain)) * amp)
        u = F.gelu(self.w1(self.lowpass(d)))
        return m + F.gelu(self.w2(u * amp))

    @torch.no_grad()
    def calibrate(self, delta: torch.Tensor, shape: torch.Tensor | None = None) -> bool:
        """Set the linear manipulator's input gain to ``DELTA_SCALE`` / mean |δ| per channel, once.

        ``delta``: motion signals (N, 96, H/8, W/8) of a training batch; ``shape``: their
        L_d, which sets the decoder's shape gain to 1 / mean |L_d| per channel. A data-dependent
        initialisation (as for weight normalisation): it is recorded in the weights
        (``delta_gain_calibrated``), so resumed and warm-started runs keep their gain.
        Returns True when it set the gain.
        """
        if not self.linear_manipulator or bool(self.delta_gain_calibrated):
            return False
        scale = delta.detach().float().abs().mean(dim=(0, 2, 3), keepdim=True)
        self.delta_gain.copy_(DELTA_SCALE / scale.clamp_min(1e-8))
        if shape is not None:
            size = shape.detach().float().abs().mean(dim=(0, 2, 3), keepdim=True)
            self.shape_gain.copy_(1.0 / size.clamp_min(1e-8))
        self.delta_gain_calibrated.fill_(1.0)
        return True

    def decode(self, v: tuple[torch.Tensor, ...], m: torch.Tensor) -> torch.Tensor:
        """texture (Hs, Hm, Hd), manipulated L′_d (N, 96, H/8, W/8) -> image (N, 3, H, W)."""
        x = m * self.shape_gain if self.linear_manipulator else m
        for i in (2, 1, 0):
            x = self.fuse[i](torch.cat([x, v[i]], dim=1))
            x = self.up[i](self.mix[i](x))
        return self.out(x)


__all__ = ["FD4MMNet"]
