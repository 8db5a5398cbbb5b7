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
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import VMMError
from ..core.learned import weights as W
from ..core.learned.table import MODELS
from .config import TrainConfig
from .export import hardware_string, save_weights
from .widen import LIGHT_OF, grow_inputs, widen_state_dict

if TYPE_CHECKING:
    import torch

class TrainStream:
    """Map-style dataset: item ``step`` is the (noised) training batch of that step.

    A pure function of (seed, step), so worker processes produce exactly what the in-process
    loop would, and a resumed run continues the same stream. With ``cfg.renderer`` "torch"
    the batch is rendered and noised on ``device`` by :func:`.render_torch.render_batch`
    (another stream of the same recipe; a pure function of (seed, step) on that device).
    """

    def __init__(self, cfg: TrainConfig, dcfg, device=None) -> None:
        self.seed, self.batch, self.noise, self.dcfg = cfg.seed, cfg.batch, cfg.noise, dcfg
        self.renderer, self.device = cfg.renderer, device or "cpu"

    def __len__(self) -> int:
        return 1 << 40

    def __getitem__(self, step: int) -> dict[str, Any]:
        import torch

        from .data import add_poisson_noise, generate_batch

        dev = torch.device(self.device if self.renderer == "torch" else "cpu")
        if self.renderer == "torch":
            from .render_torch import render_batch

            b = render_batch(self.seed, "train", step, self.batch, self.dcfg, dev)
        else:
            b = generate_batch(self.seed, "train",
                               range(step * self.batch, (step + 1) * self.batch), self.dcfg)
        gen = torch.Generator(device=dev).manual_seed(self.seed * 1_000_003 + step)
        xa, xb, xc, y = (to_net(b[k]) for k in ("A", "B", "C", "Y"))
        clean_a, clean_b = xa, xb
        if self.noise > 0:
            with torch.device(dev):  # the noise is drawn where the batch lies
                xa, xb, xc = (add_poisson_noise(t, gen, self.noise) for t in (xa, xb, xc))
        return {"A": xa, "B": xb, "C": xc, "Y": y, "B_clean": clean_b, "A_clean": clean_a,
                "alpha": b["alpha"]}


def _worker_init(_: int) -> None:
    import torch

    torch.set_num_threads(1)


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th of the 8 symmetries of the square (k = 0: identity) of (N, C, S, S) images.

    Bit 4 transposes, bit 1 flips left-right, bit 2 flips up-down; same shape out.
    """
    import torch

    if k & 4:
        x = x.transpose(-2, -1)
    if k & 1:
        x = torch.flip(x, dims=(-1,))
    if k & 2:
        x = torch.flip(x, dims=(-2,))
    return x


def _batches(cfg: TrainConfig, dcfg, start: int, device=None):
    """Iterator over the training batches of steps ``start``, ``start + 1``, ...

    With ``cfg.echo`` = K > 1 ("data echoing"), generated batch j serves steps jK .. jK+K−1,
    step s seeing the (s mod K)-th dihedral view of it (the same for every frame of a sample,
    so the motion stays consistent; the generator's motion directions are isotropic). Still
    a pure function of (seed, step). The torch renderer renders in this process, on
    ``device`` (no data workers).
    """
    stream = TrainStream(cfg, dcfg, device)
    k = cfg.echo
    j0 = start // k
    if cfg.workers <= 0 or cfg.renderer == "torch":
        source = (stream[j] for j in range(j0, 1 << 62))
    else:
        from torch.utils.data import DataLoader

        stop = max(j0 + 1, -(-cfg.steps // k))
        source = iter(DataLoader(stream, batch_size=None, sampler=range(j0, stop),
                                 num_workers=cfg.workers, worker_init_fn=_worker_init,
                                 prefetch_factor=4, persistent_workers=False))
    step = start
    for b in source:
        while step // k == j0:
            t = step % k
            yield b if t == 0 else {key: (v if key == "alpha" else dihedral(v, t))
                                    for key, v in b.items()}
            step += 1
        j0 += 1


def _split(t, n: int, k: int):
    """Rows [k·n, (k+1)·n) of a tensor or of every tensor of a tuple."""
    if isinstance(t, tuple):
        return tuple(x[k * n:(k + 1) * n] for x in t)
    return t[k * n:(k + 1) * n]


def _autocast(device, amp: str):
    import torch

    if amp == "off":
        return contextlib.nullcontext()
    dtype = torch.float16 if amp == "fp16" else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype)


def amp_mode_for(device, amp: str) -> str:
    """The mixed precision a run trains under: on CUDA ``auto`` is bf16; on a CPU only an
    explicit ``bf16`` (CPUs with native bfloat16 step faster) and ``auto`` is off."""
    if device.type == "cuda":
        return "bf16" if amp == "auto" else amp
    if amp == "fp16":
        raise VMMError("--amp fp16 needs CUDA; on a CPU use --amp bf16 or off")
    return "bf16" if amp == "bf16" else "off"


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

    from ..io.atomic import atomic_output

    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


def _unlogged_segment(record: dict[str, Any], step: int) -> list[dict[str, Any]]:
    """The history of a run saved before segments were logged: one entry for steps 0..step,
    with the command and lr of the last invocation that saved it."""
    if not step:
        return []
    lr = record.get("lr", record.get("optimizer", {}).get("lr"))
    return [{"start_step": 0, "end_step": step, "command": record.get("command"), "lr": lr,
             "note": "invocations before this one were not logged separately"}]


def validation_set(cfg: TrainConfig, seed: int):
    """The fixed validation batch list: ``val_n`` samples of the val split at ``val_size``."""
    from .data import DataConfig, generate_batch

    dc = DataConfig(size=cfg.val_size)
    idx = list(range(cfg.val_n))
    return [generate_batch(seed, "val", idx[i:i + 8], dc) for i in range(0, len(idx), 8)]


def evaluate_val(net, batches, device, amp_dtype=None) -> dict[str, float]:
    """Mean validation SSIM of the output and of the unmagnified input (B' vs Y'), and L1.

    Also per scene subset k (1..5, :data:`.data.SUBSETS`): ``ssim_s{k}`` and
    ``ssim_input_s{k}``, which show where a network beats or loses to copying the input.

    SSIM cannot tell a network that magnifies from one that copies its input, so the
    change its motion path makes, ``d = net(A, B, α) − net(A, B, 0)``, is compared with the
    change the target asks for, ``t = Y − B``, over the whole set: ``motion_corr`` =
    ⟨d, t⟩ / (|d| |t|) and ``motion_gain`` = ⟨d, t⟩ / |t|² (the part of ``t`` delivered; 1 is
    a perfect magnifier, 0 a copy). Shipped weights, 64 samples: realtime 0.73 / 0.54,
    oh2018 0.45 / 0.18, mdlmm 0.33 / 0.10, fd4mm and sigma_theta 0.00 / 0.00.
    """
    import torch

    from .losses import ssim

    net.eval()
    out_ssim, in_ssim, l1, subsets = [], [], [], []
    dot = d_sq = t_sq = 0.0
    with torch.inference_mode():
        for b in batches:
            xa, xb, y = (to_net(b[k]).to(device) for k in ("A", "B", "Y"))
            alpha = b["alpha"].to(device)
            out = net(xa, xb, alpha).float().clamp(-1, 1)
            still = net(xa, xb, torch.zeros_like(alpha)).float().clamp(-1, 1)
            d, t = out - still, y - xb
            dot += float((d * t).sum())
            d_sq += float((d * d).sum())
            t_sq += float((t * t).sum())
            o01, y01 = (out + 1) / 2, (y + 1) / 2
            out_ssim.append(ssim(o01, y01, reduction="none").cpu())
            in_ssim.append(ssim((xb + 1) / 2, y01, reduction="none").cpu())
            l1.append((o01 - y01).abs().mean(dim=(1, 2, 3)).cpu())
            subsets.append(b["subset"])
    net.train()
    out_ssim, in_ssim, l1, subsets = (torch.cat(t) for t in (out_ssim, in_ssim, l1, subsets))
    met = {"ssim": float(out_ssim.mean()), "ssim_input": float(in_ssim.mean()),
           "l1": float(l1.mean()),
           "motion_corr": dot / max(math.sqrt(d_sq * t_sq), 1e-12),
           "motion_gain": dot / max(t_sq, 1e-12)}
    for k in sorted(set(subsets.tolist())):
        m = subsets == k
        met[f"ssim_s{k}"] = float(out_ssim[m].mean())
        met[f"ssim_input_s{k}"] = float(in_ssim[m].mean())
    return met


def param_groups(net, lr_scale: dict[str, float]) -> list[dict[str, Any]]:
    """Adam's parameter groups: one per ``lr_scale`` prefix (its parameters train at that
    factor times the lr), then the rest. A prefix that names no parameter is an error."""
    named = dict(net.named_parameters())
    groups = []
    for prefix, factor in lr_scale.items():
        names = [n for n in named if n.startswith(prefix)]
        if not names:
            tops = sorted({n.split(".")[0] for n in named})
            raise VMMError(f"--lr-scale {prefix}={factor:g} names no parameter of the "
                           f"network; its modules: {', '.join(tops)}")
        groups.append({"params": [named.pop(n) for n in names], "lr_scale": factor})
    rest = list(named.values())
    return [*groups, {"params": rest, "lr_scale": 1.0}] if rest else groups


def set_lr(opt, lr: float) -> None:
    """Set every group's lr: ``lr`` times the group's ``lr_scale`` (:func:`param_groups`;
    a checkpoint saved before 2026-12-07 has one group and no factor)."""
    for g in opt.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)


def _shipped_arch(model: str) -> dict[str, Any] | None:
    """The architecture flags of the shipped weights of ``model`` (None: none ship)."""
    prov = W.read_provenance(model)
    return None if prov is None else dict(prov.get("arch") or {})


def train(cfg: TrainConfig) -> int:
    """Run (or resume) training until ``cfg.steps``, ``cfg.max_hours`` or ``cfg.max_steps``.

    Returns the exit code (0). The last steps are validated and exported before returning.
    """
    import torch

    from ..core.learned.models import count_parameters
    from ..core.learned.table import build_model
    from .losses import fd4mm_loss, magnification_loss, motion_alignment_loss, motion_gain_loss
    from .render_torch import recipe as render_recipe

    cfg.resolve()
    torch.set_num_threads(max(1, cfg.threads))
    device = _device(cfg.device)
    run = Path(cfg.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    ckpt_path = run / "ckpt.pt"
    log_path = run / "log.jsonl"
    torch.manual_seed(cfg.seed)

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    ck = torch.load(ckpt_path, map_location="cpu", weights_only=False) \
        if ckpt_path.exists() else None
    if ck is not None:  # a resumed run goes on with the network it checkpointed
        ck_arch = dict((ck.get("config") or {}).get("arch") or {})
        asked = {k: v for k, v in cfg.arch.items() if ck_arch.get(k) != v}
        if asked:
            raise VMMError(f"{ckpt_path} holds a {cfg.model} with {ck_arch or 'the default arch'}"
                           f"; the command asks for {asked}: start it in a new --run-dir "
                           f"(--init {ckpt_path.parent}/export/{cfg.model}.pt for a warm start)")
        cfg.arch = ck_arch
    # --init auto or shipped: go on with the shipped network (its arch flags) when the command
    # asks for no flag it lacks; auto starts from scratch otherwise, shipped warm-starts
    shipped_arch = _shipped_arch(cfg.model)
    follows_shipped = cfg.init in ("auto", "shipped") and ck is None and not cfg.ablation \
        and shipped_arch is not None \
        and all(shipped_arch.get(k) == v for k, v in cfg.arch.items())
    auto_shipped = follows_shipped and cfg.init == "auto"
    if follows_shipped:
        if shipped_arch != cfg.arch:  # go on with the shipped network as it is
            print(f"the shipped {cfg.model} has {shipped_arch}: training goes on with it",
                  flush=True)
        cfg.arch = {**shipped_arch, **cfg.arch}
    net = build_model(cfg.model, **cfg.arch).to(device)
    net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(param_groups(net, cfg.lr_scale), lr=cfg.lr, betas=(0.9, 0.999))
    step, wall, curve, init_from, best = 0, 0.0, [], "scratch", None
    segments: list[dict[str, Any]] = []  # one per invocation: its command, lr, steps, hardware
    fresh_opt = True
    # rerunning the same command resumes, whatever its --init (that names a new run's start):
    # a checkpoint is never overwritten by a fresh start; a new start takes a new --run-dir
    if ck is not None:
        net.load_state_dict(ck["model"])
        saved_scale = ck.get("config", {}).get("lr_scale") or {}
        if saved_scale != cfg.lr_scale:  # Adam's groups (and their factors) are per prefix
            raise VMMError(f"{ckpt_path} was saved with other --lr-scale groups "
                           f"({saved_scale or 'none'}); resume with those")
        opt.load_state_dict(ck["opt"])
        fresh_opt = False
        step, wall, curve = ck["step"], ck["wall_time_s"], ck["curve"]
        init_from = ck.get("init_from", "scratch")
        best = ck.get("best")
        segments = ck.get("segments") or _unlogged_segment(ck.get("config", {}), step)
        print(f"resuming {cfg.model} from {ckpt_path} at step {step}"
              + (f" (--init {cfg.init} applies to a new run only)" if cfg.init != "auto"
                 else ""), flush=True)
    elif auto_shipped or cfg.init == "shipped" or cfg.init.endswith(".pt"):
        src = None if cfg.init in ("auto", "shipped") else cfg.init
        try:
            sd, prov = W.load_weights(cfg.model, src)
        except VMMError:
            if cfg.init != "auto":
                raise
        else:
            widened = cfg.model in LIGHT_OF and prov.get("model") == LIGHT_OF[cfg.model]
            if widened:  # the light variant's function in the base model's width
                sd = widen_state_dict(cfg.model, sd, net.state_dict(), seed=cfg.seed)
            step = int(prov.get("steps", 0))
            old_arch = dict(prov.get("arch") or {})
            if {k: v for k, v in cfg.arch.items() if old_arch.get(k) != v}:
                # a warm start across an architecture change: load what still fits, new
                # inputs of a layer at zero
                grown = grow_inputs(sd, net.state_dict())
                res = net.load_state_dict(grown, strict=False)
                n_grown = sum(grown[k].shape != sd[k].shape for k in sd)
                print(f"warm start from {old_arch or 'the default arch'} to {cfg.arch}: "
                      f"{len(res.missing_keys)} new, {len(res.unexpected_keys)} dropped and "
                      f"{n_grown} grown tensors", flush=True)
            else:
                net.load_state_dict(sd)
            wall = float(prov.get("wall_time_s", 0.0))
            curve = list(prov.get("curve", []))
            segments = list(prov.get("segments") or _unlogged_segment(prov, step))
            init_from = f"weights sha256 {prov.get('sha256', '')[:16]}"
            if widened:
                init_from = (f"{prov['model']} {init_from}, widened to {cfg.model} "
                             "(function-preserving, training/widen.py)")
            print(f"starting {cfg.model} from {src or 'shipped weights'} at step {step}",
                  flush=True)
    set_lr(opt, cfg.lr)
    stop_at = min(cfg.steps, step + cfg.max_steps) if cfg.max_steps > 0 else cfg.steps
    if cfg.validate_only:
        stop_at = step
    # a fresh Adam moves every weight by ~lr in its first steps: warm up when fine-tuning
    # shipped weights (and from scratch), not when resuming a checkpoint
    warm_start, warm_n = step, (cfg.warmup if fresh_opt else 0)

    segments.append({"start_step": step, "end_step": step, "command": cfg.command,
                     "lr": cfg.lr, "crop": cfg.crop, "batch": cfg.batch, "device": str(device),
                     "threads": torch.get_num_threads(), "renderer": cfg.renderer,
                     **({"data": dict(cfg.data)} if cfg.data else {}),
                     **({"lr_scale": dict(cfg.lr_scale)} if cfg.lr_scale else {}),
                     "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    dcfg = cfg.data_config()
    val_batches = validation_set(cfg, cfg.seed)
    params = count_parameters(net)
    print(f"{cfg.model}: {params} parameters, crop {cfg.crop}, batch {cfg.batch}, "
          f"lr {cfg.lr}, device {device}, threads {torch.get_num_threads()}", flush=True)

    stage = None
    family = MODELS[cfg.model].loss  # the training objective: oh, fd4mm or thesis
    if family == "thesis":
        from .thesis_train import ThesisStage, describe_loss

        stage = ThesisStage(cfg.model, net, cfg.stage, cfg.proxy, device, cfg.seed,
                            cfg.epoch_steps, gain_weight=cfg.gain_weight,
                            gain_pooling=cfg.gain_pooling)
        loss_desc = describe_loss(cfg.model, cfg.stage, cfg.proxy,
                                  0.0 if stage.noise_free else cfg.noise)
    elif family == "fd4mm":
        loss_desc = {"charbonnier": 1.0, "edge_log": cfg.edge_weight,
                     "contrastive_fft": cfg.cr_weight, "poisson_noise_max": cfg.noise}
        if cfg.ssim_weight > 0:  # the paper's loss has none; recorded only when used
            loss_desc["ssim_weight"] = cfg.ssim_weight
    else:
        loss_desc = {"l1": 1.0, "reg_weight": cfg.reg_weight, "ssim_weight": cfg.ssim_weight,
                     "poisson_noise_max": cfg.noise}
    if cfg.motion_weight:
        loss_desc["motion_alignment"] = cfg.motion_weight
    if cfg.gain_weight:
        loss_desc["motion_gain"] = cfg.gain_weight
        loss_desc["motion_gain_target"] = "clean input"  # before 2026-12-05 (11:00): noisy
        if cfg.gain_pooling != "batch":  # earlier runs: "motion_gain_per_sample": true
            loss_desc["motion_gain_pooling"] = cfg.gain_pooling
    amp_mode = amp_mode_for(device, cfg.amp)
    scaler = torch.amp.GradScaler("cuda") if amp_mode == "fp16" else None

    def provenance(metrics: dict[str, float]) -> dict[str, Any]:
        return {
            "command": cfg.command,
            "seed": cfg.seed,
            "steps": step,
            "samples_seen": step * cfg.batch,
            "data_echo": cfg.echo,
            "batch": cfg.batch,
            "crop": cfg.crop,
            "optimizer": {"name": "Adam", "lr": cfg.lr, "betas": [0.9, 0.999],
                          "grad_clip": cfg.clip, "warmup_steps_fresh_state": cfg.warmup,
                          **({"lr_scale": dict(cfg.lr_scale)} if cfg.lr_scale else {})},
            "loss": loss_desc,
            "arch": dict(cfg.arch),
            "ablation": list(cfg.ablation),
            "data_recipe": {"generator": "napari_vmm.training.data.generate_sample",
                            "renderer": "cpu", "train_split": "train (split id 0)",
                            **(render_recipe(device) if cfg.renderer == "torch" else {}),
                            **dcfg.to_dict()},
            "parameters": params,
            "wall_time_s": round(wall, 1),
            "hardware": hardware_string() + f"; device {device}"
                        + (f" ({torch.cuda.get_device_name(device)})"
                           if device.type == "cuda" else "")
                        + f"; torch threads {torch.get_num_threads()}; amp {amp_mode}; "
                        f"data workers {cfg.workers}; torch {torch.__version__}",
            "init_from": init_from,
            "validation": {"split": "val (split id 1)", "seed": cfg.seed, "n": cfg.val_n,
                           "size": cfg.val_size, **{k: round(v, 5) for k, v in metrics.items()}},
            "quality_bar": W.QUALITY_BAR,
            "status": W.training_status(metrics),
            "curve": curve,
            "segments": segments,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def save_ckpt() -> None:
        segments[-1]["end_step"] = step
        _atomic_torch_save({"model": net.state_dict(), "opt": opt.state_dict(), "step": step,
                            "wall_time_s": wall, "curve": curve, "init_from": init_from,
                            "best": best, "segments": segments, "config": cfg.__dict__},
                           ckpt_path)

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
    validated_at = step
    batches = _batches(cfg, dcfg, step, device)

    def validate() -> None:
        nonlocal best, t_ckpt, t_last, validated_at
        met = evaluate_val(net, val_batches, device)
        cl = curve_loss if math.isfinite(curve_loss) else (win_loss / win_n if win_n else None)
        curve.append([step, None if cl is None else round(cl, 5), round(met["ssim"], 5),
                      round(wall, 1)])
        rec = {"step": step, "val": {k: round(v, 5) for k, v in met.items()},
               "wall_time_s": round(wall, 1)}
        logf.write(json.dumps(rec) + "\n")
        logf.flush()
        print(json.dumps(rec), flush=True)
        segments[-1]["end_step"] = step
        save_weights(net.state_dict(), provenance(met), cfg.model, run / "export")
        if best is None or met["ssim"] > best["ssim"]:
            best = {"step": step, **met}
        save_ckpt()
        validated_at = step
        t_ckpt = time.time()
        t_last = time.time()  # validation time is not training time

    uncalibrated = hasattr(net, "calibrate")  # a data-dependent init, on the first batch
    try:
        while step < stop_at:
            b = next(batches)
            xa, xb, xc, y = (b[k].to(device, non_blocking=True) for k in ("A", "B", "C", "Y"))
            alpha = b["alpha"].to(device)
            n = xa.shape[0]
            cl = torch.channels_last
            with _autocast(device, amp_mode):
                if stage is not None:
                    out, thesis_loss = stage.loss(net, b, step, device)
                elif family == "fd4mm":
                    v, m = net.encode(torch.cat([xa, xb]).contiguous(memory_format=cl))
                    ma, mb = _split(m, n, 0), _split(m, n, 1)
                    if uncalibrated and net.calibrate(mb - ma, mb):
                        print("linear manipulator: input gain set to 0.1/E|delta| "
                              f"(mean {float(net.delta_gain.detach().mean()):.3g})", flush=True)
                    uncalibrated = False
                    out = net.magnified(_split(v, n, 1), mb, mb - ma, alpha, xb)
                else:
                    v, m = net.encode(torch.cat([xa, xb, xc]).contiguous(memory_format=cl))
                    va, vb, vc = (_split(v, n, k) for k in range(3))
                    ma, mb, mc = (_split(m, n, k) for k in range(3))
                    out = net.magnified(vb, mb, mb - ma, alpha, xb)
            out = out.float()
            if stage is not None:
                loss, parts = thesis_loss
            elif family == "fd4mm":
                loss, parts = fd4mm_loss(out, y, b["B_clean"].to(device), cfg.cr_weight,
                                         cfg.edge_weight, ssim_weight=cfg.ssim_weight)
            else:
                loss, parts = magnification_loss(out, y, vc.float(), va.float(), mc.float(),
                                                 mb.float(), cfg.reg_weight, cfg.ssim_weight)
            if stage is None:  # decode twice: the change is out − B
                if cfg.motion_weight:
                    value = motion_alignment_loss(out, xb.float(), y)
                    loss = loss + cfg.motion_weight * value
                    parts["motion"] = float(value.detach())
                if cfg.gain_weight:  # the input's noise is no change to deliver
                    value = motion_gain_loss(out, xb.float(), y,
                                             target_base=b["B_clean"].to(device).float(),
                                             pooling=cfg.gain_pooling)
                    loss = loss + cfg.gain_weight * value
                    parts["gain"] = float(value.detach())
            if not math.isfinite(parts["loss"]):
                raise VMMError(f"training diverged at step {step} (loss {parts['loss']}); "
                               "resume from the last checkpoint with a lower --lr")
            if warm_n and step - warm_start < warm_n:
                set_lr(opt, cfg.lr * (step - warm_start + 1) / warm_n)
            elif warm_n:
                set_lr(opt, cfg.lr)
                warm_n = 0
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
            else:
                loss.backward()
            if cfg.clip > 0:
                torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.clip)
            if scaler is not None:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            step += 1
            now = time.time()
            wall += now - t_last
            t_last = now
            win_loss += parts["loss"]
            win_n += 1
            if step % cfg.log_every == 0:
                sps = win_n * cfg.batch / max(now - win_t0, 1e-9)
                rec = {"step": step, "loss": round(win_loss / win_n, 5),
                       **{k: round(v, 5) for k, v in parts.items() if k != "loss"},
                       "samples_per_s": round(sps, 2), "wall_time_s": round(wall, 1)}
                logf.write(json.dumps(rec) + "\n")
                logf.flush()
                print(json.dumps(rec), flush=True)
                curve_loss = win_loss / win_n
                win_loss, win_n, win_t0 = 0.0, 0, now
            if step % cfg.val_every == 0:
                validate()
            elif time.time() - t_ckpt > cfg.ckpt_every_s:
                save_ckpt()
                t_ckpt = time.time()
            if cfg.max_hours and time.time() - t_start > cfg.max_hours * 3600:
                print("max_hours reached", flush=True)
                break
        if step > validated_at or cfg.validate_only:  # the last steps get validated weights
            validate()
    except KeyboardInterrupt:
        print("interrupted; saving checkpoint", flush=True)
    finally:
        del batches  # stops the data workers
        save_ckpt()
        logf.close()
        if prev_term is not None:
            signal.signal(signal.SIGTERM, prev_term)
    return 0
