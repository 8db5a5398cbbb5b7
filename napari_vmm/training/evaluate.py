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
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from ..core.errors import VMMError
from ..core.learned import weights as W
from .data import (
    DataConfig,
    decimate,
    place,
    quantize_stochastic,
    random_object,
    random_texture,
    sample_seed_sequence,
    sample_window,
)
from .eval_config import (
    LEARNED,
    EvalConfig,
    base_method,
    columns,
    weights_key,
)


@dataclass
class RealFrames:
    """Frames of real videos as texture sources: float32 (H, W, 3) in [0, 1]."""

    frames: list[np.ndarray]

    @classmethod
    def from_dir(cls, path: str, per_video: int = 3) -> RealFrames:
        """``per_video`` frames spread over each video file in ``path`` (VMMError if none)."""
        from pathlib import Path

        from ..io import open_video

        frames = []
        files = sorted(p for p in Path(path).glob("*")
                       if p.suffix.lower() in (".mp4", ".avi", ".mov", ".mkv"))
        for f in files:
            with open_video(f) as v:
                n = len(v)
                for k in range(per_video):
                    im = np.asarray(v[int((k + 0.5) * n / per_video)], dtype=np.float32)
                    im = im / (255.0 if im.max() > 1.5 else 1.0)
                    frames.append(im if im.ndim == 3 else np.repeat(im[..., None], 3, 2))
        if not frames:
            raise VMMError(f"no video files to take real textures from in {path}")
        return cls(frames)

    def _crop(self, rng: np.random.Generator, side: int, skip: int = -1) -> tuple[np.ndarray,
                                                                                  int]:
        from scipy import ndimage

        k = int(rng.integers(len(self.frames)))
        if k == skip and len(self.frames) > 1:
            k = (k + 1) % len(self.frames)
        im = self.frames[k]
        zoom = max(1.0, side / min(im.shape[:2]))
        if zoom > 1.0:
            im = ndimage.zoom(im, (zoom, zoom, 1), order=1)
        y0 = int(rng.integers(0, im.shape[0] - side + 1))
        x0 = int(rng.integers(0, im.shape[1] - side + 1))
        return np.ascontiguousarray(im[y0:y0 + side, x0:x0 + side].transpose(2, 0, 1)), k

    def scene_textures(self, rng: np.random.Generator, side: int,
                       radius: float) -> tuple[np.ndarray, np.ndarray]:
        """A (3, side, side) background and a premultiplied RGBA disc (4, P, P) of
        ``radius`` cut from another frame."""
        bg, k = self._crop(rng, side)
        P = 2 * int(math.ceil(radius)) + 8
        tex, _ = self._crop(rng, P, skip=k)
        yy, xx = np.mgrid[0:P, 0:P] - (P - 1) / 2
        m = np.clip(radius + 0.5 - np.hypot(yy, xx), 0, 1).astype(np.float32)
        return bg.astype(np.float32), np.concatenate([tex * m[None], m[None]]).astype(
            np.float32)


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

    def object_mask(self) -> np.ndarray:
        """(S, S) coverage of the object at rest, in [0, 1]."""
        alpha = self.obj[3:4].expand(4, -1, -1)
        dark = Scene(torch.zeros_like(self.bg), alpha, self.obj_pos, self.size, self.U,
                     self.margin, self.E, self.aa_sigma)
        return dark.render(np.zeros(2), np.zeros(2))[0].numpy()

    def render(self, d_bg: np.ndarray, d_fg: np.ndarray) -> torch.Tensor:
        """Frame (3, S, S) in [0, 1] with the layers displaced by d_bg / d_fg (dy, dx) px."""
        hs = self.U * self.size + 2 * self.E
        o = self.margin - self.U * np.asarray(d_bg, float)
        img = sample_window(self.bg, float(o[0]), float(o[1]), hs, hs)
        p = self.obj_pos + self.U * np.asarray(d_fg, float)
        place(img, self.obj, float(p[0]), float(p[1]))
        return decimate(img, self.U, self.aa_sigma, self.E).clamp(0, 1)


#: object textures of the evaluation: photographs and fractal noise, whose motion a window
#: can measure in every direction (stripes and gradients have an aperture problem)
_OBJECT_TEXTURES = {"image": 0.5, "fractal": 0.5}


def make_scene(seed: int, index: int, size: int, max_motion: float = 40.0,
               real: RealFrames | None = None) -> Scene:
    """A test-split scene: textured background and a centred foreground object.

    With ``real``, both textures are cut from frames of real videos (a disc of one frame
    moving over another frame); otherwise from the test split of the training generator.
    """
    rng = np.random.default_rng(sample_seed_sequence(seed, "test", index))
    cfg = DataConfig(size=size)
    U = cfg.upsample
    E = int(math.ceil(3 * cfg.aa_sigma * U)) + 1
    hs = U * size + 2 * E
    margin = int(math.ceil(U * max_motion)) + 4
    r = 0.3 * size * U
    if real is not None:
        bg_np, obj = real.scene_textures(rng, hs + 2 * margin, r)
        return Scene(torch.from_numpy(bg_np), torch.from_numpy(obj),
                     np.array([(hs - obj.shape[-1]) / 2] * 2), size, U, margin, E,
                     cfg.aa_sigma)
    bg = torch.from_numpy(random_texture(rng, hs + 2 * margin, hs + 2 * margin))
    obj = torch.from_numpy(random_object(rng, r, _OBJECT_TEXTURES))
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


def method_options(cfg: EvalConfig, method: str) -> dict[str, str]:
    """The magnifier options of a table column: its ``options`` and its ``weights`` file."""
    key = weights_key(method)
    opts = dict(cfg.options.get(key, {}))
    if cfg.weights.get(key):
        opts["weights"] = cfg.weights[key]
    return opts


def run_method(method: str, frames: np.ndarray, alpha: float, fps: float,
               band: tuple[float, float], cfg: EvalConfig) -> np.ndarray:
    """One table column on one clip: classical methods and learned models (the latter in
    temporal mode, or static against frame 0 for a ``@static`` column)."""
    from ..core.engine import magnify

    base = base_method(method)
    opts = method_options(cfg, method)
    if method.endswith("@static"):
        return magnify(frames, fps=fps, method=base, alpha=alpha, mode="static",
                       temporal="none", band=band, device=cfg.device, **opts)
    return magnify(frames, fps=fps, method=base, alpha=alpha, band=band, temporal="ideal",
                   mode="temporal", device=cfg.device, **opts)


@lru_cache(maxsize=2)
def _real_frames(path: str) -> RealFrames:
    return RealFrames.from_dir(path)


def _scene(cfg: EvalConfig, index: int, size: int | None = None,
           max_motion: float = 40.0) -> Scene:
    real = _real_frames(cfg.real_textures) if cfg.real_textures else None
    return make_scene(cfg.seed, index, size or cfg.size, max_motion, real)


@dataclass
class Probe:
    """What the achieved magnification of a clip is measured against: the scene, its input
    motion (``amplitude`` px along ``fg`` for the object, along ``bg`` for the background,
    as a sinusoid of ``freq`` Hz)."""

    scene: Scene
    amplitude: float
    fg: np.ndarray
    freq: float
    bg: np.ndarray = field(default_factory=lambda: np.zeros(2))

    def family(self, alpha: float):
        """The :class:`.gain.MotionFamily` of this scene, up to twice the requested motion,
        compared in the region the object sweeps (plus 3 px)."""
        from .gain import MotionFamily, motion_grid, swept_region

        top = 2.0 * (1.0 + alpha) + 1.0
        region = swept_region(self.scene.object_mask() > 0.02, top, self.amplitude)

        def render(c: float) -> np.ndarray:
            a = c * self.amplitude
            return self.scene.render(a * self.bg, a * self.fg).permute(1, 2, 0).numpy()

        return MotionFamily(render, motion_grid(self.amplitude, top), region)


def _direction(rng: np.random.Generator) -> np.ndarray:
    th = rng.uniform(0, 2 * np.pi)
    return np.array([np.sin(th), np.cos(th)])


def _scored_row(cfg: EvalConfig, key: dict[str, Any], alpha: float, fps: float,
                band: tuple[float, float], clip_pair: Callable[[int], tuple], log) -> dict:
    """One table row: ``key`` plus each column's SSIM, averaged over ``cfg.scenes`` scenes,
    and under ``"gain"`` each column's achieved / requested magnification (mean over scenes;
    ``"truth"``: the estimator on the ground truth, which should read 1).

    ``clip_pair(k)`` gives scene ``k``'s input frames and ground truth, (T, H, W, 3) in [0, 1],
    and its :class:`Probe`.
    """
    acc: dict[str, list[float]] = {}
    gain: dict[str, list[float]] = {}
    for k in range(cfg.scenes):
        frames, gt, probe = clip_pair(k)
        frames = frames.astype(np.float32)
        family = probe.family(alpha)

        def score(m: str, x: np.ndarray, family=family, probe=probe) -> None:
            gain.setdefault(m, []).append(family.achieved(x, fps, probe.freq) / (1 + alpha))

        acc.setdefault("input", []).append(ssim_clip(frames, gt))
        score("truth", gt)
        score("input", frames)
        for m in columns(cfg):
            out = run_method(m, frames, alpha, fps, band, cfg)
            acc.setdefault(m, []).append(ssim_clip(out, gt))
            score(m, out)
    row = {**key, **{m: float(np.mean(v)) for m, v in acc.items()},
           "gain": {m: float(np.mean(v)) for m, v in gain.items()}}
    log(json.dumps(row))
    return row


def run_subpixel(cfg: EvalConfig, log=print) -> list[dict[str, Any]]:
    fps, f0 = 30.0, 3.0
    s = np.sin(2 * np.pi * f0 * np.arange(cfg.frames) / fps)

    def clip_pair(k: int, amp: float, alpha: float) -> tuple:
        rng = np.random.default_rng([cfg.seed, 11, k])
        scene = _scene(cfg, k)
        dfg = _direction(rng)
        dbg = np.array([-dfg[1], dfg[0]]) if rng.random() < 0.5 else np.array(
            [dfg[1], -dfg[0]])  # perpendicular: a different direction
        traj_fg, traj_bg = s[:, None] * amp * dfg, s[:, None] * amp * dbg
        frames = _clip(scene, traj_bg, traj_fg, rng)
        gt = _clip(scene, (1 + alpha) * traj_bg, (1 + alpha) * traj_fg, rng, quantize=False)
        return frames, gt, Probe(scene, amp, dfg, f0, dbg)

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
        scene = _scene(cfg, k)
        u = _direction(rng)
        traj_fg = s[:, None] * amp * u
        zero = np.zeros_like(traj_fg)
        clean = _clip(scene, zero, traj_fg, rng, quantize=False)
        frames = np.round(photon_noise(clean, nf, rng) * 255) / 255  # 8-bit like a camera
        gt = _clip(scene, zero, (1 + alpha) * traj_fg, rng, quantize=False)
        return frames, gt, Probe(scene, amp, u, f0)

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
        scene = _scene(cfg, 100 + k)
        traj = s[:, None] * cfg.fd4mm_amplitude * np.array([1.0, 0.0])  # vertical, as in FD4MM
        zero = np.zeros_like(traj)
        frames = _clip(scene, zero, traj, rng)
        if sigma > 0:
            frames = np.clip(frames + sigma * rng.standard_normal(frames.shape), 0, 1)
        gt = _clip(scene, zero, factor * traj, rng, quantize=False)
        return frames, gt, Probe(scene, cfg.fd4mm_amplitude, np.array([1.0, 0.0]), fps / T)

    rows = []
    settings = [(f, 0.0) for f in cfg.fd4mm_factors] + [(20, sg) for sg in cfg.fd4mm_sigmas]
    for factor, sigma in settings:
        key = {"test": "fd4mm", "factor": factor, "alpha": factor - 1.0, "sigma": sigma}
        rows.append(_scored_row(
            cfg, key, factor - 1.0, fps, (0.25, 2.0),
            lambda k, factor=factor, sigma=sigma: clip_pair(k, factor, sigma), log))
    return rows


def run_linearity(cfg: EvalConfig, log=print) -> list[dict[str, Any]]:
    """Ha et al.'s linearity test: one period of a 1 Hz sinusoid (30 fps, 30 frames) at each
    input amplitude, magnified by each total factor (alpha = factor − 1); the rows' ``gain``
    says how much of the request each method delivers. Frames are large enough for the
    largest output motion of their amplitude (``linearity_size``, else 3.4 × that motion,
    at least ``size``)."""
    fps, f0, T = 30.0, 1.0, 30
    s = np.sin(2 * np.pi * f0 * np.arange(T) / fps)

    def clip_pair(k: int, amp: float, factor: float, size: int, top: float) -> tuple:
        rng = np.random.default_rng([cfg.seed, 14, k])
        scene = _scene(cfg, 200 + k, size, max_motion=top + 2)
        u = _direction(rng)
        traj = s[:, None] * amp * u
        zero = np.zeros_like(traj)
        frames = _clip(scene, zero, traj, rng)
        gt = _clip(scene, zero, factor * traj, rng, quantize=False)
        return frames, gt, Probe(scene, amp, u, f0)

    rows = []
    for amp in cfg.linearity_amplitudes:
        top = amp * max(cfg.linearity_factors)
        size = cfg.linearity_size or max(cfg.size, int(math.ceil(3.4 * top / 16)) * 16)
        for factor in cfg.linearity_factors:
            key = {"test": "linearity", "amplitude_px": amp, "factor": factor,
                   "alpha": factor - 1.0, "size": size}
            rows.append(_scored_row(
                cfg, key, factor - 1.0, fps, (0.5, 2.0),
                lambda k, amp=amp, factor=factor, size=size, top=top:
                    clip_pair(k, amp, factor, size, top), log))
    return rows


def disc_mask(size: int, centres: np.ndarray, radius: float) -> np.ndarray:
    """Boolean (size, size) mask of the discs of :func:`circles_clip` at rest, with their 1 px
    anti-aliased edge."""
    yy, xx = np.mgrid[0:size, 0:size]
    mask = np.zeros((size, size), bool)
    for cy, cx in centres:
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= (radius + 1.0) ** 2
    return mask


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
    the MSE over frames 1..T−1 (frame 0 has no predecessor), averaged over the clips, and,
    under ``"gain"``, the achieved magnification: the discs' measured motion (the scale ``c``
    of the clean scene's motion each output frame looks like, around the discs) as its
    alternating component over frames 1..T−1, over the requested ``thesis_factor``.
    """
    from ..core.engine import magnify
    from .gain import MotionFamily, motion_grid, swept_region

    rows = []
    fps = 30.0
    t = np.arange(cfg.thesis_frames)
    alt = (-1.0) ** t
    S, r = cfg.thesis_size, cfg.thesis_radius
    centres = np.array([[0.25, 0.25], [0.25, 0.75], [0.75, 0.5]]) * S
    dirs = np.array([[0.0, 1.0], [1.0, 0.0], [np.sqrt(0.5), np.sqrt(0.5)]])
    alpha = (cfg.thesis_factor - 1.0) / 2.0
    top = 2.0 * cfg.thesis_factor + 1.0
    discs = disc_mask(S, centres, r)
    region = swept_region(discs, top, cfg.thesis_amplitude)
    sign = np.stack([alt[1:], np.ones(len(t) - 1)], axis=1)  # (−1)^j and an offset

    def alternation(x: np.ndarray, family: MotionFamily) -> float:
        """Amplitude of the (−1)^j motion of frames 1..T−1 (in input amplitudes)."""
        c = family.positions(x[1:])
        return float(abs(np.linalg.lstsq(sign, c, rcond=None)[0][0]))

    for sigma in cfg.thesis_sigmas:
        acc: dict[str, list[float]] = {}
        gain: dict[str, list[float]] = {}
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

            family = MotionFamily(
                lambda c, bg=bg, cols=cols: circles_clip(
                    bg, cols, centres, dirs, r, np.array([c * cfg.thesis_amplitude]))[0],
                motion_grid(cfg.thesis_amplitude, top), region)

            def score(m: str, x: np.ndarray, family=family, gain=gain) -> None:
                gain.setdefault(m, []).append(alternation(x, family) / cfg.thesis_factor)

            acc.setdefault("input", []).append(mse(frames))
            score("truth", gt)
            score("input", frames)
            for m in cfg.methods:
                out = magnify(frames, fps=fps, method=base_method(m), alpha=alpha,
                              mode="dynamic", temporal="none", band=(1.0, 14.0),
                              device=cfg.device, **method_options(cfg, m))
                acc.setdefault(m, []).append(mse(out))
                score(m, out)
        row = {"test": "thesis", "amplitude_px": cfg.thesis_amplitude,
               "factor": cfg.thesis_factor, "alpha": alpha, "sigma": sigma,
               **{m: float(np.mean(v)) for m, v in acc.items()},
               "gain": {m: float(np.mean(v)) for m, v in gain.items()}}
        log(json.dumps(row))
        rows.append(row)
    return rows


TESTS = {"subpixel": run_subpixel, "noise": run_noise, "fd4mm": run_fd4mm,
         "linearity": run_linearity, "thesis": run_thesis}


def run_evaluation(cfg: EvalConfig, log=print) -> dict[str, Any]:
    """Run ``cfg.tests``; returns {"config", "rows", "weights", "wall_time_s"}.

    Raises VMMError before any test runs when a requested learned method has no loadable
    weights (the message says how to train them).
    """
    winfo = {}
    for m in dict.fromkeys(map(weights_key, cfg.methods)):  # recorded before the run: the
        if base_method(m) in LEARNED:                          # files may be replaced meanwhile
            try:
                _, prov = W.load_weights(base_method(m), cfg.weights.get(m))
            except VMMError as e:
                raise VMMError(f"cannot evaluate {m}: {e}") from None
            winfo[m] = {"sha256": prov.get("sha256"), "steps": prov.get("steps"),
                        "val_ssim": prov.get("validation", {}).get("ssim"),
                        "status": W.training_status(prov.get("validation", {})),
                        "arch": prov.get("arch") or {}, "loss": prov.get("loss"),
                        **({"options": cfg.options[m]} if cfg.options.get(m) else {})}
    t0 = time.time()
    rows: list[dict[str, Any]] = []
    for name in cfg.tests:
        rows += TESTS[name](cfg, log)
    c = dict(cfg.__dict__)
    return {"config": c, "rows": rows, "weights": winfo,
            "wall_time_s": round(time.time() - t0, 1)}
