"""KL-DNAS search (thesis Ch. 4, TNNLS 2024; digest §3.5): the latency-aware, distillation-
guided search that derives a :class:`napari_vmm.core.learned.kldnas.StudentNet` (the super-net
and the students are described there) on the machine at hand (``vmm train kldnas``).

Search (:func:`search`), by parts and serially (thesis Table in digest §3.5):

(a) encoder: L = L_mag(D_T(M_T(E_S(x_a), E_S(x_b)), V_S(x_b)), Y) + λ4·‖E_T(X) − E_S(x)‖₁
    + L_lat; (b) manipulator: L = L_mag(D_T(M_S(E*_S(x)), V*_S), Y) + λ4·‖M_T(E_T(X)) −
    M_S(E*_S(x))‖₁ + L_lat; (c) decoder: L = L_mag(D_S(M*_S, V*_S), Y) + L_lat; λ4 = 0.1.
    x are the noisy inputs, X the clean ones; L_mag = 10·L1 + 1·edge + 0.1·(1 − SSIM)
    (the teacher loss of Ch. 4 with SSIM for the unavailable VGG term); the searched parts
    are frozen for the later parts. The realtime teacher has no separate appearance encoder;
    its texture head belongs to the encoder part, so part (b) is the manipulator alone.
- first-order DARTS: every step updates the weights on one batch, then the architecture
  weights on the next one (Adam, lr 3e-4, β (0.5, 0.999)). The first quarter of each part's
  steps trains the weights only (``arch_warmup``), so that freshly initialised ops are not
  judged against the parameter-free "no connection" before they have learnt anything.
- derivation: argmax per layer, except that a block may not come out dead (all-zero output,
  :func:`block_is_live`); a dead manipulator would never magnify.
- latency: L_lat = |log(lat(α) / β_part)|, lat(α) = fixed + Σ_layers Σ_o softmax(α)_o ·
  LUT[layer, o]; the lookup table holds per-op latencies **measured on this machine** at the
  search frame size (:func:`measure_lut`, cached in ``RUN_DIR/latency_lut.json`` together
  with the hardware, torch version and thread count it was measured with). The latency is
  per output frame through the engine (each frame is encoded once).
- calibration: the LUT misses per-frame overhead (Python, resampling, concatenations); a
  reference student is timed end to end and the difference to its LUT latency is added to
  the fixed layers (:func:`calibrate_overhead`), so that predicted and measured latencies,
  and the teacher's measured latency (the default target is half of it), share one scale.
- per-part targets: the total target β split in proportion to the parts' latency in the
  super-net at uniform α; the slack of a derived part (β_part − its LUT latency) goes to the
  next part, as in the thesis.
- the encoder's LC layers do not see the other frame's stream (the thesis' do): the engine
  encodes one frame at a time.

Output, in RUN_DIR: ``latency_lut.json``, ``search_log.jsonl`` (one line per step: part,
losses, expected latency, target), ``search.json`` (genotype, per-part targets and
latencies, the derived student's measured latency and the teacher's) and
``export/kldnas.pt`` + ``.json``: the student with the weights it inherits from the
super-net, and ``arch`` = its genotype, so that :func:`.models.build_model` rebuilds it from
the provenance (``vmm magnify --method kldnas --weights RUN_DIR/export/kldnas.pt``).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..core.errors import VMMError
from ..core.learned.kldnas import (
    OPS,
    PARTS,
    LayerR,
    SearchBlock,
    StudentNet,
    build_student,
    make_op,
)
from ..core.learned.models import MagNet
from .export import hardware_string


def block_is_live(genotype: dict[str, str], prefix: str) -> bool:
    """Whether the derived block ``prefix`` can output anything but zero.

    Its layers have no bias, so "no connection" (``none``) zeroes a Layer-(R) and everything
    after it on that path; a Layer-(C) is non-zero when one of its used inputs is.
    """
    r1 = genotype[f"{prefix}.r0"] != "none"
    r2 = r1 and genotype[f"{prefix}.r1"] != "none"
    r3 = r2 and genotype[f"{prefix}.r2"] != "none"

    def conn(name: str, a: bool, b: bool) -> bool:
        return a if genotype[f"{prefix}.{name}"] == "none" else (a or b)

    return conn("c2", conn("c1", conn("c0", r3, r2), r1), True)


def derive_genotype(net: StudentNet, part: str | None = None) -> dict[str, str]:
    """argmax of every searchable layer's architecture weights: {path: op name}.

    A derived block must not be dead (:func:`block_is_live`): in the manipulator a dead g or h
    would be a student that never magnifies, which is where first-order DARTS drifts when the
    parameter-free op looks best early on. A dead block's Layer-(R) choices, first to last,
    are replaced by their best op other than ``none`` until the block is live.
    """
    g, layers = {}, dict(net.layers(part))
    for path, m in layers.items():
        g[path] = m.names[int(m.alpha.argmax())] if m.alpha is not None else m.names[0]
    for p in (part,) if part else PARTS:
        for b in net.BLOCKS[p]:
            for i in range(3):
                if block_is_live(g, b):
                    break
                path = f"{b}.r{i}"
                m = layers[path]
                if g[path] == "none" and m.alpha is not None:
                    order = m.alpha.detach().argsort(descending=True).tolist()
                    g[path] = next(m.names[k] for k in order if m.names[k] != "none")
    return g


def inherit(student: StudentNet, supernet: StudentNet) -> StudentNet:
    """Copy the super-net's weights of the chosen ops into ``student`` (same parameter names)."""
    sd = supernet.state_dict()
    own = student.state_dict()
    student.load_state_dict({k: sd[k] for k in own}, strict=True)
    return student


# -- latency lookup table ----------------------------------------------------------------------

def _time_ms(fn, reps: int) -> float:
    with torch.inference_mode():
        for _ in range(2):
            fn()
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts)


def _lut_meta(size: int) -> dict[str, Any]:
    return {"hardware": hardware_string(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "size": size}


def measure_lut(net: StudentNet, size: int, path: str | Path | None = None, reps: int = 5,
                ) -> dict[str, Any]:
    """Measure (or load from ``path``) per-op latencies at a ``size``×``size`` frame.

    Every candidate op of every searchable layer, and every fixed layer, is timed on this
    machine on a random input of the shape it sees (median of ``reps`` runs, ms). The LUT is
    reused from ``path`` when it was measured with the same hardware, torch, threads and
    size. Fills ``net``'s ``lat`` buffers and ``fixed_latency``; returns the LUT dict.
    """
    meta = _lut_meta(size)
    lut: dict[str, float] = {}
    if path is not None and Path(path).exists():
        old = json.loads(Path(path).read_text())
        if old.get("meta") == meta:
            lut = dict(old["entries"])
    shapes: dict[int, tuple] = {}
    hooks = []
    layer_ids = {id(m): p for p, m in net.layers()}
    fixed = {id(m): (part, m) for part in PARTS for m in net.part_modules(part)
             if not isinstance(m, SearchBlock)}

    def rec(mod, inp, out):
        shapes[id(mod)] = tuple(t.shape for t in inp if isinstance(t, torch.Tensor))

    for m in net.modules():
        if id(m) in layer_ids or id(m) in fixed:
            hooks.append(m.register_forward_hook(rec))
    net.eval()
    x = torch.rand(1, 3, size, size)
    try:
        with torch.inference_mode():
            net(x, x, 1.0)
    finally:
        for h in hooks:
            h.remove()
    for _, m in net.layers():
        shp = shapes[id(m)][0]
        c = shp[1]
        vals = []
        for n in m.names:
            key = f"{type(m).__name__}|{n}|{'x'.join(map(str, shp))}"
            if key not in lut:
                a = torch.rand(shp)
                if isinstance(m, LayerR):
                    lut[key] = 0.0 if n == "none" else _time_ms(
                        lambda op=make_op(n, c).eval(), a=a: op(a), reps)
                elif n == "none":
                    lut[key] = 0.0
                elif n == "add":
                    lut[key] = _time_ms(lambda a=a: a + a, reps)
                else:
                    cv = nn.Conv2d(2 * c, c, 1, bias=False).eval()
                    lut[key] = _time_ms(lambda a=a, cv=cv: cv(torch.cat([a, a], 1)), reps)
            vals.append(lut[key])
        m.lat = torch.tensor(vals)
    fl: dict[str, float] = dict.fromkeys(PARTS, 0.0)
    for mid, (part, m) in fixed.items():
        shp = shapes[mid][0]
        key = f"fixed|{part}|{type(m[0] if isinstance(m, nn.Sequential) else m).__name__}|" \
              f"{sum(p.numel() for p in m.parameters())}|{'x'.join(map(str, shp))}"
        if key not in lut:
            a = torch.rand(shp)
            lut[key] = _time_ms(lambda m=m, a=a: m(a), reps)
        fl[part] += lut[key]
    net.fixed_latency = fl
    out = {"meta": meta, "entries": lut}
    if path is not None:
        Path(path).write_text(json.dumps(out, indent=1) + "\n")
    return out


def lut_latency(net: StudentNet, genotype: dict[str, str], part: str | None = None) -> float:
    """LUT latency (ms) of the discrete ``genotype`` in ``net``'s measured table."""
    parts = (part,) if part else PARTS
    tot = sum(float(net.fixed_latency.get(p, 0.0)) for p in parts)
    for path, m in net.layers(part):
        tot += float(m.lat[m.names.index(genotype[path])])
    return tot


def calibrate_overhead(net: StudentNet, size: int, reps: int = 5) -> float:
    """Add the per-frame overhead the LUT does not see (Python, resampling, concatenation,
    memory traffic) to the parts' fixed latency; returns it (ms).

    A reference student (the first conv candidate in every Layer-(R), "add" in every
    Layer-(C)) is timed end to end; the difference to its LUT latency is spread over the
    parts in proportion to their LUT latency, so that LUT predictions and the measured
    teacher latency (the default target) are on the same scale.
    """
    first = next((n for n in net.layers("encoder")[0][1].names if n != "none"), "none")
    g = {p: (first if isinstance(m, LayerR) else "add") for p, m in net.layers()}
    ref = inherit(build_student(g, *[net.arch[k] for k in ("c_enc", "c_dec")],
                                net.arch["ops"]), net)
    measured = measure_latency(ref, size, reps)
    parts = {p: lut_latency(net, g, p) for p in PARTS}
    total = sum(parts.values())
    over = max(0.0, measured - total)
    fl = dict(net.fixed_latency)
    for p in PARTS:
        fl[p] += over * parts[p] / max(total, 1e-9)
    net.fixed_latency = fl
    return over


def latency_loss(lat: torch.Tensor, target_ms: float) -> torch.Tensor:
    """|log(lat / target)| (thesis Ch. 4), penalising both over- and undershooting."""
    return (torch.log(lat.clamp(min=1e-6)) - math.log(max(target_ms, 1e-6))).abs()


def measure_latency(net: MagNet, size: int, reps: int = 5) -> float:
    """Median per-frame latency (ms) of encode + manipulate + decode at size×size."""
    net = net.eval()
    x = torch.rand(1, 3, size, size)

    def run() -> None:
        v, m = net.encode(x)
        net.decode(v, net.manipulate(None, m, 10.0, delta=torch.zeros_like(m)))

    return _time_ms(run, reps)


# -- the search --------------------------------------------------------------------------------

@dataclass
class SearchConfig:
    """Settings of :func:`search` (``vmm train kldnas``)."""

    run_dir: str = "runs/kldnas"
    latency_ms: float = 0.0        # total target on this machine; 0: half the teacher's
    search_size: int = 128         # frame size of the latency table
    steps: int = 2000              # search steps per part
    batch: int = 4
    crop: int = 64
    lr: float = 1e-3               # weights
    arch_lr: float = 3e-4          # architecture weights
    arch_warmup: float = 0.25      # fraction of each part's steps that train weights only
    kd_weight: float = 0.1         # λ4
    lat_weight: float = 1.0
    noise: float = 0.3
    seed: int = 0
    c_enc: int = 16
    c_dec: int = 32
    ops: tuple[str, ...] = tuple(OPS)
    teacher: str = "realtime"
    teacher_weights: str = ""      # "" : the shipped weights
    threads: int = 1
    log_every: int = 10
    val_n: int = 16
    val_size: int = 64
    lut_reps: int = 5
    command: str = ""


def _load_teacher(cfg: SearchConfig) -> MagNet:
    import copy

    from ..core.learned.magnifier import load_network

    t = copy.deepcopy(load_network(cfg.teacher, torch.device("cpu"), cfg.teacher_weights or None))
    t = t.to(memory_format=torch.contiguous_format).eval()
    for p in t.parameters():
        p.requires_grad_(False)
    return t


def _part_loss(part: str, net: StudentNet, teacher: MagNet, b: dict, kd_weight: float,
               ) -> tuple[torch.Tensor, dict[str, float]]:
    from .thesis_train import base_loss

    xa, xb, y, amp = b["A"], b["B"], b["Y"], b["alpha"]
    ca, cb = b["A_clean"], b["B_clean"]
    va, ma = net.encode(xa)
    vb, mb = net.encode(xb)
    kd = None
    with torch.no_grad():
        tva, tma = teacher.encode(ca)
        tvb, tmb = teacher.encode(cb)
    if part == "encoder":
        out = teacher.decode(vb, teacher.manipulate(ma, mb, amp))
        kd = sum((s - t).abs().mean() for s, t in ((va, tva), (ma, tma), (vb, tvb), (mb, tmb)))
    elif part == "manipulator":
        ms = net.manipulate(ma, mb, amp)
        with torch.no_grad():
            mt = teacher.manipulate(tma, tmb, amp)
        out = teacher.decode(vb, ms)
        kd = (ms - mt).abs().mean()
    else:
        out = net.decode(vb, net.manipulate(ma, mb, amp))
    loss, parts = base_loss(out, y, 10.0, 1.0, 0.1)
    if kd is not None:
        loss = loss + kd_weight * kd
        parts["kd"] = float(kd.detach())
    parts["loss"] = float(loss.detach())
    return loss, parts


def _freeze_part(net: StudentNet, part: str, genotype: dict[str, str]) -> None:
    """Replace the part's blocks by their discrete versions (weights kept) and freeze them."""
    for bname in StudentNet.BLOCKS[part]:
        old = getattr(net, bname)
        new = SearchBlock(old.channels, bname, genotype, tuple(OPS))
        sd = old.state_dict()
        new.load_state_dict({k: sd[k] for k in new.state_dict()})
        for (_, lo), (_, ln) in zip(_block_layers(old), _block_layers(new), strict=True):
            idx = [lo.names.index(n) for n in ln.names]
            ln.lat = lo.lat[idx].clone()
        setattr(net, bname, new)
    for m in net.part_modules(part):
        for p in m.parameters():
            p.requires_grad_(False)


def _block_layers(b: SearchBlock) -> list[tuple[str, nn.Module]]:
    return [(f"r{i}", m) for i, m in enumerate(b.r)] + [(f"c{i}", m) for i, m in enumerate(b.c)]


def search(cfg: SearchConfig, log=print) -> dict[str, Any]:
    """Run the KL-DNAS search; returns the search summary (also ``RUN_DIR/search.json``)."""
    from ..core.learned import weights as W
    from .config import TrainConfig
    from .data import DataConfig
    from .export import save_weights
    from .train import TrainStream, evaluate_val, validation_set

    if cfg.crop % 4:
        raise VMMError(f"kldnas needs a crop that is a multiple of 4, got {cfg.crop}")
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(max(1, cfg.threads))
    run = Path(cfg.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    teacher = _load_teacher(cfg)
    net = StudentNet(None, cfg.c_enc, cfg.c_dec, cfg.ops)
    t0 = time.time()
    lut = measure_lut(net, cfg.search_size, run / "latency_lut.json", cfg.lut_reps)
    overhead = calibrate_overhead(net, cfg.search_size, cfg.lut_reps)
    teacher_ms = measure_latency(teacher, cfg.search_size, cfg.lut_reps)
    target = cfg.latency_ms if cfg.latency_ms > 0 else 0.5 * teacher_ms
    with torch.no_grad():
        part_lat = {p: float(net.expected_latency(p)) for p in PARTS}
    total0 = sum(part_lat.values())
    targets = {p: target * part_lat[p] / total0 for p in PARTS}
    log(f"kldnas: LUT of {len(lut['entries'])} entries at {cfg.search_size}px; teacher "
        f"{cfg.teacher} {teacher_ms:.2f} ms, super-net {total0:.2f} ms (uniform α), "
        f"target {target:.2f} ms")
    tcfg = TrainConfig(model="realtime", seed=cfg.seed, batch=cfg.batch, noise=cfg.noise,
                       val_n=cfg.val_n, val_size=cfg.val_size)
    stream = TrainStream(tcfg, DataConfig(size=cfg.crop))
    logf = open(run / "search_log.jsonl", "a")  # noqa: SIM115 - closed below
    genotype: dict[str, str] = {}
    summary_parts = {}
    step_global = 0
    try:
        carry = 0.0
        for part in PARTS:
            beta = targets[part] + carry
            opt_w = torch.optim.Adam(net.weight_parameters(part), lr=cfg.lr)
            opt_a = torch.optim.Adam(net.arch_parameters(part), lr=cfg.arch_lr,
                                     betas=(0.5, 0.999))
            net.train()
            for s in range(cfg.steps):
                b = stream[2 * step_global]
                loss, parts = _part_loss(part, net, teacher, b, cfg.kd_weight)
                opt_w.zero_grad(set_to_none=True)
                loss.backward()
                opt_w.step()
                lat = net.expected_latency(part)
                llat = latency_loss(lat, beta)
                if s >= cfg.arch_warmup * cfg.steps:  # first the weights, then the architecture
                    b2 = stream[2 * step_global + 1]
                    aloss, _ = _part_loss(part, net, teacher, b2, cfg.kd_weight)
                    opt_a.zero_grad(set_to_none=True)
                    (aloss + cfg.lat_weight * llat).backward()
                    opt_a.step()
                    opt_w.zero_grad(set_to_none=True)
                step_global += 1
                if (s + 1) % cfg.log_every == 0 or s + 1 == cfg.steps:
                    rec = {"part": part, "step": s + 1, "loss": round(parts["loss"], 5),
                           "l1": round(parts["l1"], 5), "kd": round(parts.get("kd", 0.0), 5),
                           "lat_loss": round(float(llat.detach()), 5),
                           "expected_latency_ms": round(float(lat.detach()), 4),
                           "target_ms": round(beta, 4), "wall_s": round(time.time() - t0, 1)}
                    logf.write(json.dumps(rec) + "\n")
                    logf.flush()
                    log(json.dumps(rec))
            g = derive_genotype(net, part)
            genotype.update(g)
            _freeze_part(net, part, g)
            with torch.no_grad():
                got = float(net.expected_latency(part))
            carry = beta - got
            summary_parts[part] = {"target_ms": round(beta, 4), "derived_ms": round(got, 4)}
    finally:
        logf.close()
    with torch.no_grad():
        student_lut_ms = float(net.expected_latency())
    student = inherit(build_student(genotype, cfg.c_enc, cfg.c_dec, list(cfg.ops)), net)
    student_ms = measure_latency(student, cfg.search_size, cfg.lut_reps)
    met = evaluate_val(student, validation_set(tcfg, cfg.seed), torch.device("cpu"))
    summary = {"genotype": genotype, "target_ms": round(target, 4),
               "teacher": cfg.teacher, "teacher_ms": round(teacher_ms, 4),
               "student_ms_measured": round(student_ms, 4),
               "student_ms_lut": round(student_lut_ms, 4),
               "parts": summary_parts, "search_size": cfg.search_size,
               "lut_overhead_ms": round(overhead, 4),
               "lut": "latency_lut.json", "lut_meta": lut["meta"],
               "config": {k: (list(v) if isinstance(v, tuple) else v)
                          for k, v in asdict(cfg).items()},
               "validation": {k: round(v, 5) for k, v in met.items()},
               "wall_time_s": round(time.time() - t0, 1)}
    (run / "search.json").write_text(json.dumps(summary, indent=1) + "\n")
    prov = {"command": cfg.command, "seed": cfg.seed, "steps": step_global,
            "samples_seen": 2 * step_global * cfg.batch, "batch": cfg.batch, "crop": cfg.crop,
            "arch": {"genotype": genotype, "c_enc": cfg.c_enc, "c_dec": cfg.c_dec,
                     "ops": list(cfg.ops)},
            "search": summary, "parameters": sum(p.numel() for p in student.parameters()),
            "wall_time_s": summary["wall_time_s"],
            "hardware": hardware_string() + f"; torch threads {torch.get_num_threads()}",
            "init_from": f"KL-DNAS super-net, teacher {cfg.teacher}",
            "validation": {"split": "val (split id 1)", "seed": cfg.seed, "n": cfg.val_n,
                           "size": cfg.val_size, **summary["validation"]},
            "quality_bar": W.QUALITY_BAR,
            "status": W.training_status(met),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    save_weights(student.state_dict(), prov, "kldnas", run / "export")
    return summary


def search_from_args(ns) -> int:
    """``vmm train kldnas``: run :func:`search` from parsed CLI arguments; returns 0."""
    import shlex
    import sys

    steps = ns.max_steps if ns.max_steps > 0 else (ns.steps if ns.steps < 1_000_000 else 2000)
    cfg = SearchConfig(run_dir=ns.run_dir or "runs/kldnas", latency_ms=ns.latency_ms,
                       search_size=ns.search_size, steps=steps, batch=ns.batch or 4,
                       crop=ns.crop or 64, lr=ns.lr or 1e-3, noise=ns.noise, seed=ns.seed,
                       threads=ns.threads, val_n=ns.val_n, val_size=ns.val_size,
                       command="vmm " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    search(cfg)
    return 0


__all__ = ["SearchConfig", "block_is_live", "calibrate_overhead", "derive_genotype", "inherit",
           "latency_loss", "lut_latency", "measure_latency", "measure_lut", "search",
           "search_from_args"]
