"""``vmm analyze``: what moves in each ROI, at what frequency, and which band to magnify.

Example::

    vmm analyze clip.mp4 --roi 120,80,64,48 --roi 300,200,40,40 --csv traces.csv --plot motion.png
    vmm analyze stack.tif --fps 100 --rois rois.json --pixel-size 0.65 --unit um --json
"""

from __future__ import annotations

import argparse
import json
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
    p.add_argument("--pixel-size", metavar="SIZE",
                   help="length of one pixel on the object, e.g. 0.12mm (a bare number is in "
                        "--unit), to report displacement in physical units")
    p.add_argument("--unit", default=None,
                   help="unit of a bare --pixel-size number (default um)")
    cal = p.add_argument_group(
        "pinhole calibration", "pixel size = sensor pixel x distance / focal length")
    cal.add_argument("--distance", metavar="D", help="camera to object, e.g. 2.5m")
    cal.add_argument("--focal-length", metavar="F", help="lens focal length, e.g. 50mm")
    cal.add_argument("--sensor-pixel", metavar="P",
                     help="sensor pixel pitch as recorded in the video, e.g. 5.86um")
    p.add_argument("--noise-reference", metavar="X,Y,W,H",
                   help="a static region: its motion is noise, which the ROIs' floors include")
    p.add_argument("--reference", type=int, default=0, metavar="FRAME",
                   help="frame the displacement is measured against (default 0)")
    p.add_argument("--fmin", type=float, help="ignore peaks below this frequency (Hz)")
    p.add_argument("--fmax", type=float, help="ignore peaks above this frequency (Hz)")
    p.add_argument("--peaks", type=int, default=5, metavar="N",
                   help="report at most N peaks per ROI (default 5)")
    ods = p.add_argument_group(
        "deflection shapes", "track a grid of cells (inside one --roi, or the frame) and "
        "report each cell's amplitude and phase at one frequency")
    ods.add_argument("--grid", metavar="ROWSxCOLS", help="grid of cells, e.g. 8x16")
    ods.add_argument("--ods", metavar="FREQ|auto", default=None,
                     help="frequency of the shape in Hz, or auto (strongest common peak; "
                          "the default)")
    ods.add_argument("--video", metavar="OUT.mp4",
                     help="the shape animated over one cycle, exaggerated, over the frame")
    ods.add_argument("--exaggerate", type=positive_float, metavar="K",
                     help="drawn displacement = K x true (default: largest = 45%% of a cell)")
    p.add_argument("--csv", metavar="OUT.csv",
                   help="write the traces (one row per frame); with --grid a folder that "
                        "gets ods.csv, spectrum.csv and traces.csv")
    p.add_argument("--spectra-csv", metavar="OUT.csv", help="write the spectra")
    p.add_argument("--plot", metavar="OUT.png", help="write a waveform + spectrum figure")
    p.add_argument("--json", nargs="?", const="-", metavar="OUT.json",
                   help="results as JSON, on stdout or into OUT.json")
    add_overwrite_argument(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``vmm analyze`` with parsed arguments; errors are raised as VMMError."""
    from ..core import analysis
    from ..io import check_outputs, open_input

    rois: list[analysis.ROI] = [analysis.parse_roi(s, name=f"ROI {i + 1}")
                                for i, s in enumerate(args.roi)]
    if args.rois:
        rois += analysis.load_rois(args.rois)
    calibration = _calibration(args)
    if args.grid:
        return _run_ods(args, rois, calibration)
    for flag in ("ods", "video", "exaggerate"):
        if getattr(args, flag) is not None:
            raise VMMError(f"--{flag} needs --grid ROWSxCOLS")
    if not rois:
        raise VMMError("give at least one ROI with --roi X,Y,W,H or --rois FILE.json")
    if args.peaks < 1:
        raise VMMError(f"--peaks must be >= 1, got {args.peaks}")
    # the file policy, before the analysis runs: writable folders, -y to replace
    check_outputs([args.csv, args.spectra_csv, args.plot, _json_path(args)],
                  protect=[args.input], overwrite=args.overwrite)

    source = open_input(args.input)
    fps, bar, progress = _rate_and_progress(args, source)
    try:
        result = analysis.analyze_motion(
            source, rois, fps, progress=progress, reference=args.reference,
            calibration=calibration, n_peaks=args.peaks, fmin=args.fmin, fmax=args.fmax,
            noise_reference=args.noise_reference and analysis.parse_roi(
                args.noise_reference, name="noise reference"))
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
        _emit_json(args.json, result.to_dict())
    if args.json != "-":
        print(analysis.format_report(result))
        for path, what in ((args.csv, "traces"), (args.spectra_csv, "spectra"),
                           (args.plot, "plot"), (args.json, "JSON")):
            if path:
                print(f"{what} written to {path}")
    return 0


def _rate_and_progress(args: argparse.Namespace, source: Any):
    """``(fps, bar, progress)``: the frame rate (``--fps`` or the file's) and the progress bar,
    which is also the ``progress(done, total)`` callback."""
    fps = args.fps if args.fps is not None else getattr(source, "fps", None)
    if fps is None:
        raise VMMError(f"{args.input} has no frame rate: give one with --fps")
    from ..io import Progress

    bar = Progress("analyze", int(getattr(source, "n_frames", 0) or source.shape[0]))
    return fps, bar, bar


def _calibration(args: argparse.Namespace):
    """The :class:`Calibration` the arguments ask for (px when none)."""
    from ..core import analysis

    pinhole = {"--distance": args.distance, "--focal-length": args.focal_length,
               "--sensor-pixel": args.sensor_pixel}
    if args.unit is not None and args.pixel_size is None:
        raise VMMError("--unit needs --pixel-size")
    if any(v is not None for v in pinhole.values()):
        if args.pixel_size is not None:
            raise VMMError("give either --pixel-size or --distance, --focal-length and "
                           "--sensor-pixel, not both")
        missing = [k for k, v in pinhole.items() if v is None]
        if missing:
            raise VMMError(f"the pinhole calibration also needs {', '.join(missing)}")
        return analysis.calibration_from_pinhole(*pinhole.values())
    if args.pixel_size is not None:
        return analysis.calibration_from_pixel_size(args.pixel_size, args.unit,
                                                    default_unit="um")
    return analysis.no_calibration()


def _json_path(args: argparse.Namespace) -> str | None:
    """The ``--json`` output file, or None for stdout or no JSON."""
    return None if args.json in (None, "-") else args.json


def _emit_json(dest: str, obj: dict) -> None:
    """Print ``obj`` as JSON (``dest == "-"``) or write it to ``dest`` atomically."""
    text = json.dumps(obj, indent=1)
    if dest == "-":
        print(text)
    else:
        from ..core.analysis.files import write_text_atomic

        write_text_atomic(dest, text + "\n")


def _run_ods(args: argparse.Namespace, rois: list, calibration: Any) -> int:
    """``vmm analyze --grid``: track a grid, write the deflection shape at ``--ods``."""
    import os
    from pathlib import Path

    from ..core import analysis
    from ..core.analysis.files import rows_to_csv, write_text_atomic
    from ..core.analysis.ods import grid_spectrum_rows, grid_trace_rows, ods_rows
    from ..io import check_outputs, open_input

    rows, cols = analysis.parse_grid(args.grid)
    if len(rois) > 1 or args.rois:
        raise VMMError("--grid takes at most one --roi X,Y,W,H (the region the grid covers)")
    for flag in ("spectra_csv", "noise_reference"):
        if getattr(args, flag) is not None:
            raise VMMError(f"--{flag.replace('_', '-')} is for ROIs, not with --grid")
    csv_dir = Path(args.csv) if args.csv else None
    outputs = [args.video, args.plot, _json_path(args)]
    if csv_dir is not None:
        if csv_dir.exists() and not csv_dir.is_dir():
            raise VMMError(f"--csv with --grid names a folder, and {csv_dir} is a file")
        outputs += ([csv_dir / n for n in ("ods.csv", "spectrum.csv", "traces.csv")]
                    if csv_dir.is_dir() else [csv_dir])
    check_outputs(outputs, protect=[args.input], overwrite=args.overwrite)

    source = open_input(args.input)
    try:
        fps, bar, progress = _rate_and_progress(args, source)
        try:
            grid = analysis.analyze_grid(
                source, (rows, cols), fps, progress=progress, roi=rois[0] if rois else None,
                calibration=calibration, reference=args.reference, fmin=args.fmin,
                fmax=args.fmax)
        finally:
            bar.close()
        shape = analysis.deflection_shape(grid, args.ods or "auto")
        background = (_reference_frame(source, args.reference)
                      if args.video or args.plot else None)
    finally:
        close = getattr(source, "close", None)
        if callable(close):
            close()

    report = {"fps": grid.fps, "n_frames": grid.n_frames,
              "calibration": calibration.to_dict(),
              "grid": {"rows": rows, "cols": cols, "origin": list(grid.layout.origin),
                       "cell": list(grid.layout.cell)},
              "spectrum_peaks_hz": [p.hz for p in grid.peaks],
              "ods": shape.to_dict()}
    if csv_dir is not None:
        os.makedirs(csv_dir, exist_ok=True)
        for name, table in (("ods.csv", ods_rows(shape)),
                            ("spectrum.csv", grid_spectrum_rows(grid)),
                            ("traces.csv", grid_trace_rows(grid))):
            write_text_atomic(csv_dir / name, rows_to_csv(table))
    if args.video:
        from ..core.analysis.ods_render import write_shape_video

        write_shape_video(args.video, background, shape, rows, cols,
                          exaggeration=args.exaggerate, protect=(args.input,))
    if args.plot:
        from ..core.analysis.ods_render import plot_shape

        plot_shape(grid, shape, background, args.plot)
    if args.json:
        _emit_json(args.json, report)
    if args.json != "-":
        print(_ods_report(grid, shape))
        for path, what in ((args.csv, "CSV folder"), (args.video, "video"),
                           (args.plot, "plot"), (args.json, "JSON")):
            if path:
                print(f"{what} written to {path}")
    return 0


def _reference_frame(source: Any, index: int):
    import numpy as np

    return np.asarray(source[index])


def _ods_report(grid: Any, shape: Any) -> str:
    """Text summary of a deflection shape."""
    import numpy as np

    cal = grid.calibration
    amp, snr = shape.amplitude[shape.ok], shape.snr[shape.ok]
    weak = int(np.sum(amp < 3 * shape.floor[shape.ok]))
    lines = [f"{grid.n_frames} frames at {grid.fps:g} fps; {cal.describe()}",
             f"grid {grid.layout.rows}x{grid.layout.cols} cells of {grid.layout.cell[0]}x"
             f"{grid.layout.cell[1]} px; {int(shape.ok.sum())} tracked",
             "averaged spectrum peaks: " + ", ".join(f"{p.hz:.4g} Hz" for p in grid.peaks),
             f"deflection shape at {shape.frequency_hz:.4g} Hz: largest amplitude "
             f"{amp.max() * cal.scale:.4g} {cal.unit}, median SNR {np.median(snr):.3g}, "
             f"{weak} of {amp.size} cells below 3x their noise floor"]
    return "\n".join(lines)
