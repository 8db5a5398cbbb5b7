"""Figures for the docs: example training samples and training curves (needs matplotlib).

``python -m napari_vmm.training.figures samples docs/images/learned_samples.png``
``python -m napari_vmm.training.figures curves docs/images/learned_training.png PROVENANCE...``
``python -m napari_vmm.training.figures linearity docs/images/linearity_learned.png EVAL.json``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def samples_figure(path: str, seed: int = 0, size: int = 128) -> None:
    """One row per subset: A, B' (perturbed query), |C − A|, Y' (ground truth)."""
    plt = _pyplot()

    from .data import SUBSETS, DataConfig, generate_sample

    cfg = DataConfig(size=size)
    fig, axes = plt.subplots(5, 4, figsize=(8.4, 11))
    for r, sub in enumerate(SUBSETS):
        s = generate_sample(seed, "val", 1000 + r, cfg, subset=sub)
        diff = (s["C"] - s["A"]).abs().mean(0)
        imgs = [s["A"], s["B"], diff, s["Y"]]
        titles = ["A (reference)", "B' (query, colour-perturbed)", "|B − A| (motion)",
                  f"Y' (target, α={s['alpha']:.1f})"]
        for c, (im, t) in enumerate(zip(imgs, titles, strict=True)):
            ax = axes[r, c]
            if im.ndim == 3:
                ax.imshow(im.permute(1, 2, 0).numpy())
            else:
                ax.imshow(im.numpy(), cmap="magma", vmin=0, vmax=0.3)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(t, fontsize=8)
        axes[r, 0].set_ylabel(f"{sub}: {SUBSETS[sub]}", fontsize=7)
    fig.suptitle("Synthetic training samples (validation split), one row per subset",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=64)


def curves_figure(path: str, provenance_files: list[str]) -> None:
    """Training loss and validation SSIM against samples seen, from weights' provenance.

    Each provenance JSON (``napari_vmm/weights/MODEL.json`` or a run's ``export/MODEL.json``)
    holds the whole curve across resumed sessions as ``[step, train loss, val SSIM, wall s]``
    rows, so the figure does not depend on which run logs survive.
    """
    plt = _pyplot()

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for f in provenance_files:
        prov = json.loads(Path(f).read_text())
        rows = prov.get("curve") or []
        if not rows:
            continue
        name, batch = prov.get("model", Path(f).stem), int(prov.get("batch", 4))
        if prov.get("ablation"):
            name += f" (without {', '.join(prov['ablation'])})"
        samples = [r[0] * batch for r in rows]
        a1.plot(samples, [r[1] for r in rows], lw=0.8, label=name)
        a2.plot(samples, [r[2] for r in rows], "o-", ms=3, label=name)
        baseline = prov.get("validation", {}).get("ssim_input")
        if baseline:
            a2.axhline(baseline, ls=":", lw=0.8, color="gray")
    a2.axhline(0.95, ls="--", color="red", lw=0.8, label="quality bar 0.95")
    a1.set_xlabel("training samples")
    a1.set_ylabel("training loss")
    a1.set_yscale("log")
    a2.set_xlabel("training samples")
    a2.set_ylabel("validation SSIM (dotted: input copy)")
    a1.legend(fontsize=8)
    a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def linearity_figure(path: str, result_file: str) -> None:
    """Achieved against requested magnification, one panel per input amplitude, from the
    ``--json`` of ``vmm evaluate --tests linearity`` (achieved = measured gain × request)."""
    plt = _pyplot()

    result = json.loads(Path(result_file).read_text())
    rows = [r for r in result["rows"] if r.get("test") == "linearity"]
    if not rows:
        raise ValueError(f"{result_file} has no linearity rows")
    amplitudes = sorted({r["amplitude_px"] for r in rows})
    methods = ["input", *result["config"]["methods"]]
    fig, axes = plt.subplots(1, len(amplitudes), figsize=(4.9 * len(amplitudes), 3.8),
                             sharey=True, squeeze=False)
    for ax, amp in zip(axes[0], amplitudes, strict=True):
        sel = sorted((r for r in rows if r["amplitude_px"] == amp), key=lambda r: r["factor"])
        factors = [r["factor"] for r in sel]
        for m in methods:
            style = {"ls": ":", "color": "black"} if m == "input" else {"marker": "o"}
            ax.plot(factors, [r["gain"][m] * r["factor"] for r in sel], label=m, **style)
        ax.plot(factors, factors, "k--", lw=0.8, label="requested")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.grid(True, which="both", lw=0.3)
        ax.set_title(f"input motion {amp} px")
        ax.set_xlabel("requested magnification 1+α")
    axes[0][0].set_ylabel("achieved magnification (output / input motion)")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle("Linearity (Ha et al.): sinusoidal motion, temporal mode, ideal band")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


if __name__ == "__main__":
    what, out, *rest = sys.argv[1:]
    figure = {"samples": lambda: samples_figure(out), "curves": lambda: curves_figure(out, rest),
              "linearity": lambda: linearity_figure(out, rest[0])}
    if what not in figure:
        sys.exit(f"unknown figure {what!r}; choose from {', '.join(figure)}")
    figure[what]()
