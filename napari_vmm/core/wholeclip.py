"""The whole-clip path: spatial tiles with a halo, each filtered over all T frames.

Non-causal filters (``ideal``, zero-phase Butterworth/FIR) and the static mode with a
reference other than frame 0 need every frame of a pixel at once. The frame is cut into tiles
(:func:`napari_vmm.core.plan.whole_clip_tiles`) so that the motion signal held fits
``memory_budget`` bytes; the ``ideal`` filter runs as a projection onto its band's basis
(:func:`band_basis`) when that is cheaper than an FFT over T.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from .pipeline import Pipeline
from .plan import FFT_SIGNAL_FACTOR, whole_clip_tiles
from .temporal import IdealFilter

#: The ``ideal`` filter runs as a projection onto an orthonormal basis of its pass band when
#: the basis has at most ``max(PROJECTION_RANK, T // 5)`` vectors (0: never, FFT over T).
PROJECTION_RANK = 32
#: Frames of motion signal filtered by one matrix product on the projection route.
PROJECTION_BLOCK = 16

def read_frames(frames, t0: int, t1: int, window=None) -> np.ndarray:
    if window is None:
        return np.asarray(frames[t0:t1])
    h, w = frames.shape[1:3]
    if window[0] < 0 or window[2] < 0 or window[1] > h or window[3] > w:  # periodic halo
        rows = np.arange(window[0], window[1]) % h
        cols = np.arange(window[2], window[3]) % w
        return np.asarray(frames[t0:t1])[:, rows][:, :, cols]
    return np.asarray(frames[t0:t1, window[0]:window[1], window[2]:window[3]])



def band_basis(filt: Any, n: int) -> np.ndarray | None:
    """Orthonormal basis (n, r) of an ``ideal`` filter's pass band over ``n`` frames, or None.

    The ideal filter keeps the DFT bins inside the band, so ``filt.whole(x) == B @ (B.T @ x)``
    where B's columns are the cosines and sines of the kept bins. Holding the coefficients
    ``B.T @ x`` (r values per signal element, accumulated frame by frame) replaces holding
    the signal over all T, and two small matrix products replace the FFTs along time.

    Returns None for other filters, when r exceeds ``max(PROJECTION_RANK, n // 5)`` (the FFT
    is then cheaper), or when the basis does not reproduce ``filt.whole`` on a random probe.
    """
    if not PROJECTION_RANK or not isinstance(filt, IdealFilter):
        return None
    freqs = np.fft.rfftfreq(n, d=1.0 / filt.fps)
    kept = np.nonzero((freqs >= filt.low) & (freqs <= filt.high))[0]
    inner = kept[(kept > 0) & (2 * kept < n)]  # 0 Hz and Nyquist have no sine
    t = 2 * np.pi * np.arange(n)[:, None] / n
    cols = np.concatenate([np.cos(t * kept), np.sin(t * inner)], axis=1)
    basis = cols / np.linalg.norm(cols, axis=0)
    if basis.shape[1] > max(PROJECTION_RANK, n // 5):
        return None
    import torch

    probe = np.random.default_rng(0).standard_normal((n, 2))
    expected = filt.whole(torch.from_numpy(probe)).numpy()
    if not np.allclose(basis @ (basis.T @ probe), expected, atol=1e-6 * math.sqrt(n)):
        return None  # the filter is no longer this projection: take the FFT route
    return basis


def projection_block(n: int, chunk: int) -> int:
    return min(n, chunk * max(1, PROJECTION_BLOCK // chunk))


def whole_signal_frames(filt: Any, n: int, chunk: int) -> float:
    """Frames of motion signal per pixel the whole-clip path holds for an ``n``-frame clip.

    The basis coefficients and one block of frames on the projection route
    (:func:`band_basis`), else ``FFT_SIGNAL_FACTOR * n`` (signal, filtered copy, FFT).
    """
    return held_frames(band_basis(filt, n), n, chunk)


def held_frames(basis: np.ndarray | None, n: int, chunk: int) -> float:
    """:func:`whole_signal_frames` for a basis already computed (None: the FFT route)."""
    if basis is None:
        return FFT_SIGNAL_FACTOR * n
    return basis.shape[1] + projection_block(n, chunk)


def whole_clip(frames, out, pipeline: Pipeline, chunk: int, memory_budget: int,
               tile_size: int | None) -> Iterator[tuple[int, int]]:
    """Whole-clip path: spatial tiles with a halo, each filtered over all T frames.

    Each tile is read twice: pass 1 encodes it and filters its signal (FFT along T, or the
    projection's coefficients for ``ideal``), pass 2 encodes it again and decodes it.
    """
    torch = pipeline.torch
    n, h, w = frames.shape[:3]
    mag = pipeline.magnifier
    with torch.inference_mode():
        # Bytes of motion signal per pixel per frame, measured on the first frame.
        pipeline.reset()
        x, _ = pipeline.prepare(read_frames(frames, 0, 1))
        signal, _ = mag.encode(x)
        per_px = sum(s.numel() * s.element_size() for s in signal) / (h * w)
    basis = band_basis(pipeline.filter, n)
    block = projection_block(n, chunk)
    # Keep the held signal (whole_signal_frames: coefficients and a block, or signal,
    # filtered copy and FFT) within the budget.
    held = held_frames(basis, n, chunk)
    tiles = whole_clip_tiles(mag, n, h, w, held * per_px, memory_budget, tile_size)
    total = len(tiles) * 2 * math.ceil(n / chunk)
    done = 0
    if basis is not None:
        basis = torch.as_tensor(basis, dtype=torch.float32, device=pipeline.device)
    with torch.inference_mode():
        for core, window in tiles:
            crop = (core[0] - window[0], core[1] - window[0], core[2] - window[2],
                    core[3] - window[2])
            # Pass 1: the tile's signal, filtered over T (or its basis coefficients).
            pipeline.reset()
            parts, coeffs, b0 = [], None, 0
            for t0 in range(0, n, chunk):
                t1 = min(n, t0 + chunk)
                x, _ = pipeline.prepare(read_frames(frames, t0, t1, window))
                signal, _ = mag.encode(x)
                parts.append(pipeline.flatten(signal))
                if basis is not None and (t1 - b0 >= block or t1 == n):
                    sig = parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)
                    if coeffs is None:
                        coeffs = sig.new_zeros((basis.shape[1], sig.shape[1]))
                    coeffs.addmm_(basis[b0:t1].T, sig.to(basis.dtype))
                    parts, b0 = [], t1
                done += 1
                yield done, total
            filtered = None if basis is not None else pipeline.filter.whole(torch.cat(parts))
            del parts
            # Pass 2: encode again and decode with the filtered signal.
            pipeline.reset()
            b0, b1 = 0, 0
            for t0 in range(0, n, chunk):
                t1 = min(n, t0 + chunk)
                if basis is not None and t0 >= b1:  # the next block of the filtered signal
                    b0, b1 = t0, min(n, t0 + block)
                    filtered = torch.mm(basis[b0:b1], coeffs)
                part = filtered[t0 - b0:t1 - b0]
                block_in = read_frames(frames, t0, t1, window)
                x, rest = pipeline.prepare(block_in)
                signal, ctx = mag.encode(x)
                y = mag.decode(x, pipeline.unflatten(part.to(signal[0].dtype), signal), ctx)
                core_block = block_in[:, crop[0]:crop[1], crop[2]:crop[3]]
                out[t0:t1, core[0]:core[1], core[2]:core[3]] = pipeline.finish(
                    x, y, rest, core_block, crop=crop, region=core)
                done += 1
                yield done, total
