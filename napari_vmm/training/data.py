"""Synthetic training data for the learned magnifiers (Oh et al. 2018 recipe, digest §1).

Every sample is generated on the fly from ``(seed, split, index)`` and is bit-for-bit
reproducible: nothing is written to disk. The training, validation and test splits are kept
apart by the split id that enters the seed sequence (``np.random.SeedSequence([seed, split,
index])``), so no validation sample can ever be drawn for training.

One sample is the two-frame training tuple of Oh et al. (digest §1.2):

========  =================================================================================
key       meaning, each a float32 tensor of shape (3, S, S) in [0, 1] unless noted
========  =================================================================================
``A``     reference frame X_a (unperturbed)
``B``     query frame X'_b: the colour-perturbed version of ``C``
``C``     query frame X_b (unperturbed); same motion as ``B``
``Y``     ground truth Y': the query magnified by ``1 + alpha`` w.r.t. ``A``, perturbed like ``B``
``alpha`` float, magnification in the project convention (output displacement = (1+alpha)×input)
``subset`` int 1..5 (see :data:`SUBSETS`)
========  =================================================================================

Scenes are a textured background plus pasted foreground objects, each layer with its own random
sub-pixel translation. They are rendered at ``upsample``× the output resolution with bicubic
interpolation for the sub-pixel shifts, then Gaussian-anti-aliased and decimated, then
stochastically quantised to 8 bits. Poisson noise is a training-time augmentation
(:func:`add_poisson_noise`), not part of the sample. See ``docs/learned.md`` for the choices the
paper leaves open.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

SUBSETS = {
    1: "moving objects and background",
    2: "blurred background (objects and background moving)",
    3: "moving background only",
    4: "static scene",
    5: "static background, moving objects",
}

SPLITS = {"train": 0, "val": 1, "test": 2}

# Images bundled with scikit-image (no network needed).
_SKIMAGE_NAMES = (
    "astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "moon", "page", "text",
    "clock", "hubble_deep_field", "immunohistochemistry", "retina", "brick", "grass", "gravel",
    "colorwheel", "cell", "cat", "logo",
)


@dataclass(frozen=True)
class DataConfig:
    """The data recipe. Its ``asdict`` goes into the weights' provenance."""

    size: int = 128                 # output crop S (pixels)
    upsample: int = 2               # render factor U; scene drawn at U*S then decimated
    aa_sigma: float = 0.5           # Gaussian anti-alias sigma, in destination pixels
    alpha_max: float = 100.0        # project alpha range is (0, alpha_max]
    alpha_min: float = 1.0          # log-uniform part starts here
    p_small_alpha: float = 0.1      # probability of alpha ~ U(0, alpha_min)
    max_motion: float = 10.0        # input motion per layer, pixels
    max_magnified: float = 30.0     # (1+alpha)*|motion| <= this
    p_log_motion: float = 0.3       # probability of a log-uniform motion magnitude
    min_log_motion: float = 0.01
    objects_per_128: tuple[int, int] = (2, 6)  # object count range at S=128, scaled by area
    object_radius: tuple[float, float] = (0.08, 0.3)  # fraction of S
    max_scale: float = 2.0          # image up-scaling limit (Oh: "limited to 2")
    p_gray: float = 0.1             # whole sample grayscale (replicated)
    subset_weights: tuple[float, ...] = (0.2, 0.2, 0.2, 0.2, 0.2)
    texture_weights: dict[str, float] = field(default_factory=lambda: {
        "image": 0.4, "fractal": 0.2, "shapes": 0.15, "stripes": 0.15, "gradient": 0.1})

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["objects_per_128"] = list(self.objects_per_128)
        d["object_radius"] = list(self.object_radius)
        d["subset_weights"] = list(self.subset_weights)
        return d


# ------------------------------------------------------------------------------------------
# texture sources

@lru_cache(maxsize=1)
def _skimage_images() -> tuple[np.ndarray, ...]:
    """The bundled scikit-image images as float32 (H, W, 3) in [0, 1]."""
    try:
        import skimage.data as sd
    except ImportError:  # pragma: no cover - exercised only without the train extra
        return ()
    out = []
    for name in _SKIMAGE_NAMES:
        try:
            im = np.asarray(getattr(sd, name)())
        except Exception:  # noqa: BLE001 - an image needing download is simply skipped
            continue
        im = im.astype(np.float32)
        if im.max() > 1.5:
            im /= 255.0
        if im.ndim == 2:
            im = np.repeat(im[..., None], 3, axis=2)
        out.append(np.ascontiguousarray(im[..., :3]))
    return tuple(out)


def texture_photographs() -> tuple[np.ndarray, ...]:
    """The bundled scikit-image photographs of the recipe, float32 (H, W, 3) in [0, 1]."""
    return _skimage_images()


def _random_color(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.0, 1.0, size=3).astype(np.float32)


def _image_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    ims = _skimage_images()
    if not ims:
        return _fractal_texture(rng, h, w)
    im = ims[rng.integers(len(ims))]
    k = int(rng.integers(4))
    im = np.rot90(im, k)
    if rng.random() < 0.5:
        im = im[:, ::-1]
    # scale s: output pixels per source pixel, limited to max_scale (Oh: <= 2) and >= 0.5
    s = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    ch, cw = int(math.ceil(h / s)), int(math.ceil(w / s))
    H, W = im.shape[:2]
    if ch > H or cw > W:  # too small: tile by reflection
        reps = (int(math.ceil(ch / H)) + 1, int(math.ceil(cw / W)) + 1)
        im = np.pad(im, ((0, (reps[0] - 1) * H), (0, (reps[1] - 1) * W), (0, 0)),
                    mode="reflect" if reps[0] * H < 3 * H else "wrap")
        H, W = im.shape[:2]
    y0 = int(rng.integers(0, H - ch + 1))
    x0 = int(rng.integers(0, W - cw + 1))
    crop = torch.from_numpy(np.ascontiguousarray(im[y0:y0 + ch, x0:x0 + cw])).permute(2, 0, 1)
    crop = F.interpolate(crop[None], size=(h, w), mode="bicubic", align_corners=False,
                         antialias=s < 1)[0]
    return crop.clamp_(0, 1).numpy()


def _fractal_noise(rng: np.random.Generator, h: int, w: int, beta: float) -> np.ndarray:
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    amp = f ** (-beta / 2.0)
    amp[0, 0] = 0.0
    ph = rng.uniform(0, 2 * np.pi, size=amp.shape)
    spec = amp * np.exp(1j * ph)
    n = np.fft.irfft2(spec, s=(h, w))
    n = (n - n.mean()) / (n.std() + 1e-8)
    return n.astype(np.float32)


def _fractal_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    beta = rng.uniform(1.2, 3.0)
    if rng.random() < 0.5:  # independent channels
        chans = [_fractal_noise(rng, h, w, beta) for _ in range(3)]
        mix = rng.uniform(0.2, 1.0)
        base = _fractal_noise(rng, h, w, beta)
        img = np.stack([mix * base + (1 - mix) * c for c in chans])
        img = 0.5 + rng.uniform(0.1, 0.25) * img
    else:  # one noise through a random two-colour ramp
        n = _fractal_noise(rng, h, w, beta)
        t = 1.0 / (1.0 + np.exp(-rng.uniform(0.8, 3.0) * n))
        c0, c1 = _random_color(rng), _random_color(rng)
        img = c0[:, None, None] * (1 - t) + c1[:, None, None] * t
    return np.clip(img, 0, 1).astype(np.float32)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:h, 0:w].astype(np.float32)


def _stripes_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = _grid(h, w)
    img = np.zeros((3, h, w), np.float32)
    n = int(rng.integers(1, 4))
    for _ in range(n):
        th = rng.uniform(0, np.pi)
        period = float(np.exp(rng.uniform(np.log(4.0), np.log(max(8.0, h / 2)))))
        u = (np.cos(th) * xx + np.sin(th) * yy) * (2 * np.pi / period) + rng.uniform(0, 6.3)
        s = np.sin(u)
        if rng.random() < 0.4:  # square-ish wave
            s = np.tanh(rng.uniform(3, 10) * s)
        c0, c1 = _random_color(rng), _random_color(rng)
        t = 0.5 + 0.5 * s
        img += c0[:, None, None] * (1 - t) + c1[:, None, None] * t
    return np.clip(img / n, 0, 1)


def _gradient_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = _grid(h, w)
    c0, c1 = _random_color(rng), _random_color(rng)
    if rng.random() < 0.5:
        th = rng.uniform(0, 2 * np.pi)
        t = np.cos(th) * xx / w + np.sin(th) * yy / h
    else:
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        t = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) / max(h, w)
    t = (t - t.min()) / (np.ptp(t) + 1e-8)
    img = c0[:, None, None] * (1 - t) + c1[:, None, None] * t
    img = img + 0.03 * _fractal_noise(rng, h, w, 2.0)[None]  # faint texture for trackability
    return np.clip(img, 0, 1).astype(np.float32)


def _shapes_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    img = np.empty((3, h, w), np.float32)
    img[:] = _random_color(rng)[:, None, None]
    n = int(rng.integers(8, 30))
    for _ in range(n):
        r = rng.uniform(0.03, 0.25) * min(h, w)
        cy, cx = rng.uniform(-r, h + r), rng.uniform(-r, w + r)
        y0, y1 = max(0, int(cy - r) - 1), min(h, int(cy + r) + 2)
        x0, x1 = max(0, int(cx - r) - 1), min(w, int(cx + r) + 2)
        if y1 <= y0 or x1 <= x0:
            continue
        m = _shape_mask(rng, y1 - y0, x1 - x0, cy - y0, cx - x0, r)
        col = _random_color(rng)
        img[:, y0:y1, x0:x1] = img[:, y0:y1, x0:x1] * (1 - m) + col[:, None, None] * m
    return img


def random_texture(rng: np.random.Generator, h: int, w: int,
                   weights: dict[str, float] | None = None) -> np.ndarray:
    """A random RGB texture, float32 (3, h, w) in [0, 1].

    Kinds: bundled scikit-image photographs (random crop, rotation, flip, scale <= 2),
    fractal (1/f^beta) noise, random shapes, stripes and gradients.
    """
    weights = weights or DataConfig().texture_weights
    kinds = list(weights)
    p = np.array([weights[k] for k in kinds], float)
    kind = kinds[int(rng.choice(len(kinds), p=p / p.sum()))]
    fn = {"image": _image_texture, "fractal": _fractal_texture, "shapes": _shapes_texture,
          "stripes": _stripes_texture, "gradient": _gradient_texture}[kind]
    tex = fn(rng, h, w)
    if tex.shape[0] != 3:
        tex = np.moveaxis(tex, -1, 0)
    return np.ascontiguousarray(tex, dtype=np.float32)


# ------------------------------------------------------------------------------------------
# masks

def _shape_mask(rng: np.random.Generator, h: int, w: int, cy: float, cx: float,
                r: float) -> np.ndarray:
    """Binary (float) mask of a random star-convex polygon, blob, ellipse or rectangle."""
    yy, xx = _grid(h, w)
    dy, dx = yy - cy, xx - cx
    kind = rng.integers(4)
    if kind == 0:  # star-convex polygon with straight edges
        n = int(rng.integers(3, 12))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = r * rng.uniform(0.35, 1.0, n)
        px, py = rad * np.cos(ang), rad * np.sin(ang)
        th = np.mod(np.arctan2(dy, dx), 2 * np.pi)
        i = np.searchsorted(ang, th) % n
        j = (i - 1) % n
        ax_, ay_ = px[j], py[j]
        bx_, by_ = px[i], py[i]
        # ray (cos th, sin th) * t intersects segment a->b at t = cross(a, b) / cross(d, b - a)
        ct, st = np.cos(th), np.sin(th)
        num = ax_ * by_ - ay_ * bx_
        den = ct * (by_ - ay_) - st * (bx_ - ax_)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(np.abs(den) > 1e-9, num / den, r)
        m = np.sqrt(dx * dx + dy * dy) <= np.abs(t)
    elif kind == 1:  # smooth blob: low-order Fourier radius
        th = np.arctan2(dy, dx)
        rr = np.ones_like(th)
        for k in range(1, 5):
            rr += rng.uniform(0, 0.25 / k) * np.cos(k * th + rng.uniform(0, 6.3))
        m = np.sqrt(dx * dx + dy * dy) <= r * 0.8 * rr
    elif kind == 2:  # rotated ellipse
        th = rng.uniform(0, np.pi)
        a, b = r, r * rng.uniform(0.3, 1.0)
        u = np.cos(th) * dx + np.sin(th) * dy
        v = -np.sin(th) * dx + np.cos(th) * dy
        m = (u / a) ** 2 + (v / b) ** 2 <= 1
    else:  # rotated rectangle
        th = rng.uniform(0, np.pi)
        a, b = r * rng.uniform(0.5, 1.0), r * rng.uniform(0.2, 1.0)
        u = np.cos(th) * dx + np.sin(th) * dy
        v = -np.sin(th) * dx + np.cos(th) * dy
        m = (np.abs(u) <= a) & (np.abs(v) <= b)
    return m.astype(np.float32)


def random_object(rng: np.random.Generator, radius: float,
                  weights: dict[str, float] | None = None) -> np.ndarray:
    """A foreground object: premultiplied RGBA float32 (4, P, P), P = 2*ceil(radius)+8."""
    P = 2 * int(math.ceil(radius)) + 8
    c = (P - 1) / 2.0
    if rng.random() < 0.75:
        m = _shape_mask(rng, P, P, c, c, radius)
    else:  # blob from thresholded fractal noise inside a soft disc
        n = _fractal_noise(rng, P, P, rng.uniform(2.5, 3.5))
        yy, xx = _grid(P, P)
        d = np.sqrt((yy - c) ** 2 + (xx - c) ** 2) / radius
        m = ((n - 2.0 * d ** 2) > -1.0).astype(np.float32) * (d <= 1)
    if m.sum() < 4:
        m = _shape_mask(rng, P, P, c, c, radius) * 0 + (
            (np.mgrid[0:P, 0:P][0] - c) ** 2 + (np.mgrid[0:P, 0:P][1] - c) ** 2 <= radius ** 2)
    tex = random_texture(rng, P, P, weights)
    return np.concatenate([tex * m[None], m[None]]).astype(np.float32)


# ------------------------------------------------------------------------------------------
# rendering

def _gauss1d(sigma: float, length: int, center: float) -> torch.Tensor:
    x = torch.arange(length, dtype=torch.float32) - center
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def place(canvas: torch.Tensor, layer: torch.Tensor, oy: float, ox: float) -> None:
    """Composite premultiplied RGBA ``layer`` (4, h, w) onto ``canvas`` (3, H, W) in place,
    with its top-left corner at the (sub-pixel) canvas position (oy, ox). Bicubic resampling.
    """
    _, h, w = layer.shape
    H, W = canvas.shape[1:]
    iy, ix = math.floor(oy), math.floor(ox)
    fy, fx = oy - iy, ox - ix
    # output region: integer bbox of the moved layer, one pixel larger for the fraction
    y0, x0 = iy, ix
    hh, ww = h + 1, w + 1
    # source coordinate of output pixel (y0 + r, x0 + c) is (r - fy, c - fx)
    ys = torch.arange(hh, dtype=torch.float32) - fy
    xs = torch.arange(ww, dtype=torch.float32) - fx
    gy = 2 * ys / max(h - 1, 1) - 1
    gx = 2 * xs / max(w - 1, 1) - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)[None]
    moved = F.grid_sample(layer[None], grid, mode="bicubic", padding_mode="zeros",
                          align_corners=True)[0]
    a = moved[3:4].clamp(0, 1)
    rgb = torch.minimum(moved[:3].clamp(min=0), a)
    # clip to canvas
    cy0, cx0 = max(0, y0), max(0, x0)
    cy1, cx1 = min(H, y0 + hh), min(W, x0 + ww)
    if cy1 <= cy0 or cx1 <= cx0:
        return
    sl = (slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0))
    region = canvas[:, cy0:cy1, cx0:cx1]
    region.mul_(1 - a[:, sl[0], sl[1]]).add_(rgb[:, sl[0], sl[1]])


def sample_window(canvas: torch.Tensor, oy: float, ox: float, h: int, w: int) -> torch.Tensor:
    """Window (3, h, w) of ``canvas`` whose pixel (0, 0) is canvas position (oy, ox), bicubic."""
    H, W = canvas.shape[1:]
    ys = torch.arange(h, dtype=torch.float32) + oy
    xs = torch.arange(w, dtype=torch.float32) + ox
    gy = 2 * ys / (H - 1) - 1
    gx = 2 * xs / (W - 1) - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)[None]
    return F.grid_sample(canvas[None], grid, mode="bicubic", padding_mode="border",
                         align_corners=True)[0]


def decimate(x: torch.Tensor, U: int, sigma_dst: float, E: int) -> torch.Tensor:
    """Gaussian anti-alias + decimate a (3, U*S + 2E, U*S + 2E) hi-res image to (3, S, S)."""
    if U == 1 and sigma_dst <= 0:
        return x[:, E:x.shape[1] - E, E:x.shape[2] - E]
    L = 2 * E + U
    k = _gauss1d(max(sigma_dst * U, 1e-3), L, (L - 1) / 2.0)
    c = x.shape[0]
    x = x[:, None]
    x = F.conv2d(x, k.view(1, 1, L, 1), stride=(U, 1))
    x = F.conv2d(x, k.view(1, 1, 1, L), stride=(1, U))
    return x[:, 0].reshape(c, x.shape[-2], x.shape[-1])


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = int(math.ceil(3 * sigma))
    k = _gauss1d(sigma, 2 * r + 1, r)
    c = x.shape[0]
    y = F.pad(x[:, None], (r, r, r, r), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, -1, 1))
    y = F.conv2d(y, k.view(1, 1, 1, -1))
    return y[:, 0].reshape(c, *x.shape[1:])


def quantize_stochastic(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """8-bit quantisation with uniform dither before rounding (Oh et al. §3.3)."""
    u = torch.from_numpy(rng.uniform(-0.5, 0.5, size=x.shape).astype(np.float32))
    return (torch.round(x.clamp(0, 1) * 255.0 + u).clamp(0, 255)) / 255.0


def _color_perturbation(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "gamma": float(np.exp(rng.uniform(np.log(0.7), np.log(1.4)))),
        "gain": rng.uniform(0.7, 1.3, 3).astype(np.float32),
        "offset": rng.uniform(-0.1, 0.1, 3).astype(np.float32),
        "saturation": float(rng.uniform(0.6, 1.4)),
    }


def _apply_perturbation(x: torch.Tensor, p: dict[str, Any]) -> torch.Tensor:
    y = x.clamp(0, 1) ** p["gamma"]
    g = y.mean(0, keepdim=True)
    y = g + p["saturation"] * (y - g)
    y = y * torch.from_numpy(p["gain"])[:, None, None] + torch.from_numpy(p["offset"])[:, None,
                                                                                       None]
    return y.clamp(0, 1)


def _sample_alpha(rng: np.random.Generator, cfg: DataConfig) -> float:
    if rng.random() < cfg.p_small_alpha:
        return float(rng.uniform(0.05, cfg.alpha_min))
    return float(np.exp(rng.uniform(np.log(cfg.alpha_min), np.log(cfg.alpha_max))))


def _sample_motion(rng: np.random.Generator, cfg: DataConfig, alpha: float) -> np.ndarray:
    """A 2-vector (dy, dx) in output pixels with |d| <= min(max_motion, max_magnified/(1+a))."""
    mmax = min(cfg.max_motion, cfg.max_magnified / (1.0 + alpha))
    if rng.random() < cfg.p_log_motion and mmax > cfg.min_log_motion:
        mag = float(np.exp(rng.uniform(np.log(cfg.min_log_motion), np.log(mmax))))
    else:
        mag = float(rng.uniform(0, mmax))
    th = rng.uniform(0, 2 * np.pi)
    return np.array([mag * np.sin(th), mag * np.cos(th)])


def sample_seed_sequence(seed: int, split: str | int, index: int) -> np.random.SeedSequence:
    sid = SPLITS[split] if isinstance(split, str) else int(split)
    return np.random.SeedSequence([int(seed), sid, int(index)])


def generate_sample(seed: int, split: str | int, index: int,
                    cfg: DataConfig | None = None, subset: int | None = None) -> dict[str, Any]:
    """One training tuple, deterministic in ``(seed, split, index, cfg, subset)``.

    Returns
    -------
    dict with ``A``, ``B``, ``C``, ``Y`` (float32 tensors (3, S, S) in [0, 1]), ``alpha``
    (float, project convention), ``subset`` (int), ``motion`` (dict of per-layer (dy, dx)).
    """
    cfg = cfg or DataConfig()
    rng = np.random.default_rng(sample_seed_sequence(seed, split, index))
    S, U = cfg.size, cfg.upsample
    if subset is None:
        w = np.asarray(cfg.subset_weights, float)
        subset = int(rng.choice(5, p=w / w.sum())) + 1
    alpha = _sample_alpha(rng, cfg)
    E = int(math.ceil(3 * cfg.aa_sigma * U)) + 1 if (U > 1 or cfg.aa_sigma > 0) else 0
    hs = U * S + 2 * E                       # hi-res window size
    margin = int(math.ceil(U * cfg.max_magnified)) + 4
    Hc = hs + 2 * margin                     # background canvas size

    bg = torch.from_numpy(random_texture(rng, Hc, Hc, cfg.texture_weights))
    if subset == 2:
        bg = _blur(bg, float(rng.uniform(1.5, 5.0)) * U)

    moving_bg = subset in (1, 2, 3)
    moving_obj = subset in (1, 2, 5)
    d_bg = _sample_motion(rng, cfg, alpha) if moving_bg else np.zeros(2)

    objects = []
    if subset != 3:  # subset 3 has no foreground; the static scene (4) keeps its objects
        scale = (S / 128.0) ** 2
        lo = max(1, int(round(cfg.objects_per_128[0] * scale)))
        hi = max(lo, int(round(cfg.objects_per_128[1] * scale)))
        for _ in range(int(rng.integers(lo, hi + 1))):
            r = rng.uniform(*cfg.object_radius) * S * U
            layer = torch.from_numpy(random_object(rng, r, cfg.texture_weights))
            P = layer.shape[-1]
            pos = rng.uniform(-P / 2, hs - P / 2, size=2)  # top-left in the hi-res window
            d = _sample_motion(rng, cfg, alpha) if moving_obj else np.zeros(2)
            objects.append((layer, pos, d))

    def render(k: float) -> torch.Tensor:
        """Frame whose every layer is displaced by k × its motion (k=0: A, 1: B, 1+a: Y)."""
        o = margin - U * k * d_bg
        img = sample_window(bg, float(o[0]), float(o[1]), hs, hs)
        for layer, pos, d in objects:
            p = pos + U * k * d
            place(img, layer, float(p[0]), float(p[1]))
        return decimate(img, U, cfg.aa_sigma, E).clamp(0, 1)

    a_img = render(0.0)
    c_img = render(1.0)
    y_img = render(1.0 + alpha)
    if rng.random() < cfg.p_gray:
        a_img, c_img, y_img = (t.mean(0, keepdim=True).expand(3, -1, -1).contiguous()
                               for t in (a_img, c_img, y_img))
    pert = _color_perturbation(rng)
    b_img = _apply_perturbation(c_img, pert)
    yp_img = _apply_perturbation(y_img, pert)
    out = {
        "A": quantize_stochastic(a_img, rng),
        "B": quantize_stochastic(b_img, rng),
        "C": quantize_stochastic(c_img, rng),
        "Y": quantize_stochastic(yp_img, rng),
        "alpha": alpha,
        "subset": subset,
        "motion": {"background": d_bg.tolist(), "objects": [o[2].tolist() for o in objects]},
    }
    return out


def generate_batch(seed: int, split: str | int, indices, cfg: DataConfig | None = None,
                   subset: int | None = None) -> dict[str, torch.Tensor]:
    """Stack samples: ``A``/``B``/``C``/``Y`` (N, 3, S, S), ``alpha`` (N,), ``subset`` (N,).

    ``subset`` forces every sample's scene subset (1..5); None draws it per sample.
    """
    samples = [generate_sample(seed, split, int(i), cfg, subset) for i in indices]
    out = {k: torch.stack([s[k] for s in samples]) for k in ("A", "B", "C", "Y")}
    out["alpha"] = torch.tensor([s["alpha"] for s in samples], dtype=torch.float32)
    out["subset"] = torch.tensor([s["subset"] for s in samples])
    return out


def add_poisson_noise(x: torch.Tensor, generator: torch.Generator,
                      max_strength: float = 0.3) -> torch.Tensor:
    """Oh et al.'s Poisson-like noise on images in [-1, 1]; (N, C, H, W) -> same.

    x' = x + u * n * sqrt(x + 1) / sqrt(127.5), u ~ U(0, max_strength) per image, n ~ N(0, 1).
    At mid-grey the std is at most ~3.4 on the 0-255 scale (digest §1.2).
    """
    u = torch.rand(x.shape[0], 1, 1, 1, generator=generator) * max_strength
    n = torch.randn(x.shape, generator=generator)
    return x + u * n * torch.sqrt((x + 1).clamp(min=0)) / math.sqrt(127.5)
