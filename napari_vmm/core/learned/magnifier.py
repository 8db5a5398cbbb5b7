"""Learned magnifiers on the engine's encode/decode contract: ``oh2018``, ``realtime``, ``fd4mm``.

The motion signal the engine filters is the network's shape representation M (Oh's shape at
1/2 resolution; FD4MM's deep low-frequency structure L_d at 1/8). The engine turns it into
M(t) − M(ref) (static), M(t) − M(t−1) (dynamic) or the band-passed T(M)(t) (temporal);
:meth:`decode` then forms the network's manipulated shape

    M_out(t) = M(t) + h(alpha · g(filtered(t)))          (oh2018, realtime)
    L′_d(t) = L_d(t) + W_2(alpha · W_1(F_L(filtered(t))))   (fd4mm)

(digest §0.2/§0.4: the network's total ratio is 1 + alpha, so the project alpha is the factor
inside) and decodes it with the current frame's texture V(t) (FD4MM: its high-frequency
features of the three levels).

Frames of any size work: they are padded by reflection to a multiple of the network stride
(plus a small margin, so the zero padding inside the network never touches real pixels) and
cropped back. Frames larger than ``net_tile`` pixels on a side are processed in spatial tiles
that overlap and are blended with feathered (linear-ramp) weights, both for the encoder
features and for the decoded image. Inference runs under ``torch.inference_mode`` in
channels_last layout, with fp16 autocast on CUDA. On CPU, ``realtime`` runs its manipulator and
decoder as fused oneDNN convolutions (:mod:`.infer`), with the decoder in bfloat16 on CPUs that
have it natively (option ``precision``; the motion signal always stays float32).

With the option ``scale`` above 1 the network sees the frames enlarged (bicubic), and its
change, reduced back (antialiased bilinear), is added to the frame as it is: at α = 0 a
decode-twice model still gives back the input exactly. With ``views`` above 1 the frames are
also run mirrored and transposed (the first 2, 4 or 8 of :data:`VIEWS`), each view with its own
motion signal, and the outputs, turned back, are averaged: the networks' rendering artifacts
differ between views and partly cancel, while the motion, the same in every view, stays.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from ..errors import VMMError
from ..magnifiers.base import Magnifier
from ..registry import Option
from . import weights as W
from .infer import PRECISIONS, fused_decoder, resolve_precision
from .table import MODELS, LearnedModel, build_model

_NET_CACHE: dict[tuple, Any] = {}
_NET_LOCK = threading.Lock()

MARGIN = 8  # reflected border added around every frame (pixels)

#: views of a frame (N, C, H, W) for the option ``views``: (transpose H and W first, the
#: dims then flipped); the first 2 are the frame and its mirror image, 4 add the vertical
#: flips, 8 the whole dihedral group
VIEWS: tuple[tuple[bool, tuple[int, ...]], ...] = tuple(
    (transpose, dims) for transpose in (False, True)
    for dims in ((), (-1,), (-2,), (-2, -1)))


def _view(x: torch.Tensor, view: tuple[bool, tuple[int, ...]]) -> torch.Tensor:
    transpose, dims = view
    x = x.transpose(-2, -1) if transpose else x
    return x.flip(dims) if dims else x


def _unview(x: torch.Tensor, view: tuple[bool, tuple[int, ...]]) -> torch.Tensor:
    transpose, dims = view
    x = x.flip(dims) if dims else x
    return x.transpose(-2, -1) if transpose else x


def load_network(model: str, device: torch.device, path: str | None = None):
    """The trained network (eval mode, channels_last) for ``model``; cached per device/file.

    The architecture switches recorded in the provenance (``"arch"``, e.g. an FD4MM ablation)
    are applied before the state dict is loaded.
    """
    key = (model, str(device), str(Path(path).resolve()) if path else "")
    with _NET_LOCK:
        net = _NET_CACHE.get(key)
        if net is None:
            sd, prov = W.load_weights(model, path or None)
            net = build_model(model, **dict(prov.get("arch") or {}))
            try:
                net.load_state_dict(sd)
            except RuntimeError as e:
                raise VMMError(f"the {model} weights do not fit the {model} architecture: "
                               f"{str(e).splitlines()[0]}") from None
            net = net.to(device).eval().to(memory_format=torch.channels_last)
            net.provenance = prov
            _NET_CACHE[key] = net
    return net


def _ramp(n: int, lo_edge: bool, hi_edge: bool, overlap: int, device) -> torch.Tensor:
    """1-D feather weights of length n: linear ramps of ``overlap`` at interior tile edges."""
    w = torch.ones(n, device=device)
    if overlap <= 0:
        return w
    r = (torch.arange(n, device=device, dtype=torch.float32) + 0.5) / overlap
    if not lo_edge:
        w = torch.minimum(w, r)
    if not hi_edge:
        w = torch.minimum(w, r.flip(0))
    return w.clamp(min=1e-3)


def _tile_spans(size: int, tile: int, overlap: int, align: int = 4) -> list[tuple[int, int]]:
    """Evenly spread windows of at most ``tile`` covering ``size`` (all multiples of
    ``align``), neighbours overlapping by at least ``2 * overlap``."""
    if size <= tile:
        return [(0, size)]
    ov = 2 * overlap
    n = math.ceil((size - ov) / (tile - ov))
    length = min(tile, -(-math.ceil((size + (n - 1) * ov) / n) // align) * align)
    starts = [round(i * (size - length) / (n - 1) / align) * align for i in range(n)]
    return [(s0, min(size, s0 + length)) for s0 in starts]


class _LearnedMagnifier(Magnifier):
    """Shared implementation; subclasses set ``name``, which is also the network's name."""

    color_space: ClassVar[str] = "rgb"
    luma_only: ClassVar[bool] = False
    options: ClassVar[dict[str, Option]] = {
        "weights": Option("", str, "path to a .pt weights file (its provenance .json beside "
                                   "it); empty: the weights shipped with the package"),
        "net_tile": Option(2048, int, "process frames larger than this many pixels on a side "
                                      "in overlapping, feathered tiles (memory bound)",
                           min=128, max=8192),
        "precision": Option("auto", str, "decoder arithmetic on CPU: auto (bfloat16 for "
                                         "realtime on CPUs with native bfloat16, within a "
                                         "fraction of a grey level of float32), float32 or "
                                         "bfloat16 (realtime only)", choices=PRECISIONS),
        "scale": Option(1.0, float, "run the network on frames enlarged this many times "
                                    "(bicubic) and add its change, reduced back, to the frame "
                                    "as it is: finer textures and sub-pixel motions reach the "
                                    "network at a size it renders better, at scale² the time "
                                    "and memory (2 for sub-pixel motions, 1.5 for large "
                                    "magnifications)", min=1.0, max=4.0),
        "views": Option(1, int, "average the output over this many mirrored and transposed "
                                "views of each frame (1, 2, 4 or 8): the network's rendering "
                                "artifacts partly cancel, the motion stays; views times the "
                                "time", choices=(1, 2, 4, 8)),
    }

    def __init__(self, alpha: float, device: torch.device, **options: Any) -> None:
        super().__init__(alpha, device, **options)
        if self.alpha < 0:
            raise VMMError(f"the learned magnifiers are trained for alpha >= 0 (got "
                           f"{self.alpha:g}); use linear/phase/riesz to attenuate motion")
        self.net = load_network(self.name, self.device, options.get("weights") or None)
        self.stride = self.net.stride
        s = self.stride
        self.tile = max(128, int(options.get("net_tile", 2048)) // s * s)
        self.overlap = min(64, self.tile // 4) // s * s  # feather width, multiple of stride
        self.tex_f = tuple(self.net.texture_factors)
        self.shape_f = int(self.net.shape_factor)
        self.dtype = resolve_precision(str(options.get("precision", "auto")), self.name,
                                       self.device)
        self.scale = float(options.get("scale", 1.0))
        self.views = VIEWS[:int(options.get("views", 1))]
        self._fused = fused_decoder(self.net, self.name, self.device, self.dtype)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Weights status for ``available_methods()``."""
        return {"weights": W.describe_weights(cls.name)}

    @property
    def spatial_support(self) -> int:
        return 64

    # -- helpers ----------------------------------------------------------------------------
    def _autocast(self, decoder: bool = False):
        """fp16 on CUDA; on CPU the decoder in bfloat16 when ``precision`` asks for it (the
        encoder, which gives the motion signal, stays float32)."""
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=(
            decoder and self.dtype == torch.bfloat16 and self._fused is None))

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        """Reflect-pad (N,3,H,W) by MARGIN and up to a multiple of the stride."""
        h, w = x.shape[-2:]
        s = self.stride
        ph = (-(h + 2 * MARGIN)) % s
        pw = (-(w + 2 * MARGIN)) % s
        pad = (MARGIN, MARGIN + pw, MARGIN, MARGIN + ph)  # left, right, top, bottom
        mode = "reflect" if min(h, w) > MARGIN + max(ph, pw) else "replicate"
        return F.pad(x, pad, mode=mode), pad

    def _tiles(self, H: int, Wd: int) -> list[tuple[int, int, int, int]]:
        """Tile windows (y0, y1, x0, x1) in padded-frame pixels, multiples of the stride."""
        if max(H, Wd) <= self.tile:
            return [(0, H, 0, Wd)]
        s = self.stride
        return [(y0, y1, x0, x1)
                for (y0, y1) in _tile_spans(H, self.tile, self.overlap, s)
                for (x0, x1) in _tile_spans(Wd, self.tile, self.overlap, s)]

    def _to_net(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] != 3:
            raise VMMError(f"{self.name} needs 1 or 3 channels, got {x.shape[1]}")
        return x.float() * 2.0 - 1.0

    def _enlarge(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) enlarged ``scale`` times (bicubic, clipped to [0, 1]); x itself at 1."""
        if self.scale == 1.0:
            return x
        size = [max(1, round(n * self.scale)) for n in x.shape[-2:]]
        big = F.interpolate(x.float(), size=size, mode="bicubic", align_corners=False)
        return big.clamp_(0, 1)

    @staticmethod
    def _reduce_change(out: torch.Tensor, enlarged: torch.Tensor,
                       frame: torch.Tensor) -> torch.Tensor:
        """``frame`` + the network's change (``out − enlarged``) reduced to its size; RGB
        ``out`` broadcasts over a grey ``enlarged`` and ``frame``."""
        change = F.interpolate(out - enlarged, size=frame.shape[-2:], mode="bilinear",
                               align_corners=False, antialias=True)
        return (frame.float() + change).clamp_(0, 1)

    # -- contract ---------------------------------------------------------------------------
    def _net_encode(self, x: torch.Tensor) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """The network's (texture tensors as a tuple, shape), in float32."""
        with self._autocast():
            v, m = self.net.encode(x.contiguous(memory_format=torch.channels_last))
        vt = v if isinstance(v, tuple) else (v,)
        return tuple(t.float() for t in vt), m.float()

    def encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], Any]:
        """(N, C, H, W) in [0, 1] -> signal [M (N, c, H'/f, W'/f)], ctx (V, M, geometry).

        H', W' are the padded sizes (of the frame enlarged ``scale`` times), f the network's
        ``shape_factor`` (2 for oh2018 and realtime, 8 for fd4mm); C is 1 (replicated to
        RGB) or 3. With ``views`` > 1 the signal holds one M per view (transposed views have
        H' and W' swapped) and ctx one context per view.
        """
        if len(self.views) == 1:
            return self._encode_view(x)
        signal, contexts = [], []
        for view in self.views:
            m, ctx = self._encode_view(_view(x, view))
            signal += m
            contexts.append(ctx)
        return signal, {"views": contexts}

    def decode(self, x: torch.Tensor, filtered: list[torch.Tensor], ctx: Any) -> torch.Tensor:
        """Manipulate the shape with alpha·filtered, decode with the texture; with ``views``,
        the mean of every view's output, turned back.

        Returns (N, C, H, W) in [0, 1].
        """
        if "views" not in ctx:
            return self._decode_view(x, filtered, ctx)
        out = None
        for i, (view, part) in enumerate(zip(self.views, ctx["views"], strict=True)):
            y = _unview(self._decode_view(_view(x, view), filtered[i:i + 1], part), view)
            out = y if out is None else out.add_(y)
        return out.div_(len(self.views))

    def _encode_view(self, x: torch.Tensor) -> tuple[list[torch.Tensor], Any]:
        """:meth:`encode` of one view."""
        n, c = x.shape[:2]
        x = x.to(self.device)
        xs = self._enlarge(x)
        xp, pad = self._pad(self._to_net(xs))
        H, Wd = xp.shape[-2:]
        tiles = self._tiles(H, Wd)
        if len(tiles) == 1:
            v, m = self._net_encode(xp)
        else:
            factors = (*self.tex_f, self.shape_f)
            accs: list[torch.Tensor] | None = None
            wsums: list[torch.Tensor] = []
            for (y0, y1, x0, x1) in tiles:
                tv, tm = self._net_encode(xp[..., y0:y1, x0:x1])
                parts = (*tv, tm)
                if accs is None:
                    accs = [xp.new_zeros(n, t.shape[1], H // f, Wd // f)
                            for t, f in zip(parts, factors, strict=True)]
                    wsums = [xp.new_zeros(1, 1, H // f, Wd // f) for f in factors]
                for acc, ww, t, f in zip(accs, wsums, parts, factors, strict=True):
                    wy = _ramp(t.shape[-2], y0 == 0, y1 == H, self.overlap // f, xp.device)
                    wx = _ramp(t.shape[-1], x0 == 0, x1 == Wd, self.overlap // f, xp.device)
                    wt = wy[:, None] * wx[None, :]
                    sl = (..., slice(y0 // f, y1 // f), slice(x0 // f, x1 // f))
                    acc[sl] += t * wt
                    ww[sl] += wt
            assert accs is not None
            blended = [a / ww for a, ww in zip(accs, wsums, strict=True)]
            v, m = tuple(blended[:-1]), blended[-1]
        ctx = {"v": v, "m": m, "pad": pad, "hw": xs.shape[-2:], "c": c, "padded": (H, Wd)}
        if self.net.decode_twice:  # the decoder's output is added to the (padded) input
            ctx["x"] = xp
        if xs is not x:  # decode reduces the change back and adds it to the frame as it is
            ctx["enlarged"] = xs
        return [m], ctx

    def _decode_view(self, x: torch.Tensor, filtered: list[torch.Tensor],
                     ctx: Any) -> torch.Tensor:
        """:meth:`decode` of one view."""
        v, m, xp = ctx["v"], ctx["m"], ctx.get("x")
        d = filtered[0].to(m.dtype)
        H, Wd = ctx["padded"]
        n = m.shape[0]
        tiles = self._tiles(H, Wd)
        if len(tiles) == 1:
            with self._autocast(decoder=True):
                out = self._decode_part(v, m, d, xp)
        else:
            out = m.new_zeros(n, 3, H, Wd)
            wsum = m.new_zeros(1, 1, H, Wd)
            fs = self.shape_f
            for (y0, y1, x0, x1) in tiles:
                sm = (..., slice(y0 // fs, y1 // fs), slice(x0 // fs, x1 // fs))
                tv = tuple(t[..., y0 // f:y1 // f, x0 // f:x1 // f]
                           for t, f in zip(v, self.tex_f, strict=True))
                tx = None if xp is None else xp[..., y0:y1, x0:x1]
                with self._autocast(decoder=True):
                    t = self._decode_part(tv, m[sm], d[sm], tx)
                wy = _ramp(y1 - y0, y0 == 0, y1 == H, self.overlap, m.device)
                wx = _ramp(x1 - x0, x0 == 0, x1 == Wd, self.overlap, m.device)
                wt = wy[:, None] * wx[None, :]
                out[..., y0:y1, x0:x1] += t * wt
                wsum[..., y0:y1, x0:x1] += wt
            out = out / wsum
        left, right, top, bottom = ctx["pad"]
        h, w = ctx["hw"]
        out = out[..., top:top + h, left:left + w]  # a view of our own tensor: in place
        out = out.clamp_(-1, 1).add_(1).mul_(0.5).contiguous()
        if "enlarged" in ctx:
            out = self._reduce_change(out, ctx["enlarged"], x.to(out.device))
        if ctx["c"] == 1:
            out = out.mean(dim=1, keepdim=True)
        return out

    def _decode_part(self, v: tuple[torch.Tensor, ...], m: torch.Tensor, d: torch.Tensor,
                     x: torch.Tensor | None) -> torch.Tensor:
        """Decoded (N, 3, h, w) of one tile; ``x``: its input frames (needed to decode twice)."""
        if self._fused is not None:  # it lays out and converts its inputs itself
            return self._fused.magnified(v[0], m, d, self.alpha, x)
        cl = torch.channels_last
        v = tuple(t.contiguous(memory_format=cl) for t in v)
        m, d = (t.contiguous(memory_format=cl) for t in (m, d))
        vv = v if len(v) > 1 else v[0]
        if x is None:
            return self.net.decode(vv, self.net.manipulate(None, m, self.alpha, delta=d)).float()
        return self.net.magnified(vv, m, d, self.alpha, x).float()


def _magnifier_class(spec: LearnedModel) -> type[_LearnedMagnifier]:
    """The magnifier class of a model table entry (named ``spec.magnifier``)."""
    attrs: dict[str, Any] = {"name": spec.name, "__doc__": spec.doc or spec.summary,
                             "__module__": __name__, "__qualname__": spec.magnifier}
    if spec.net_tile != _LearnedMagnifier.options["net_tile"].default:
        tile = _LearnedMagnifier.options["net_tile"]
        attrs["options"] = {**_LearnedMagnifier.options, "net_tile": Option(
            spec.net_tile, int, spec.net_tile_help or tile.help, min=tile.min, max=tile.max)}
    return type(spec.magnifier, (_LearnedMagnifier,), attrs)


#: model name -> its magnifier class, one per entry of the model table (:mod:`.table`); each
#: class is also a name of this module (``RealtimeMagnifier``, ...), which the registry loads
MAGNIFIERS: dict[str, type[_LearnedMagnifier]] = {
    name: _magnifier_class(spec) for name, spec in MODELS.items()}
globals().update({cls.__qualname__: cls for cls in MAGNIFIERS.values()})


def magnify_pair(model: str, frame_a, frame_b, alpha: float, device: str = "cpu",
                 weights: str | None = None, **options: Any) -> torch.Tensor:
    """Two-frame magnification with a learned model (Oh's static two-frame test).

    ``frame_a``, ``frame_b``: tensors (N, 3, H, W) in [0, 1]; returns (N, 3, H, W) in [0, 1].
    ``options``: the magnifier's other options (``scale``, ``views``, ...).
    """
    cls = MAGNIFIERS[model]
    mag = cls(alpha, torch.device(device), weights=weights or "",
              **{"net_tile": 2048, **options})
    with torch.inference_mode():
        sa, _ = mag.encode(frame_a)
        sb, ctx = mag.encode(frame_b)
        return mag.decode(frame_b, [b - a for a, b in zip(sa, sb, strict=True)], ctx)


__all__ = ["MAGNIFIERS", "load_network", "magnify_pair",
           *(cls.__qualname__ for cls in MAGNIFIERS.values())]
