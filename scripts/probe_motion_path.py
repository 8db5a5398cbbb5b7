"""Probe a learned model's motion path: does its change follow α, and does it need motion?

    .venv/bin/python scripts/probe_motion_path.py MODEL[:manipulator] [--weights PATH.pt]
                                                 [--samples 8] [--size 64]

On the first ``--samples`` validation samples (the training data's val split), with the
plain two-frame pass ``net(A, B, k·α)`` (no decoding twice):

- ``still``: mean |net(B, B, α) − net(B, B, 0)|, the change on a scene that does not move
  (0 for a manipulator where zero motion is a fixed point);
- for k = 0.1, 1, 2: the change d = net(A, B, k·α) − net(A, B, 0), its mean size, and at
  k = 1 ``gain`` = ⟨d, t⟩ / |t|² and ``corr`` = ⟨d, t⟩ / (|d| |t|) against the target's change
  t = Y − B (the validation's motion_gain and motion_corr). A magnifier's change grows
  ~10× from k = 0.1 to 1 and 2× from 1 to 2;
- per top-level module: how much its output changes from k = 0.1 to k = 1 (10.0 is linear;
  a ratio that falls along the network shows where the change saturates), and its change at
  k = 1 over its output at k = 0 (mean absolute values; a share that falls along the network
  shows where the change is drowned);
- on the thesis protocol's discs (three discs of 21 px on a test texture, 128 px) for input
  motions of 0.05, 0.2 and 1 px, the gain and the share of the requested displacement the
  output looks moved by (the evaluation's estimator): a network with a dead zone for
  sub-pixel motions magnifies the 1 px step and leaves the others; one that draws a faint
  ghost at the target's place has a gain and no displacement (docs/training_log.md);
- on a whole test texture translated by the same steps (exact Fourier shifts, 64 px): the
  gain, which tells a dead zone for sub-pixel motion from one for flat discs' edges.

``MODEL:linear`` builds the network with the project's linear manipulator and loads the same
weights (docs/training_log.md, "Why five thesis models do not magnify").
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from napari_vmm.core.learned import weights as W
from napari_vmm.core.learned.table import build_model
from napari_vmm.training.data import DataConfig, generate_batch, random_texture
from napari_vmm.training.evaluate import circles_clip, disc_mask
from napari_vmm.training.gain import MotionFamily, motion_grid, swept_region
from napari_vmm.training.train import to_net

#: (input motion in px, alpha) of the disc probe: 1, 10 and 5 px of output motion
DISC_STEPS = ((0.05, 20.0), (0.2, 49.5), (1.0, 4.0))


def change_and_gain(pair, xa: torch.Tensor, xb: torch.Tensor, y: torch.Tensor,
                    alpha: float) -> tuple[torch.Tensor, float]:
    """The change d = pair(A, B, α) − pair(A, B, 0) and its gain ⟨d, t⟩ / |t|² against the
    target's change t = Y − B (frames (1, 3, H, W) in [−1, 1])."""
    with torch.no_grad():
        d = pair(xa, xb, torch.tensor([alpha])) - pair(xa, xb, torch.zeros(1))
    t = y - xb
    return d, float((d * t).sum() / (t * t).sum())


def disc_gains(pair, size: int = 128) -> list[tuple[float, float]]:
    """On discs moved by each of DISC_STEPS: the gain ⟨d, t⟩ / |t|² of ``pair(A, B, α)``, and
    the share of the requested displacement the output looks moved by (the evaluation's
    estimator, :class:`~napari_vmm.training.gain.MotionFamily`): a faint copy of the discs
    at the target's place (a ghost) has a gain but no displacement."""
    rng = np.random.default_rng(1)
    background = random_texture(rng, size, size).transpose(1, 2, 0)
    colours = rng.uniform(0, 1, (3, 3))
    centres = np.array([[0.3, 0.3], [0.3, 0.7], [0.7, 0.5]]) * size
    directions = np.array([[0.0, 1.0], [1.0, 0.0], [np.sqrt(0.5), np.sqrt(0.5)]])
    radius = size / 6
    discs = disc_mask(size, centres, radius)
    results = []
    for step, alpha in DISC_STEPS:
        def render(c: np.ndarray, step: float = step) -> np.ndarray:
            return circles_clip(background, colours, centres, directions, radius, c * step)

        clip = render(np.array([0.0, 1.0, 1.0 + alpha]))
        xa, xb, y = torch.from_numpy(clip).permute(0, 3, 1, 2)[:, None] * 2 - 1
        d, gain = change_and_gain(pair, xa, xb, y, alpha)
        top = 1.5 * (1 + alpha)
        family = MotionFamily(lambda c, render=render: render(np.array([c]))[0],
                              motion_grid(step, top), swept_region(discs, top, step))
        out = ((xb + d)[0].permute(1, 2, 0).numpy() + 1) / 2
        moved = (float(family.positions(out[None])[0]) - 1.0) / alpha
        results.append((gain, moved))
    return results


def texture_gains(pair, size: int = 64) -> list[float]:
    """The gain ⟨d, t⟩ / |t|² of ``pair(A, B, α)`` on a test texture translated by each of
    DISC_STEPS (frames 0, step and (1 + α)·step; periodic Fourier shifts, so exact)."""
    texture = random_texture(np.random.default_rng(3), size, size)  # (3, S, S)
    spectrum = np.fft.fft2(texture)
    fy = np.fft.fftfreq(size)[:, None]
    gains = []
    for step, alpha in DISC_STEPS:
        frames = [np.fft.ifft2(spectrum * np.exp(-2j * np.pi * fy * s)).real
                  for s in (0.0, step, (1 + alpha) * step)]
        xa, xb, y = (torch.from_numpy(f.astype(np.float32))[None] * 2 - 1 for f in frames)
        gains.append(change_and_gain(pair, xa, xb, y, alpha)[1])
    return gains


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="MODEL or MODEL:linear")
    ap.add_argument("--weights", default=None, help="a .pt with its .json (default: shipped)")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(1)
    name, _, manipulator = args.model.partition(":")
    state, prov = W.load_weights(name, args.weights)
    arch = {k: v for k, v in (prov.get("arch") or {}).items() if k != "decode_twice"}
    if manipulator:
        arch["manipulator"] = manipulator
    net = build_model(name, **arch)
    net.load_state_dict(state)
    net.eval()
    pair = net.pair  # the plain two-frame pass (never decoded twice)

    b = generate_batch(0, "val", list(range(args.samples)), DataConfig(size=args.size))
    xa, xb, y = (to_net(b[k]) for k in ("A", "B", "Y"))
    alpha, t = b["alpha"], y - xb
    outputs: dict[str, list[torch.Tensor]] = {}
    hooks = [m.register_forward_hook(
        lambda _m, _i, o, n=n: outputs.setdefault(n, []).append(o) if torch.is_tensor(o)
        else None) for n, m in net.named_children()]
    with torch.no_grad():
        still = pair(xb, xb, alpha) - pair(xb, xb, torch.zeros_like(alpha))
        outputs.clear()
        base = pair(xa, xb, torch.zeros_like(alpha))
        print(f"{args.model}: still-scene change {float(still.abs().mean()):.2e}; "
              f"target change {float(t.abs().mean()):.3f}")
        for k in (0.1, 1.0, 2.0):
            d = pair(xa, xb, k * alpha) - base
            line = f"  k={k:<4} change {float(d.abs().mean()):.2e}"
            if k == 1.0:
                dot = float((d * t).sum())
                line += (f"  gain {dot / float((t * t).sum()):+.3f}"
                         f"  corr {dot / float(d.norm() * t.norm()):+.3f}")
            print(line)
    for h in hooks:
        h.remove()
    ratios, shares = [], []
    for n, outs in outputs.items():
        if len(outs) == 4:  # k = 0, 0.1, 1, 2
            small, one = (outs[i] - outs[0] for i in (1, 2))
            if float(small.norm()) > 0:
                ratios.append(f"{n} {float(one.norm() / small.norm()):.1f}")
                shares.append(f"{n} {float(one.abs().mean() / outs[0].abs().mean()):.1e}")
    print("  change from k=0.1 to k=1 by module:", ", ".join(ratios))
    print("  change at k=1 over the output at k=0, by module:", ", ".join(shares))
    print("  discs, gain / share of the displacement:", ", ".join(
        f"{s:g} px x{1 + a:g} {g:+.3f} / {m:+.2f}"
        for (s, a), (g, m) in zip(DISC_STEPS, disc_gains(pair), strict=True)))
    print("  texture shift, gain:", ", ".join(
        f"{s:g} px x{1 + a:g} {g:+.3f}"
        for (s, a), g in zip(DISC_STEPS, texture_gains(pair), strict=True)))


if __name__ == "__main__":
    main()
