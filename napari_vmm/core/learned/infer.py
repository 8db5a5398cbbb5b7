"""Fast CPU inference of the ``realtime`` network: fused oneDNN convolutions, bfloat16 decoder.

The learned magnifiers spend almost all their time in the decoder (36 residual blocks at 1/4
resolution, two up-sampling convolutions and a 7×7 output convolution, run twice per frame when
the weights decode twice). In eager PyTorch each ReLU and each residual addition is a separate
pass over a large tensor. :class:`FusedRealtime` runs the same arithmetic as
:meth:`MagNet.magnified <napari_vmm.core.learned.models.MagNet.magnified>` with oneDNN's fused
convolutions (conv + ReLU, conv + in-place residual add) and, on CPUs with native bfloat16
(AVX-512 BF16 or AMX), with the decoder in bfloat16.

What stays in float32: the encoder (the motion signal the engine filters), the sum
``M_out = M + h(α·g(ΔM))`` (only ``g``, on the small ΔM, runs in bfloat16, whose precision is
relative) and the decoder's first convolution on ``M_out``, so the small shape change is not
rounded away; when decoding twice, the output convolution (linear, no bias) is applied once to
the difference of the two decoded feature maps, ``D(V, M_out) − D(V, M) = out(f_moved −
f_still)``, so bfloat16 rounds the change, not the frame, and the frame itself is added in
float32.

The full-resolution end of the decoder (nearest up-sampling ×2, a 3×3 convolution, the 7×7
output convolution) runs on the four 2×2 phases of the image at half resolution (the same
sums, rearranged into equivalent convolutions), so no up-sampled copy is made and
``pixel_shuffle`` assembles the three output channels at the end.

The fused operators are PyTorch's oneDNN ops (``torch.ops.mkldnn``, as used by
``torch.compile``'s CPU backend); where they are missing or fail, :func:`fused_decoder`
returns None and the magnifier runs the network as is.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F

#: precision choices of the learned magnifiers' decoder on CPU
PRECISIONS = ("auto", "float32", "bfloat16")
#: models whose bfloat16 decoder was checked against float32 (tests/test_learned_infer.py)
BF16_MODELS = ("realtime",)
#: decoder pixels (at its 1/4 resolution) run through the residual blocks in one pass: several
#: small frames together use the threads better (640×480: 16 % less time per image than one at
#: a time; ``benchmarks/bench_learned.py --widget``, config ``new_twice_1by1``), while four
#: 1080p images in one pass took twice as long per image
BLOCK_PIXELS = 300_000


@functools.cache
def native_bf16() -> bool:
    """True on CPUs with native bfloat16 arithmetic (AVX-512 BF16 or AMX), where oneDNN's
    bfloat16 convolutions are faster than float32 (elsewhere they are emulated and slower)."""
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, n, None) for n in ("_is_avx512_bf16_supported",
                                              "_is_amx_tile_supported")]
    try:
        return any(bool(c()) for c in checks if c is not None)
    except RuntimeError:
        return False


def resolve_precision(precision: str, model: str, device: torch.device) -> torch.dtype:
    """The decoder's dtype for ``precision`` (``auto``, ``float32`` or ``bfloat16``).

    ``auto``: bfloat16 for ``realtime`` on a CPU with native bfloat16 (its output stays within
    a fraction of a grey level of float32, see ``tests/test_learned_infer.py``), float32
    otherwise. CUDA keeps its float16 autocast and ignores this.
    """
    from ..errors import VMMError

    if precision not in PRECISIONS:
        raise VMMError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        fast = device.type == "cpu" and model in BF16_MODELS and native_bf16()
        return torch.bfloat16 if fast else torch.float32
    if precision == "bfloat16" and model not in BF16_MODELS:
        raise VMMError(f"precision bfloat16 is available for {', '.join(BF16_MODELS)}, not "
                       f"{model}; use float32")
    return torch.bfloat16 if precision == "bfloat16" else torch.float32


def _available() -> bool:
    ops = getattr(torch.ops, "mkldnn", None)
    return (torch.backends.mkldnn.is_available() and ops is not None
            and hasattr(ops, "_convolution_pointwise")
            and hasattr(ops, "_convolution_pointwise_"))


def _phase_up_weight(w: torch.Tensor) -> torch.Tensor:
    """Nearest up-sampling ×2 then the 3×3 convolution ``w`` (co, ci, 3, 3), padding 1, as one
    3×3 convolution at the low resolution with 4·co outputs: channel ``ph·co + o`` holds output
    ``o`` at the high-resolution pixel (2i + a, 2j + b), ``ph = 2a + b``."""
    co = w.shape[0]
    out = w.new_zeros(4 * co, *w.shape[1:])
    for a in (0, 1):
        for b in (0, 1):
            rows = slice((2 * a + b) * co, (2 * a + b + 1) * co)
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):  # up(x)[2i + a + dy] = x[i + (a + dy) // 2]
                    out[rows, :, (a + dy) // 2 + 1, (b + dx) // 2 + 1] += w[:, :, dy + 1, dx + 1]
    return out


def _phase_weight(w: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The k×k convolution ``w`` (co, ci, k, k), padding k // 2, at the high resolution, applied
    to a phase tensor at half resolution (channel ``ph·ci + c`` as from :func:`_phase_up_weight`):
    a (4·co, 4·ci, K, K) weight and its padding K // 2, output channel ``o·4 + ph`` (the order
    of ``pixel_shuffle``)."""
    co, ci, k, _ = w.shape
    r = k // 2
    pad = max(-((-r) // 2), (1 + r) // 2)
    out = w.new_zeros(4 * co, 4 * ci, 2 * pad + 1, 2 * pad + 1)
    for p in (0, 1):
        for q in (0, 1):
            for dy in range(-r, r + 1):
                for dx in range(-r, r + 1):  # x[2i + p + dy] is phase (p + dy) % 2, row shift
                    ph = 2 * ((p + dy) % 2) + (q + dx) % 2  # (p + dy) // 2
                    out[2 * p + q::4, ph * ci:(ph + 1) * ci, (p + dy) // 2 + pad,
                        (q + dx) // 2 + pad] += w[:, :, dy + r, dx + r]
    return out, pad


class _Conv:
    """One bias-free convolution's weight (in the compute dtype, channels_last) and geometry."""

    def __init__(self, conv: torch.nn.Conv2d | torch.Tensor, dtype: torch.dtype,
                 padding: int = 0) -> None:
        """From a ``Conv2d``, or from a weight tensor with ``padding`` (stride 1)."""
        if isinstance(conv, torch.Tensor):
            weight, self.padding, self.stride = conv, [padding] * 2, [1, 1]
        else:
            if conv.bias is not None or conv.groups != 1 or tuple(conv.dilation) != (1, 1):
                raise ValueError("only bias-free, ungrouped, undilated convolutions are fused")
            weight = conv.weight
            self.padding = list(conv.padding)
            self.stride = list(conv.stride)
        self.weight = weight.detach().to(dtype).contiguous(memory_format=torch.channels_last)

    def __call__(self, x: torch.Tensor, relu: bool = False,
                 weight: torch.Tensor | None = None) -> torch.Tensor:
        """conv(x), with the ReLU fused when ``relu``."""
        w = self.weight if weight is None else weight
        return torch.ops.mkldnn._convolution_pointwise(
            x, w, None, self.padding, self.stride, [1, 1], 1, "relu" if relu else "none",
            [], "")

    def add(self, x: torch.Tensor, other: torch.Tensor,
            weight: torch.Tensor | None = None) -> torch.Tensor:
        """other + conv(x), a new tensor."""
        w = self.weight if weight is None else weight
        return torch.ops.mkldnn._convolution_pointwise.binary(
            x, other, w, None, self.padding, self.stride, [1, 1], 1, "add", None, None, [],
            None)

    def add_(self, x: torch.Tensor, acc: torch.Tensor) -> torch.Tensor:
        """acc += conv(x), in place."""
        return torch.ops.mkldnn._convolution_pointwise_.binary(
            acc, x, self.weight, None, self.padding, self.stride, [1, 1], 1, "add", None, None,
            [], None)


class FusedRealtime:
    """:class:`~napari_vmm.core.learned.models.RealtimeNet`'s manipulator and decoder on CPU.

    Parameters
    ----------
    net : RealtimeNet
        The trained network (its weights are copied; ``net`` is not changed).
    dtype : torch.dtype
        ``torch.float32`` (same result as the network, fused) or ``torch.bfloat16`` (decoder
        in bfloat16, see the module docstring).
    """

    def __init__(self, net: Any, dtype: torch.dtype = torch.float32) -> None:
        f32 = torch.float32
        self.dtype = dtype
        self.decode_twice = bool(net.decode_twice)
        self.g = _Conv(net.g[0], dtype)  # relative precision on the (small) motion
        self.h = _Conv(net.h, f32)
        self.down = _Conv(net.down[0], f32)
        self.blocks = [(_Conv(b.c1, dtype), _Conv(b.c2, dtype)) for b in net.dec]
        self.up1 = _Conv(net.up1[0], dtype)
        # the full-resolution end (up-sampling, up2, the output conv) runs on the 2×2 phases
        # at half resolution: no up-sampled copy, and moved − still at half the pixel count ×4
        c2 = net.up2[0]
        if tuple(c2.kernel_size) != (3, 3) or tuple(c2.padding) != (1, 1) \
                or tuple(c2.stride) != (1, 1) or tuple(net.out.stride) != (1, 1):
            raise ValueError("unexpected realtime decoder geometry")
        self.up2 = _Conv(_phase_up_weight(c2.weight.detach().float()), dtype, padding=1)
        w_out, pad = _phase_weight(net.out.weight.detach().float())
        self.out = _Conv(w_out, dtype, padding=pad)

    def _features(self, v: torch.Tensor, ms: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The decoder up to its output convolution for each shape in ``ms`` (stacked on the
        batch axis), as 2×2 phases: (len(ms)·N, 4·c_dec, H/2, W/2) in ``dtype``."""
        n, cv, h, w = v.shape
        cm = self.down.weight.shape[0]
        x = torch.empty(len(ms) * n, cv + cm, h, w, dtype=self.dtype).contiguous(
            memory_format=torch.channels_last)
        for k, m in enumerate(ms):  # cat([V, down(M)]) straight into the decoder's input
            x[k * n:(k + 1) * n, :cv] = v
            x[k * n:(k + 1) * n, cv:] = self.down(m, relu=True)
        step = max(1, BLOCK_PIXELS // (h * w))  # images per pass: their activations in cache
        for i in range(0, x.shape[0], step):
            xi = x[i:i + step]
            for c1, c2 in self.blocks:
                c2.add_(c1(xi, relu=True), xi)  # xi += c2(relu(c1(xi))), x is ours
        x = self.up1(F.interpolate(x, scale_factor=2.0, mode="nearest"), relu=True)
        return self.up2(x, relu=True)

    def _image(self, phases: torch.Tensor) -> torch.Tensor:
        """The output convolution on phase features: (N, 3, H, W) float32."""
        return F.pixel_shuffle(self.out(phases).float(), 2)

    def magnified(self, v: torch.Tensor, m: torch.Tensor, delta: torch.Tensor, amp: float,
                  x: torch.Tensor | None) -> torch.Tensor:
        """``MagNet.magnified`` (``x`` is needed when decoding twice; None otherwise).

        ``v`` (N, 16, H/4, W/4), ``m`` and ``delta`` (N, 16, H/2, W/2), float32. Returns
        (N, 3, H, W) float32 in ~[−1, 1].
        """
        cl = torch.channels_last
        v, m = (t.contiguous(memory_format=cl) for t in (v, m))
        # M_out = M + h(amp · g(Δ)) = M + conv(g(Δ), amp · W_h): h is linear and bias-free
        gd = self.g(delta.to(dtype=self.dtype, memory_format=cl), relu=True).float()
        m_out = self.h.add(gd, m, weight=self.h.weight * float(amp))
        if not self.decode_twice:
            return self._image(self._features(v, (m_out,)))
        if x is None:
            raise ValueError("decoding twice needs the input frames")
        moved, still = self._features(v, (m_out, m)).chunk(2)
        return self._image(moved.sub_(still)).add_(x)  # in place: no fresh pages to fault


def fused_decoder(net: Any, model: str, device: torch.device,
                  dtype: torch.dtype) -> FusedRealtime | None:
    """A :class:`FusedRealtime` for ``net`` on CPU, or None where it does not apply (another
    architecture, CUDA, PyTorch without the oneDNN fused operators)."""
    from .models import RealtimeNet

    if device.type != "cpu" or model != "realtime" or type(net) is not RealtimeNet \
            or not _available():
        return None
    try:
        fused = FusedRealtime(net, dtype)
        # one tiny call: older or unusual builds may lack a fused variant at run time
        cl = torch.channels_last
        m = torch.zeros(1, net.enc_shape.out_channels, 4, 4).contiguous(memory_format=cl)
        v = torch.zeros(1, net.enc_tex.out_channels, 2, 2).contiguous(memory_format=cl)
        fused.magnified(v, m, m, 1.0, torch.zeros(1, 3, 8, 8))
    except (RuntimeError, ValueError, AttributeError, NotImplementedError):
        return None
    return fused


__all__ = ["BF16_MODELS", "PRECISIONS", "FusedRealtime", "fused_decoder", "native_bf16",
           "resolve_precision"]
