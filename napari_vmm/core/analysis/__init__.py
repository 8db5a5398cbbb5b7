"""ROI motion analysis: displacement and intensity traces, spectra, peaks and a suggested band.

What it answers: *what* moves in a region and *at what frequency*, before anything is magnified.

Coordinates
-----------
Frames are indexed ``(t, row, col)``. A ROI is a rectangle, an ellipse or a polygon given by its
vertices in ``(row, col)`` order, the napari Shapes convention; pixel ``(r, c)`` covers
``[r - 0.5, r + 0.5] x [c - 0.5, c + 0.5]`` and belongs to a ROI when its centre lies inside.
On the command line a rectangle is ``x,y,w,h`` with ``x, y`` the top-left column and row, so it
covers columns ``x .. x+w-1`` and rows ``y .. y+h-1`` (see :func:`parse_roi`).

Displacement
------------
For each frame, the translation of the ROI's content relative to a reference frame is found by
phase correlation (integer pixels) and refined to sub-pixel precision by inverse-compositional
Lucas-Kanade on the ROI's pixels (cubic-spline warping). A positive ``dx`` means the content moved
right (towards larger columns), a positive ``dy`` means it moved down (towards larger rows).

Spectra and peaks
-----------------
Spectra are Welch amplitude spectra: a sinusoid of amplitude ``A`` shows a peak of height about
``A``. Peaks are located on the Welch spectrum, their frequency is refined on a zero-padded
periodogram of the whole trace, and their amplitudes come from a joint least-squares fit of
sinusoids at the refined frequencies (so they do not suffer from the window's scalloping loss).
The amplitude of a 2-D displacement peak is the semi-major axis of its orbit, the largest
displacement it reaches; for motion along a line this is ``sqrt(Ax**2 + Ay**2)``.

Noise floor
-----------
Every peak carries ``noise_floor`` (the standard error of its amplitude, from the trace's
spectrum away from its peaks, the input's quantization and, when given, a static reference
region) and ``snr``; ``below_floor`` flags amplitudes under 3x the floor (see :mod:`.noise`).

Calibration and deflection shapes
---------------------------------
:mod:`.calibration` turns a pixel size, a pinhole camera, two points or a napari layer's
scale into a :class:`Calibration` (physical units, recorded as provenance). :mod:`.ods`
tracks a grid of cells (:mod:`.grid`) and gives the operating deflection shape at a
frequency; :mod:`.ods_render` draws it over a frame.

Memory
------
Only the bounding box of each ROI (plus a margin of ``max_shift`` pixels) is read, one chunk of
frames at a time, from numpy arrays (including memory maps), dask arrays and
``napari_vmm.io`` video sources. What is kept is proportional to ROI area times the
number of frames, never to the frame size.
"""

from .calibration import (
    Calibration,
    calibration_from_pinhole,
    calibration_from_pixel_size,
    calibration_from_points,
    calibration_from_scale,
    no_calibration,
    parse_length,
)
from .grid import GridLayout, grid_layout, parse_grid
from .motion import analyze_motion, iter_analyze_motion
from .ods import (
    DeflectionShape,
    GridAnalysis,
    analyze_grid,
    deflection_shape,
    iter_analyze_grid,
    modal_assurance,
)
from .output import (
    draw_roi,
    format_report,
    plot_analysis,
    spectra_table,
    traces_table,
    write_spectra_csv,
    write_traces_csv,
)
from .results import MotionAnalysis, Peak, RoiAnalysis
from .rois import (
    ROI,
    ROI_KINDS,
    area_shape_indices,
    as_rois,
    load_rois,
    parse_roi,
    roi_mask,
    rois_from_shapes,
    save_rois,
)
from .spectra import (
    amplitude_spectrum,
    band_for_peaks,
    default_nperseg,
    find_peaks,
    harmonic_series,
    suggest_band,
)

__all__ = [
    "Calibration", "DeflectionShape", "GridAnalysis", "GridLayout", "analyze_grid",
    "calibration_from_pinhole", "calibration_from_pixel_size", "calibration_from_points",
    "calibration_from_scale", "deflection_shape", "grid_layout", "iter_analyze_grid",
    "modal_assurance", "no_calibration", "parse_grid", "parse_length",
    "ROI", "ROI_KINDS", "MotionAnalysis", "Peak", "RoiAnalysis", "amplitude_spectrum",
    "analyze_motion", "area_shape_indices", "as_rois", "band_for_peaks", "default_nperseg",
    "draw_roi", "find_peaks", "format_report", "harmonic_series", "iter_analyze_motion",
    "load_rois", "parse_roi", "plot_analysis", "roi_mask", "rois_from_shapes", "save_rois",
    "spectra_table", "suggest_band", "traces_table", "write_spectra_csv", "write_traces_csv",
]
