"""Fast CPU inference of the ``realtime`` network: fused oneDNN convolutions, bfloat16 decoder.

The learned magnifiers spend almost all their time in the decoder (36 residual blocks at 1/4
resolution, two up-sampling convolutions and a 7×7 output convolution, run twice per frame when
the weights decode twice). In eager PyTorch each ReLU and each residual addition is a separate
pass over a large tensor. :class:`FusedRealtime` runs the same arithmetic as
:meth:`MagNet.magnified <napari_vmm.core.learned.models.MagNet.magnified>` with oneDNN's fused
convolutions (conv + ReLU, conv + in-place residual add) and, on CPUs with native bfloat16
(AVX-512 BF16 or AMX), with the decoder in bfloat16.

What stays in float32: the encoder (the motion signal the engine filters), the manipulator
(``M_out = M + h(α·g(ΔM))``) and the decoder's first convolution on ``M_out``, so the small
shape change is not rounded away; when decoding twice, the output convolution (linear, no
bias) is applied once to the difference of the two decoded feature maps,
``D(V, M_out) − D(V, M) = out(f_moved − f_still)``, so bfloat16 rounds the change, not the
frame, and the frame itself is added in float32.

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


class _Conv:
    """One bias-free convolution's weight (in the compute dtype, channels_last) and geometry."""

    def __init__(self, conv: torch.nn.Conv2d, dtype: torch.dtype) -> None:
        if conv.bias is not None or conv.groups != 1 or tuple(conv.dilation) != (1, 1):
            raise ValueError("only bias-free, ungrouped, undilated convolutions are fused")
        self.weight = conv.weight.detach().to(dtype).contiguous(memory_format=torch.channels_last)
        self.padding = list(conv.padding)
        self.stride = list(conv.stride)

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
        self.g = _Conv(net.g[0], f32)
        self.h = _Conv(net.h, f32)
        self.down = _Conv(net.down[0], f32)
        self.blocks = [(_Conv(b.c1, dtype), _Conv(b.c2, dtype)) for b in net.dec]
        self.up1 = _Conv(net.up1[0], dtype)
        self.up2 = _Conv(net.up2[0], dtype)
        self.out = _Conv(net.out, dtype)

    def _features(self, v: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """The decoder up to its output convolution: (N, c_dec, H, W) in ``dtype``."""
        x = torch.cat([v, self.down(m, relu=True)], dim=1).to(self.dtype)
        x = x.contiguous(memory_format=torch.channels_last)
        for c1, c2 in self.blocks:
            c2.add_(c1(x, relu=True), x)  # x += c2(relu(c1(x))), x is ours
        x = self.up1(F.interpolate(x, scale_factor=2.0, mode="nearest"), relu=True)
        return self.up2(F.interpolate(x, scale_factor=2.0, mode="nearest"), relu=True)

    def magnified(self, v: torch.Tensor, m: torch.Tensor, delta: torch.Tensor, amp: float,
                  x: torch.Tensor | None) -> torch.Tensor:
        """``MagNet.magnified`` (``x`` is needed when decoding twice; None otherwise).

        ``v`` (N, 16, H/4, W/4), ``m`` and ``delta`` (N, 16, H/2, W/2), all float32
        channels_last. Returns (N, 3, H, W) float32 in ~[−1, 1].
        """
        # M_out = M + h(amp · g(Δ)) = M + conv(g(Δ), amp · W_h): h is linear and bias-free
        m_out = self.h.add(self.g(delta, relu=True), m, weight=self.h.weight * float(amp))
        if not self.decode_twice:
            return self.out(self._features(v, m_out)).float()
        if x is None:
            raise ValueError("decoding twice needs the input frames")
        moved, still = self._features(torch.cat([v, v]), torch.cat([m_out, m])).chunk(2)
        return x + self.out(moved - still).float()


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
