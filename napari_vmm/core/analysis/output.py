"""CSV tables, the text report and matplotlib figures of an analysis."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .files import rows_to_csv, write_text_atomic
from .results import MotionAnalysis, RoiAnalysis


def traces_table(analysis: MotionAnalysis) -> list[list[Any]]:
    """Rows (header first): frame, time, then per ROI dx, dy (px, physical), intensity."""
    header: list[Any] = ["frame", "time_s"]
    cols: list[np.ndarray] = []
    for i, r in enumerate(analysis.rois, start=1):
        header += [f"roi{i}_dx_px", f"roi{i}_dy_px"]
        cols += [r.dx, r.dy]
        if r.pixel_size is not None:
            header += [f"roi{i}_dx_{r.unit}", f"roi{i}_dy_{r.unit}"]
            cols += [r.dx * r.pixel_size, r.dy * r.pixel_size]
        header.append(f"roi{i}_intensity")
        cols.append(r.intensity)
    rows: list[list[Any]] = [header]
    times = analysis.times
    for t in range(analysis.n_frames):
        rows.append([t, f"{times[t]:.6g}"] + [f"{c[t]:.6g}" for c in cols])
    return rows


def spectra_table(analysis: MotionAnalysis) -> list[list[Any]]:
    """Rows (header first): frequency, then displacement and intensity amplitude per ROI."""
    header: list[Any] = ["freq_hz"]
    cols: list[np.ndarray] = []
    for i, r in enumerate(analysis.rois, start=1):
        header += [f"roi{i}_disp_amp_px", f"roi{i}_dx_amp_px", f"roi{i}_dy_amp_px",
                   f"roi{i}_intensity_amp"]
        cols += [r.spectrum, r.spectrum_x, r.spectrum_y, r.spectrum_intensity]
        if r.noise_line is not None:
            header.append(f"roi{i}_noise_floor_px")
            cols.append(r.noise_line)
        if r.pixel_size is not None:
            header += [f"roi{i}_disp_amp_{r.unit}"]
            cols += [r.spectrum * r.pixel_size]
            if r.noise_line is not None:
                header.append(f"roi{i}_noise_floor_{r.unit}")
                cols.append(r.noise_line * r.pixel_size)
    freqs = analysis.rois[0].freqs
    return [header] + [[f"{freqs[k]:.6g}"] + [f"{c[k]:.6g}" for c in cols]
                       for k in range(len(freqs))]


def write_traces_csv(path: str | os.PathLike, analysis: MotionAnalysis) -> None:
    """Write the traces, one row per frame (see :func:`traces_table`), atomically."""
    write_text_atomic(path, rows_to_csv(traces_table(analysis)))


def write_spectra_csv(path: str | os.PathLike, analysis: MotionAnalysis) -> None:
    """Write the amplitude spectra, one row per frequency (see :func:`spectra_table`)."""
    write_text_atomic(path, rows_to_csv(spectra_table(analysis)))


def roi_title(number: int, roi: Any) -> str:
    """``ROI 2 (wrist)``, or just ``ROI 2`` when that is already the ROI's name."""
    label = roi.label()
    return label if label == f"ROI {number}" else f"ROI {number} ({label})"


def format_report(analysis: MotionAnalysis) -> str:
    """Human-readable summary, one block per ROI."""
    lines = [f"{analysis.n_frames} frames at {analysis.fps:g} fps"
             f" ({analysis.n_frames / analysis.fps:.3g} s)"]
    if analysis.calibration is not None:
        c = analysis.calibration
        lines.append(f"calibration: 1 px = {c['pixel_size']:.6g} {c['unit']} ({c['method']})")
    for i, r in enumerate(analysis.rois, start=1):
        lines.append(f"{roi_title(i, r.roi)}:")
        for msg in r.warnings:
            lines.append(f"  warning: {msg}")
        if not r.peaks:
            lines.append("  no displacement peak found")
        for k, p in enumerate(r.peaks):
            phys = f" = {p.amplitude * r.pixel_size:.4g} {r.unit}" if r.pixel_size else ""
            tag = "dominant" if k == 0 else "peak"
            lines.append(f"  {tag:8s} {p.hz:8.4g} Hz  amplitude {p.amplitude:.4g} px{phys}"
                         f"  (x {p.amplitude_x:.3g}, y {p.amplitude_y:.3g})")
            if p.noise_floor == p.noise_floor:  # not NaN
                flag = "  BELOW 3x FLOOR" if p.below_floor else ""
                lines.append(f"           noise floor {p.noise_floor:.2g} px,"
                             f" SNR {p.snr:.3g}{flag}")
        if r.band:
            lines.append(f"  suggested band {r.band[0]:.3g}-{r.band[1]:.3g} Hz")
        if r.intensity_peaks:
            p = r.intensity_peaks[0]
            lines.append(f"  intensity  {p.hz:8.4g} Hz ({60 * p.hz:.1f} BPM)"
                         f"  amplitude {p.amplitude:.4g}"
                         f"  band {r.intensity_band[0]:.3g}-{r.intensity_band[1]:.3g} Hz")
    return "\n".join(lines)


def draw_roi(ax_wave: Any, ax_spec: Any, result: RoiAnalysis, color: Any = None,
             label: str | None = None, show_band: bool = True) -> None:
    """Draw one ROI's waveform (dx solid, dy dashed) and displacement spectrum on two axes.

    Shared by ``vmm analyze --plot`` and the napari dock widget. Values are in the result's
    unit (px unless a pixel size was given).
    """
    label = label or result.roi.label()
    s, u = result.scale, result.unit
    ax_wave.plot(result.times, (result.dx - result.dx.mean()) * s, color=color, lw=1,
                 label=f"{label} x")
    ax_wave.plot(result.times, (result.dy - result.dy.mean()) * s, color=color, lw=1, ls="--",
                 label=f"{label} y")
    ax_wave.set_xlabel("time (s)")
    ax_wave.set_ylabel(f"displacement ({u})")
    ax_spec.plot(result.freqs, result.spectrum * s, color=color, lw=1, label=label)
    if result.noise_line is not None:
        ax_spec.plot(result.freqs, result.noise_line * s, color=color or "0.4", lw=0.8, ls=":",
                     label=f"{label} noise floor")
    for p in result.peaks[:3]:
        ax_spec.plot([p.hz], [p.amplitude * s], "v", color=color, ms=5)
    if show_band and result.band:
        ax_spec.axvspan(*result.band, color=color or "C0", alpha=0.12, lw=0)
    ax_spec.set_xlabel("frequency (Hz)")
    ax_spec.set_ylabel(f"amplitude ({u})")
    ax_spec.set_xlim(0, result.fps / 2)


def plot_analysis(analysis: MotionAnalysis, path: str | os.PathLike | None = None,
                  dpi: int = 120) -> Any:
    """One figure with a waveform and a spectrum per ROI (matplotlib, Agg backend).

    Parameters
    ----------
    analysis : MotionAnalysis
    path : path, optional
        Save the figure there (atomically; the format follows the extension).
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure  # no pyplot: works without a display

    n = len(analysis.rois)
    fig = Figure(figsize=(10, 2.6 * n + 0.4), layout="constrained")
    axes = fig.subplots(n, 2, squeeze=False, width_ratios=[3, 2])
    for i, r in enumerate(analysis.rois):
        color = f"C{i % 10}"
        draw_roi(axes[i, 0], axes[i, 1], r, color=color)
        title = roi_title(i + 1, r.roi)
        if r.peaks:
            title += (f" - {r.dominant_hz:.3g} Hz, {r.amplitude_px * r.scale:.3g} {r.unit}")
        axes[i, 0].set_title(title, fontsize=9, loc="left")
        axes[i, 0].legend(fontsize=7, loc="upper right")
        if r.band:
            axes[i, 1].set_title(f"suggested band {r.band[0]:.3g}-{r.band[1]:.3g} Hz",
                                 fontsize=9, loc="left")
    if path is not None:
        fmt = Path(path).suffix.lstrip(".").lower() or "png"
        from ...io.atomic import atomic_output

        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format=fmt)
    return fig
