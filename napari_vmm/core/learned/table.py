"""The learned models, one entry each: adding a model is its network file plus one entry here.

An entry says where the network is (``"module:callable"`` inside this package, called with the
entry's default architecture switches updated by the weights' ``arch``), what ``vmm methods``
shows, and what training needs to know about it. The registry, the engine's magnifier classes
(:mod:`.magnifier`), ``vmm train`` and ``vmm evaluate`` read this table; importing it imports
neither torch nor a network.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from ..errors import VMMError


@dataclass(frozen=True)
class LearnedModel:
    """One learned model.

    Parameters
    ----------
    name : str
        Method name (``--method``) and name of its weights file.
    network : str
        ``"module:callable"`` relative to :mod:`napari_vmm.core.learned`; called as
        ``callable(**{**arch, **weights_arch})`` it returns a :class:`.models.MagNet`.
    summary : str
        One line for ``vmm methods``.
    magnifier : str
        Name of its magnifier class in :mod:`.magnifier` (made from this entry).
    doc : str
        Docstring of that class.
    arch : dict
        Default architecture switches (e.g. a variant).
    stride : int
        Frame sizes the network takes are multiples of this (training crops too).
    decode_twice : bool
        The manipulator keeps the shape at amp = 0 (no bias: h(0) = 0), so decoding twice
        gives back the input exactly.
    net_tile : int
        Default of the magnifier's ``net_tile`` option; ``net_tile_help`` its help when it
        differs from the usual one.
    loss : {"oh", "fd4mm", "thesis"}
        The training objective family (:mod:`napari_vmm.training.train`).
    train : dict
        Training defaults: crop, batch, lr, ssim_weight, val_every.
    """

    name: str
    network: str
    summary: str
    magnifier: str
    doc: str = ""
    arch: dict[str, Any] = field(default_factory=dict)
    stride: int = 4
    decode_twice: bool = False
    net_tile: int = 2048
    net_tile_help: str = ""
    loss: str = "oh"
    train: dict[str, Any] = field(default_factory=dict)


_OH_TRAIN = {"crop": 96, "batch": 4, "lr": 2e-4, "ssim_weight": 0.0, "val_every": 200}
# ssim_weight: stand-in for S2's perceptual loss (real-time model and thesis models)
_REALTIME_TRAIN = {"crop": 128, "batch": 4, "lr": 2e-4, "ssim_weight": 0.1, "val_every": 500}
# FD4MM: Charbonnier + LoG edge + 0.1 contrastive (paper); crop a multiple of 8 (stride)
_FD4MM_TRAIN = {"crop": 128, "batch": 4, "lr": 2e-4, "ssim_weight": 0.0, "val_every": 200}
# the Singh thesis models: Adam lr 1e-4 as the thesis
_THESIS_TRAIN = {"crop": 96, "batch": 4, "lr": 1e-4, "ssim_weight": 0.1, "val_every": 200}
_MDLMM_TILE_HELP = ("process frames larger than this many pixels on a side in tiles; the FFT "
                    "is per tile, which changes the result, so keep it above the frame size")

MODELS: dict[str, LearnedModel] = {m.name: m for m in (
    LearnedModel("oh2018", "models:Oh2018Net",
                 "Learned: Oh et al. 2018 encoder-manipulator-decoder", "Oh2018Magnifier",
                 "Oh et al. 2018 learned magnifier (encoder-manipulator-decoder, ~0.97 M "
                 "parameters).", decode_twice=True, train=_OH_TRAIN),
    LearnedModel("realtime", "models:RealtimeNet",
                 "Learned: lightweight real-time model (linear encoder, 1/4-res decoder)",
                 "RealtimeMagnifier",
                 "The real-time learned magnifier (linear encoder, 1/4-resolution decoder, "
                 "~0.71 M).", decode_twice=True, train=_REALTIME_TRAIN),
    LearnedModel("fd4mm", "fd4mm:FD4MMNet",
                 "Learned: FD4MM frequency decoupling, multi-level isomorphic (Wang et al. "
                 "2024)", "FD4MMMagnifier",
                 "FD4MM (Wang et al. 2024): frequency decoupling on three isomorphic levels, "
                 "~1.47 M. The engine filters the deep low-frequency structure L_d (96 "
                 "channels at 1/8 resolution).",
                 stride=8, decode_twice=True, loss="fd4mm", train=_FD4MM_TRAIN),
    # the Singh thesis models (.thesis)
    LearnedModel("lnvmm", "thesis:LNVMMNet",
                 "Learned: LNVMM M1, feature-sharing encoders + appearance encoder, "
                 "proxy-model training (Singh et al. 2023)", "LNVMMMagnifier",
                 "LNVMM M1 (Singh et al., WACV 2023): feature-sharing encoders, appearance "
                 "encoder.", arch={"variant": "base"}, stride=2, decode_twice=True, loss="thesis",
                 train=_THESIS_TRAIN),
    LearnedModel("lnvmm_light", "thesis:LNVMMNet", "Learned: LNVMM M2, the light variant",
                 "LNVMMLightMagnifier", "LNVMM M2, the light variant (C = 8).",
                 arch={"variant": "light"}, stride=2, decode_twice=True,
                 loss="thesis", train=_THESIS_TRAIN),
    LearnedModel("mdlmm", "thesis:MDLMMNet",
                 "Learned: MDLMM D1, Fourier phase/amplitude + spatial multi-scale correction "
                 "(Singh et al. 2023)", "MDLMMMagnifier",
                 "MDLMM D1 (Singh et al., CVPR 2023): Fourier phase/amplitude streams + "
                 "spatial correction. The engine filters the frame itself. The FFT is global, "
                 "so tiles change the result: the default ``net_tile`` is 4096 (no tiling up "
                 "to 4K frames).", arch={"variant": "d1"}, stride=8, net_tile=4096,
                 net_tile_help=_MDLMM_TILE_HELP, decode_twice=True,
                 loss="thesis", train=_THESIS_TRAIN),
    LearnedModel("mdlmm_d2", "thesis:MDLMMNet", "Learned: MDLMM D2, the narrower variant",
                 "MDLMMD2Magnifier", "MDLMM D2, the narrower variant.", arch={"variant": "d2"},
                 stride=8, net_tile=4096, net_tile_help=_MDLMM_TILE_HELP, decode_twice=True,
                 loss="thesis",
                 train=_THESIS_TRAIN),
    LearnedModel("sigma_theta", "thesis:SigmaThetaNet",
                 "Learned: sigma-theta Net, learnable scale space and steerable gradients "
                 "(Singh, thesis Ch. 6)", "SigmaThetaMagnifier",
                 "σ-θ Net (Singh, thesis Ch. 6): learnable scale space and steerable "
                 "gradients.", stride=2, decode_twice=True, loss="thesis", train=_THESIS_TRAIN),
    LearnedModel("hmn", "hmn:HMNNet",
                 "Learned: HMN M1, hierarchical Sobel-edge magnification (Singh, thesis "
                 "Ch. 7)", "HMNMagnifier",
                 "HMN M1 (Singh, thesis Ch. 7): Sobel-edge multi-scale manipulators, "
                 "hierarchical decoder.", arch={"variant": "base"}, decode_twice=True,
                 loss="thesis",
                 train=_THESIS_TRAIN),
    LearnedModel("hmn_light", "hmn:HMNNet", "Learned: HMN M2, the light variant",
                 "HMNLightMagnifier", "HMN M2, the light variant (c = 8).",
                 arch={"variant": "light"}, decode_twice=True, loss="thesis",
                 train=_THESIS_TRAIN),
    # the KL-DNAS student: its genotype comes from the weights' provenance (.kldnas)
    LearnedModel("kldnas", "kldnas:build_student",
                 "Learned: KL-DNAS student, latency-aware searched architecture (Singh et al. "
                 "2024), from its search log", "KLDNASMagnifier",
                 "A KL-DNAS student: the architecture derived by the search, read from its "
                 "provenance.", decode_twice=True, loss="thesis", train=_THESIS_TRAIN),
)}

#: models that can decode twice (``x + D(amp) − D(0)``: exactly the input at amp = 0); Oh's
#: form in one batch, the thesis models as two passes (``MagNet.shape_fixed_at_zero``)
DECODE_TWICE_MODELS = tuple(n for n, m in MODELS.items() if m.decode_twice)

#: models with the project's manipulator forms as an arch switch (``manipulator=``), and the
#: forms each takes besides the paper's: "linear" (its change follows the motion) and, for
#: HMN, "still-gated" (its gates those of the still scene), for σ-θ Net "riesz" (linear, on
#: each directional derivative's local phase), "riesz-pyramid" (the same at four
#: resolutions), "riesz-directions" (the pyramid, and each direction's band kept apart) and
#: "riesz-readout" (the directions form, its bands also read out linearly into the image);
#: docs/training_log.md
MANIPULATOR_FORMS = {"fd4mm": ("linear",), "hmn": ("linear", "still-gated"),
                     "hmn_light": ("linear", "still-gated"),
                     "sigma_theta": ("linear", "riesz", "riesz-pyramid", "riesz-directions",
                                     "riesz-readout")}


def build_model(name: str, **arch: Any):
    """A fresh network (a :class:`.models.MagNet`) by model name, e.g. ``realtime``.

    ``arch``: architecture switches of the model (FD4MM's ablations: ``filters``, ``mixer``,
    ``attention``; ``decode_twice`` for :data:`DECODE_TWICE_MODELS`); weights record them in
    their provenance under ``"arch"``.
    """
    if name not in MODELS:
        raise VMMError(f"unknown learned model {name!r}; choose from {sorted(MODELS)}")
    spec = MODELS[name]
    arch = dict(arch)
    decode_twice = bool(arch.pop("decode_twice", False))
    if decode_twice and not spec.decode_twice:
        raise VMMError(f"decode_twice applies to {', '.join(DECODE_TWICE_MODELS)}, not {name}")
    module, _, attr = spec.network.partition(":")
    make = getattr(importlib.import_module(f"{__package__}.{module}"), attr)
    try:
        net = make(**{**spec.arch, **arch})
    except (TypeError, ValueError) as e:
        raise VMMError(f"bad architecture options {arch} for {name}: {e}") from None
    net.decode_twice = decode_twice
    return net


__all__ = ["DECODE_TWICE_MODELS", "MANIPULATOR_FORMS", "MODELS", "LearnedModel",
           "build_model"]
