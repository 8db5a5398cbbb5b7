"""``vmm train MODEL``: train a learned magnifier on generated synthetic data.

Example::

    vmm train realtime                       # CPU or CUDA, resumes runs/realtime/ckpt.pt
    vmm train oh2018 --crop 96 --max-hours 8 --run-dir runs/oh2018
    vmm train fd4mm --device cuda --batch 32 --workers 12       # GPU, bf16 autocast
    vmm train fd4mm --ablate contrastive --run-dir runs/fd4mm-nocr   # paper Table 6 ablation
    nice -n 10 setsid nohup vmm train oh2018 > runs/oh2018.out 2>&1 &
    vmm train lnvmm --stage proxy --run-dir runs/lnvmm-proxy      # thesis Ch. 3: the proxy,
    vmm train lnvmm --proxy runs/lnvmm-proxy/export/lnvmm.pt       # then the noisy model
    vmm train hmn --stage contrastive --init runs/hmn/export/hmn.pt \
        --proxy runs/hmn-proxy/export/hmn.pt --run-dir runs/hmn-cl  # thesis Ch. 7 fine-tuning
    vmm train kldnas --latency-ms 40 --run-dir runs/kldnas          # KL-DNAS search (Ch. 4)
    vmm train kldnas --init runs/kldnas/export/kldnas.pt --run-dir runs/kldnas-ft  # its student
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..core.errors import VMMError
from ..core.learned.table import MANIPULATOR_FORMS
from . import run_subcommand

DESCRIPTION = """\
Train oh2018, realtime, fd4mm or a thesis model (lnvmm, mdlmm, sigma_theta, hmn and their
light variants), or run the KL-DNAS search (kldnas), on synthetic data generated on the fly
(Oh et al. recipe; nothing is downloaded or written besides the run directory). Rerunning the
same command resumes from RUN_DIR/ckpt.pt, or, without a checkpoint, from the shipped weights.
Loss and validation SSIM go to RUN_DIR/log.jsonl; the latest validated weights with their
provenance go to RUN_DIR/export/, from where they can be copied into napari_vmm/weights/ (see
docs/learned.md).
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand to ``subparsers`` (its ``func`` runs it)."""
    from ..core.registry import method_names
    from ..training.config import GAIN_POOLINGS

    learned = method_names("learned")
    p = subparsers.add_parser(
        "train", help=f"train a learned magnifier ({', '.join(learned)})",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", choices=learned, help="the learned method to train")
    p.add_argument("--run-dir", default="", help="checkpoint/log directory (default runs/MODEL)")
    p.add_argument("--steps", type=int, default=1_000_000, help="total optimiser steps")
    p.add_argument("--batch", type=int, default=0, help="batch size (default: 4)")
    p.add_argument("--crop", type=int, default=0,
                   help="training crop in pixels (default: oh2018 96, realtime and fd4mm "
                        "128; fd4mm needs a multiple of 8)")
    p.add_argument("--lr", type=float, default=0.0, help="Adam learning rate (default 2e-4)")
    p.add_argument("--reg-weight", type=float, default=0.1,
                   help="weight of Oh's texture/shape regularisers (default 0.1)")
    p.add_argument("--ssim-weight", type=float, default=-1.0,
                   help="weight of a (1-SSIM) term (default: realtime 0.1, oh2018 and "
                        "fd4mm 0; the thesis models keep their protocol's)")
    p.add_argument("--cr-weight", type=float, default=0.1,
                   help="fd4mm: weight λ of the contrastive term (default 0.1, the paper's)")
    p.add_argument("--edge-weight", type=float, default=1.0,
                   help="fd4mm: weight of the Laplacian-of-Gaussian edge loss (default 1)")
    p.add_argument("--ablate", default="",
                   help="fd4mm ablations, comma-separated: contrastive (no L_CR), filters (no "
                        "sparse high/low-pass filters), mixer (no frequency mixer), softmax "
                        "(softmax instead of ReLU attention); use its own --run-dir")
    p.add_argument("--decode-twice", action="store_true",
                   help="output = input + D(V, M_out) − D(V, M) (the thesis models: "
                        "input + net(alpha) − net(0)), exactly the input at alpha 0 "
                        "(recorded in the weights' arch); "
                        "start it from trained weights with --init shipped")
    p.add_argument("--motion-weight", type=float, default=0.0,
                   help="with --decode-twice: weight of 1 - cos(out - B, Y - B), which aims "
                        "the motion path's change at the target's instead of letting it "
                        "shrink to nothing (default 0: off)")
    p.add_argument("--gain-weight", type=float, default=0.0,
                   help="with --decode-twice: weight of (1 - G)^2, G the share of the target's "
                        "change (Y minus the noise-free B) the output delivers along it, "
                        "pooled over the batch: asks for the whole requested motion, which L1 "
                        "lets a network hedge towards zero (default 0: off)")
    p.add_argument("--data", action="append", default=[], metavar="FIELD=NUMBER",
                   help="override a field of the training-data recipe (DataConfig in "
                        "napari_vmm/training/data.py, e.g. p_log_motion=0.6 for more small "
                        "motions); the validation set keeps the standard recipe; repeatable")
    p.add_argument("--lr-scale", action="append", default=[], metavar="PREFIX=FACTOR",
                   help="train the parameters whose names start with PREFIX at FACTOR times "
                        "--lr, e.g. fuse_bands=10 for a layer that a warm start across an "
                        "architecture change adds at zero; repeatable, recorded in the "
                        "provenance; resume with the same factors")
    p.add_argument("--gain-pooling", default="batch", choices=list(GAIN_POOLINGS),
                   help="with --gain-weight: one gain over the batch (default; its largest "
                        "change sets it), the mean of per-sample terms (every motion size "
                        "alike), or per-sample terms weighted by the change's rms "
                        "(sqrt-energy, between the two)")
    p.add_argument("--gain-per-sample", dest="gain_pooling", action="store_const",
                   const="sample", help="the same as --gain-pooling sample")
    p.add_argument("--manipulator", default="paper",
                   choices=["paper", *dict.fromkeys(f for forms in MANIPULATOR_FORMS.values()
                                                    for f in forms)],
                   help="fd4mm, hmn, hmn_light, sigma_theta: the paper's manipulator, or the "
                        "project's linear one whose change scales with the motion (docs/"
                        "training_log.md, 'Why fd4mm returned its input'); hmn, hmn_light: also "
                        "still-gated, linear with the gates of the still scene ('HMN's dead "
                        "zone'); sigma_theta: also riesz, linear on each directional "
                        "derivative's local phase ('σ-θ Net's phase'), riesz-pyramid, "
                        "the same at four resolutions, riesz-directions, the pyramid "
                        "with each direction's band kept apart, and riesz-readout, the "
                        "directions form whose bands are also read out into the image; "
                        "from trained weights "
                        "use --init shipped (a warm start)")
    p.add_argument("--workers", type=int, default=0,
                   help="worker processes generating training batches (default 0: in-process)")
    p.add_argument("--renderer", default="cpu", choices=["cpu", "torch"],
                   help="training data: cpu (per-sample generator, default; data workers) or "
                        "torch (whole batches rendered on --device by torch, same recipe; "
                        "another sample stream, so keep one renderer per run)")
    p.add_argument("--echo", type=int, default=1,
                   help="optimiser steps per generated batch, each on another flip/rotation of "
                        "it (1..8; default 1). For a GPU starved by the CPU data generator")
    p.add_argument("--amp", default="auto", choices=["auto", "bf16", "fp16", "off"],
                   help="mixed precision: on CUDA auto is bf16 autocast; on a CPU auto is off and "
                        "bf16 autocasts (faster where the CPU has native bfloat16)")
    p.add_argument("--clip", type=float, default=5.0, help="gradient-norm clip (0: off)")
    p.add_argument("--noise", type=float, default=0.3,
                   help="max Poisson noise strength, Oh's u (default 0.3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--val-every", type=int, default=0, help="validate every N steps")
    p.add_argument("--val-n", type=int, default=64, help="validation samples (default 64)")
    p.add_argument("--val-size", type=int, default=128, help="validation crop (default 128)")
    p.add_argument("--init", default="auto",
                   help="where a new run starts: auto (shipped weights, else scratch), "
                        "scratch, shipped, or a .pt path. lnvmm and hmn also start from "
                        "lnvmm_light / hmn_light weights, widened to their width with the "
                        "same function. A RUN_DIR with a checkpoint always resumes from it "
                        "(start afresh in a new --run-dir)")
    p.add_argument("--max-hours", type=float, default=0.0,
                   help="stop after this many hours of this process (0: no limit)")
    p.add_argument("--max-steps", type=int, default=0,
                   help="stop after this many steps of this process (0: no limit; smoke tests)")
    p.add_argument("--validate-only", action="store_true",
                   help="take no optimiser step: validate the starting weights and export them "
                        "(e.g. shipped weights with a new --decode-twice flag)")
    p.add_argument("--warmup", type=int, default=100,
                   help="linear lr warm-up steps when the optimiser state is fresh (default 100)")
    p.add_argument("--ckpt-every-s", type=float, default=300.0,
                   help="also checkpoint every this many seconds between validations")
    p.add_argument("--stage", default="main", choices=["main", "proxy", "contrastive"],
                   help="thesis models: main (noisy inputs), proxy (lnvmm/hmn without noise: "
                        "the frozen proxy of the other stages), contrastive (hmn fine-tuning "
                        "of --init weights against --proxy)")
    p.add_argument("--proxy", default="",
                   help="thesis models: proxy weights .pt (lnvmm: L_M; hmn contrastive: the "
                        "positive)")
    p.add_argument("--epoch-steps", type=int, default=1000,
                   help="hmn contrastive stage: steps per epoch (previous-epoch negatives)")
    p.add_argument("--latency-ms", type=float, default=0.0,
                   help="kldnas: latency target of the student on this machine (0: half the "
                        "teacher's measured latency)")
    p.add_argument("--search-size", type=int, default=128,
                   help="kldnas: frame size the latency table is measured at (default 128)")
    p.set_defaults(func=run)
    return p


def run(ns: argparse.Namespace) -> int:
    from ..training.config import config_from_args
    from ..training.train import train

    if ns.model == "kldnas" and not str(ns.init).endswith(".pt"):
        from ..training.kldnas_search import search_from_args

        if ns.lr_scale:
            raise VMMError("--lr-scale applies to training, not the KL-DNAS search")
        return search_from_args(ns)
    return train(config_from_args(ns))


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry: ``python -m napari_vmm.cli.train ...`` is ``vmm train ...``."""
    return run_subcommand("train", argv)


if __name__ == "__main__":
    sys.exit(main())
