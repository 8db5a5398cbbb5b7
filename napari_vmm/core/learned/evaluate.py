"""Quantitative tests behind ``vmm evaluate`` (digest §2.1, §2.3), learned and classical alike.

All clips are synthetic, rendered with the training data's machinery (bicubic sub-pixel shifts
at 2× resolution, Gaussian anti-alias, 8-bit dithered quantisation) from textures of the
*test* split (split id 2, never seen in training or validation). Every method runs through
:func:`napari_vmm.core.engine.magnify`. The score is the SSIM between each output frame and the
ground-truth magnified frame, averaged over frames 1..T-1 and over scenes. ``input`` is the
SSIM of the unprocessed clip against the ground truth (the "copy the input" baseline).

Tests
-----
subpixel  Oh et al.: a 3 Hz sinusoid at 30 fps, foreground amplitude d in 0.01..1 px and the
          background moving by the same amount in another direction; alpha such that the
          magnified amplitude is 10 px ((1+alpha)·d = 10). No noise.
noise     Oh et al.: fixed motion and alpha, static background, photon noise with variance
          equal to the pixel value (0-255 scale) times a noise factor, at two motion sizes
          (0.05 px ×200 and 0.5 px ×20).
thesis    The Singh thesis protocol (digest §2.4, see :func:`run_thesis`): 25 clips of three
          radius-40 circles moving A·(−1)^j (j the frame) horizontally, vertically and
          diagonally over a test-split texture, A = 0.1 px, ground truth at 10 px (100×);
          MSE on the 0–255 scale, averaged over frames, then over clips (lower is better).
fd4mm     FD4MM synthetic protocol: foreground on a sinusoid of period T = 60 frames (30 fps),
          input amplitude 0.2 px, magnification factors 5, 10, 20, 50, 100 (total ratio, so
          project alpha = factor − 1), and additive Gaussian noise sigma 0.01..0.2 at factor 20.

Classical methods get a whole-clip ideal band-pass around the motion frequency (Oh's tests
use a band-pass for phase-based magnification too); the learned models run in static mode
against frame 0, without a temporal filter, as Oh et al. evaluate their network.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .data import (
    DataConfig,
    _decimate,
    _place,
    _sample_window,
    quantize_stochastic,
    random_object,
    random_texture,
    sample_seed_sequence,
)

LEARNED = ("oh2018", "realtime", "fd4mm", "lnvmm", "lnvmm_light", "mdlmm", "mdlmm_d2",
           "sigma_theta", "hmn", "hmn_light", "kldnas")
CLASSICAL = ("linear", "phase", "riesz")


def base_method(method: str) -> str:
    """``"fd4mm:nocr"`` -> ``"fd4mm"``: a label after a colon names a variant (its own
    weights, e.g. an ablation) of a registered method."""
    return method.split(":", 1)[0]


def default_methods() -> tuple[str, ...]:
    """The learned models that have weights in the package, then the classical methods."""
    from . import weights as W

    learned = []
    for m in LEARNED:
        try:
            if W.read_provenance(m) is not None:
                learned.append(m)
        except Exception:  # noqa: BLE001 - unreadable provenance: leave the model out
            pass
    return (*learned, *CLASSICAL)


@dataclass
class Scene:
    """A background canvas and one foreground object, rendered at ``U``× resolution."""

    bg: torch.Tensor
    obj: torch.Tensor
    obj_pos: np.ndarray
    size: int
    U: int = 2
    margin: int = 0
    E: int = 0
    aa_sigma: float = 0.5

    def render(self, d_bg: np.ndarray, d_fg: np.ndarray) -> torch.Tensor:
        """Frame (3, S, S) in [0, 1] with the layers displaced by d_bg / d_fg (dy, dx) px."""
        hs = self.U * self.size + 2 * self.E
        o = self.margin - self.U * np.asarray(d_bg, float)
        img = _sample_window(self.bg, float(o[0]), float(o[1]), hs, hs)
        p = self.obj_pos + self.U * np.asarray(d_fg, float)
        _place(img, self.obj, float(p[0]), float(p[1]))
        return _decimate(img, self.U, self.aa_sigma, self.E).clamp(0, 1)


def make_scene(seed: int, index: int, size: int, max_motion: float = 40.0) -> Scene:
    """A test-split scene: textured background and a centred foreground object."""
    rng = np.random.default_rng(sample_seed_sequence(seed, "test", index))
    cfg = DataConfig(size=size)
    U = cfg.upsample
    E = int(math.ceil(3 * cfg.aa_sigma * U)) + 1
    hs = U * size + 2 * E
    margin = int(math.ceil(U * max_motion)) + 4
    bg = torch.from_numpy(random_texture(rng, hs + 2 * margin, hs + 2 * margin))
    r = 0.3 * size * U
    obj = torch.from_numpy(random_object(rng, r))
    P = obj.shape[-1]
    pos = np.array([(hs - P) / 2, (hs - P) / 2])
    return Scene(bg, obj, pos, size, U, margin, E, cfg.aa_sigma)


def _clip(scene: Scene, traj_bg: np.ndarray, traj_fg: np.ndarray, rng: np.random.Generator,
          quantize: bool = True) -> np.ndarray:
    frames = []
    for dbg, dfg in zip(traj_bg, traj_fg, strict=True):
        f = scene.render(dbg, dfg)
        if quantize:
            f = quantize_stochastic(f, rng)
        frames.append(f.permute(1, 2, 0).numpy())
    return np.stack(frames).astype(np.float32)


def photon_noise(x: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with variance = pixel value on the 0-255 scale, times ``factor`` (std scales
    with ``factor``); [0, 1] in and out, clipped."""
    if factor <= 0:
        return x
    std = factor * np.sqrt(np.clip(x, 0, 1) * 255.0) / 255.0
    return np.clip(x + std * rng.standard_normal(x.shape).astype(np.float32), 0, 1)


def ssim_clip(out: np.ndarray, gt: np.ndarray, skip_first: bool = True) -> float:
    from .losses import ssim

    o = torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32)).permute(0, 3, 1, 2)
    g = torch.from_numpy(np.ascontiguousarray(gt, dtype=np.float32)).permute(0, 3, 1, 2)
    if skip_first:
        o, g = o[1:], g[1:]
    return float(ssim(o, g, reduction="none").mean())


@dataclass
class EvalConfig:
    #: methods; a learned one may carry a label, ``fd4mm:nocr``, for a variant with its own
    #: ``weights`` entry (ablations side by side)
    methods: tuple[str, ...] = field(default_factory=default_methods)
    size: int = 128
    scenes: int = 2
    frames: int = 30
    seed: int = 0
    device: str = "cpu"
    weights: dict[str, str] = field(default_factory=dict)  # model -> .pt path
    tests: tuple[str, ...] = ("subpixel", "noise", "fd4mm")
    subpixel_amplitudes: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
    noise_factors: tuple[float, ...] = (0.0, 0.3, 1.0, 2.0, 4.0)
    noise_motions: tuple[tuple[float, float], ...] = ((0.05, 199.0), (0.5, 19.0))
    fd4mm_factors: tuple[float, ...] = (5, 10, 20, 50, 100)
    fd4mm_sigmas: tuple[float, ...] = (0.01, 0.05, 0.1, 0.2)
    fd4mm_amplitude: float = 0.2
    thesis_clips: int = 25
    thesis_size: int = 256
    thesis_radius: float = 40.0
    thesis_frames: int = 10
    thesis_amplitude: float = 0.1
    thesis_factor: float = 100.0
    thesis_sigmas: tuple[float, ...] = (0.0,)


def run_method(method: str, frames: np.ndarray, alpha: float, fps: float,
               band: tuple[float, float], cfg: EvalConfig) -> np.ndarray:
    from ..engine import magnify

    if base_method(method) in LEARNED:
        opts = {"weights": cfg.weights[method]} if cfg.weights.get(method) else {}
        return magnify(frames, fps=fps, method=base_method(method), alpha=alpha,
                       mode="static", temporal="none", band=band, device=cfg.device, **opts)
    return magnify(frames, fps=fps, method=method, alpha=alpha, band=band, temporal="ideal",
                   mode="temporal", device=cfg.device)


def _direction(rng: np.random.Generator) -> np.ndarray:
    th = rng.uniform(0, 2 * np.pi)
    return np.array([np.sin(th), np.cos(th)])


def _scored_row(cfg: EvalConfig, key: dict[str, Any], alpha: float, fps: float,
                band: tuple[float, float], clip_pair: Callable[[int], tuple], log) -> dict:
    """One table row: ``key`` plus each method's SSIM, averaged over ``cfg.scenes`` scenes.

    ``clip_pair(k)`` gives scene ``k``'s input frames and ground truth, (T, H, W, 3) in [0, 1].
    """
    acc: dict[str, list[float]] = {}
    for k in range(cfg.scenes):
        frames, gt = clip_pair(k)
        frames = frames.astype(np.float32)
        acc.setdefault("input", []).append(ssim_clip(frames, gt))
        for m in cfg.methods:
            acc.setdefault(m, []).append(ssim_clip(run_method(m, frames, alpha, fps, band, cfg),
                                                   gt))
    row = {**key, **{m: float(np.mean(v)) for m, v in acc.items()}}
    log(json.dumps(row))
    return row


def run_subpixel(cfg: EvalConfig, log=print) -> list[dict[str, Any]]:
    fps, f0 = 30.0, 3.0
    s = np.sin(2 * np.pi * f0 * np.arange(cfg.frames) / fps)

    def clip_pair(k: int, amp: float, alpha: float) -> tuple:
        rng = np.random.default_rng([cfg.seed, 11, k])
        scene = make_scene(cfg.seed, k, cfg.size)
        dfg = _direction(rng)
        dbg = np.array([-dfg[1], dfg[0]]) if rng.random() < 0.5 else np.array(
            [dfg[1], -dfg[0]])  # perpendicular: a different direction
        traj_fg, traj_bg = s[:, None] * amp * dfg, s[:, None] * amp * dbg
        frames = _clip(scene, traj_bg, traj_fg, rng)
        gt = _clip(scene, (1 + alpha) * traj_bg, (1 + alpha) * traj_fg, rng, quantize=False)
        return frames, gt

    rows = []
    for amp in cfg.subpixel_amplitudes:
        alpha = 10.0 / amp - 1.0
        rows.append(_scored_row(
            cfg, {"test": "subpixel", "amplitude_px": amp, "alpha": round(alpha, 3)}, alpha,
            fps, (0.5, 7.5), lambda k, amp=amp, alpha=alpha: clip_pair(k, amp, alpha), log))
    return rows


def run_noise(cfg: EvalConfig, log=print) -> list[dict[str, Any]]:
    fps, f0 = 30.0, 3.0
    s = np.sin(2 * np.pi * f0 * np.arange(cfg.frames) / fps)

    def clip_pair(k: int, amp: float, alpha: float, nf: float) -> tuple:
        rng = np.random.default_rng([cfg.seed, 12, k])
        scene = make_scene(cfg.seed, k, cfg.size)
        traj_fg = s[:, None] * amp * _direction(rng)
        zero = np.zeros_like(traj_fg)
        clean = _clip(scene, zero, traj_fg, rng, quantize=False)
        frames = np.round(photon_noise(clean, nf, rng) * 255) / 255  # 8-bit like a camera
        return frames, _clip(scene, zero, (1 + alpha) * traj_fg, rng, quantize=False)

    rows = []
    for amp, alpha in cfg.noise_motions:
        for nf in cfg.noise_factors:
            key = {"test": "noise", "amplitude_px": amp, "alpha": alpha, "noise_factor": nf}
            rows.append(_scored_row(
                cfg, key, alpha, fps, (0.5, 7.5),
                lambda k, amp=amp, alpha=alpha, nf=nf: clip_pair(k, amp, alpha, nf), log))
    return rows


def run_fd4mm(cfg: EvalConfig, log=print) -> list[dict[str, Any]]:
    fps, T = 30.0, 60
    s = np.sin(2 * np.pi * np.arange(T) / T)

    def clip_pair(k: int, factor: float, sigma: float) -> tuple:
        rng = np.random.default_rng([cfg.seed, 13, k])
        scene = make_scene(cfg.seed, 100 + k, cfg.size)
        traj = s[:, None] * cfg.fd4mm_amplitude * np.array([1.0, 0.0])  # vertical, as in FD4MM
        zero = np.zeros_like(traj)
        frames = _clip(scene, zero, traj, rng)
        if sigma > 0:
            frames = np.clip(frames + sigma * rng.standard_normal(frames.shape), 0, 1)
        return frames, _clip(scene, zero, factor * traj, rng, quantize=False)

    rows = []
    settings = [(f, 0.0) for f in cfg.fd4mm_factors] + [(20, sg) for sg in cfg.fd4mm_sigmas]
    for factor, sigma in settings:
        key = {"test": "fd4mm", "factor": factor, "alpha": factor - 1.0, "sigma": sigma}
        rows.append(_scored_row(
            cfg, key, factor - 1.0, fps, (0.25, 2.0),
            lambda k, factor=factor, sigma=sigma: clip_pair(k, factor, sigma), log))
    return rows


def circles_clip(background: np.ndarray, colours: np.ndarray, centres: np.ndarray,
                 directions: np.ndarray, radius: float, displacements: np.ndarray,
                 ) -> np.ndarray:
    """Frames (T, S, S, 3) in [0, 1]: discs composited over ``background`` (S, S, 3).

    Disc k sits at ``centres[k] + displacements[t] · directions[k]`` (y, x in px) with colour
    ``colours[k]``; its edge is anti-aliased by exact-distance coverage (1 px ramp), so any
    sub-pixel displacement renders without resampling (the thesis up-/downsamples by S_f).
    """
    S = background.shape[0]
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float64)
    out = []
    for d in displacements:
        f = background.astype(np.float64).copy()
        for c, ctr, u in zip(colours, centres, directions, strict=True):
            cy, cx = ctr + d * u
            dist = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
            a = np.clip(radius + 0.5 - dist, 0.0, 1.0)[..., None]
            f = f * (1 - a) + c[None, None, :] * a
        out.append(f)
    return np.stack(out).astype(np.float32)


def run_thesis(cfg: EvalConfig, log=print) -> list[dict[str, Any]]:
    """The thesis' synthetic protocol (§3.2.3; digest §2.4): MSE (0–255) vs ground truth.

    Per clip: a test-split texture of ``thesis_size`` px, three discs of ``thesis_radius`` px
    (random colours) centred at (¼, ¼), (¼, ¾), (¾, ½) of the frame and moving horizontally,
    vertically and diagonally by A·(−1)^j px in frame j (A = ``thesis_amplitude``), 8-bit
    quantised, plus Gaussian noise σ (``thesis_sigmas``, in [0, 1] units; silent in the
    thesis, default none). Ground truth: the same discs at ``thesis_factor``·A·(−1)^j, not
    quantised. Every method runs in **dynamic** mode (consecutive frames, as the thesis runs
    its models), where the frame difference is 2·A·(−1)^j, so α = (factor − 1) / 2 = 49.5
    gives the ground-truth motion (the thesis' M_f = 50 for its own models). The score is
    the MSE over frames 1..T−1 (frame 0 has no predecessor), averaged over the clips.
    """
    from ..engine import magnify

    rows = []
    fps = 30.0
    t = np.arange(cfg.thesis_frames)
    alt = (-1.0) ** t
    S, r = cfg.thesis_size, cfg.thesis_radius
    centres = np.array([[0.25, 0.25], [0.25, 0.75], [0.75, 0.5]]) * S
    dirs = np.array([[0.0, 1.0], [1.0, 0.0], [np.sqrt(0.5), np.sqrt(0.5)]])
    alpha = (cfg.thesis_factor - 1.0) / 2.0
    for sigma in cfg.thesis_sigmas:
        acc: dict[str, list[float]] = {}
        for k in range(cfg.thesis_clips):
            rng = np.random.default_rng(sample_seed_sequence(cfg.seed, "test", 1000 + k))
            bg = random_texture(rng, S, S).transpose(1, 2, 0)
            cols = rng.uniform(0, 1, (3, 3))
            frames = circles_clip(bg, cols, centres, dirs, r, cfg.thesis_amplitude * alt)
            frames = np.round(frames * 255) / 255
            if sigma > 0:
                frames = np.clip(frames + sigma * rng.standard_normal(frames.shape), 0, 1)
            frames = frames.astype(np.float32)
            gt = circles_clip(bg, cols, centres, dirs, r,
                              cfg.thesis_factor * cfg.thesis_amplitude * alt)

            def mse(out: np.ndarray, gt: np.ndarray = gt) -> float:
                return float(np.mean(((out[1:] - gt[1:]) * 255.0) ** 2))

            acc.setdefault("input", []).append(mse(frames))
            for m in cfg.methods:
                opts = {"weights": cfg.weights[m]} if cfg.weights.get(m) else {}
                out = magnify(frames, fps=fps, method=base_method(m), alpha=alpha,
                              mode="dynamic", temporal="none", band=(1.0, 14.0),
                              device=cfg.device, **opts)
                acc.setdefault(m, []).append(mse(out))
        row = {"test": "thesis", "amplitude_px": cfg.thesis_amplitude,
               "factor": cfg.thesis_factor, "alpha": alpha, "sigma": sigma,
               **{m: float(np.mean(v)) for m, v in acc.items()}}
        log(json.dumps(row))
        rows.append(row)
    return rows


TESTS = {"subpixel": run_subpixel, "noise": run_noise, "fd4mm": run_fd4mm,
         "thesis": run_thesis}
#: tests whose score is an error (lower is better)
LOWER_IS_BETTER = {"thesis"}


def run_evaluation(cfg: EvalConfig, log=print) -> dict[str, Any]:
    """Run ``cfg.tests``; returns {"config", "rows", "weights", "wall_time_s"}.

    Raises VMMError before any test runs when a requested learned method has no loadable
    weights (the message says how to train them).
    """
    from ..errors import VMMError
    from . import weights as W

    winfo = {}
    for m in cfg.methods:  # recorded before the run: the files may be replaced meanwhile
        if base_method(m) in LEARNED:
            try:
                _, prov = W.load_weights(base_method(m), cfg.weights.get(m))
            except VMMError as e:
                raise VMMError(f"cannot evaluate {m}: {e}") from None
            winfo[m] = {"sha256": prov.get("sha256"), "steps": prov.get("steps"),
                        "val_ssim": prov.get("validation", {}).get("ssim"),
                        "status": W.training_status(prov.get("validation", {})),
                        "arch": prov.get("arch") or {}, "loss": prov.get("loss")}
    t0 = time.time()
    rows: list[dict[str, Any]] = []
    for name in cfg.tests:
        rows += TESTS[name](cfg, log)
    c = dict(cfg.__dict__)
    return {"config": c, "rows": rows, "weights": winfo,
            "wall_time_s": round(time.time() - t0, 1)}


#: Configuration fields that must agree for two results to be merged (the clips they score).
_CLIP_FIELDS = ("size", "scenes", "frames", "seed", "subpixel_amplitudes", "noise_factors",
                "noise_motions", "fd4mm_factors", "fd4mm_sigmas", "fd4mm_amplitude",
                "thesis_clips", "thesis_size", "thesis_radius", "thesis_frames",
                "thesis_amplitude", "thesis_factor", "thesis_sigmas")


def check_mergeable(old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
    """Raise VMMError unless two evaluation configs score the same clips with the same tests."""
    from ..errors import VMMError

    def same(a, b) -> bool:
        return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True,
                                                                         default=str)

    diff = [k for k in _CLIP_FIELDS if not same(old_config.get(k), new_config.get(k))]
    if diff:
        raise VMMError(f"cannot merge: the results differ in {', '.join(diff)}")
    if sorted(new_config["tests"]) != sorted(old_config["tests"]):
        raise VMMError(f"cannot merge: tests {', '.join(new_config['tests'])} against "
                       f"{', '.join(old_config['tests'])} in the earlier result")


def merge_results(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``old`` with the columns of ``new``'s methods replaced or added.

    For re-scoring a few methods (a model with new weights) without re-running the rest: both
    results must come from the same clips (same settings, tests and seed, so the same
    ``input`` scores), else VMMError. Rows are matched on their test and setting.
    """
    from ..errors import VMMError

    oc, nc = old["config"], new["config"]
    check_mergeable(oc, nc)
    added = [m for m in nc["methods"] if m not in oc["methods"]]

    def key(row: dict) -> str:
        return json.dumps({k: v for k, v in row.items()
                           if k not in ("input", *oc["methods"], *nc["methods"])},
                          sort_keys=True)

    fresh = {key(r): r for r in new["rows"]}
    rows = []
    for row in old["rows"]:
        r = fresh.get(key(row))
        if r is not None:
            if abs(r["input"] - row["input"]) > 1e-6:
                raise VMMError(f"cannot merge: the input scores differ in {key(row)}")
            row = {**row, **{m: r[m] for m in nc["methods"]}}
        rows.append(row)
    config = {**oc, "methods": [*oc["methods"], *added],
              "weights": {**oc.get("weights", {}), **nc.get("weights", {})}}
    return {"config": config, "rows": rows,
            "weights": {**old.get("weights", {}), **new.get("weights", {})},
            "wall_time_s": old.get("wall_time_s"),
            "merged": [*old.get("merged", []),
                       {"methods": list(nc["methods"]), "wall_time_s": new.get("wall_time_s")}]}


def markdown_tables(result: dict[str, Any]) -> str:
    """The result as Markdown tables, one per test."""
    methods = list(result["config"]["methods"])
    cols = ["input", *methods]
    out = []
    keyset = {"subpixel": ["amplitude_px", "alpha"],
              "noise": ["amplitude_px", "alpha", "noise_factor"],
              "fd4mm": ["factor", "sigma"],
              "thesis": ["amplitude_px", "factor", "alpha", "sigma"]}
    titles = {"subpixel": "Sub-pixel test (Oh et al.): SSIM vs ground truth, "
                          "magnified amplitude 10 px",
              "noise": "Noise test (Oh et al.): SSIM vs ground truth",
              "fd4mm": "FD4MM sinusoid protocol: SSIM vs ground truth",
              "thesis": "Thesis circles protocol (dynamic mode): MSE (0-255) vs ground truth, "
                        "lower is better"}
    for m, w in result.get("weights", {}).items():
        if "error" in w:
            out.append(f"- `{m}` weights: {w['error']}")
        else:
            arch = f", arch {w['arch']}" if w.get("arch") else ""
            out.append(f"- `{m}` weights: step {w['steps']}, validation SSIM {w['val_ssim']}, "
                       f"sha256 `{str(w['sha256'])[:12]}…`, status: {w['status']}{arch}")
    if out:
        out.append("")
    for test, keys in keyset.items():
        rows = [r for r in result["rows"] if r["test"] == test]
        if not rows:
            continue
        out.append(f"### {titles[test]}\n")
        out.append("| " + " | ".join(keys + cols) + " |")
        out.append("|" + "---|" * (len(keys) + len(cols)))
        for r in rows:
            pick = min if test in LOWER_IS_BETTER else max
            best = pick((r[m] for m in methods if m in r), default=None)
            cells = [f"{r[k]:g}" for k in keys]
            for m in cols:
                v = r.get(m)
                s = "–" if v is None else f"{v:.4f}"
                if v is not None and m != "input" and v == best:
                    s = f"**{s}**"
                cells.append(s)
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)
