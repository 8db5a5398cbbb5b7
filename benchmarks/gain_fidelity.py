"""Gain fidelity of the classical magnifiers: where the magnification goes, term by term.

Run:  .venv/bin/python benchmarks/gain_fidelity.py [--quick] [--figure PNG] [--only ...]

Ground truth is exact: 128 px luma crops of real frames (``../shared/videos``; 1/f synthetic
textures when absent), made periodic (Moisan) and Fourier-shifted ``A sin(2 pi 2 t)`` px at
30 fps, magnified with the band 1.5-2.5 Hz (``napari_vmm.core.magnifiers.fidelity``).
"Achieved" is the least-squares translation of the output at 2 Hz over ``(1 + alpha) A``.
Prints markdown tables: the temporal filters' gain at the motion frequency (per filter and
clip length, with and without the start), each method's gain per amplitude and noise level,
its gain per spatial scale, and the linearity in alpha (also drawn as a figure).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from napari_vmm.core.engine import magnify
from napari_vmm.core.magnifiers import fidelity
from napari_vmm.core.temporal import make_filter

VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "videos"
CLIPS = ("baby.mp4", "wrist.mp4", "drum.mp4", "crane_crop.mp4", "cardiomyocyte_zdisc.avi")
FPS, FREQ, BAND = 30.0, 2.0, (1.5, 2.5)
METHODS = ("phase", "riesz", "linear")


def textures(quick: bool) -> tuple[list[np.ndarray], str]:
    paths = [VIDEOS / c for c in CLIPS if (VIDEOS / c).is_file()]
    if quick:
        paths = paths[:2]
    if not paths:
        return [fidelity.synthetic_texture(128, seed=s) for s in range(3)], "synthetic 1/f"
    return fidelity.real_textures(paths, 128), ", ".join(p.name for p in paths)


def run(texs, method, amplitude, alpha, noise=0.0, n=60, freq=FREQ, temporal="ideal",
        skip=0, scales=(None,), **options) -> list[float] | np.ndarray:
    """Achieved ratio per texture; with several ``scales``, (textures, scales)."""
    out = []
    for i, tex in enumerate(texs):
        clip = fidelity.moving_clip(tex, n, FPS, freq, amplitude, noise, seed=i)
        y = magnify(clip, FPS, method=method, alpha=alpha, band=BAND, temporal=temporal,
                    **options)
        out.append([fidelity.achieved_ratio(tex, y, FPS, freq, amplitude, alpha, skip=skip,
                                            wavelengths=s) for s in scales])
    return [r[0] for r in out] if len(scales) == 1 else np.array(out)


def filter_table() -> None:
    print("\n### Temporal filters: gain at the 2 Hz motion (band 1.5-2.5 Hz, 30 fps)\n")
    print("| filter | frames | periods | gain, all frames | gain after 1.5 s | worst error "
          "in the first period |")
    print("|---|---|---|---|---|---|")
    for name, kw in (("ideal", {}), ("butterworth (causal)", {}),
                     ("butterworth zero-phase", {"zero_phase": True}), ("fir (causal)", {}),
                     ("iir (difference of low-passes)", {})):
        temporal = name.split()[0]
        for n in (45, 60, 68, 100):
            t = np.arange(n) / FPS
            x = np.sin(2 * np.pi * FREQ * t)
            filt = make_filter(temporal, BAND, FPS, **kw)
            y = filt.whole(torch.as_tensor(x)[:, None])[:, 0].numpy()
            fit_all = fidelity.sinusoid_amplitude(y, FPS, FREQ)
            fit_late = fidelity.sinusoid_amplitude(y, FPS, FREQ, skip=45) if n > 60 else np.nan
            # causal filters delay: compare the start with the steady output, not with x
            ref = fidelity.sinusoid_amplitude(y, FPS, FREQ, skip=min(45, n // 2))
            design = np.stack([np.sin(2 * np.pi * FREQ * t), np.cos(2 * np.pi * FREQ * t)], 1)
            coef = np.linalg.lstsq(design[n // 2:], y[n // 2:], rcond=None)[0]
            steady = design @ coef
            start = float(np.abs(y[:15] - steady[:15]).max()) / max(ref, 1e-9)
            print(f"| {name} | {n} | {n * FREQ / FPS:g} | {fit_all:.3f} | {fit_late:.3f} | "
                  f"{start:.2f} |")


def method_table(texs, quick: bool) -> None:
    print("\n### Achieved / requested magnification (ideal filter, 60 frames)\n")
    print("| method | A px | alpha | clean | sigma 2 DN | sigma 6 DN |")
    print("|---|---|---|---|---|---|")
    cases = ((0.05, 19), (0.2, 19), (1.0, 3)) if quick else ((0.05, 19), (0.2, 19), (0.4, 9),
                                                             (1.0, 3))
    for method in METHODS:
        for amplitude, alpha in cases:
            cells = []
            for noise in (0.0, 2.0, 6.0):
                r = run(texs, method, amplitude, alpha, noise)
                cells.append(f"{np.mean(r):.3f} ({min(r):.2f}-{max(r):.2f})")
            print(f"| {method} | {amplitude} | {alpha} | " + " | ".join(cells) + " |")


def scale_table(texs) -> None:
    scales = ((2, 3), (3, 4), (4, 8), (8, 16), (16, 64))
    print("\n### Per spatial scale (A = 0.05 px, alpha = 19: 1 px out)\n")
    print("| method | all | " + " | ".join(f"{a}-{b} px" for a, b in scales) + " |")
    print("|---|---|" + "---|" * len(scales))
    configs = [("phase", {}), ("phase", {"pyramid": "octave", "orientations": 4}),
               ("phase", {"sigma": 0.0}), ("riesz", {}), ("riesz", {"aperture": 0.0}),
               ("linear", {})]
    for method, options in configs:
        cells = run(texs, method, 0.05, 19, scales=(None,) + scales, **options).mean(0)
        label = method + (" " + ", ".join(f"{k}={v}" for k, v in options.items())
                          if options else "")
        print(f"| {label} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")


def causal_table(texs) -> None:
    print("\n### Causal filters end to end (phase, A = 0.2 px, alpha = 9, 120 frames)\n")
    print("| filter | all frames | after 1.5 s |")
    print("|---|---|---|")
    for temporal in ("butterworth", "fir", "iir"):
        a, b = [], []
        for i, tex in enumerate(texs):
            clip = fidelity.moving_clip(tex, 120, FPS, FREQ, 0.2, seed=i)
            y = magnify(clip, FPS, method="phase", alpha=9, band=BAND, temporal=temporal)
            a.append(fidelity.achieved_ratio(tex, y, FPS, FREQ, 0.2, 9))
            b.append(fidelity.achieved_ratio(tex, y, FPS, FREQ, 0.2, 9, skip=45))
        print(f"| {temporal} | {np.mean(a):.3f} | {np.mean(b):.3f} |")
    print("\n### Out-of-band motion (6 Hz, A = 0.2 px, alpha = 19): gain\n")
    print("| method | gain |")
    print("|---|---|")
    for method in METHODS:
        print(f"| {method} | {20 * np.mean(run(texs, method, 0.2, 19, freq=6.0)):.3f} |")


def linearity(texs, figure: str | None) -> None:
    alphas = (1, 2, 5, 10, 20, 50, 100)
    amplitude = 0.02  # up to 2 px out
    print(f"\n### Linearity: achieved alpha against requested (A = {amplitude} px)\n")
    print("| method | " + " | ".join(f"{a}" for a in alphas) + " |")
    print("|---|" + "---|" * len(alphas))
    curves = {}
    for method in METHODS:
        got = [np.mean(run(texs, method, amplitude, a, n=30)) * (1 + a) - 1 for a in alphas]
        curves[method] = got
        print(f"| {method} | " + " | ".join(f"{g:.1f}" for g in got) + " |")
    if figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5.5, 4.2), dpi=110)
        ax.plot(alphas, alphas, "k--", lw=1, label="requested")
        for method, got in curves.items():
            ax.plot(alphas, got, "o-", label=method)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("requested alpha")
        ax.set_ylabel("achieved alpha  ((output motion / input motion) - 1)")
        ax.set_title(f"Real textures, {amplitude} px at 2 Hz, ideal 1.5-2.5 Hz", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(figure)
        print(f"\nfigure: {figure}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="two textures, fewer cases")
    p.add_argument("--figure", default="", help="write the linearity figure (PNG) here")
    p.add_argument("--only", default="", help="comma list of: filters, methods, scales, "
                   "causal, linearity")
    ns = p.parse_args(argv)
    torch.set_grad_enabled(False)
    only = set(filter(None, ns.only.split(",")))
    texs, source = textures(ns.quick)
    print(f"textures: {len(texs)} crops of 128x128 from {source}")
    if not only or "filters" in only:
        filter_table()
    if not only or "methods" in only:
        method_table(texs, ns.quick)
    if not only or "scales" in only:
        scale_table(texs)
    if not only or "causal" in only:
        causal_table(texs)
    if not only or "linearity" in only:
        linearity(texs, ns.figure or None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
