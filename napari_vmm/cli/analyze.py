"""``vmm analyze``: what moves in each ROI, at what frequency, and which band to magnify.

Example::

    vmm analyze clip.mp4 --roi 120,80,64,48 --roi 300,200,40,40 --csv traces.csv --plot motion.png
    vmm analyze stack.tif --fps 100 --rois rois.json --pixel-size 0.65 --unit um --json
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..core.errors import VMMError
from .common import add_overwrite_argument, positive_float

DESCRIPTION = """\
Measure the sub-pixel displacement (x, y) and the mean intensity of each ROI over time, their
Welch spectra and dominant peaks, and suggest a band to magnify. Results go to stdout (a text
report, or JSON with --json); --csv writes the traces, --plot a figure with a waveform and a
spectrum per ROI. A rectangle ROI is x,y,w,h with x,y the top-left column and row in pixels.
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``analyze`` subcommand to ``subparsers`` (its ``func`` runs it)."""
    p = subparsers.add_parser(
        "analyze", help="measure ROI motion: traces, spectra, suggested band",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="video file, or a .tif / .npy stack (T, H, W[, C])")
    p.add_argument("--roi", action="append", default=[], metavar="X,Y,W,H",
                   help="rectangle ROI: top-left column, row, width, height (px); repeatable")
    p.add_argument("--rois", metavar="FILE.json",
                   help="ROIs from a JSON file (rectangles, ellipses, polygons; see docs)")
    p.add_argument("--fps", type=positive_float,
                   help="frame rate in Hz (default: read from the file)")
    p.add_argument("--pixel-size", type=float, metavar="S",
                   help="size of one pixel in --unit, to report physical displacement")
    p.add_argument("--unit", default=None, help="physical unit of --pixel-size (default um)")
    p.add_argument("--reference", type=int, default=0, metavar="FRAME",
                   help="frame the displacement is measured against (default 0)")
    p.add_argument("--fmin", type=float, help="ignore peaks below this frequency (Hz)")
    p.add_argument("--fmax", type=float, help="ignore peaks above this frequency (Hz)")
    p.add_argument("--peaks", type=int, default=5, metavar="N",
                   help="report at most N peaks per ROI (default 5)")
    p.add_argument("--csv", metavar="OUT.csv", help="write the traces (one row per frame)")
    p.add_argument("--spectra-csv", metavar="OUT.csv", help="write the spectra")
    p.add_argument("--plot", metavar="OUT.png", help="write a waveform + spectrum figure")
    p.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    add_overwrite_argument(p)
    p.set_defaults(func=run)
    return p


def _progress_bar(total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc="analyze", disable=None, file=sys.stderr,
                leave=False)


def run(args: argparse.Namespace) -> int:
    """Run ``vmm analyze`` with parsed arguments; errors are raised as VMMError."""
    from ..core import analysis
    from ..core.io import check_outputs, open_input

    rois: list[analysis.ROI] = [analysis.parse_roi(s, name=f"ROI {i + 1}")
                                for i, s in enumerate(args.roi)]
    if args.rois:
        rois += analysis.load_rois(args.rois)
    if not rois:
        raise VMMError("give at least one ROI with --roi X,Y,W,H or --rois FILE.json")
    if args.unit is not None and args.pixel_size is None:
        raise VMMError("--unit needs --pixel-size")
    if args.peaks < 1:
        raise VMMError(f"--peaks must be >= 1, got {args.peaks}")
    # the file policy, before the analysis runs: writable folders, -y to replace
    check_outputs([args.csv, args.spectra_csv, args.plot], protect=[args.input],
                  overwrite=args.overwrite)

    source = open_input(args.input)
    fps = args.fps if args.fps is not None else getattr(source, "fps", None)
    if fps is None:
        raise VMMError(f"{args.input} has no frame rate: give one with --fps")
    bar = _progress_bar(int(getattr(source, "n_frames", 0) or source.shape[0]))

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        result = analysis.analyze_motion(
            source, rois, fps, progress=progress, reference=args.reference,
            pixel_size=args.pixel_size, unit=args.unit or "um", n_peaks=args.peaks,
            fmin=args.fmin, fmax=args.fmax)
    finally:
        bar.close()
        close = getattr(source, "close", None)
        if callable(close):
            close()

    if args.csv:
        analysis.write_traces_csv(args.csv, result)
    if args.spectra_csv:
        analysis.write_spectra_csv(args.spectra_csv, result)
    if args.plot:
        analysis.plot_analysis(result, args.plot)
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
    else:
        print(analysis.format_report(result))
        for path, what in ((args.csv, "traces"), (args.spectra_csv, "spectra"),
                           (args.plot, "plot")):
            if path:
                print(f"{what} written to {path}")
    return 0
