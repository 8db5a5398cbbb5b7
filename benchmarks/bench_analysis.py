"""Deflection-shape speed and memory: a ROWSxCOLS grid on a 640x480 clip (default 16x16, 600).

One command::

    .venv/bin/python benchmarks/bench_analysis.py [--frames 600] [--grid 16x16] [--video]

The clip is a textured plate whose columns vibrate in a bending mode (rendered exactly with
Fourier shifts, see ``napari_vmm.core.analysis.groundtruth``), written to a temporary .npy
(memory-mapped, so the analysis reads it chunk by chunk like a video) or, with ``--video``, to
a lossless .mkv decoded by PyAV. It reports:

- the grid's wall time (the issue's target: under 60 s for 16x16 on 600 frames), with a tqdm
  progress bar on stderr;
- the reference measured in the same run: the per-ROI tracker (``analyze_motion``) on one row
  of the same cells, scaled to the whole grid, and the ratio of the two;
- the Python heap's peak (tracemalloc) for the full clip and for half of it: what grows with
  the clip's length is only the traces (16 bytes per cell and frame);
- the shape's MAC against the rendered truth, so that a fast but wrong result shows.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc

import numpy as np

from napari_vmm.core import analysis as an
from napari_vmm.core.analysis.groundtruth import beam_texture, mode_shape, vibrating_beam

FPS, FREQ, AMP = 240.0, 31.0, 0.3


def _clip(n: int, folder: str, video: bool):
    tex = beam_texture((480, 640), None, seed=3)
    frames, _ = vibrating_beam(n, FPS, tex, 480, 0, [(FREQ, AMP, 1, 0.0)], noise_dn=2.0)
    if video:
        from napari_vmm.io import open_video, write_video

        path = os.path.join(folder, "plate.mkv")
        write_video(path, frames, FPS, codec="ffv1")
        return lambda: open_video(path)
    path = os.path.join(folder, "plate.npy")
    np.save(path, frames)
    return lambda: np.load(path, mmap_mode="r")


def _grid(open_clip, grid, n_frames: int | None = None):
    from tqdm import tqdm

    src = open_clip()
    frames = src if n_frames is None else src[:n_frames]
    bar = tqdm(total=frames.shape[0], unit="frame", desc="grid", file=sys.stderr, leave=False)

    def progress(done, total):
        bar.update(done - bar.n)

    t0 = time.perf_counter()
    res = an.analyze_grid(frames, grid, FPS, progress=progress)
    dt = time.perf_counter() - t0
    bar.close()
    return res, dt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--grid", default="16x16")
    ap.add_argument("--video", action="store_true", help="decode a lossless .mkv with PyAV")
    args = ap.parse_args(argv)
    grid = an.parse_grid(args.grid)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        open_clip = _clip(args.frames, folder, args.video)
        print(f"rendered {args.frames} frames of 640x480 in {time.perf_counter() - t0:.1f} s")

        res, dt = _grid(open_clip, grid)
        cells = grid[0] * grid[1]
        print(f"grid {args.grid}: {dt:.1f} s ({1e3 * dt / args.frames:.1f} ms per frame, "
              f"{1e6 * dt / (args.frames * cells):.0f} us per cell-frame)")

        # Reference, same run: the per-ROI tracker on one row of the same cells.
        lay = res.layout
        ch, cw = lay.cell
        rois = [an.ROI.rectangle(lay.origin[1] + j * cw, lay.origin[0], cw, ch)
                for j in range(grid[1])]
        src = open_clip()
        t0 = time.perf_counter()
        an.analyze_motion(src, rois, FPS)
        ref = (time.perf_counter() - t0) / grid[1] * cells
        print(f"reference: per-ROI tracker, one row scaled to {cells} cells: {ref:.1f} s; "
              f"grid / reference = {dt / ref:.2f}")

        shape = an.deflection_shape(res, FREQ)
        true = AMP * mode_shape(shape.positions[:, 1] + 0.5, 640, 1)
        print(f"shape at {shape.frequency_hz:.3f} Hz: MAC {an.modal_assurance(shape.dy, true):.5f}"
              f", max amplitude {np.abs(shape.dy).max():.4f} px (true {AMP})")

        peaks, lengths = [], (args.frames // 2, args.frames)
        for n in lengths:
            tracemalloc.start()
            _grid(open_clip, grid, n)
            peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
            tracemalloc.stop()
        traces = (lengths[1] - lengths[0]) * cells * 16 * 2 / 2**20
        print(f"Python heap peak: {peaks[0]:.1f} MiB at {lengths[0]} frames, "
              f"{peaks[1]:.1f} MiB at {lengths[1]} (traces and their spectra account for "
              f"about {traces:.1f} MiB of the difference)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
