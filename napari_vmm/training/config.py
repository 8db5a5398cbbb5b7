"""The training configuration (``vmm train MODEL``): per-model defaults, every option and its
validation, and the command line's mapping onto it. The loop is :mod:`.train`."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import VMMError
from ..core.learned import weights as W
from ..core.learned.table import MANIPULATOR_FORMS, MODELS

#: training defaults (crop, batch, lr, ssim_weight, val_every) of every model, from its table
#: entry (:mod:`napari_vmm.core.learned.table`)
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {n: dict(m.train) for n, m in MODELS.items()}

#: how the motion-gain term weighs a batch's samples (``losses.motion_gain_loss(pooling=...)``)
GAIN_POOLINGS = ("batch", "sample", "sqrt-energy")

#: FD4MM architecture ablations (``vmm train fd4mm --ablate NAME``) -> FD4MMNet switches
FD4MM_ABLATIONS: dict[str, dict[str, Any]] = {
    "filters": {"filters": False},     # no sparse high-/low-pass filters (Table 4, B0 + M)
    "mixer": {"mixer": False},         # no sparse frequency mixer (Table 4, B2)
    "softmax": {"attention": "softmax"},  # softmax instead of ReLU attention (Table 5)
}


@dataclass
class TrainConfig:
    model: str
    run_dir: str = ""
    steps: int = 1_000_000          # total optimiser steps (a run can be stopped at any time)
    batch: int = 0                  # 0: model default
    crop: int = 0                   # 0: model default
    lr: float = 0.0                 # 0: model default
    reg_weight: float = 0.1         # λ of Oh's regularisers (paper value; code used 1.0)
    cr_weight: float = 0.1          # FD4MM: λ of the contrastive term (0: off, the ablation)
    edge_weight: float = 1.0        # FD4MM: weight of the LoG edge loss
    motion_weight: float = 0.0      # decode twice: weight of 1 − cos(out − B, Y − B)
    gain_weight: float = 0.0        # decode twice: weight of (1 − motion gain)²
    gain_pooling: str = "batch"     # the gain term over the batch, per sample or sqrt-energy
    arch: dict[str, Any] = field(default_factory=dict)  # architecture switches (ablations)
    ablation: tuple[str, ...] = ()  # names given to --ablate (recorded; no shipped-weight init)
    workers: int = 0                # data-generating worker processes (0: in-process)
    renderer: str = "cpu"           # cpu: per-sample generator (.data); torch: .render_torch
    echo: int = 1                   # optimiser steps per generated batch (1..8, dihedral views)
    amp: str = "auto"               # auto (bf16 autocast on CUDA), bf16, fp16, off
    ssim_weight: float = -1.0       # <0: model default
    clip: float = 5.0               # gradient-norm clip
    warmup: int = 100               # linear lr warm-up steps when the optimiser state is fresh
    noise: float = 0.3              # max Poisson-noise strength u (Oh: 0.3)
    seed: int = 0
    device: str = "auto"
    threads: int = 1
    val_every: int = 0              # steps; 0: model default
    val_n: int = 64
    val_size: int = 128
    log_every: int = 20
    ckpt_every_s: float = 300.0
    init: str = "auto"              # auto | scratch | shipped | PATH.pt
    max_hours: float = 0.0          # stop after this much wall time in this process (0: never)
    max_steps: int = 0              # stop after this many steps in this process (0: no limit)
    validate_only: bool = False     # no optimiser step: validate and export (e.g. a new arch flag)
    command: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    stage: str = "main"             # thesis models: main | proxy | contrastive (.thesis_train)
    proxy: str = ""                 # thesis models: frozen proxy weights (.pt) for L_M / C_loss
    epoch_steps: int = 1000         # hmn contrastive stage: steps per "epoch" (negatives)
    #: training-data recipe overrides (numeric ``DataConfig`` fields, e.g. p_log_motion);
    #: the validation set keeps the standard recipe, so curves stay comparable
    data: dict[str, float] = field(default_factory=dict)
    #: learning-rate factors by parameter-name prefix (``--lr-scale fuse_bands=10``), e.g. a
    #: layer new in a warm start across an architecture change
    lr_scale: dict[str, float] = field(default_factory=dict)

    def resolve(self) -> TrainConfig:
        if self.model not in MODEL_DEFAULTS:
            raise VMMError(f"unknown learned model {self.model!r}; choose from "
                           f"{sorted(MODEL_DEFAULTS)}")
        d = MODEL_DEFAULTS[self.model]
        self.batch = self.batch or d["batch"]
        self.crop = self.crop or d["crop"]
        self.lr = self.lr or d["lr"]
        self.val_every = self.val_every or d["val_every"]
        if self.ssim_weight < 0:
            self.ssim_weight = d["ssim_weight"]
        if self.amp not in ("auto", "bf16", "fp16", "off"):
            raise VMMError(f"amp must be auto, bf16, fp16 or off, got {self.amp!r}")
        if self.renderer not in ("cpu", "torch"):
            raise VMMError(f"renderer must be cpu or torch, got {self.renderer!r}")
        if not 1 <= self.echo <= 8:
            raise VMMError(f"echo must be between 1 and 8, got {self.echo}")
        st = MODELS[self.model].stride
        if self.crop % st:
            raise VMMError(f"{self.model} needs a crop that is a multiple of {st}, "
                           f"got {self.crop}")
        if not self.run_dir:
            self.run_dir = str(Path("runs") / self.model)
        self.data_config()  # checks the overrides
        bad = [f"{k}={v:g}" for k, v in self.lr_scale.items() if not (k and 0 < v <= 1000)]
        if bad:
            raise VMMError(f"--lr-scale needs a parameter-name prefix and a factor in "
                           f"(0, 1000], got {', '.join(bad)}")
        return self

    def data_config(self):
        """The training-data recipe: ``DataConfig`` at the crop size with ``data`` applied."""
        from dataclasses import fields

        from .data import DataConfig

        numeric = {f.name: int if f.type in ("int", int) else float for f in fields(DataConfig)
                   if f.name != "size" and f.type in ("float", "int", float, int)}
        bad = sorted(set(self.data) - set(numeric))
        if bad:
            raise VMMError(f"unknown --data field(s) {bad}; choose from {sorted(numeric)}")
        out_of_range = [f"{k}={v:g}" for k, v in self.data.items()
                        if not (0 <= v <= 1 if k.startswith("p_") else v > 0)]
        if out_of_range:
            raise VMMError(f"--data out of range: {', '.join(out_of_range)} (probabilities "
                           "p_* in [0, 1], the rest > 0)")
        try:
            return DataConfig(size=self.crop, **{k: numeric[k](v) for k, v in self.data.items()})
        except (TypeError, ValueError) as e:
            raise VMMError(f"bad --data {self.data}: {e}") from None


def _assignments(flag: str, items: list[str], key_name: str) -> dict[str, float]:
    """``["p_log_motion=0.6", ...]`` -> {"p_log_motion": 0.6}, for ``flag`` (--data, ...)."""
    out: dict[str, float] = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise VMMError(f"{flag} takes {key_name}=NUMBER, got {item!r}") from None
    return out


def config_from_args(ns) -> TrainConfig:
    """The :class:`TrainConfig` of parsed ``vmm train`` arguments."""
    ablate = [a.strip() for a in (ns.ablate or "").split(",") if a.strip()]
    allowed = {"contrastive", *FD4MM_ABLATIONS}
    bad = [a for a in ablate if a not in allowed]
    if bad:
        raise VMMError(f"unknown --ablate {bad}; choose from {sorted(allowed)}")
    if ablate and ns.model != "fd4mm":
        raise VMMError("--ablate applies to fd4mm only")
    arch: dict[str, Any] = {}
    for a in ablate:
        arch.update(FD4MM_ABLATIONS.get(a, {}))
    if getattr(ns, "decode_twice", False):
        arch["decode_twice"] = True
    motion_weight = getattr(ns, "motion_weight", 0.0)
    gain_weight = getattr(ns, "gain_weight", 0.0)
    gain_pooling = getattr(ns, "gain_pooling", "batch")
    if gain_pooling != "batch" and not gain_weight:
        raise VMMError("--gain-pooling needs --gain-weight")
    for flag, w in (("--motion-weight", motion_weight), ("--gain-weight", gain_weight)):
        if w and not arch.get("decode_twice"):
            raise VMMError(f"{flag} needs --decode-twice (the change is then out - B)")
        if w and flag == "--motion-weight" and MODELS[ns.model].loss == "thesis":
            raise VMMError(f"{flag} applies to oh2018, realtime and fd4mm, not the thesis "
                           "models (use --gain-weight)")
    if getattr(ns, "manipulator", "paper") != "paper":
        if ns.model not in MANIPULATOR_FORMS:
            raise VMMError(f"--manipulator applies to {', '.join(MANIPULATOR_FORMS)}, "
                           f"not {ns.model}")
        if ns.manipulator not in MANIPULATOR_FORMS[ns.model]:
            takers = [m for m, forms in MANIPULATOR_FORMS.items() if ns.manipulator in forms]
            raise VMMError(f"--manipulator {ns.manipulator} applies to {', '.join(takers)}, "
                           f"not {ns.model}")
        arch["manipulator"] = ns.manipulator
    if ns.model == "kldnas":  # fine-tuning a searched student: its genotype is in --init
        if not str(ns.init).endswith(".pt"):
            raise VMMError("training kldnas needs --init RUN/export/kldnas.pt from a search")
        searched = dict(W.load_weights("kldnas", ns.init)[1].get("arch") or {})
        if arch.get("decode_twice"):
            searched["decode_twice"] = True
        arch = searched
    cmd = "vmm train " + " ".join(shlex.quote(a) for a in sys.argv[2:]) \
        if len(sys.argv) > 1 and sys.argv[1] == "train" else \
        "vmm train " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    cfg = TrainConfig(
        model=ns.model, run_dir=ns.run_dir or "", steps=ns.steps, batch=ns.batch,
        crop=ns.crop, lr=ns.lr, reg_weight=ns.reg_weight, ssim_weight=ns.ssim_weight,
        cr_weight=0.0 if "contrastive" in ablate else ns.cr_weight,
        edge_weight=ns.edge_weight, motion_weight=motion_weight, gain_weight=gain_weight,
        gain_pooling=gain_pooling,
        data=_assignments("--data", getattr(ns, "data", None) or [], "FIELD"),
        lr_scale=_assignments("--lr-scale", getattr(ns, "lr_scale", None) or [], "PREFIX"),
        arch=arch,
        ablation=tuple(ablate), workers=ns.workers,
        echo=ns.echo, amp=ns.amp, renderer=getattr(ns, "renderer", "cpu"),
        clip=ns.clip, noise=ns.noise, seed=ns.seed, device=ns.device, threads=ns.threads,
        val_every=ns.val_every, val_n=ns.val_n, val_size=ns.val_size, init=ns.init,
        max_hours=ns.max_hours, max_steps=ns.max_steps, ckpt_every_s=ns.ckpt_every_s,
        validate_only=getattr(ns, "validate_only", False),
        warmup=ns.warmup,
        command=cmd)

    # thesis models: training stage, frozen proxy and the contrastive stage's epoch length
    cfg.stage = getattr(ns, "stage", "main")
    cfg.proxy = getattr(ns, "proxy", "")
    cfg.epoch_steps = getattr(ns, "epoch_steps", 1000)
    return cfg
