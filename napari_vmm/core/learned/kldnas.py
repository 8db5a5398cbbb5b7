"""KL-DNAS: knowledge-distillation-guided, latency-aware differentiable architecture search
(thesis Ch. 4, TNNLS 2024; digest §3.5), run on the machine at hand.

This module holds the network: the super-net and the discrete students it derives. The search
is a method, not a network (:mod:`napari_vmm.training.kldnas_search`): it finds a student
magnifier for a latency target on *this* machine, distilled from the project's best trained
teacher (the shipped ``realtime`` weights, loaded with :func:`.magnifier.load_network`).

Super-net (:class:`StudentNet` with ``genotype=None``). The macro-structure is the teacher's,
so that every student part can be plugged into the frozen teacher for distillation:

- encoder: conv3×3/2 3→c_enc + ReLU (fixed) → 1 searchable block at H/2 → shape head
  conv1×1 c_enc→16 (N, 16, H/2, W/2) and texture head conv3×3/2 c_enc→16 (N, 16, H/4, W/4),
  the teacher's shapes;
- manipulator: M_out = M + h(amp · g(δ)), g and h one searchable block each on 16 channels;
- decoder: conv3×3/2 16→c_dec + ReLU, concat with the texture, conv1×1 → c_dec at H/4
  (fixed) → 2 searchable blocks → [NN-up ×2 → conv3×3 + ReLU] × 2 → conv3×3 → 3 (fixed).

A searchable block is the thesis' layer-wise cell: three serial **NAS Layer-(R)** layers
R1 = LR(x), R2 = LR(R1), R3 = LR(R2), each a mixed op over {conv3×3, conv5×5} × dilation
{1, 2, 4, 8} (conv without bias + ReLU) and "no connection" (zero), then three **NAS
Layer-(C)** connection layers over {none (keep the first input), add, concat (+ conv1×1)}:
F1 = LC(R3, R2), F2 = LC(F1, R1), F3 = LC(F2, x) — residual and dense blocks are special
cases. Mixed ops are Σ softmax(α)·op (DARTS); the discrete student takes the argmax of each
layer (:func:`napari_vmm.training.kldnas_search.derive_genotype`). No layer has a bias, so a
block maps 0 to 0 and the manipulator keeps zero motion a fixed point, as in oh2018.
"""


from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from .models import MagNet, per_sample, upsample_nearest

#: NAS Layer-(R) candidates: name -> (kernel, dilation); "none" is no connection
OPS: dict[str, tuple[int, int] | None] = {
    **{f"c3d{d}": (3, d) for d in (1, 2, 4, 8)},
    **{f"c5d{d}": (5, d) for d in (1, 2, 4, 8)},
    "none": None,
}
#: NAS Layer-(C) candidates
CONNS = ("none", "add", "concat")
SHAPE_C, TEX_C = 16, 16  # the realtime teacher's shape and texture channels
PARTS = ("encoder", "manipulator", "decoder")


def make_op(name: str, c: int) -> nn.Module:
    """The Layer-(R) candidate ``name`` of :data:`OPS` on ``c`` channels: conv + ReLU."""
    k, d = OPS[name]
    return nn.Sequential(nn.Conv2d(c, c, k, padding=d * (k // 2), dilation=d, bias=False),
                         nn.ReLU())


class LayerR(nn.Module):
    """Mixed op over ``choices`` (names of :data:`OPS`): (N, c, H, W) -> (N, c, H, W)."""

    def __init__(self, c: int, choices: tuple[str, ...]) -> None:
        super().__init__()
        self.names = tuple(choices)
        self.ops = nn.ModuleDict({n: make_op(n, c) for n in self.names if n != "none"})
        self.alpha = nn.Parameter(torch.zeros(len(self.names))) if len(self.names) > 1 else None
        self.register_buffer("lat", torch.zeros(len(self.names)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.alpha is None:
            n = self.names[0]
            return torch.zeros_like(x) if n == "none" else self.ops[n](x)
        w = self.alpha.softmax(0)
        out = torch.zeros_like(x)
        for i, n in enumerate(self.names):
            if n != "none":
                out = out + w[i] * self.ops[n](x)
        return out


class LayerC(nn.Module):
    """Mixed connection over ``choices`` (of :data:`CONNS`): (a, b) -> (N, c, H, W)."""

    def __init__(self, c: int, choices: tuple[str, ...]) -> None:
        super().__init__()
        self.names = tuple(choices)
        self.concat = nn.Conv2d(2 * c, c, 1, bias=False) if "concat" in self.names else None
        self.alpha = nn.Parameter(torch.zeros(len(self.names))) if len(self.names) > 1 else None
        self.register_buffer("lat", torch.zeros(len(self.names)), persistent=False)

    def _one(self, n: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if n == "none":
            return a
        if n == "add":
            return a + b
        return self.concat(torch.cat([a, b], 1))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.alpha is None:
            return self._one(self.names[0], a, b)
        w = self.alpha.softmax(0)
        return sum(w[i] * self._one(n, a, b) for i, n in enumerate(self.names))


class SearchBlock(nn.Module):
    """Three serial Layer-(R) and three Layer-(C): (N, c, H, W) -> (N, c, H, W)."""

    def __init__(self, c: int, prefix: str, genotype: dict[str, str] | None,
                 ops: tuple[str, ...]) -> None:
        super().__init__()
        self.channels = c

        def ch(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
            return default if genotype is None else (genotype[f"{prefix}.{key}"],)

        self.r = nn.ModuleList(LayerR(c, ch(f"r{i}", ops)) for i in range(3))
        self.c = nn.ModuleList(LayerC(c, ch(f"c{i}", CONNS)) for i in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r1 = self.r[0](x)
        r2 = self.r[1](r1)
        r3 = self.r[2](r2)
        f1 = self.c[0](r3, r2)
        f2 = self.c[1](f1, r1)
        return self.c[2](f2, x)


class StudentNet(MagNet):
    """KL-DNAS super-net (``genotype=None``) or a derived discrete student.

    Parameters
    ----------
    genotype : dict, optional
        ``{"enc0.r0": "c3d2", "enc0.c0": "add", ...}``, one op per layer; None: the super-net
        with every candidate in ``ops`` / :data:`CONNS`.
    c_enc, c_dec : int
        Widths of the encoder trunk and of the decoder (at H/4).
    ops : sequence of str
        Layer-(R) candidates of the super-net (default all nine of :data:`OPS`).

    Notes
    -----
    ``encode(x)``: (N, 3, H, W) -> texture (N, 16, H/4, W/4), shape (N, 16, H/2, W/2);
    ``manipulate`` -> M + h(amp · g(δ)) (N, 16, H/2, W/2); ``decode`` -> (N, 3, H, W), linear.
    H and W multiples of 4. See the module docstring.
    """

    stride = 4
    texture_factors = (4,)
    shape_factor = 2
    BLOCKS = {"encoder": ("enc0",), "manipulator": ("g0", "h0"), "decoder": ("dec0", "dec1")}

    def __init__(self, genotype: dict[str, str] | None = None, c_enc: int = 16,
                 c_dec: int = 32, ops: tuple[str, ...] | list[str] | None = None) -> None:
        super().__init__()
        ops = tuple(ops) if ops else tuple(OPS)
        bad = [o for o in ops if o not in OPS]
        if bad:
            raise ValueError(f"unknown KL-DNAS ops {bad}; choose from {list(OPS)}")
        self.arch = {"genotype": genotype, "c_enc": c_enc, "c_dec": c_dec, "ops": list(ops)}

        def block(c: int, name: str) -> SearchBlock:
            return SearchBlock(c, name, genotype, ops)

        self.stem = nn.Sequential(nn.Conv2d(3, c_enc, 3, 2, 1, bias=False), nn.ReLU())
        self.enc0 = block(c_enc, "enc0")
        self.shape_head = nn.Conv2d(c_enc, SHAPE_C, 1, bias=False)
        self.tex_head = nn.Conv2d(c_enc, TEX_C, 3, 2, 1, bias=False)
        self.g0 = block(SHAPE_C, "g0")
        self.h0 = block(SHAPE_C, "h0")
        self.down = nn.Sequential(nn.Conv2d(SHAPE_C, c_dec, 3, 2, 1, bias=False), nn.ReLU())
        self.fuse = nn.Sequential(nn.Conv2d(c_dec + TEX_C, c_dec, 1, bias=False), nn.ReLU())
        self.dec0 = block(c_dec, "dec0")
        self.dec1 = block(c_dec, "dec1")
        self.up1 = nn.Sequential(nn.Conv2d(c_dec, c_dec, 3, 1, 1, bias=False), nn.ReLU())
        self.up2 = nn.Sequential(nn.Conv2d(c_dec, c_dec, 3, 1, 1, bias=False), nn.ReLU())
        self.out = nn.Conv2d(c_dec, 3, 3, 1, 1, bias=False)

    # -- engine contract -------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.enc0(self.stem(x))
        return self.tex_head(f), self.shape_head(f)

    def manipulate(self, m_ref: torch.Tensor | None, m: torch.Tensor,
                   amp: torch.Tensor | float, delta: torch.Tensor | None = None) -> torch.Tensor:
        d = delta if delta is not None else m - m_ref
        return m + self.h0(self.g0(d) * per_sample(amp, m))

    def decode(self, v: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        x = self.fuse(torch.cat([self.down(m), v], 1))
        x = self.dec1(self.dec0(x))
        return self.out(self.up2(upsample_nearest(self.up1(upsample_nearest(x)))))

    # -- search helpers --------------------------------------------------------------------
    def part_modules(self, part: str) -> list[nn.Module]:
        """The modules of a part (encoder, manipulator, decoder)."""
        return {"encoder": [self.stem, self.enc0, self.shape_head, self.tex_head],
                "manipulator": [self.g0, self.h0],
                "decoder": [self.down, self.fuse, self.dec0, self.dec1, self.up1, self.up2,
                            self.out]}[part]

    def layers(self, part: str | None = None) -> list[tuple[str, nn.Module]]:
        """(path, LayerR / LayerC) of every searchable layer, e.g. ("enc0.r1", layer)."""
        out = []
        for p in (part,) if part else PARTS:
            for b in self.BLOCKS[p]:
                blk = getattr(self, b)
                out += [(f"{b}.r{i}", m) for i, m in enumerate(blk.r)]
                out += [(f"{b}.c{i}", m) for i, m in enumerate(blk.c)]
        return out

    def arch_parameters(self, part: str | None = None) -> list[nn.Parameter]:
        return [m.alpha for _, m in self.layers(part) if m.alpha is not None]

    def weight_parameters(self, part: str) -> list[nn.Parameter]:
        return [p for mod in self.part_modules(part) for n, p in mod.named_parameters()
                if not n.endswith("alpha")]

    def expected_latency(self, part: str | None = None) -> torch.Tensor:
        """Σ softmax(α)·LUT over the searchable layers + the fixed layers' latency (ms)."""
        parts = (part,) if part else PARTS
        tot = sum(float(self.fixed_latency.get(p, 0.0)) for p in parts)
        lat = torch.tensor(tot)
        for _, m in self.layers(part):
            w = m.alpha.softmax(0) if m.alpha is not None else torch.ones(1)
            lat = lat + (w * m.lat).sum()
        return lat

    #: measured latency (ms) of each part's fixed layers; set by
    #: :func:`napari_vmm.training.kldnas_search.measure_lut`
    fixed_latency: dict[str, float] = dict.fromkeys(PARTS, 0.0)


def build_student(genotype: dict[str, str] | None = None, c_enc: int = 16, c_dec: int = 32,
                  ops: list[str] | None = None, **_: Any) -> StudentNet:
    """The ``kldnas`` network of a search log (``arch`` of its provenance); see StudentNet."""
    return StudentNet(genotype, c_enc, c_dec, ops)


__all__ = ["CONNS", "OPS", "PARTS", "LayerC", "LayerR", "SearchBlock", "StudentNet",
           "build_student", "make_op"]
