"""Does σ-θ Net's manipulator carry a disc's displacement? A linear read-out test.

    .venv/bin/python scripts/probe_sigma_theta_features.py --weights PATH.pt [--scenes 10]

σ-θ Net's decoder sees the manipulated features through its fusion convs. This script
takes the change of their input, X(α) − X(0): 8 channels of the summed M (2 per pyramid
level) and the 72 of the bands kept per direction (the ``riesz-directions`` form's second
conv), on discs moved as in the thesis protocol (three discs of S/6 radius on a test
texture, random directions, the probe's steps), and fits a ridge regression from a 3×3
window of it (dilation 4) to the target's change Y − B (gray). It reports the R² on
held-out scenes for each group of channels, and for the summed channels padded with as
many noise columns as the bands have (the control for the extra columns). A group from
which the target's change is not linearly readable leaves the decoder to find the
displacement elsewhere.

It needs weights of the ``riesz-pyramid`` or ``riesz-directions`` form; the summed channels
are read at the pyramid's four levels either way (docs/training_log.md, "σ-θ Net's
directions").
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from napari_vmm.core.learned import weights as W
from napari_vmm.core.learned.table import build_model
from napari_vmm.core.learned.thesis import SIGMA_THETA_BAND_FORMS
from napari_vmm.training.data import random_texture
from napari_vmm.training.evaluate import circles_clip

#: (input motion in px, alpha) as in scripts/probe_motion_path.py
STEPS = ((0.2, 49.5), (0.05, 20.0), (1.0, 4.0))
OFFSETS = tuple((dy, dx) for dy in (-4, 0, 4) for dx in (-4, 0, 4))
SUMMED = 8  # 2 channels × 4 levels, first in the fusion input


def fusion_input_change(net, seed: int, step: float, alpha: float, size: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(windowed change of the fusion input at pixels near the discs (P, C·9), target (P,))."""
    captured = {}
    hooks = [layer.register_forward_pre_hook(lambda _m, i, k=k: captured.update({k: i[0]}))
             for k, layer in (("summed", net.fuse), ("bands", net.fuse_bands))]

    def fusion_input() -> torch.Tensor:
        return torch.cat([captured["summed"], captured["bands"]], 1)

    rng = np.random.default_rng(seed)
    background = random_texture(rng, size, size).transpose(1, 2, 0)
    colours = rng.uniform(0, 1, (3, 3))
    centres = rng.uniform(0.3, 0.7, (3, 2)) * size
    angle = rng.uniform(0, 2 * np.pi, 3)
    directions = np.stack([np.cos(angle), np.sin(angle)], 1)
    clip = circles_clip(background, colours, centres, directions, size / 6,
                        np.array([0.0, 1.0, 1.0 + alpha]) * step)
    xa, xb, y = torch.from_numpy(clip).permute(0, 3, 1, 2)[:, None] * 2 - 1
    with torch.no_grad():
        net.manipulate(xa, xb, torch.tensor([alpha]))
        moved = fusion_input()
        net.manipulate(xa, xb, torch.tensor([0.0]))
        change = (moved - fusion_input())[0]
    for hook in hooks:
        hook.remove()
    target = (y - xb)[0].mean(0)
    window = torch.cat([torch.roll(change, o, (1, 2)) for o in OFFSETS])
    near = (target.abs() > 0.02) | torch.from_numpy(rng.uniform(size=(size, size)) < 0.05)
    near[:8], near[-8:], near[:, :8], near[:, -8:] = False, False, False, False
    return window[:, near].T.double().numpy(), target[near].double().numpy()


def ridge_r2(x: np.ndarray, y: np.ndarray, xt: np.ndarray, yt: np.ndarray,
             lam: float = 10.0) -> float:
    """Held-out R² of a ridge regression on standardised columns."""
    mu, sd = x.mean(0), x.std(0) + 1e-9
    a, at = (x - mu) / sd, (xt - mu) / sd
    w = np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ (y - y.mean()))
    pred = at @ w + y.mean()
    return float(1 - ((yt - pred) ** 2).sum() / ((yt - yt.mean()) ** 2).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", required=True, help="σ-θ Net weights (.pt with its .json)")
    ap.add_argument("--scenes", type=int, default=10, help="training scenes (4 held out)")
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args()
    torch.set_num_threads(1)
    state, prov = W.load_weights("sigma_theta", args.weights)
    form = (prov.get("arch") or {}).get("manipulator")
    if form not in ("riesz-pyramid", *SIGMA_THETA_BAND_FORMS):
        raise SystemExit("needs riesz-pyramid, riesz-directions or riesz-readout weights, "
                         f"not {form!r}")
    net = build_model("sigma_theta", manipulator="riesz-directions")
    # pyramid weights: the bands' conv stays at 0; readout weights: the readout is not used
    net.load_state_dict(state, strict=False)
    net.eval()
    channels = net.fuse.in_channels + net.fuse_bands.in_channels
    summed = np.concatenate([np.arange(k * channels, k * channels + SUMMED)
                             for k in range(len(OFFSETS))])
    bands = np.setdiff1d(np.arange(channels * len(OFFSETS)), summed)
    print(f"sigma_theta {form}, {prov.get('steps')} steps: held-out R² of the target's change")
    for step, alpha in STEPS:
        train = [fusion_input_change(net, s, step, alpha, args.size) for s in range(args.scenes)]
        test = [fusion_input_change(net, 1000 + s, step, alpha, args.size) for s in range(4)]
        x, y = (np.concatenate(v) for v in zip(*train, strict=True))
        xt, yt = (np.concatenate(v) for v in zip(*test, strict=True))
        noise = np.random.default_rng(0).standard_normal((len(x) + len(xt), len(bands)))
        scores = {
            "summed": ridge_r2(x[:, summed], y, xt[:, summed], yt),
            f"summed + {len(bands)} noise columns": ridge_r2(
                np.hstack([x[:, summed], noise[:len(x)]]), y,
                np.hstack([xt[:, summed], noise[len(x):]]), yt),
            "bands": ridge_r2(x[:, bands], y, xt[:, bands], yt),
            "summed + bands": ridge_r2(x, y, xt, yt),
        }
        print(f"  {step:g} px x{1 + alpha:g}: " + ", ".join(f"{k} {v:.3f}"
                                                          for k, v in scores.items()))


if __name__ == "__main__":
    main()
