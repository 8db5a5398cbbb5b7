"""Where the time of ``phase`` goes at 1080p: one luma frame through encode and decode, per part.

Run:  .venv/bin/python benchmarks/profile_phase.py [--threads 1,2] [--repeat 3] [--size 1920x1080]

Times each part of :class:`PhaseMagnifier` (default half octave, 8 orientations, sigma 2,
alpha 10) on one frame: forward FFT, band crops and inverse FFTs, phase difference, amplitude,
amplitude-weighted blur, rotation, synthesis FFTs, final inverse FFT. The same frame also runs
through ``reference``: the previous implementation (complex ``angle``/``abs``, blur with
temporaries, stacked crops, out-of-place FFTs), kept here, so the ratio is measured in the
same run. Prints medians over ``--repeat`` alternating runs of both, and the largest
difference between their outputs. Pyramid filters are built once (not timed).

``--options``: instead, ``PhaseMagnifier.encode`` + ``decode`` of one frame (no temporal
filter) for the default and the cheaper options, round robin in one process, so that their
ratios to the default are measured under the same load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

# isort: off
import napari_vmm  # noqa: F401  (first: its OpenMP wait policy precedes torch)
import torch
import torch.nn.functional as F
# isort: on

from napari_vmm.core.magnifiers import phase
from napari_vmm.core.magnifiers.pyramids import _gaussian_taps, amplitude_weighted_blur

PARTS = ("forward FFT", "band crops + IFFTs", "phase difference", "amplitude",
         "weighted blur", "rotation", "synthesis FFTs", "final IFFT")
SIGMA, ALPHA = 2.0, 10.0


def _old_taps_1d(x, taps, dim):
    r = len(taps) // 2
    n = x.shape[dim]
    p = F.pad(x, (r, r, 0, 0) if dim == -1 else (0, 0, r, r), mode="reflect")
    out = p.narrow(dim, r, n) * taps[r]
    for k in range(r):
        out += (p.narrow(dim, k, n) + p.narrow(dim, 2 * r - k, n)) * taps[k]
    return out


def _old_blur(values, amp, sigma):
    both = torch.cat([values * amp, amp], dim=1)
    taps_x = _gaussian_taps(sigma[1], both.shape[-1])
    taps_y = _gaussian_taps(sigma[0], both.shape[-2])
    if taps_x is not None:
        both = _old_taps_1d(both, taps_x, -1)
    if taps_y is not None:
        both = _old_taps_1d(both, taps_y, -2)
    c = values.shape[1]
    return both[:, :c] / (both[:, c:] + 1e-8)


def reference(pyr, x, ref, tick):
    """The implementation before issue 19.3 (commit 78fccc8), step by step."""
    spectrum = torch.fft.fftshift(torch.fft.fft2(x), dim=(-2, -1))
    tick()
    coeffs = []
    for g in pyr.groups:
        bh, bw = g.filters.shape[-2:]
        crop = torch.stack([spectrum[:, r0:r0 + bh, c0:c0 + bw] for r0, c0 in g.offsets], dim=1)
        coeffs.append(torch.fft.ifft2(crop.mul_(g.filters)))
    tick()
    signal = [torch.angle(c * r.conj()) for c, r in zip(coeffs, ref, strict=True)]
    tick()
    amps = [c.abs() for c in coeffs]
    tick()
    smooth = [_old_blur(f, a, (SIGMA * g.sigma_scale[0], SIGMA * g.sigma_scale[1]))
              for f, a, g in zip(signal, amps, pyr.groups, strict=True)]
    tick()
    out = []
    for c, f in zip(coeffs, smooth, strict=True):
        shift = f * ALPHA
        out.append(torch.complex(torch.cos(shift), torch.sin(shift)).mul_(c))
    tick()
    total = spectrum * pyr.residual
    for c, g in zip(out, pyr.groups, strict=True):
        bh, bw = g.filters.shape[-2:]
        part = torch.fft.fft2(c).mul_(g.filters)
        for m, (r0, c0) in enumerate(g.offsets):
            total[:, r0:r0 + bh, c0:c0 + bw] += part[:, m]
    tick()
    y = torch.fft.ifft2(torch.fft.ifftshift(total, dim=(-2, -1))).real
    tick()
    return y


def current(pyr, x, ref, tick):
    """What :meth:`PhaseMagnifier.encode` and ``decode`` run, in the same parts."""
    spectrum = pyr.spectrum(x)
    tick()
    coeffs = pyr.bands(spectrum)
    tick()
    signal = [phase.phase_difference(c, r) for c, r in zip(coeffs, ref, strict=True)]
    tick()
    amps = [phase.amplitude(c) for c in coeffs]
    tick()
    shifts = [amplitude_weighted_blur(f, a, (SIGMA * g.sigma_scale[0], SIGMA * g.sigma_scale[1]))
              .mul_(ALPHA) for f, a, g in zip(signal, amps, pyr.groups, strict=True)]
    tick()
    out = [phase.rotate(c, s) for c, s in zip(coeffs, shifts, strict=True)]
    tick()
    total = pyr.accumulate(spectrum, out)
    tick()
    y = pyr.to_frames(total)
    tick()
    return y


def timed(fn, *args):
    marks = [time.perf_counter()]
    y = fn(*args, lambda: marks.append(time.perf_counter()))
    return y, [b - a for a, b in zip(marks, marks[1:], strict=False)]


OPTION_SETS = ({}, {"pyramid": "octave", "orientations": 4},
               {"pyramid": "half_octave", "orientations": 4}, {"sigma": 0.0})


def compare_options(h: int, w: int, threads: list[int], repeat: int) -> None:
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand(1, 1, h, w, generator=gen)
    x = torch.roll(x0, (1, 2), (-2, -1))
    mags = []
    for options in OPTION_SETS:
        opts = {k: o.default for k, o in phase.PhaseMagnifier.options.items()} | options
        mag = phase.PhaseMagnifier(ALPHA, torch.device("cpu"), **opts)
        t0 = time.perf_counter()
        mag.encode(x0)  # builds the filters and takes the reference
        print(f"{options or 'default'}: filters built in {time.perf_counter() - t0:.1f} s",
              flush=True)
        mags.append(mag)
    for n in threads:
        torch.set_num_threads(n)
        times = [[] for _ in mags]
        loads = []
        for _ in range(repeat):
            loads.append(os.getloadavg()[0])
            for mag, col in zip(mags, times, strict=True):
                t0 = time.perf_counter()
                signal, ctx = mag.encode(x)
                mag.decode(x, signal, ctx)
                col.append(time.perf_counter() - t0)
        base = statistics.median(times[0])
        print(f"\n{n} thread(s), median of {repeat}, load {min(loads):.1f}-{max(loads):.1f}\n")
        print("| phase options | encode + decode ms | vs default |")
        print("|---|---|---|")
        for options, col in zip(OPTION_SETS, times, strict=True):
            med = statistics.median(col)
            print(f"| {options or 'default'} | {1000 * med:.0f} | {med / base:.2f} |",
                  flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", default="1,2")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--size", default="1920x1080")
    p.add_argument("--pyramid", default="half_octave")
    p.add_argument("--orientations", type=int, default=8)
    p.add_argument("--options", action="store_true",
                   help="compare the default with the cheaper options instead")
    a = p.parse_args()
    torch.set_grad_enabled(False)
    w, h = map(int, a.size.split("x"))
    if a.options:
        compare_options(h, w, [int(t) for t in a.threads.split(",")], a.repeat)
        return
    t0 = time.perf_counter()
    pyr = phase._pyramid(h, w, phase.FILTERS_PER_OCTAVE[a.pyramid], a.orientations, "cpu")
    n_coeffs = sum(g.filters.numel() for g in pyr.groups)
    print(f"{a.size} {a.pyramid} x{a.orientations}: {len(pyr.groups)} band groups, "
          f"{n_coeffs / (h * w):.1f} complex coefficients per pixel; filters built in "
          f"{time.perf_counter() - t0:.1f} s")
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand(1, h, w, generator=gen)
    x = torch.roll(x0, (1, 2), (-2, -1)) * 0.9 + 0.05
    ref = [c / (c.abs() + 1e-12) for c in pyr.bands(pyr.spectrum(x0))]
    for threads in map(int, a.threads.split(",")):
        torch.set_num_threads(threads)
        times = {"reference": [], "current": []}
        loads = []
        for _ in range(a.repeat):
            loads.append(os.getloadavg()[0])
            y_ref, t = timed(reference, pyr, x, ref)
            times["reference"].append(t)
            y_new, t = timed(current, pyr, x, ref)
            times["current"].append(t)
        diff = float((y_ref - y_new).abs().max())
        med = {k: [statistics.median(col) for col in zip(*v, strict=True)]
               for k, v in times.items()}
        tot = {k: statistics.median(sum(r) for r in v) for k, v in times.items()}
        print(f"\n{threads} thread(s), median of {a.repeat}, load {min(loads):.1f}-"
              f"{max(loads):.1f}; max |current - reference| = {diff:.2e}\n")
        print("| part | reference ms | current ms | speed-up |")
        print("|---|---|---|---|")
        for name, r, c in zip(PARTS, med["reference"], med["current"], strict=True):
            print(f"| {name} | {1000 * r:.0f} | {1000 * c:.0f} | {r / c:.2f}x |")
        print(f"| **total** | {1000 * tot['reference']:.0f} | {1000 * tot['current']:.0f} | "
              f"{tot['reference'] / tot['current']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
