"""Training loop for the learned magnifiers (``vmm train MODEL``).

Resumable: everything needed to continue lives in ``RUN_DIR/ckpt.pt`` (model, optimiser,
step, curve, cumulative wall time). The data stream is a pure function of (seed, step), so a
resumed run sees exactly the samples it would have seen. Without a checkpoint, training starts
from the package's shipped weights when they exist (``--init auto``), else from scratch.

Outputs in RUN_DIR: ``ckpt.pt``, ``log.jsonl`` (one JSON object per log line), and
``export/<model>.pt`` + ``.json``: the latest validated fp16 weights with provenance, ready to be
copied into ``napari_vmm/weights/``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shlex
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import VMMError
from . import weights as W

MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    # ssim_weight: stand-in for S2's perceptual loss, real-time model only.
    "oh2018": {"crop": 96, "batch": 4, "lr": 2e-4, "ssim_weight": 0.0, "val_every": 200},
    "realtime": {"crop": 128, "batch": 4, "lr": 2e-4, "ssim_weight": 0.1, "val_every": 500},
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
    ssim_weight: float = -1.0       # <0: model default
    clip: float = 5.0               # gradient-norm clip
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
    command: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def resolve(self) -> TrainConfig:
        d = MODEL_DEFAULTS[self.model]
        self.batch = self.batch or d["batch"]
        self.crop = self.crop or d["crop"]
        self.lr = self.lr or d["lr"]
        self.val_every = self.val_every or d["val_every"]
        if self.ssim_weight < 0:
            self.ssim_weight = d["ssim_weight"]
        if not self.run_dir:
            self.run_dir = str(Path("runs") / self.model)
        return self


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def to_net(x):
    """[0, 1] images -> network range [−1, 1]."""
    return x * 2.0 - 1.0


def _atomic_torch_save(obj, path: Path) -> None:
    import torch

    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def validation_set(cfg: TrainConfig, seed: int):
    """The fixed validation batch list: ``val_n`` samples of the val split at ``val_size``."""
    from .data import DataConfig, generate_batch

    dc = DataConfig(size=cfg.val_size)
    idx = list(range(cfg.val_n))
    return [generate_batch(seed, "val", idx[i:i + 8], dc) for i in range(0, len(idx), 8)]


def evaluate_val(net, batches, device, amp_dtype=None) -> dict[str, float]:
    """Mean validation SSIM of the output and of the unmagnified input (B' vs Y'), and L1."""
    import torch

    from .losses import ssim

    net.eval()
    s_out, s_in, l1, n = 0.0, 0.0, 0.0, 0
    with torch.inference_mode():
        for b in batches:
            xa, xb, y = (to_net(b[k]).to(device) for k in ("A", "B", "Y"))
            out = net(xa, xb, b["alpha"].to(device)).float().clamp(-1, 1)
            o01, y01 = (out + 1) / 2, (y + 1) / 2
            k = xa.shape[0]
            s_out += float(ssim(o01, y01, reduction="none").sum())
            s_in += float(ssim((xb + 1) / 2, y01, reduction="none").sum())
            l1 += float((o01 - y01).abs().mean(dim=(1, 2, 3)).sum())
            n += k
    net.train()
    return {"ssim": s_out / n, "ssim_input": s_in / n, "l1": l1 / n}


def train(cfg: TrainConfig) -> int:
    """Run (or resume) training until ``cfg.steps`` or ``cfg.max_hours``; returns exit code."""
    import torch

    from .data import DataConfig, add_poisson_noise, generate_batch
    from .losses import magnification_loss
    from .models import build_model, count_parameters

    cfg.resolve()
    torch.set_num_threads(max(1, cfg.threads))
    device = _device(cfg.device)
    run = Path(cfg.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    ckpt_path = run / "ckpt.pt"
    log_path = run / "log.jsonl"
    torch.manual_seed(cfg.seed)

    net = build_model(cfg.model).to(device)
    net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    step, wall, curve, init_from, best = 0, 0.0, [], "scratch", None
    if ckpt_path.exists() and cfg.init in ("auto",):
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, wall, curve = ck["step"], ck["wall_time_s"], ck["curve"]
        init_from = ck.get("init_from", "scratch")
        best = ck.get("best")
        print(f"resuming {cfg.model} from {ckpt_path} at step {step}", flush=True)
    elif cfg.init in ("auto", "shipped") or cfg.init.endswith(".pt"):
        src = None if cfg.init in ("auto", "shipped") else cfg.init
        try:
            sd, prov = W.load_weights(cfg.model, src)
        except VMMError:
            if cfg.init != "auto":
                raise
        else:
            net.load_state_dict(sd)
            step = int(prov.get("steps", 0))
            wall = float(prov.get("wall_time_s", 0.0))
            curve = list(prov.get("curve", []))
            init_from = f"weights sha256 {prov.get('sha256', '')[:16]}"
            print(f"starting {cfg.model} from shipped weights at step {step}", flush=True)
    for g in opt.param_groups:
        g["lr"] = cfg.lr

    dcfg = DataConfig(size=cfg.crop)
    val_batches = validation_set(cfg, cfg.seed)
    params = count_parameters(net)
    print(f"{cfg.model}: {params} parameters, crop {cfg.crop}, batch {cfg.batch}, "
          f"lr {cfg.lr}, device {device}, threads {torch.get_num_threads()}", flush=True)

    def provenance(metrics: dict[str, float]) -> dict[str, Any]:
        passed = metrics["ssim"] >= W.QUALITY_BAR
        return {
            "command": cfg.command,
            "seed": cfg.seed,
            "steps": step,
            "samples_seen": step * cfg.batch,
            "batch": cfg.batch,
            "crop": cfg.crop,
            "optimizer": {"name": "Adam", "lr": cfg.lr, "betas": [0.9, 0.999],
                          "grad_clip": cfg.clip},
            "loss": {"l1": 1.0, "reg_weight": cfg.reg_weight, "ssim_weight": cfg.ssim_weight,
                     "poisson_noise_max": cfg.noise},
            "data_recipe": {"generator": "napari_vmm.core.learned.data.generate_sample",
                            "train_split": "train (split id 0)", **dcfg.to_dict()},
            "parameters": params,
            "wall_time_s": round(wall, 1),
            "hardware": W.hardware_string() + f"; device {device}; torch threads "
                        f"{torch.get_num_threads()}; torch {torch.__version__}",
            "init_from": init_from,
            "validation": {"split": "val (split id 1)", "seed": cfg.seed, "n": cfg.val_n,
                           "size": cfg.val_size, **{k: round(v, 5) for k, v in metrics.items()}},
            "quality_bar": W.QUALITY_BAR,
            "status": W.STATUS_FINISHED if passed else W.STATUS_TRAINING,
            "curve": curve,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def save_ckpt() -> None:
        _atomic_torch_save({"model": net.state_dict(), "opt": opt.state_dict(), "step": step,
                            "wall_time_s": wall, "curve": curve, "init_from": init_from,
                            "best": best, "config": cfg.__dict__}, ckpt_path)

    def _on_term(signum, frame):  # `kill PID` saves a checkpoint, like Ctrl-C
        raise KeyboardInterrupt

    prev_term = None
    with contextlib.suppress(ValueError):  # ValueError: not in the main thread
        prev_term = signal.signal(signal.SIGTERM, _on_term)
    logf = open(log_path, "a")  # noqa: SIM115 - closed in the finally below
    t_start = time.time()
    t_last = time.time()
    t_ckpt = time.time()
    win_loss, win_n, win_t0 = 0.0, 0, time.time()
    curve_loss = float("nan")
    net.train()
    try:
        while step < cfg.steps:
            b = generate_batch(cfg.seed, "train",
                               range(step * cfg.batch, (step + 1) * cfg.batch), dcfg)
            gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
            xa, xb, xc, y = (to_net(b[k]) for k in ("A", "B", "C", "Y"))
            if cfg.noise > 0:
                xa, xb, xc = (add_poisson_noise(t, gen, cfg.noise) for t in (xa, xb, xc))
            n = xa.shape[0]
            x3 = torch.cat([xa, xb, xc]).to(device).contiguous(
                memory_format=torch.channels_last)
            y = y.to(device)
            v, m = net.encode(x3)
            va, vb, vc = v[:n], v[n:2 * n], v[2 * n:]
            ma, mb, mc = m[:n], m[n:2 * n], m[2 * n:]
            out = net.decode(vb, net.manipulate(ma, mb, b["alpha"].to(device)))
            loss, parts = magnification_loss(out, y, vc, va, mc, mb, cfg.reg_weight,
                                             cfg.ssim_weight)
            if not math.isfinite(parts["loss"]):
                raise VMMError(f"training diverged at step {step} (loss {parts['loss']}); "
                               "resume from the last checkpoint with a lower --lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip > 0:
                torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.clip)
            opt.step()
            step += 1
            now = time.time()
            wall += now - t_last
            t_last = now
            win_loss += parts["loss"]
            win_n += 1
            if step % cfg.log_every == 0:
                sps = win_n * cfg.batch / max(now - win_t0, 1e-9)
                rec = {"step": step, "loss": round(win_loss / win_n, 5), "l1": parts["l1"],
                       "reg": parts["reg"], "samples_per_s": round(sps, 2),
                       "wall_time_s": round(wall, 1)}
                logf.write(json.dumps(rec) + "\n")
                logf.flush()
                print(json.dumps(rec), flush=True)
                curve_loss = win_loss / win_n
                win_loss, win_n, win_t0 = 0.0, 0, now
            if step % cfg.val_every == 0:
                met = evaluate_val(net, val_batches, device)
                curve.append([step, round(curve_loss, 5), round(met["ssim"], 5),
                              round(wall, 1)])
                rec = {"step": step, "val": {k: round(v, 5) for k, v in met.items()},
                       "wall_time_s": round(wall, 1)}
                logf.write(json.dumps(rec) + "\n")
                logf.flush()
                print(json.dumps(rec), flush=True)
                W.save_weights(net.state_dict(), provenance(met), cfg.model, run / "export")
                if best is None or met["ssim"] > best["ssim"]:
                    best = {"step": step, **met}
                save_ckpt()
                t_ckpt = time.time()
                t_last = time.time()  # validation time is not training time
            elif time.time() - t_ckpt > cfg.ckpt_every_s:
                save_ckpt()
                t_ckpt = time.time()
            if cfg.max_hours and time.time() - t_start > cfg.max_hours * 3600:
                print("max_hours reached", flush=True)
                break
    except KeyboardInterrupt:
        print("interrupted; saving checkpoint", flush=True)
    finally:
        save_ckpt()
        logf.close()
        if prev_term is not None:
            signal.signal(signal.SIGTERM, prev_term)
    return 0


def config_from_args(ns) -> TrainConfig:
    cmd = "vmm train " + " ".join(shlex.quote(a) for a in sys.argv[2:]) \
        if len(sys.argv) > 1 and sys.argv[1] == "train" else \
        "vmm train " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    return TrainConfig(
        model=ns.model, run_dir=ns.run_dir or "", steps=ns.steps, batch=ns.batch,
        crop=ns.crop, lr=ns.lr, reg_weight=ns.reg_weight, ssim_weight=ns.ssim_weight,
        clip=ns.clip, noise=ns.noise, seed=ns.seed, device=ns.device, threads=ns.threads,
        val_every=ns.val_every, val_n=ns.val_n, val_size=ns.val_size, init=ns.init,
        max_hours=ns.max_hours, command=cmd)
