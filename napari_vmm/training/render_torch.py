"""Batched torch renderer of the synthetic training data (the recipe of :mod:`.data`).

:func:`.data.generate_sample` draws one sample at a time with NumPy on the CPU (~30-45 ms per
128² sample per core), which would leave a GPU waiting. :func:`render_batch` draws a whole
batch of the SAME recipe (:class:`.data.DataConfig`) with torch ops on any device:

- textures: the scikit-image photographs uploaded once as a tensor bank (random crop,
  dihedral view, scale in [0.5, 2] through a 2-level mip bank), fractal 1/f^β noise through
  ``torch.fft``, random shapes, stripes and gradients, all vectorised over the batch;
- foreground objects: star-convex polygons, Fourier blobs, ellipses, rectangles and
  thresholded-noise blobs as masks, filled with textures, premultiplied RGBA;
- per-layer sub-pixel shifts with bicubic ``grid_sample`` at ``upsample``× resolution,
  compositing in layer order, Gaussian anti-aliasing and decimation, blurred backgrounds
  (subset 2), grey samples, colour perturbation and stochastic 8-bit quantisation.

Differences from the CPU generator, all within the recipe's distributions: an object's mask
and texture are drawn on the patch of its radius bucket (3 sizes) rather than on one fitted
to its radius, photographs longer than :data:`BANK_SIDE` pixels are first reduced to fit it,
and the random numbers come from a torch generator, so the two generators never give the same
samples, only samples of the same distribution (``tests/test_render_torch.py`` checks that).
A batch is a pure function of ``(seed, split, step, n, cfg, subset)`` on a given device.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .data import SPLITS, DataConfig, texture_photographs

#: photographs are stored padded to BANK_SIDE² (mip level 0) and half that (level 1)
BANK_SIDE = 512
_BUCKETS = 3  # object patch sizes
#: device types where objects are pasted one slice each (elsewhere: batched index operations)
SLICE_DEVICES = ("cpu",)


class _Draw:
    """Random draws on one device from one torch generator."""

    def __init__(self, gen: torch.Generator, device: torch.device) -> None:
        self.g, self.dev = gen, device

    def u(self, shape, lo=0.0, hi=1.0) -> torch.Tensor:
        """Uniform in [lo, hi) (lo, hi floats or tensors broadcasting to ``shape``)."""
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        return lo + (hi - lo) * torch.rand(shape, generator=self.g, device=self.dev)

    def logu(self, shape, lo, hi) -> torch.Tensor:
        lo, hi = (torch.as_tensor(v, dtype=torch.float32, device=self.dev) for v in (lo, hi))
        return torch.exp(self.u(shape, torch.log(lo), torch.log(hi)))

    def int(self, shape, lo: int, hi: int) -> torch.Tensor:
        """Integers in [lo, hi)."""
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        return torch.randint(lo, hi, shape, generator=self.g, device=self.dev)

    def color(self, m: int) -> torch.Tensor:
        return self.u((m, 3, 1, 1))


def batch_seed(seed: int, split: str | int, step: int) -> int:
    """The 63-bit torch seed of batch ``step`` of ``split`` (disjoint from the CPU stream's)."""
    sid = SPLITS[split] if isinstance(split, str) else int(split)
    ss = np.random.SeedSequence([int(seed), sid, int(step), 0x7E4D])  # tag: torch renderer
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


def scene_draw(seed: int, split: str | int, step: int,
               device: str | torch.device = "cpu") -> _Draw:
    """The random source of batch ``step`` of ``split`` on ``device`` (as :func:`render_batch`)."""
    dev = torch.device(device)
    gen = torch.Generator(device=dev)
    gen.manual_seed(batch_seed(seed, split, step))
    return _Draw(gen, dev)


# ------------------------------------------------------------------------------------------
# per-sample parameters

def _motion(d: _Draw, cfg: DataConfig, alpha: torch.Tensor, k: int) -> torch.Tensor:
    """(n, k, 2) motions (dy, dx), |d| <= min(max_motion, max_magnified / (1 + alpha))."""
    n = alpha.shape[0]
    mmax = (cfg.max_magnified / (1.0 + alpha)).clamp(max=cfg.max_motion)[:, None]
    use_log = (d.u((n, k)) < cfg.p_log_motion) & (mmax > cfg.min_log_motion)
    lo = math.log(cfg.min_log_motion)
    mag_log = torch.exp(lo + d.u((n, k)) * (torch.log(mmax.clamp(min=cfg.min_log_motion)) - lo))
    mag = torch.where(use_log, mag_log, d.u((n, k)) * mmax)
    th = d.u((n, k), 0.0, 2 * math.pi)
    return torch.stack([mag * torch.sin(th), mag * torch.cos(th)], dim=-1)


def sample_scene_params(d: _Draw, n: int, cfg: DataConfig,
                        subset: int | None = None) -> dict[str, torch.Tensor]:
    """Subset, alpha, motions and objects of ``n`` samples, as in :func:`.data.generate_sample`.

    Returns
    -------
    dict of tensors: ``subset`` (n,) int64 1..5, ``alpha`` (n,), ``motion_bg`` (n, 2),
    ``motion_obj`` (n, K, 2), ``n_objects`` (n,) int64, ``obj_valid`` (n, K) bool,
    ``obj_radius`` (n, K) and ``obj_center`` (n, K, 2) in hi-res window pixels, K the
    largest object count.
    """
    S, U = cfg.size, cfg.upsample
    if subset is None:
        w = torch.tensor(cfg.subset_weights, dtype=torch.float32, device=d.dev)
        sub = torch.multinomial(w / w.sum(), n, replacement=True, generator=d.g) + 1
    else:
        sub = torch.full((n,), int(subset), dtype=torch.long, device=d.dev)
    small = d.u(n) < cfg.p_small_alpha
    alpha = torch.where(small, d.u(n, 0.05, cfg.alpha_min),
                        d.logu(n, cfg.alpha_min, cfg.alpha_max))
    moving_bg = (sub <= 3)[:, None].float()
    moving_obj = ((sub <= 2) | (sub == 5))[:, None, None].float()
    scale = (S / 128.0) ** 2
    lo = max(1, int(round(cfg.objects_per_128[0] * scale)))
    hi = max(lo, int(round(cfg.objects_per_128[1] * scale)))
    count = torch.where(sub == 3, 0, d.int(n, lo, hi + 1))
    hs = U * S + 2 * _edge(cfg)
    return {
        "subset": sub, "alpha": alpha,
        "motion_bg": _motion(d, cfg, alpha, 1)[:, 0] * moving_bg,
        "motion_obj": _motion(d, cfg, alpha, hi) * moving_obj,
        "n_objects": count,
        "obj_valid": torch.arange(hi, device=d.dev)[None] < count[:, None],
        "obj_radius": d.u((n, hi), *cfg.object_radius) * S * U,
        "obj_center": d.u((n, hi, 2), -0.5, hs - 0.5),
    }


def _edge(cfg: DataConfig) -> int:
    """Extra hi-res pixels each side for the anti-alias filter (as the CPU generator)."""
    U = cfg.upsample
    return int(math.ceil(3 * cfg.aa_sigma * U)) + 1 if (U > 1 or cfg.aa_sigma > 0) else 0


# ------------------------------------------------------------------------------------------
# textures, each (m, 3, h, w) in [0, 1]

def _grid(h: int, w: int, dev) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.meshgrid(torch.arange(h, dtype=torch.float32, device=dev),
                          torch.arange(w, dtype=torch.float32, device=dev), indexing="ij")


def fractal_noise(d: _Draw, beta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Zero-mean unit-std 1/f^beta noise, (m, h, w) for ``beta`` (m,)."""
    fy = torch.fft.fftfreq(h, device=d.dev)[:, None]
    fx = torch.fft.rfftfreq(w, device=d.dev)[None, :]
    f = torch.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    amp = f[None] ** (-beta[:, None, None] / 2.0)
    amp[:, 0, 0] = 0.0
    spec = torch.polar(amp, d.u(amp.shape, 0.0, 2 * math.pi))
    x = torch.fft.irfft2(spec, s=(h, w))
    x = x - x.mean(dim=(1, 2), keepdim=True)
    return x / (x.std(dim=(1, 2), keepdim=True) + 1e-8)


def _fractal_texture(d: _Draw, m: int, h: int, w: int, bank) -> torch.Tensor:
    beta = d.u(m, 1.2, 3.0)
    indep = d.u(m) < 0.5                  # independent channels, else a two-colour ramp
    mix = d.u((m, 1, 1, 1), 0.2, 1.0)
    amp = d.u((m, 1, 1, 1), 0.1, 0.25)
    k = d.u((m, 1, 1, 1), 0.8, 3.0)
    c0, c1 = d.color(m), d.color(m)
    out = torch.empty(m, 3, h, w, device=d.dev)
    i = torch.nonzero(indep).flatten()
    if i.numel():
        nz = fractal_noise(d, beta[i].repeat_interleave(4), h, w).view(-1, 4, h, w)
        out[i] = 0.5 + amp[i] * (mix[i] * nz[:, 3:] + (1 - mix[i]) * nz[:, :3])
    i = torch.nonzero(~indep).flatten()
    if i.numel():
        t = torch.sigmoid(k[i] * fractal_noise(d, beta[i], h, w)[:, None])
        out[i] = c0[i] * (1 - t) + c1[i] * t
    return out.clamp(0, 1)


def _stripes_texture(d: _Draw, m: int, h: int, w: int, bank) -> torch.Tensor:
    yy, xx = _grid(h, w, d.dev)
    n = d.int((m, 1, 1, 1), 1, 4)
    acc = torch.zeros(m, 3, h, w, device=d.dev)
    col = (m, 1, 1)
    for i in range(3):  # 1..3 gratings: the i-th is drawn for the textures that have it
        th = d.u(col, 0.0, math.pi)
        period = d.logu(col, 4.0, max(8.0, h / 2))
        ph, sq, sharp = d.u(col, 0, 6.3), d.u(col) < 0.4, d.u(col, 3.0, 10.0)
        c0, c1 = d.color(m), d.color(m)
        j = torch.nonzero(n.flatten() > i).flatten()
        if j.numel() == 0:
            continue
        u = (torch.cos(th[j]) * xx + torch.sin(th[j]) * yy) * (2 * math.pi / period[j]) + ph[j]
        s = torch.sin(u)
        s = torch.where(sq[j], torch.tanh(sharp[j] * s), s)
        t = (0.5 + 0.5 * s)[:, None]
        acc[j] += c0[j] * (1 - t) + c1[j] * t
    return (acc / n).clamp(0, 1)


def _gradient_texture(d: _Draw, m: int, h: int, w: int, bank) -> torch.Tensor:
    yy, xx = _grid(h, w, d.dev)
    col = (m, 1, 1)
    c0, c1 = d.color(m), d.color(m)
    th = d.u(col, 0.0, 2 * math.pi)
    lin = torch.cos(th) * xx / w + torch.sin(th) * yy / h
    rad = torch.sqrt((yy - d.u(col, 0, h)) ** 2 + (xx - d.u(col, 0, w)) ** 2) / max(h, w)
    t = torch.where(d.u(col) < 0.5, lin, rad)
    lo, hi = t.amin(dim=(1, 2), keepdim=True), t.amax(dim=(1, 2), keepdim=True)
    t = ((t - lo) / (hi - lo + 1e-8))[:, None]
    img = c0 * (1 - t) + c1 * t
    img = img + 0.03 * fractal_noise(d, torch.full((m,), 2.0, device=d.dev), h, w)[:, None]
    return img.clamp(0, 1)


def shape_masks(d: _Draw, h: int, w: int, cy: torch.Tensor, cx: torch.Tensor,
                r: torch.Tensor) -> torch.Tensor:
    """Boolean masks (m, h, w) of random polygons, blobs, ellipses or rectangles of radius ``r``
    centred at (``cy``, ``cx``) (each (m,), pixels), as :func:`.data._shape_mask`."""
    m = r.shape[0]
    yy, xx = _grid(h, w, d.dev)
    dy, dx = yy - cy[:, None, None], xx - cx[:, None, None]
    dist = torch.sqrt(dx * dx + dy * dy)
    kind = d.int(m, 0, 4)
    col = (m, 1, 1)
    # all parameters are drawn for every mask (a fixed draw order), then used by kind
    nv = d.int(m, 3, 12)
    ang = torch.where(torch.arange(11, device=d.dev)[None] < nv[:, None],
                      d.u((m, 11), 0.0, 2 * math.pi), 10.0).sort(dim=1).values
    rad = r[:, None] * d.u((m, 11), 0.35, 1.0)
    px, py = rad * torch.cos(ang), rad * torch.sin(ang)
    k = torch.arange(1, 5, device=d.dev, dtype=torch.float32)
    coef, phase = d.u((m, 4)) * (0.25 / k), d.u((m, 4), 0.0, 6.3)  # harmonic k = 1..4
    rth = d.u(col, 0.0, math.pi)
    ea, eb = r[:, None, None], r[:, None, None] * d.u(col, 0.3, 1.0)
    ra, rb = r[:, None, None] * d.u(col, 0.5, 1.0), r[:, None, None] * d.u(col, 0.2, 1.0)
    out = torch.zeros(m, h, w, dtype=torch.bool, device=d.dev)
    for kd in range(4):
        idx = torch.nonzero(kind == kd).flatten()
        if idx.numel() == 0:
            continue
        ddy, ddx, dd = dy[idx], dx[idx], dist[idx]
        if kd == 0:  # star-convex polygon: the ray through the pixel meets edge j -> i
            th = torch.remainder(torch.atan2(ddy, ddx), 2 * math.pi)
            mi = idx.numel()
            i = torch.searchsorted(ang[idx].contiguous(), th.reshape(mi, -1))
            i = torch.remainder(i, nv[idx, None])
            j = torch.remainder(i - 1, nv[idx, None])
            ax, ay = px[idx].gather(1, j), py[idx].gather(1, j)
            bx, by = px[idx].gather(1, i), py[idx].gather(1, i)
            inv = 1.0 / dd.clamp(min=1e-6)                     # ray direction (cos, sin)
            ct, st = (ddx * inv).reshape(mi, -1), (ddy * inv).reshape(mi, -1)
            num = ax * by - ay * bx
            den = ct * (by - ay) - st * (bx - ax)
            ok = den.abs() > 1e-9
            t = torch.where(ok, num / torch.where(ok, den, 1.0), r[idx, None])
            res = dd <= t.abs().view(mi, h, w)
        elif kd == 1:  # smooth blob: low-order Fourier radius
            c1, s1 = ddx / dd.clamp(min=1e-6), ddy / dd.clamp(min=1e-6)  # cos, sin theta
            ck, sk = c1, s1
            rr = torch.ones_like(dd)
            for j in range(4):  # cos(k th + ph) = cos k th cos ph - sin k th sin ph
                cp, sp = torch.cos(phase[idx, j]), torch.sin(phase[idx, j])
                rr += coef[idx, j, None, None] * (ck * cp[:, None, None] - sk * sp[:, None, None])
                ck, sk = ck * c1 - sk * s1, sk * c1 + ck * s1
            res = dd <= r[idx, None, None] * 0.8 * rr
        else:  # rotated ellipse (2) or rectangle (3)
            c, s = torch.cos(rth[idx]), torch.sin(rth[idx])
            u, v = c * ddx + s * ddy, -s * ddx + c * ddy
            if kd == 2:
                res = (u / ea[idx]) ** 2 + (v / eb[idx]) ** 2 <= 1
            else:
                res = (u.abs() <= ra[idx]) & (v.abs() <= rb[idx])
        out[idx] = res
    return out


def _shapes_texture(d: _Draw, m: int, h: int, w: int, bank) -> torch.Tensor:
    T = 29                                # up to 29 shapes per texture
    n = d.int((m, 1), 8, 30)
    r = d.u((m, T), 0.03, 0.25) * min(h, w)
    cy, cx = d.u((m, T), -r, h + r), d.u((m, T), -r, w + r)
    colors = torch.cat([d.u((m, 1, 3)), d.u((m, T, 3))], dim=1)       # background, shapes
    # opaque shapes drawn in order: a pixel shows the last shape that covers it (label t + 1)
    label = torch.zeros(m * h * w + 1, dtype=torch.long, device=d.dev)
    t = torch.arange(1, T + 1, device=d.dev).expand(m, T)
    present = t <= n
    for rmin, rmax in ((0.0, 0.07), (0.07, 0.11), (0.11, 0.17), (0.17, 0.25)):  # size buckets
        sel = present & (r > rmin * min(h, w)) & (r <= rmax * min(h, w))
        B = 2 * int(math.ceil(rmax * min(h, w))) + 4   # patch side > 2 × radius
        i, j = torch.nonzero(sel, as_tuple=True)
        if i.numel() == 0:
            continue
        iy, ix = torch.floor(cy[i, j]).long() - B // 2, torch.floor(cx[i, j]).long() - B // 2
        mask = shape_masks(d, B, B, cy[i, j] - iy, cx[i, j] - ix, r[i, j])
        ar = torch.arange(B, device=d.dev)
        rows, cols = iy[:, None] + ar, ix[:, None] + ar                # (v, B)
        ok = (mask & ((rows >= 0) & (rows < h))[:, :, None]
              & ((cols >= 0) & (cols < w))[:, None, :])
        idx = i[:, None, None] * (h * w) + rows[:, :, None] * w + cols[:, None, :]
        label.scatter_reduce_(0, torch.where(ok, idx, m * h * w).reshape(-1),
                              (ok * t[i, j, None, None]).reshape(-1), "amax")
    img = colors.gather(1, label[:-1].view(m, h * w, 1).expand(-1, -1, 3))
    return img.transpose(1, 2).reshape(m, 3, h, w)


@lru_cache(maxsize=4)
def photo_bank(device: str) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The photographs on ``device``: 2 mip levels of (P, 3, L, L) float32 (L = BANK_SIDE,
    then L/2), each image at the top-left, reflect-extended to fill L², and their (P, 2)
    (height, width). Empty (P = 0) without scikit-image."""
    levels, sizes = [], []
    ims = texture_photographs()
    for lev in range(2):
        L = BANK_SIDE >> lev
        bank = np.zeros((len(ims), 3, L, L), np.float32)
        hw = np.zeros((len(ims), 2), np.float32)
        for i, im in enumerate(ims):
            t = torch.from_numpy(im).permute(2, 0, 1)[None]
            f = min(1.0, BANK_SIDE / max(t.shape[-2:])) / (1 << lev)
            if f < 1:
                size = [max(1, round(s * f)) for s in t.shape[-2:]]
                t = F.interpolate(t, size=size, mode="bilinear", antialias=True,
                                  align_corners=False)
            a = t[0].numpy()
            hw[i] = a.shape[1:]
            bank[i] = np.pad(a, ((0, 0), (0, L - a.shape[1]), (0, L - a.shape[2])),
                             mode="symmetric")
        levels.append(torch.from_numpy(bank).to(device))
        sizes.append(torch.from_numpy(hw).to(device))
    return levels, sizes


def _dihedral_rows(x: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Per-row symmetry of square images (m, c, s, s) in place: bit 4 transposes, 1 and 2
    flip (as :func:`.train.dihedral`)."""
    for bit, op in ((4, lambda v: v.transpose(-2, -1)), (1, lambda v: v.flip(-1)),
                    (2, lambda v: v.flip(-2))):
        idx = torch.nonzero(bits & bit).flatten()
        if idx.numel():
            x[idx] = op(x[idx])
    return x


def _image_texture(d: _Draw, m: int, h: int, w: int, bank) -> torch.Tensor:
    levels, sizes = bank
    if not levels or levels[0].shape[0] == 0:
        return _fractal_texture(d, m, h, w, bank)
    img = d.int(m, 0, levels[0].shape[0])
    sym = d.int(m, 0, 8)
    s = d.logu(m, 0.5, 2.0)              # output pixels per source pixel
    lev = (s < 1).long()                 # down-scaling samples the half-size level
    se = torch.where(lev > 0, 2 * s, s)  # scale on that level: in [1, 2)
    hw = torch.where(lev[:, None] > 0, sizes[1][img], sizes[0][img])
    y0 = d.u(m) * (hw[:, 0] - h / se).abs()
    x0 = d.u(m) * (hw[:, 1] - w / se).abs()
    ys = y0[:, None] + (torch.arange(h, device=d.dev) + 0.5) / se[:, None] - 0.5
    xs = x0[:, None] + (torch.arange(w, device=d.dev) + 0.5) / se[:, None] - 0.5

    def reflect(v: torch.Tensor, n: torch.Tensor) -> torch.Tensor:  # half-sample symmetric
        t = torch.remainder(v + 0.5, 2 * n)
        return torch.where(t > n, 2 * n - t, t) - 0.5

    ys, xs = reflect(ys, hw[:, :1]), reflect(xs, hw[:, 1:])
    out = torch.empty(m, 3, h, w, device=d.dev)
    for lv in range(2):
        L = BANK_SIDE >> lv
        for i in torch.unique(img[lev == lv]).tolist():
            rows = torch.nonzero((img == i) & (lev == lv)).flatten()
            gy = (2 * (ys[rows] + 0.5) / L - 1)[:, :, None].expand(-1, h, w)
            gx = (2 * (xs[rows] + 0.5) / L - 1)[:, None, :].expand(-1, h, w)
            grid = torch.stack([gx, gy], dim=-1).reshape(1, -1, w, 2)
            res = F.grid_sample(levels[lv][i:i + 1], grid, mode="bicubic",
                                padding_mode="border", align_corners=False)
            out[rows] = res.view(3, rows.numel(), h, w).transpose(0, 1)
    return _dihedral_rows(out.clamp(0, 1), sym)


_TEXTURES = {"image": _image_texture, "fractal": _fractal_texture, "shapes": _shapes_texture,
             "stripes": _stripes_texture, "gradient": _gradient_texture}


def random_textures(d: _Draw, m: int, h: int, w: int, weights: dict[str, float],
                    bank) -> torch.Tensor:
    """``m`` textures (m, 3, h, w) in [0, 1], kinds drawn by ``weights`` (as
    :func:`.data.random_texture`; ``bank``: :func:`photo_bank`)."""
    kinds = list(weights)
    p = torch.tensor([float(weights[k]) for k in kinds], device=d.dev)
    kind = torch.multinomial(p / p.sum(), m, replacement=True, generator=d.g)
    out = torch.empty(m, 3, h, w, device=d.dev)
    for ki, name in enumerate(kinds):
        idx = torch.nonzero(kind == ki).flatten()
        if idx.numel():
            out[idx] = _TEXTURES[name](d, idx.numel(), h, w, bank)
    return out


# ------------------------------------------------------------------------------------------
# objects, shifts, compositing

def _objects(d: _Draw, radius: torch.Tensor, P: int, cfg: DataConfig, bank) -> torch.Tensor:
    """Premultiplied RGBA objects (m, 4, P, P) of radii ``radius`` (m,), centred."""
    m = radius.shape[0]
    c = torch.full((m,), (P - 1) / 2.0, device=d.dev)
    shape = shape_masks(d, P, P, c, c, radius)
    yy, xx = _grid(P, P, d.dev)
    dist = torch.sqrt((yy - c[0]) ** 2 + (xx - c[0]) ** 2)[None] / radius[:, None, None]
    nz = fractal_noise(d, d.u(m, 2.5, 3.5), P, P)
    blob = ((nz - 2.0 * dist ** 2) > -1.0).float() * (dist <= 1)
    mask = torch.where(d.u((m, 1, 1)) < 0.75, shape.float(), blob)
    small = mask.sum(dim=(1, 2)) < 4
    mask = torch.where(small[:, None, None], (dist <= 1).float(), mask)[:, None]
    tex = random_textures(d, m, P, P, cfg.texture_weights, bank)
    return torch.cat([tex * mask, mask], dim=1)


def _blur_rows(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Gaussian blur of each image of (m, c, H, W) by its own sigma (m,), reflect edges."""
    m, c, H, W = x.shape
    r = int(math.ceil(3 * float(sigma.max())))
    t = torch.arange(-r, r + 1, dtype=torch.float32, device=x.device)
    k = torch.exp(-0.5 * (t[None] / sigma[:, None]) ** 2)
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, dim=0)
    y = F.pad(x.reshape(1, m * c, H, W), (r, r, r, r), mode="reflect")
    y = F.conv2d(y, k.view(m * c, 1, -1, 1), groups=m * c)
    y = F.conv2d(y, k.view(m * c, 1, 1, -1), groups=m * c)
    return y.view(m, c, H, W)


def _decimate(x: torch.Tensor, U: int, sigma_dst: float, E: int) -> torch.Tensor:
    """Gaussian anti-alias and decimate (m, c, U·S + 2E, ·) -> (m, c, S, S), as the CPU
    generator (same taps and phase)."""
    H = x.shape[-1]
    if U == 1 and sigma_dst <= 0:
        return x[..., E:H - E, E:H - E]
    L = 2 * E + U
    t = torch.arange(L, dtype=torch.float32, device=x.device) - (L - 1) / 2.0
    k = torch.exp(-0.5 * (t / max(sigma_dst * U, 1e-3)) ** 2)
    k = k / k.sum()
    S = (H - L) // U + 1
    D = x.new_zeros(S, H)                                # D[i, U·i + j] = k[j]
    cols = U * torch.arange(S, device=x.device)[:, None] + torch.arange(L, device=x.device)
    D.scatter_(1, cols, k.expand(S, L).contiguous())
    prec = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")  # no TF32: sub-level changes must survive
    try:
        return D @ (x @ D.T)             # banded products: BLAS beats strided convolutions
    finally:
        torch.set_float32_matmul_precision(prec)


def _shifted(src: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor, h: int, w: int,
             padding: str) -> torch.Tensor:
    """Bicubic windows of ``src`` (m, c, Hs, Ws): window f of row i has pixel (0, 0) at
    source position (oy[f, i], ox[f, i]); (F, m) offsets -> (F, m, c, h, w)."""
    nf, m = oy.shape
    Hs, Ws = src.shape[-2:]
    ar_y = torch.arange(h, dtype=torch.float32, device=src.device)
    ar_x = torch.arange(w, dtype=torch.float32, device=src.device)
    gy = 2 * (oy.T[:, :, None] + ar_y) / (Hs - 1) - 1            # (m, F, h)
    gx = 2 * (ox.T[:, :, None] + ar_x) / (Ws - 1) - 1            # (m, F, w)
    grid = torch.stack([gx[:, :, None, :].expand(-1, -1, h, -1),
                        gy[:, :, :, None].expand(-1, -1, -1, w)], dim=-1)
    out = F.grid_sample(src, grid.reshape(m, nf * h, w, 2), mode="bicubic",
                        padding_mode=padding, align_corners=True)
    return out.view(m, -1, nf, h, w).permute(2, 0, 1, 3, 4)


def _composite(flat: torch.Tensor, layer: torch.Tensor, row: torch.Tensor, iy: torch.Tensor,
               ix: torch.Tensor, H: int, W: int) -> None:
    """Premultiplied layers (m, C + 1, q, q) over canvases, in place.

    ``flat`` (M·H·W + 1, C) holds M canvases of H×W, channels last; layer i goes onto canvas
    ``row[i]`` with its top-left pixel at integer (iy[i], ix[i]) (each (m,)). The last row
    takes every write outside the canvases. The m layers must go onto distinct canvases.
    """
    c1, q = layer.shape[1], layer.shape[-1]
    ar = torch.arange(q, device=flat.device)
    rows, cols = iy[:, None] + ar, ix[:, None] + ar                   # (m, q)
    inside = ((rows >= 0) & (rows < H))[:, :, None] & ((cols >= 0) & (cols < W))[:, None, :]
    idx = row[:, None, None] * (H * W) + rows[:, :, None] * W + cols[:, None, :]
    idx = torch.where(inside, idx, flat.shape[0] - 1).reshape(-1)
    lay = (layer * inside[:, None]).permute(0, 2, 3, 1).reshape(-1, c1)
    flat.index_add_(0, idx, lay[:, :-1] - lay[:, -1:] * flat.index_select(0, idx))


def _paste(canvas: torch.Tensor, layer: torch.Tensor, y0: int, x0: int) -> None:
    """Premultiplied ``layer`` (C + 1, q, q) over ``canvas`` (C, H, W) at (y0, x0), in place."""
    H, W = canvas.shape[1:]
    q = layer.shape[-1]
    cy0, cx0, cy1, cx1 = max(0, y0), max(0, x0), min(H, y0 + q), min(W, x0 + q)
    if cy1 > cy0 and cx1 > cx0:
        lay = layer[:, cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
        canvas[:, cy0:cy1, cx0:cx1].mul_(1 - lay[-1:]).add_(lay[:-1])


def _place_objects(d: _Draw, frames: torch.Tensor, p: dict[str, torch.Tensor],
                   vi: torch.Tensor, k: torch.Tensor, cfg: DataConfig, bank) -> torch.Tensor:
    """Draw the present objects ``vi`` (indices into the (n, K) slots) and composite them,
    moved by k × their motion, over the windows ``frames`` (3n, 3, hs, hs), slot 0 first.
    Objects are drawn on patches of 3 sizes (radius buckets) to save pixels."""
    n, K = p["obj_valid"].shape
    U, hs = cfg.upsample, frames.shape[-1]
    r0, r1 = (v * cfg.size * U for v in cfg.object_radius)
    radius = p["obj_radius"].reshape(-1)[vi]
    bucket = ((radius - r0) / max(r1 - r0, 1e-6) * _BUCKETS).long().clamp(0, _BUCKETS - 1)
    layers = []
    for bk in range(_BUCKETS):
        mem = vi[bucket == bk]
        if mem.numel() == 0:
            continue
        P = 2 * int(math.ceil(r0 + (bk + 1) * (r1 - r0) / _BUCKETS)) + 8
        obj = _objects(d, radius[bucket == bk], P, cfg, bank)                  # (V, 4, P, P)
        smp = mem // K
        tl = p["obj_center"].reshape(-1, 2)[mem] - (P - 1) / 2.0 \
            + U * k[:, smp, None] * p["motion_obj"].reshape(-1, 2)[mem]        # (3, V, 2)
        itl = torch.floor(tl)
        frac = tl - itl                  # moved layer pixel (r, c) is source (r - fy, c - fx)
        moved = _shifted(obj, -frac[..., 0], -frac[..., 1], P + 1, P + 1, "zeros")
        a = moved[:, :, 3:].clamp_(0, 1)
        torch.minimum(moved[:, :, :3].clamp_(min=0), a, out=moved[:, :, :3])
        layers.append((moved, itl.long(), smp, mem % K))
    if d.dev.type in SLICE_DEVICES:  # one slice per layer: cheaper than indexing on a CPU
        canvas = frames.contiguous()
        for j in range(K):
            for moved, itl, smp, slot in layers:
                pos, smp_l = itl.tolist(), smp.tolist()
                for v in torch.nonzero(slot == j).flatten().tolist():
                    for f in range(3):
                        _paste(canvas[f * n + smp_l[v]], moved[f, v], *pos[f][v])
        return canvas
    flat = torch.cat([frames.permute(0, 2, 3, 1).reshape(-1, 3), frames.new_zeros(1, 3)])
    for j in range(K):
        for moved, itl, smp, slot in layers:  # one object per (sample, slot): no overlap
            sel = torch.nonzero(slot == j).flatten()
            if sel.numel() == 0:
                continue
            row = (torch.arange(3, device=d.dev)[:, None] * n + smp[sel]).reshape(-1)
            _composite(flat, moved[:, sel].flatten(0, 1), row, itl[:, sel, 0].reshape(-1),
                       itl[:, sel, 1].reshape(-1), hs, hs)
    return flat[:-1].view(3 * n, hs, hs, 3).permute(0, 3, 1, 2)


def render_batch(seed: int, split: str | int, step: int, n: int, cfg: DataConfig | None = None,
                 device: str | torch.device = "cpu",
                 subset: int | None = None) -> dict[str, torch.Tensor]:
    """Batch ``step`` of ``n`` training tuples rendered on ``device``.

    A pure function of ``(seed, split, step, n, cfg, subset)`` on a given device.

    Returns
    -------
    dict of tensors on ``device``: ``A``, ``B``, ``C``, ``Y`` (n, 3, S, S) float32 in [0, 1] on
    8-bit levels (keys as :func:`.data.generate_batch`), ``alpha`` (n,), ``subset`` (n,),
    ``motion_bg`` (n, 2) and ``motion_obj`` (n, K, 2) in output pixels (dy, dx), zero for
    static layers, ``n_objects`` (n,) (objects k >= n_objects[i] are absent).
    """
    cfg = cfg or DataConfig()
    d = scene_draw(seed, split, step, device)
    dev = d.dev
    bank = photo_bank(str(dev)) if cfg.texture_weights.get("image", 0) > 0 else ([], [])
    S, U, E = cfg.size, cfg.upsample, _edge(cfg)
    hs = U * S + 2 * E
    margin = int(math.ceil(U * cfg.max_magnified)) + 4
    Hc = hs + 2 * margin
    p = sample_scene_params(d, n, cfg, subset)
    alpha = p["alpha"]
    k = torch.stack([torch.zeros_like(alpha), torch.ones_like(alpha), 1 + alpha])  # (3, n)

    bg = random_textures(d, n, Hc, Hc, cfg.texture_weights, bank)
    sig = d.u(n, 1.5, 5.0) * U
    blur = torch.nonzero(p["subset"] == 2).flatten()
    if blur.numel():
        bg[blur] = _blur_rows(bg[blur], sig[blur])
    # windows: A, and every frame of a static background, sit at integer offsets (a copy);
    # the moving backgrounds' C and Y windows are resampled (bicubic)
    frames = bg[:, :, margin:margin + hs, margin:margin + hs].repeat(3, 1, 1, 1)
    mv = torch.nonzero(p["motion_bg"].abs().amax(1) > 0).flatten()
    if mv.numel():
        off = margin - U * k[1:, mv, None] * p["motion_bg"][None, mv]           # (2, m, 2)
        win = _shifted(bg[mv], off[..., 0], off[..., 1], hs, hs, "border")      # (2, m, ...)
        frames[n + mv], frames[2 * n + mv] = win[0], win[1]

    vi = torch.nonzero(p["obj_valid"].reshape(-1)).flatten()   # present objects, (V,)
    if vi.numel():
        frames = _place_objects(d, frames, p, vi, k, cfg, bank)
    frames = _decimate(frames, U, cfg.aa_sigma, E).clamp(0, 1).view(3, n, 3, S, S)

    gray = (d.u(n) < cfg.p_gray)[None, :, None, None, None]
    frames = torch.where(gray, frames.mean(2, keepdim=True).expand_as(frames), frames)
    col = (n, 1, 1, 1)
    gamma, gain = d.logu(col, 0.7, 1.4), d.u((n, 3, 1, 1), 0.7, 1.3)
    offset, sat = d.u((n, 3, 1, 1), -0.1, 0.1), d.u(col, 0.6, 1.4)
    pert = frames[1:].clamp(0, 1) ** gamma
    g = pert.mean(2, keepdim=True)
    pert = ((g + sat * (pert - g)) * gain + offset).clamp(0, 1)
    out = torch.stack([frames[0], pert[0], frames[1], pert[1]])                # A, B, C, Y
    out = (torch.round(out * 255.0 + d.u(out.shape, -0.5, 0.5)).clamp(0, 255)) / 255.0
    res = dict(zip(("A", "B", "C", "Y"), out.unbind(0), strict=True))
    res.update({key: p[key] for key in ("alpha", "subset", "motion_bg", "motion_obj",
                                        "n_objects")})
    return res


def recipe(device: str | torch.device) -> dict[str, Any]:
    """What a provenance records about this renderer."""
    return {"generator": "napari_vmm.training.render_torch.render_batch",
            "renderer": "torch", "render_device": str(torch.device(device)),
            "photo_bank_side": BANK_SIDE}
