"""The Singh thesis models (digest §3.4, §3.6–§3.8): LNVMM, MDLMM and σ-θ Net here, HMN in
:mod:`.hmn`.

None of them has public code; every architecture here is rebuilt from the thesis text, and
every place where the thesis gives only a figure or is silent is a choice, listed in the
class docstrings and in docs/thesis_models.md.

Common conventions (the project's, shared with :mod:`.models` and :mod:`.fd4mm`):

- images in [−1, 1]; ``amp`` is the project α (output motion = (1 + α) × input motion); the
  thesis' M_f has no fixed relation to it (its own tables use M_f = 50 for a 100× test).
- The two frames are the reference (the thesis' previous frame F_{t−1} / I_0 / I_t1) and the
  current frame (F_t / I_1 / I_t2); the output is the magnified current frame.
- All four follow the engine's ``encode`` / ``manipulate`` / ``decode`` contract so static,
  dynamic and temporal modes work. LNVMM's motion representation is its encoder output, like
  Oh's. MDLMM, σ-θ Net and HMN compute their motion features *non-linearly from both frames*
  (Fourier phase, gradient phase, Sobel-edge differences with the raw frames), so their
  ``encode`` returns the frame itself as the motion signal: the engine's difference gives the
  reference frame back exactly (I_ref = I_t − (I_t − I_ref)) in static and dynamic mode; in
  temporal mode the "reference" is I_t − T(I)(t), the frame with the band's motion removed.
- ``manipulate`` returns whatever ``decode`` needs (a tuple for the three models above); the
  magnifier only passes it from one to the other.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..magnifiers.riesz import riesz_transform
from .models import MagNet, ResBlock, arch_choice, conv, per_sample, upsample_nearest
from .table import MANIPULATOR_FORMS

#: σ-θ Net's manipulator forms (the paper's and :data:`.table.MANIPULATOR_FORMS`'s)
SIGMA_THETA_MANIPULATORS = ("paper", *MANIPULATOR_FORMS["sigma_theta"])
#: the forms that keep each direction's band (at four resolutions)
SIGMA_THETA_BAND_FORMS = ("riesz-directions", "riesz-readout")
#: support in px of the Riesz kernel of the Riesz forms (at each resolution)
SIGMA_THETA_RIESZ_RADIUS = 8


def wrap_phase(p: torch.Tensor) -> torch.Tensor:
    """Wrap angles to (−π, π]."""
    return torch.remainder(p + math.pi, 2 * math.pi) - math.pi


def finite_diff_edges(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal and vertical forward differences of (N, C, H, W)."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def sobel(x: torch.Tensor) -> torch.Tensor:
    """Sobel (gx, gy) of every channel, replicate borders: (N, C, H, W) -> (N, 2C, H, W)."""
    c = x.shape[1]
    k = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]],
                     dtype=x.dtype, device=x.device) / 8.0
    ks = torch.stack([k, k.t()])[:, None].repeat(c, 1, 1, 1)  # (2C, 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), ks, groups=c)


# =============================================================================================
# LNVMM (Ch. 3)
# =============================================================================================

class LNVMMNet(MagNet):
    """LNVMM / LWVMM (thesis Ch. 3, WACV 2023; digest §3.4), base M1 and light M2.

    Parameters
    ----------
    variant : {"base", "light"}
        M1 (C = 24, 1.10 M parameters in the thesis) or M2 (C = 8, 0.12 M).

    Notes
    -----
    Shapes for an input pair (N, 3, H, W), H and W even (``stride`` 2), C = 24 (M1) or 8 (M2):

    - feature-sharing encoder (weights shared by the two streams), per stream:
      conv3×3 3→C + ReLU → ResBlock(C) → **share 1**: conv3×3 on concat(own, other stream)
      2C→C + ReLU → MaxPool 2 → conv3×3 C→2C + ReLU → 4 ResBlock(2C) → **share 2**:
      conv3×3 on concat(own, other) 4C→2C + ReLU = E′ (N, 2C, H/2, W/2) → ResBlock(2C) = E.
    - appearance encoder A: conv3×3 on ζ(E′_t, E′_ref) = concat 4C→2C + ReLU → 4 ResBlock(2C):
      (N, 2C, H/2, W/2). Training-only head φ: conv3×3 2C→3 + tanh at H/2.
    - manipulator: M(amp · (E_t − E_ref)) = conv3×3 2C→2C + ReLU → 3 ResBlock(2C).
    - fusion: M(·) + A, summed; decoder: 10 ResBlock(2C) → NN-up ×2 → conv3×3 2C→C + ReLU →
      3 ResBlock(C) → conv3×3 C→3 + tanh: (N, 3, H, W).

    Engine contract: ``encode(x)`` -> (texture A (N, 2C, H/2, W/2), shape E (N, 2C, H/2,
    W/2)); ``manipulate`` -> M(amp·ΔE); ``decode(A, M)`` -> D(A + M).

    Choices where the thesis is silent or figure-only:

    1. Block counts (encoder 1 + 4 + 1, appearance 4, manipulator 3 residual blocks) and the
       two concatenation points (before the max-pool and at the end of the trunk) are ours,
       chosen to reproduce the parameter counts (M1 1,091,232 vs 1.10 M; M2 121,824 vs
       0.12 M). The encoder streams share their weights (a per-frame encoder is what the
       engine needs), max-pool factor 2, ReLU, no biases (so M(0) = 0: α = 0 or no motion
       gives the decoder the appearance features alone).
    2. Which frame is E_a (figure-only): ΔE = E_t − E_ref, current minus reference, so the
       thesis' (E_a − E_b)·M_f has the project's sign.
    3. **Inference pairing.** The engine encodes one frame at a time; a stream whose partner
       is not given shares with itself (concat(own, own)). Training pairs each frame with the
       other frame half of the time and with itself the other half (``share_dropout`` of
       the trainer), so both cases are in the training distribution.
    4. The appearance head φ works at H/2; its targets are the 2×2-average-pooled noise-free
       frames (the thesis does not say where φ is applied).
    5. Upsampling: nearest ×2 (silent). Output: tanh (thesis).
    """

    shape_fixed_at_zero = False  # decoding twice decodes the shape manipulated at 0

    stride = 2
    texture_factors = (2,)
    shape_factor = 2

    def __init__(self, variant: str = "base") -> None:
        super().__init__()
        arch_choice("variant", variant, ("base", "light"))
        self.arch = {"variant": variant}
        c = 24 if variant == "base" else 8
        c2 = 2 * c
        self.stem = nn.Sequential(conv(3, c, 3), nn.ReLU(), ResBlock(c))
        self.share1 = nn.Sequential(conv(2 * c, c, 3), nn.ReLU())
        self.trunk = nn.Sequential(conv(c, c2, 3), nn.ReLU(), *[ResBlock(c2) for _ in range(4)])
        self.share2 = nn.Sequential(conv(2 * c2, c2, 3), nn.ReLU())
        self.enc_out = ResBlock(c2)
        self.app = nn.Sequential(conv(2 * c2, c2, 3), nn.ReLU(), *[ResBlock(c2) for _ in range(4)])
        self.app_head = conv(c2, 3, 3)
        self.manip = nn.Sequential(conv(c2, c2, 3), nn.ReLU(), *[ResBlock(c2) for _ in range(3)])
        self.dec = nn.Sequential(*[ResBlock(c2) for _ in range(10)])
        self.dec_up = nn.Sequential(conv(c2, c, 3), nn.ReLU(), *[ResBlock(c) for _ in range(3)])
        self.out = conv(c, 3, 3)

    def streams(self, xa: torch.Tensor, xb: torch.Tensor | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Both feature-sharing streams: (E_a, E′_a, E_b, E′_b); ``xb`` None: a self-pair."""
        fa = self.stem(xa)
        fb = fa if xb is None else self.stem(xb)
        ga = self.trunk(F.max_pool2d(self.share1(torch.cat([fa, fb], 1)), 2))
        gb = ga if xb is None else \
            self.trunk(F.max_pool2d(self.share1(torch.cat([fb, fa], 1)), 2))
        pa = self.share2(torch.cat([ga, gb], 1))
        pb = pa if xb is None else self.share2(torch.cat([gb, ga], 1))
        ea = self.enc_out(pa)
        eb = ea if xb is None else self.enc_out(pb)
        return ea, pa, eb, pb

    def appearance(self, p_cur: torch.Tensor, p_other: torch.Tensor) -> torch.Tensor:
        """A(ζ(E′_cur, E′_other)): (N, 2C, H/2, W/2)."""
        return self.app(torch.cat([p_cur, p_other], 1))

    def appearance_image(self, a: torch.Tensor) -> torch.Tensor:
        """Training-only head φ(A) = tanh(conv3×3(A)): (N, 3, H/2, W/2)."""
        return torch.tanh(self.app_head(a))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, H, W) -> texture A (N, 2C, H/2, W/2), shape E (N, 2C, H/2, W/2) (self-pair)."""
        e, p, _, _ = self.streams(x)
        return self.appearance(p, p), e

    def manipulate(self, m_ref: torch.Tensor | None, m: torch.Tensor,
                   amp: torch.Tensor | float, delta: torch.Tensor | None = None) -> torch.Tensor:
        """M(amp · ΔE), ΔE = ``delta`` if given else E − E_ref; (N, 2C, H/2, W/2)."""
        d = delta if delta is not None else m - m_ref
        return self.manip(d * per_sample(amp, m))

    def decode(self, v: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """A (N, 2C, H/2, W/2), M(·) (same) -> tanh image (N, 3, H, W)."""
        return torch.tanh(self.out(self.dec_up(upsample_nearest(self.dec(v + m)))))

    def forward(self, xa: torch.Tensor, xb: torch.Tensor,
                amp: torch.Tensor | float) -> torch.Tensor:
        """Two-frame magnification with cross-stream sharing: ref ``xa``, current ``xb``."""
        return self.twice(self.pair, xa, xb, amp)

    def pair(self, xa: torch.Tensor, xb: torch.Tensor,
             amp: torch.Tensor | float) -> torch.Tensor:
        ea, pa, eb, pb = self.streams(xa, xb)
        return self.decode(self.appearance(pb, pa), self.manipulate(ea, eb, amp))


# =============================================================================================
# MDLMM (Ch. 5)
# =============================================================================================

class FCB(nn.Module):
    """Fixed concatenate block ELU(conv3×3(concat(x, fixed))): (N, cin + cf, ·) -> (N, f, ·)."""

    def __init__(self, cin: int, cfixed: int, f: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin + cfixed, f, 3, padding=1)

    def forward(self, x: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
        return F.elu(self.conv(torch.cat([x, fixed], 1)))


class FCBChain(nn.Module):
    """n FCBs with the same fixed input; the first takes ``cin`` channels, the rest f."""

    def __init__(self, n: int, cin: int, cfixed: int, f: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(FCB(cin if i == 0 else f, cfixed, f) for i in range(n))

    def forward(self, x: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = b(x, fixed)
        return x


def spectrum(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(log(1 + |F|), angle F) of every channel, orthonormal FFT, DC centred (fftshift)."""
    s = torch.fft.fftshift(torch.fft.fft2(x.float(), norm="ortho"), dim=(-2, -1))
    return torch.log1p(s.abs()), torch.angle(s)


def inverse_spectrum(log_amp: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    s = torch.polar(torch.expm1(log_amp).clamp(min=0), phase)
    return torch.fft.ifft2(torch.fft.ifftshift(s, dim=(-2, -1)), norm="ortho").real


class MDLMMNet(MagNet):
    """MDLMM / MD-MM (thesis Ch. 5, CVPR 2023; digest §3.6), models D1 and D2.

    Parameters
    ----------
    variant : {"d1", "d2"}
        D1 (f = 20 channels, 0.117 M parameters in the thesis) or D2 (f = 13, 0.053 M).

    Notes
    -----
    Shapes, input pair (N, 3, H, W), H and W multiples of 8 (``stride``):

    - FFT: per RGB channel, orthonormal 2-D FFT, fftshift; amplitude as log(1 + |F|), phase
      as the wrapped angle, each (N, 3, H, W). No convolution before the differences.
    - FDMM, two streams of 3 FCBs (f channels) + conv3×3 f→3:
      φ_m = φ_1 + α·wrap(φ_1 − φ_0) + P(α·wrap(φ_1 − φ_0); fixed φ_1/π),
      A_m = A_1 + Q(α·(A_1 − A_0); fixed A_1); Î_m = Re F⁻¹{(exp(A_m) − 1)·e^{iφ_m}}.
    - RMTE: R_m = conv(FCB×6{α·ψ·FCB×2{I_1 − I_0; I_1}; I_1}) (N, 3, H, W), with the
      spatial attention ψ = sigmoid(conv3×3(concat(Î_m − I_1, Î_m − I_0))) (N, 1, H, W).
    - MSTG, scales /8, /4, /2, /1 by average pooling of the images: I_m/8 = Î_m/8; at each
      finer scale n, I^{prev} = convT2×2(concat(I_m/2n, I_1/2n)) and
      I_m/n = Î_m/n + conv(FCB×6{I^{prev} − I_0/n + R_m/n; I_1/n}); the output is I_m/1.

    Choices where the thesis is silent:

    1. f = 20 (D1) / 13 (D2) (the thesis points to a table that does not exist): 118,298
       and 55,704 parameters vs 0.117 M / 0.053 M.
    2. Phase as a raw wrapped angle (scaled by 1/π as the fixed input), amplitude as
       log(1 + |F|); spectra fftshifted so that neighbouring convolution taps are
       neighbouring frequencies.
    3. α enters FDMM by scaling the phase / amplitude differences, and the phase stream is a
       residual on top of the linear phase magnification φ_1 + α·Δφ (Eq. 5.1), so the
       untrained stream already magnifies like the phase-based method.
    4. 3 FCBs per FDMM stream; ψ from the two differences of Î_m (both readings of the
       digest); R_m brought to each scale by average pooling; conv-transpose 2×2 / 2 on
       the 6-channel concat (image + I_1) to 3 channels.
    5. The motion signal for the engine is the frame itself (module docstring): the FFT of
       the reference is that of I_1 − ΔI. With tiling (frames above ``net_tile``) the FFT is
       per tile.
    6. Linear output (callers clip), as oh2018.
    """

    shape_fixed_at_zero = False  # decoding twice decodes the shape manipulated at 0

    stride = 8
    texture_factors = (1,)
    shape_factor = 1

    def __init__(self, variant: str = "d1") -> None:
        super().__init__()
        arch_choice("variant", variant, ("d1", "d2"))
        self.arch = {"variant": variant}
        f = 20 if variant == "d1" else 13
        self.phase = FCBChain(3, 3, 3, f)
        self.phase_out = nn.Conv2d(f, 3, 3, padding=1)
        self.ampl = FCBChain(3, 3, 3, f)
        self.ampl_out = nn.Conv2d(f, 3, 3, padding=1)
        self.psi = nn.Conv2d(6, 1, 3, padding=1)
        self.rmte_in = FCBChain(2, 3, 3, f)
        self.rmte = FCBChain(6, f, 3, f)
        self.rmte_out = nn.Conv2d(f, 3, 3, padding=1)
        self.mstg = nn.ModuleList(FCBChain(6, 3, 3, f) for _ in range(3))
        self.mstg_out = nn.ModuleList(nn.Conv2d(f, 3, 3, padding=1) for _ in range(3))
        self.mstg_up = nn.ModuleList(nn.ConvTranspose2d(6, 3, 2, stride=2) for _ in range(3))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, H, W) -> (texture I, shape I): the frame itself (see the module docstring)."""
        return x, x

    def manipulate(self, m_ref: torch.Tensor | None, m: torch.Tensor,
                   amp: torch.Tensor | float, delta: torch.Tensor | None = None) -> tuple:
        """FDMM. Returns (Î_m, A_m, φ_m, I_1, I_0, amp), all images (N, 3, H, W)."""
        i1 = m
        i0 = m - delta if delta is not None else m_ref
        a = per_sample(amp, m)
        la1, p1 = spectrum(i1)
        la0, p0 = spectrum(i0)
        dp = wrap_phase(p1 - p0) * a
        phase_m = p1 + dp + self.phase_out(self.phase(dp, p1 / math.pi))
        ampl_m = la1 + self.ampl_out(self.ampl((la1 - la0) * a, la1))
        i_hat = inverse_spectrum(ampl_m, phase_m).to(m.dtype)
        return i_hat, ampl_m, phase_m, i1, i0, a

    def decode(self, v: torch.Tensor, m: tuple) -> torch.Tensor:
        """``v`` = I_1, ``m`` = :meth:`manipulate`'s tuple -> image (N, 3, H, W)."""
        i_hat, _, _, i1, i0, a = m
        psi = torch.sigmoid(self.psi(torch.cat([i_hat - i1, i_hat - i0], 1)))
        r = self.rmte_out(self.rmte(a * psi * self.rmte_in(i1 - i0, i1), i1))
        pyr = {1: (i_hat, i1, i0, r)}
        for n in (2, 4, 8):
            pyr[n] = tuple(F.avg_pool2d(t, 2) for t in pyr[n // 2])
        out = pyr[8][0]
        for k, n in enumerate((4, 2, 1)):
            ih, c1, c0, rn = pyr[n]
            prev = self.mstg_up[k](torch.cat([out, pyr[2 * n][1]], 1))
            out = ih + self.mstg_out[k](self.mstg[k](prev - c0 + rn, c1))
        return out


# =============================================================================================
# σ-θ Net (Ch. 6)
# =============================================================================================

def _gauss_kernels(sigmas: torch.Tensor) -> list[torch.Tensor]:
    """Normalised 1-D Gaussians of sizes 3, 5, 7 with (learnable) standard deviations."""
    out = []
    for i, s in enumerate(sigmas):
        r = i + 1
        x = torch.arange(-r, r + 1, dtype=s.dtype, device=s.device)
        g = torch.exp(-0.5 * (x / s.abs().clamp(min=0.2)) ** 2)
        out.append(g / g.sum())
    return out


class DSBlock(nn.Module):
    """Depthwise-separable block r(·): dw3×3 → pw cin→c → ELU → dw3×3 → pw c→1."""

    def __init__(self, cin: int, c: int) -> None:
        super().__init__()
        self.dw1 = nn.Conv2d(cin, cin, 3, padding=1, groups=cin)
        self.pw1 = nn.Conv2d(cin, c, 1)
        self.dw2 = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.pw2 = nn.Conv2d(c, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw2(self.dw2(F.elu(self.pw1(self.dw1(x)))))


class MSCC(nn.Module):
    """Multi-scale channel-compression block (Ch. 6): (N, c, H, W), image -> (N, c, H, W).

    f̃ = ELU(conv3×3(concat(f, I))); out = ELU(w_0 f̃ + Σ_i w_i conv3×3_{d=2^i}(conv3×3
    c→c/2^i (f̃))), i = 1..3, softmax weights w.
    """

    def __init__(self, c: int, cimg: int = 3) -> None:
        super().__init__()
        self.inp = nn.Conv2d(c + cimg, c, 3, padding=1)
        self.squeeze = nn.ModuleList(nn.Conv2d(c, max(1, c >> i), 3, padding=1)
                                     for i in (1, 2, 3))
        self.expand = nn.ModuleList(nn.Conv2d(max(1, c >> i), c, 3, padding=2 ** i,
                                              dilation=2 ** i) for i in (1, 2, 3))
        self.w = nn.Parameter(torch.zeros(4))

    def forward(self, f: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        t = F.elu(self.inp(torch.cat([f, img], 1)))
        w = self.w.softmax(0)
        out = w[0] * t
        for i in range(3):
            out = out + w[i + 1] * self.expand[i](F.elu(self.squeeze[i](t)))
        return F.elu(out)


class SigmaThetaNet(MagNet):
    """σ-θ Net (thesis Ch. 6; digest §3.7): learnable scale space and steerable gradients.

    Notes
    -----
    Shapes, input pair (N, 3, H, W), H and W even (``stride`` 2), c = 12:

    - manipulator, at the full and the half resolution (2×2 average pooling), on the gray
      frame g = mean(RGB):
      scale space g^σ = w^σ_0 g + Σ_{i=1..3} w^σ_i (g ⊗ G_{(2i+1)×(2i+1)}(σ_i)), σ_i learnable
      (init 0.5, 1, 1.5), w^σ = softmax of 4 scalars; Sobel gx, gy of g^σ; for 9 learnable
      angles θ_i (init 2πi/9): a_i = gx cos θ_i + gy sin θ_i, b_i = −gx sin θ_i + gy cos θ_i,
      R_i = √(a_i² + b_i² + ε), φ_i = atan2(b_i, a_i) (N, 9, H, W) per frame;
      φ_m = Σ_i w^θ_i (φ_i,t2 + r_φ(α·wrap(φ_i,t2 − φ_i,t1), φ_i,t2)), same for R with r_R;
      r = depthwise-separable block (2 → c → 1), shared by the 9 directions; w^θ = softmax;
      M = (R_m cos φ_m, R_m sin φ_m) (N, 2, H, W). Fusion: concat(M_full, NN-up(M_half))
      → conv3×3 4→c + ELU: (N, c, H, W).
    - decoder: 3 MSCC(c) at H (each sees I_t2) → conv3×3/2 c→2c + ELU → 4 MSCC(2c) at H/2
      (each sees the pooled I_t2) → NN-up + conv3×3 2c→c + ELU, added to the full-resolution
      features → 3 MSCC(c) → conv3×3 c→3 + tanh.

    Choices where the thesis is silent or ambiguous:

    1. φ and R of a directional gradient (undefined in the thesis): the digest's reading,
       phase and magnitude of the quadrature pair (∇^θ, ∇^{θ+90}); Eq. 6.9 as two channels.
    2. W^σ, W^θ, W^d are softmax weights over learnable scalars (not per channel).
    3. Gradients on the gray frame; two resolutions (1 and 1/2), fused by concatenation.
    4. MSCC block counts 3 + 4 + 3, compressions c/2, c/4, c/8 floored (12 → 6, 3, 1; 24 → 12,
       6, 3), stride-2 conv down, nearest up: 89,546 parameters (thesis 0.085 M).
    5. Motion signal for the engine: the frame itself (module docstring).

    ``manipulator="linear"`` (the project's fix, as MDLMM's choice 3): φ_m and R_m are
    residuals on the linear magnification, φ_i,t2 + α·wrap(Δφ_i) + r_φ(·) and
    R_i,t2 + α·ΔR_i + r_R(·), so the motion reaches the decoder before any training. In the
    paper's form r must learn to pass α·Δ on, and trained so its change stayed ~10⁻³ of the
    target's (docs/training_log.md, "Why five thesis models do not magnify"). Same
    parameters either way.

    ``manipulator="riesz"`` (the project's second reading of choice 1, with the linear
    magnification): in the digest's reading φ_i = atan2(∇^{θ+90}, ∇^θ) is the gradient's
    orientation minus θ_i and R_i its magnitude for every i, so the nine directions carry
    one signal and a translation leaves φ unchanged: motion reaches M only as the change of
    the gradient field, a linear Eulerian signal (docs/training_log.md, "σ-θ Net's phase").
    The Riesz form pairs each directional derivative d_i = ∇^{θ_i} g^σ with its quadrature
    q_i = cos θ_i·R_x(d_i) + sin θ_i·R_y(d_i) (Riesz transform, kernels of
    ``SIGMA_THETA_RIESZ_RADIUS`` px): φ_i = atan2(q_i, d_i) is d_i's local phase, which a
    shift by δ along θ_i moves by −ω·δ, and R_i its local amplitude. Same parameters.

    ``manipulator="riesz-pyramid"`` (the project's reading of "several resolutions", choice
    3): the Riesz form at 1, 1/2, 1/4 and 1/8 of the frame, fused by one conv 8→c (the
    levels below 1/2 bilinearly upsampled), ``stride`` 8: 432 parameters more. At two
    resolutions a phase of 8 px kernels cannot hold the output motion of the thesis
    protocol (0.2 px × 49.5 ≈ 10 px at the edge of a disc of 40 px); at 1/8 it is 1.2 px.
    Weights of the "riesz" form load into it with the new fusion inputs zeroed
    (:func:`napari_vmm.training.widen.grow_inputs`), the same function.

    ``manipulator="riesz-directions"`` (the project's reading of Eq. 6.7's sum): the
    pyramid form, and the fusion also reads each direction's magnified band
    (R_m,i cos φ_m,i, R_m,i sin φ_m,i) at every level, (N, 72, H, W) over the four levels,
    through a conv of its own (``fuse_bands``, 72→c, no bias, 7,776 parameters more) that
    starts at zero. The bands are not weighted by w^θ_i: at a ninth of the summed channels'
    size their weights would have to grow nine times as far. With θ_i spread over 2π and
    w^θ near uniform, a translation moves the φ_i of opposite directions in opposite senses,
    so Σ_i w^θ_i φ_i keeps about a tenth of their change (the trained weights, a 0.1 px
    shift: 0.005 rad against 0.047 per direction) and none of its direction
    (docs/training_log.md, "σ-θ Net's directions"). Weights of the pyramid form load into
    it as they are (``fuse_bands`` stays at zero), the same function; ``vmm train
    --lr-scale fuse_bands=10`` lets the new conv catch up.

    ``manipulator="riesz-readout"`` (the project's reading of "manipulator features + I_t2
    (added)" and of Eq. 6.9's sum, an image-space M): the directions form, and each level's
    bands (N, 18, H/2^l, W/2^l) are also read out by a 3×3 conv of their own
    (``read_bands``, 18→3, no bias, at the level's resolution, bilinearly upsampled and
    summed over the levels) into an image added to the decoded one. Decoding twice, this
    adds a linear function of the bands' change, the path by which the image change of a
    motion is a local linear function of its phase-shifted bands (their quadrature
    component over the band's frequency), with no decoder in between. ``read_bands`` starts
    at zero (1,944 parameters more), so directions weights load at their own function.
    """

    shape_fixed_at_zero = False  # decoding twice decodes the shape manipulated at 0

    stride = 2
    texture_factors = (1,)
    shape_factor = 1
    n_theta = 9

    def __init__(self, c: int = 12, manipulator: str = "paper") -> None:
        super().__init__()
        arch_choice("manipulator", manipulator, SIGMA_THETA_MANIPULATORS)
        self.arch = {"manipulator": manipulator}
        self.linear_manipulator = manipulator != "paper"
        self.riesz_phase = manipulator.startswith("riesz")
        self.per_direction = manipulator in SIGMA_THETA_BAND_FORMS
        self.readout = manipulator == "riesz-readout"
        self.levels = 4 if manipulator in ("riesz-pyramid", *SIGMA_THETA_BAND_FORMS) else 2
        self.stride = 2 ** (self.levels - 1)
        self.sigma = nn.Parameter(torch.tensor([0.5, 1.0, 1.5]))
        self.w_sigma = nn.Parameter(torch.zeros(4))
        self.theta = nn.Parameter(torch.arange(self.n_theta, dtype=torch.float32)
                                  * (2 * math.pi / self.n_theta))
        self.w_theta = nn.Parameter(torch.zeros(self.n_theta))
        self.r_phase = DSBlock(2, c)
        self.r_mag = DSBlock(2, c)
        self.fuse = nn.Conv2d(2 * self.levels, c, 3, padding=1)
        if self.per_direction:  # the bands' own fusion conv, from zero: the same function
            self.fuse_bands = nn.Conv2d(2 * self.n_theta * self.levels, c, 3, padding=1,
                                        bias=False)
            nn.init.zeros_(self.fuse_bands.weight)
        if self.readout:  # each level's bands into the image, from zero: the same function
            self.read_bands = nn.ModuleList(
                nn.Conv2d(2 * self.n_theta, 3, 3, padding=1, bias=False)
                for _ in range(self.levels))
            for conv in self.read_bands:
                nn.init.zeros_(conv.weight)
        self.full1 = nn.ModuleList(MSCC(c) for _ in range(3))
        self.down = nn.Conv2d(c, 2 * c, 3, stride=2, padding=1)
        self.mid = nn.ModuleList(MSCC(2 * c) for _ in range(4))
        self.up = nn.Conv2d(2 * c, c, 3, padding=1)
        self.full2 = nn.ModuleList(MSCC(c) for _ in range(3))
        self.out = nn.Conv2d(c, 3, 3, padding=1)

    def scale_space(self, g: torch.Tensor) -> torch.Tensor:
        """g^σ of a gray image (N, 1, H, W)."""
        w = self.w_sigma.softmax(0)
        out = w[0] * g
        for i, k in enumerate(_gauss_kernels(self.sigma)):
            r = k.numel() // 2
            t = F.pad(g, (r, r, r, r), mode="replicate")
            t = F.conv2d(F.conv2d(t, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
            out = out + w[i + 1] * t
        return out

    def directional(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(φ, R), each (N, 9, H, W), of an RGB image (N, 3, H, W)."""
        gs = sobel(self.scale_space(img.mean(1, keepdim=True)))
        gx, gy = gs[:, :1], gs[:, 1:]
        ct, st = torch.cos(self.theta).view(1, -1, 1, 1), torch.sin(self.theta).view(1, -1, 1, 1)
        a = gx * ct + gy * st
        if self.riesz_phase:  # the local phase of each directional derivative
            # in float32: autocast leaves FFTs alone, and CUDA has no bfloat16 FFT
            rx, ry = riesz_transform(a.float(), radius=SIGMA_THETA_RIESZ_RADIUS)
            b = rx * ct + ry * st
        else:  # the digest's reading: the orientation of the gradient
            b = -gx * st + gy * ct
        return torch.atan2(b, a + 1e-8), torch.sqrt(a * a + b * b + 1e-6)

    def _magnify_level(self, i2: torch.Tensor, i1: torch.Tensor, amp: torch.Tensor | float
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """M of one level (N, 2, H, W); with ``per_direction`` also the bands (N, 18, H, W)."""
        p2, r2 = self.directional(i2)
        p1, r1 = self.directional(i1)
        n, k, h, w = p2.shape

        def r(block: nn.Module, d: torch.Tensor, cur: torch.Tensor) -> torch.Tensor:
            x = torch.stack([d * amp, cur], 2).reshape(n * k, 2, h, w)
            return block(x).reshape(n, k, h, w)

        wt = self.w_theta.softmax(0).view(1, -1, 1, 1)
        dp, dr = wrap_phase(p2 - p1), r2 - r1
        pm, rm = p2 + r(self.r_phase, dp, p2), r2 + r(self.r_mag, dr, r2)
        if self.linear_manipulator:  # residuals on the linear magnification (as MDLMM's)
            pm, rm = pm + amp * dp, rm + amp * dr
        bands = (torch.cat([rm * torch.cos(pm), rm * torch.sin(pm)], 1)
                 if self.per_direction else None)
        pm, rm = (wt * pm).sum(1, keepdim=True), (wt * rm).sum(1, keepdim=True)
        return torch.cat([rm * torch.cos(pm), rm * torch.sin(pm)], 1), bands

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, H, W) -> (texture I, shape I): the frame itself (module docstring)."""
        return x, x

    def manipulate(self, m_ref: torch.Tensor | None, m: torch.Tensor,
                   amp: torch.Tensor | float, delta: torch.Tensor | None = None) -> torch.Tensor:
        """Manipulated features M^{σ,θ} fused over ``levels`` resolutions: (N, c, H, W);
        with ``readout`` also the bands' image after them, (N, c + 3, H, W)."""
        i2 = m
        i1 = m - delta if delta is not None else m_ref
        a = per_sample(amp, m)
        size = m.shape[-2:]

        def bilinear(f: torch.Tensor, level: int) -> torch.Tensor:
            return f if level == 0 else F.interpolate(f, size=size, mode="bilinear",
                                                      align_corners=False)

        def full_size(f: torch.Tensor, level: int) -> torch.Tensor:
            return upsample_nearest(f, size) if level == 1 else bilinear(f, level)

        summed, bands, image = [], [], 0.0
        for level in range(self.levels):
            if level:
                i2, i1 = F.avg_pool2d(i2, 2), F.avg_pool2d(i1, 2)
            m_level, bands_level = self._magnify_level(i2, i1, a)
            summed.append(full_size(m_level, level))
            if bands_level is not None:
                bands.append(full_size(bands_level, level))
            if self.readout:
                image = image + bilinear(self.read_bands[level](bands_level), level)
        fused = self.fuse(torch.cat(summed, 1))
        if bands:
            fused = fused + self.fuse_bands(torch.cat(bands, 1))
        return torch.cat([F.elu(fused), image], 1) if self.readout else F.elu(fused)

    def decode(self, v: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """``v`` = I_t2 (N, 3, H, W), manipulator features (N, c, H, W) -> tanh image (with
        ``readout``, (N, c + 3, H, W): the bands' image is added to it)."""
        image = 0.0
        if self.readout:
            m, image = m[:, :-3], m[:, -3:]
        x = m
        for b in self.full1:
            x = b(x, v)
        vh = F.avg_pool2d(v, 2)
        y = F.elu(self.down(x))
        for b in self.mid:
            y = b(y, vh)
        x = x + F.elu(self.up(upsample_nearest(y, x.shape[-2:])))
        for b in self.full2:
            x = b(x, v)
        return torch.tanh(self.out(x)) + image


#: the thesis' own figures: (parameters, GFLOPs at 720×720 or None, source)
THESIS_FIGURES = {
    "lnvmm": (1.10e6, 375.5, "Table 3.2 (M1)"),
    "lnvmm_light": (0.12e6, 42.4, "Table 3.2 (M2)"),
    "mdlmm": (0.117e6, 65.4, "Table 5.2 (D1)"),
    "mdlmm_d2": (0.053e6, 30.4, "Table 5.2 (D2)"),
    "sigma_theta": (0.085e6, 48.8, "Table 6.2"),
    "hmn": (2.5e6, 602.5, "Table 7.1 (M1; resolution label unreliable)"),
    "hmn_light": (0.28e6, 68.3, "Table 7.1 (M2; resolution label unreliable)"),
}

__all__ = ["LNVMMNet", "MDLMMNet", "SigmaThetaNet", "THESIS_FIGURES",
           "inverse_spectrum", "sobel", "spectrum", "wrap_phase"]
