"""The analysis itself: one pass over the frames, then spectra, peaks and bands per ROI."""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

import numpy as np

from ..errors import Cancelled, VMMError
from .calibration import Calibration
from .noise import (
    noise_density,
    peak_floors,
    quantization_step,
    rounding_density,
    trace_noise_density,
    welch_density,
)
from .results import MotionAnalysis, RoiAnalysis
from .rois import as_rois
from .spectra import amplitude_spectrum, band_for_peaks, find_peaks
from .tracking import RoiTracker, iter_crop_chunks, read_frame_crop, source_info, to_luma


def iter_analyze_motion(
    frames: Any,
    rois: Any,
    fps: float | None = None,
    *,
    reference: int = 0,
    pixel_size: float | None = None,
    unit: str = "px",
    n_peaks: int = 5,
    fmin: float | None = None,
    fmax: float | None = None,
    nperseg: int | None = None,
    max_shift: int = 8,
    chunk_frames: int = 32,
    calibration: Calibration | None = None,
    noise_reference: Any = None,
) -> Generator[tuple[int, int], None, MotionAnalysis]:
    """Generator form of :func:`analyze_motion`: yields ``(frames_done, n_frames)`` per chunk.

    Its return value (``StopIteration.value``, or a napari ``GeneratorWorker``'s ``returned``
    signal) is the :class:`MotionAnalysis`. Closing the generator stops the work.
    """
    n, (h, w), frame_ndim = source_info(frames)
    if fps is None:
        fps = getattr(frames, "fps", None)
    if fps is None or not (float(fps) > 0 and math.isfinite(float(fps))):
        raise VMMError(f"a positive frame rate is needed (fps), got {fps!r}")
    fps = float(fps)
    if calibration is not None and calibration.calibrated:
        pixel_size, unit = calibration.size, calibration.unit
    elif pixel_size is not None and calibration is None:
        calibration = Calibration(pixel_size, unit, "pixel-size", {"pixel_size": pixel_size})
    if pixel_size is not None and not (pixel_size > 0 and math.isfinite(pixel_size)):
        raise VMMError(f"pixel size must be a positive number, got {pixel_size!r}")
    if n < 8:
        raise VMMError(f"need at least 8 frames to analyse motion, got {n}")
    if not 0 <= reference < n:
        raise VMMError(f"reference frame {reference} is outside the clip (0..{n - 1})")
    roi_list = as_rois(rois)
    if noise_reference is not None:  # tracked like the ROIs, reported only through floors
        roi_list = roi_list + as_rois(noise_reference)[:1]
    max_shift = int(max(1, max_shift))

    boxes, padded, trackers, masks = [], [], [], []
    for roi in roi_list:
        box = roi.bbox((h, w))
        r0, r1, c0, c1 = box
        pad = (max(0, r0 - max_shift), min(h, r1 + max_shift),
               max(0, c0 - max_shift), min(w, c1 + max_shift))
        inner = (slice(r0 - pad[0], r1 - pad[0]), slice(c0 - pad[2], c1 - pad[2]))
        mask = roi.mask((h, w), box)
        if not mask.any():
            raise VMMError(f"ROI {roi.label()} contains no pixel centre")
        ref = to_luma(read_frame_crop(frames, reference, pad)[None], frame_ndim)[0]
        boxes.append(box)
        padded.append((pad, inner))
        trackers.append(RoiTracker(ref, inner, mask))
        masks.append(mask)

    disp = [np.zeros((n, 2)) for _ in roi_list]
    inten = [np.zeros(n) for _ in roi_list]
    done = 0
    for t0, crops in iter_crop_chunks(frames, [p for p, _ in padded], chunk_frames):
        for i, crop in enumerate(crops):
            luma = to_luma(crop, frame_ndim)
            inner = padded[i][1]
            for j, frame in enumerate(luma):
                t = t0 + j
                if t >= n:
                    break
                disp[i][t] = trackers[i].track(frame, disp[i][t - 1] if t else np.zeros(2))
                inten[i][t] = frame[inner][masks[i]].mean()
        done = min(n, t0 + len(crops[0]) if crops else n)
        yield done, n
    if done < n:
        raise VMMError(f"the source ended after {done} of {n} frames")

    ref_dens = None
    if noise_reference is not None:
        ref_tr, ref_d = trackers.pop(), disp.pop()
        inten.pop()
        ref_name = roi_list.pop().label()
        if ref_tr.ok:
            f_, psd, _, n_avg = welch_density(ref_d[:, ::-1].T, fps, nperseg)
            ref_dens = noise_density(f_, psd, [], n_avg)
    sigma_q = quantization_step(getattr(frames, "dtype", np.float32),
                                frames.shape[-1] if frame_ndim == 3 else 1)
    results = []
    for roi, d, it, tr in zip(roi_list, disp, inten, trackers, strict=True):
        dy, dx = d[:, 0], d[:, 1]
        freqs, amp_xy = amplitude_spectrum(np.stack([dx, dy]), fps, nperseg)
        _, combined, peaks = find_peaks(np.stack([dx, dy]), fps, n_peaks, fmin, fmax, nperseg)
        _, spec_i, ipeaks = find_peaks(it, fps, n_peaks, fmin, fmax, nperseg)
        warnings = [] if tr.ok else [
            f"{roi.label()} has too little texture to track: displacement set to 0"]
        traces = np.stack([dx, dy])
        own = trace_noise_density(traces, fps, [p.hz for p in peaks], nperseg)
        lower = None
        if tr.ok:
            lower = rounding_density(traces, fps, own[1], tr.hess_inv, sigma_q,
                                     (tr.gx, tr.gy))
            if ref_dens is not None:  # tracking noise scales with the inverse Hessian
                ratio = np.diag(tr.hess_inv)[::-1] / np.diag(ref_tr.hess_inv)[::-1]  # (x, y)
                lower = np.maximum(lower, ref_dens * ratio[:, None])
        _, line = peak_floors(traces, fps, peaks, nperseg, lower, own=own)
        results.append(RoiAnalysis(
            roi=roi, fps=fps, dx=dx, dy=dy, intensity=it, freqs=freqs, spectrum=combined,
            spectrum_x=amp_xy[0], spectrum_y=amp_xy[1], spectrum_intensity=spec_i,
            peaks=peaks, intensity_peaks=ipeaks,
            band=band_for_peaks(freqs, combined, peaks, fps, n),
            intensity_band=band_for_peaks(freqs, spec_i, ipeaks, fps, n),
            pixel_size=pixel_size, unit=unit if pixel_size is not None else "px",
            warnings=warnings, noise_line=line))
    return MotionAnalysis(results, fps, n, pixel_size, unit if pixel_size is not None else "px",
                          calibration.to_dict() if pixel_size is not None else None,
                          ref_name if noise_reference is not None else None)


def analyze_motion(
    frames: Any,
    rois: Any,
    fps: float | None = None,
    *,
    progress: Callable[[int, int], Any] | None = None,
    **options: Any,
) -> MotionAnalysis:
    """Displacement, intensity, spectra, peaks and a suggested band for each ROI.

    Parameters
    ----------
    frames : array-like (T, H, W) or (T, H, W, C), or a video source
        numpy (uint8, uint16, float), a memory map, a dask array, or a
        ``napari_vmm.io`` source (``iter_chunks``, ``fps``). Colour is reduced to luma.
    rois : ROIs in any form :func:`as_rois` accepts.
    fps : float, optional
        Frame rate in Hz; taken from ``frames.fps`` when omitted.
    progress : callable(done, total), optional
        Called after each chunk; returning ``False`` stops with :class:`Cancelled`.
    **options
        ``reference`` (frame index, 0), ``pixel_size`` and ``unit`` (physical units) or
        ``calibration`` (a :class:`~.calibration.Calibration`, recorded as provenance),
        ``noise_reference`` (a static ROI whose motion is all noise: its floor, scaled by
        texture, raises the ROIs' floors where it is higher),
        ``n_peaks`` (5), ``fmin``/``fmax`` (peak search range, Hz), ``nperseg`` (Welch segment),
        ``max_shift`` (px margin read around each ROI, 8), ``chunk_frames`` (32).

    Returns
    -------
    MotionAnalysis
    """
    return drive(iter_analyze_motion(frames, rois, fps, **options), progress)


def drive(gen: Generator[tuple[int, int], None, Any],
          progress: Callable[[int, int], Any] | None = None) -> Any:
    """Run an ``iter_analyze_*`` generator to its end; return its value.

    ``progress(done, total)`` is called after each step; returning ``False`` closes the
    generator and raises :class:`Cancelled`.
    """
    try:
        while True:
            done, total = next(gen)
            if progress is not None and progress(done, total) is False:
                gen.close()
                raise Cancelled("analysis cancelled")
    except StopIteration as stop:
        return stop.value
