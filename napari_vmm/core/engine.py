"""The engine: one pipeline, two paths (streaming and whole clip).

- **Streaming** (:class:`StreamingMagnifier`, and :func:`magnify` with a causal filter): frames
  go through in chunks, the temporal filter carries its state, and memory does not depend on
  the clip length.
- **Whole clip** (:func:`magnify` with ``temporal="ideal"`` or ``zero_phase=True``): the frame
  is cut into spatial tiles with a halo; each tile's motion signal over all T frames is
  filtered at once. Tiles are sized so that the signal fits ``memory_budget`` bytes.

Both paths call the same magnifier ``encode``/``decode`` and the same filter, so where the
filter is the same (e.g. causal Butterworth) they give the same result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from .errors import Cancelled, VMMError
from .frames import check_dtype, check_frame_shape, from_float, to_float
from .registry import get_method, resolve_options
from .temporal import CAUSAL_FILTERS, IdealFilter, make_filter

MAX_ALPHA = 1000.0
DEFAULT_MEMORY_BUDGET = 1 << 30  # bytes of motion signal held by the whole-clip path
#: The ``ideal`` filter runs as a projection onto an orthonormal basis of its pass band when
#: the basis has at most ``max(PROJECTION_RANK, T // 5)`` vectors (0: never, FFT over T).
PROJECTION_RANK = 32
#: Frames of motion signal filtered by one matrix product on the projection route.
PROJECTION_BLOCK = 16
#: Motion signal held per pixel on the FFT route: the signal, its filtered copy and the FFT.
FFT_SIGNAL_FACTOR = 2.5

ProgressCallback = Callable[[int, int], "bool | None"]


def resolve_device(device: str | Any = "cpu"):
    """Return a torch device, refusing CUDA when it is not available."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise VMMError(f"unknown device {device!r}; use 'cpu' or 'cuda'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise VMMError(
            "device 'cuda' was asked for but no CUDA GPU is available; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise VMMError(f"unsupported device {device!r}; use 'cpu' or 'cuda'")
    return dev


def check_alpha(alpha: float) -> float:
    """Alpha must be finite, above -1 (attenuation down to a freeze) and at most 1000."""
    try:
        alpha = float(alpha)
    except (TypeError, ValueError):
        raise VMMError(f"alpha must be a number, got {alpha!r}") from None
    if not math.isfinite(alpha) or alpha <= -1 or alpha > MAX_ALPHA:
        raise VMMError(
            f"alpha {alpha:g} is out of range: it must be > -1 and <= {MAX_ALPHA:g} "
            "(output motion = (1 + alpha) x input motion)"
        )
    return alpha


def default_chunk(height: int, width: int) -> int:
    """Frames per chunk: about 2 megapixels of frames at a time, 1 to 16 frames."""
    return int(max(1, min(16, 2_000_000 // max(1, height * width))))


class _Pipeline:
    """Colour/dtype handling around a magnifier and a temporal filter."""

    def __init__(self, *, fps: float, method: str, alpha: float, band, temporal: str, mode: str,
                 reference: int, device, roi_mask, order: int, taps: int | None,
                 zero_phase: bool, method_options: dict[str, Any]) -> None:
        import torch

        self.torch = torch
        self.device = resolve_device(device)
        cls = get_method(method)
        options = resolve_options(method, method_options)
        self.magnifier = cls(check_alpha(alpha), self.device, **options)
        self.filter = make_filter(temporal, band, fps, mode=mode, reference=reference,
                                  order=order, taps=taps, zero_phase=zero_phase)
        self.roi_mask = None if roi_mask is None else np.asarray(roi_mask, dtype=np.float32)
        if self.roi_mask is not None and (
            self.roi_mask.ndim != 2 or not np.isfinite(self.roi_mask).all()
        ):
            raise VMMError("roi_mask must be a finite 2-D (H, W) array of weights in [0, 1]")

    def reset(self) -> None:
        self.magnifier.reset()
        self.filter.reset()

    # -- colour ---------------------------------------------------------------------------
    def prepare(self, chunk: np.ndarray):
        """(N,H,W[,C]) array -> (x_in, rest): tensors (N,C',H,W) for the magnifier."""
        from .frames import rgb_to_yiq

        torch = self.torch
        x = torch.from_numpy(np.ascontiguousarray(to_float(chunk))).to(self.device)
        x = x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2)
        mag = self.magnifier
        if x.shape[1] == 3 and mag.color_space == "yiq":
            x = rgb_to_yiq(x)
        if mag.luma_only and x.shape[1] == 3:
            return x[:, :1].contiguous(), x[:, 1:]
        return x, None

    def finish(self, y, rest, like: np.ndarray, crop=None, region=None) -> np.ndarray:
        """Tensors back to the input's layout and dtype, with the ROI blend.

        ``crop`` cuts the tile's halo off ``y``; ``region`` is the (y0, y1, x0, x1) box of
        ``like`` in the full frame, for the ROI mask.
        """
        from .frames import yiq_to_rgb

        if rest is not None:
            y = self.torch.cat([y, rest], dim=1)
        if y.shape[1] == 3 and self.magnifier.color_space == "yiq":
            y = yiq_to_rgb(y)
        if crop is not None:
            y = y[..., crop[0]:crop[1], crop[2]:crop[3]]
        out = y.permute(0, 2, 3, 1).detach().cpu().numpy()
        if like.ndim == 3:
            out = out[..., 0]
        if self.roi_mask is not None:
            original = to_float(like)
            mask = self._mask_for(original.shape[1:3], region)
            mask = mask if like.ndim == 3 else mask[..., None]
            out = original + mask * (out - original)
        return from_float(out, like.dtype)

    def _mask_for(self, hw, region=None) -> np.ndarray:
        mask = self.roi_mask
        if region is not None:
            mask = mask[region[0]:region[1], region[2]:region[3]]
        if mask.shape != tuple(hw):
            raise VMMError(f"roi_mask has shape {mask.shape}, frames are {tuple(hw)}")
        return mask

    # -- the motion signal as one (N, K) tensor, so the filter runs once per frame ---------
    def flatten(self, signal: list) -> Any:
        if len(signal) == 1:  # a view: the filters never write to their input
            return signal[0].reshape(signal[0].shape[0], -1)
        return self.torch.cat([s.reshape(s.shape[0], -1) for s in signal], dim=1)

    @staticmethod
    def unflatten(flat, like: list) -> list:
        sizes = [s[0].numel() for s in like]
        parts = flat.split(sizes, dim=1)
        return [p.reshape((flat.shape[0],) + tuple(s.shape[1:])) for p, s in zip(parts, like,
                                                                                  strict=True)]

    # -- one chunk of the stream -----------------------------------------------------------
    def stream_chunk(self, chunk: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            x, rest = self.prepare(chunk)
            signal, ctx = self.magnifier.encode(x)
            filtered = self.unflatten(self.filter.step(self.flatten(signal)), signal)
            y = self.magnifier.decode(x, filtered, ctx)
            return self.finish(y, rest, chunk)


class StreamingMagnifier:
    """Streaming magnification: push chunks of frames, get the magnified chunks back.

    Parameters
    ----------
    fps : float
        Frame rate in Hz.
    method : str
        A name from :func:`available_methods`.
    alpha : float
        Output displacement is ``(1 + alpha)`` times the input displacement.
    band : (float, float)
        Pass band in Hz.
    temporal : str
        A causal filter: ``butterworth``, ``fir``, ``iir`` or ``none``.
    mode : str
        ``temporal``, ``static`` (difference to the first frame) or ``dynamic``.
    device : str
        ``cpu`` or ``cuda``.
    roi_mask : ndarray (H, W), optional
        Weights in [0, 1]; the output is ``input + mask * (magnified - input)``.
    **method_options
        Options of the method (see :func:`available_methods`).

    Examples
    --------
    >>> sm = StreamingMagnifier(fps=30, method="riesz", alpha=10, band=(0.5, 3))
    >>> for chunk in chunks:                       # doctest: +SKIP
    ...     write(sm.push(chunk))
    """

    def __init__(self, fps: float, method: str = "riesz", alpha: float = 10.0,
                 band: tuple[float, float] | None = (0.5, 3.0), temporal: str = "butterworth",
                 mode: str = "temporal", reference: int = 0, device: str = "cpu",
                 roi_mask: np.ndarray | None = None, order: int = 2, taps: int | None = None,
                 **method_options: Any) -> None:
        if mode == "temporal" and temporal not in CAUSAL_FILTERS:
            raise VMMError(
                f"the {temporal!r} filter needs the whole clip; streams take a causal filter "
                f"({', '.join(CAUSAL_FILTERS)})"
            )
        self._pipeline = _Pipeline(fps=fps, method=method, alpha=alpha, band=band,
                                   temporal=temporal, mode=mode, reference=reference,
                                   device=device, roi_mask=roi_mask, order=order, taps=taps,
                                   zero_phase=False, method_options=method_options)
        self._shape: tuple[int, ...] | None = None
        self._dtype: np.dtype | None = None
        self.frames_in = 0

    def push(self, frames: np.ndarray) -> np.ndarray:
        """Magnify the next chunk (N, H, W[, C]); returns N frames of the same shape and dtype."""
        frames = np.asarray(frames)
        if self._shape is None:
            check_frame_shape(frames.shape)
            self._dtype = check_dtype(frames.dtype)
            self._shape = frames.shape[1:]
        elif frames.shape[1:] != self._shape or frames.dtype != self._dtype:
            raise VMMError(
                f"frame shape/dtype changed mid-stream: {frames.shape[1:]} {frames.dtype}, "
                f"expected {self._shape} {self._dtype}"
            )
        if frames.shape[0] == 0:
            return frames.copy()
        self.frames_in += frames.shape[0]
        return self._pipeline.stream_chunk(frames)

    def flush(self) -> np.ndarray:
        """Frames still held back (none for causal filters)."""
        shape = (0,) + (self._shape or (0, 0))
        return np.empty(shape, dtype=self._dtype or np.float32)


def _is_stream(frames: Any) -> bool:
    return not hasattr(frames, "shape") and isinstance(frames, (Iterator, Iterable))


def tile_alignment(halo: int) -> int:
    """Multiple of which tiles start, for a magnifier's ``spatial_support`` of ``halo`` px.

    The pyramids' support is ``2^levels x 4`` px plus extras that keep it a multiple of
    ``2^levels``, so the largest power of two <= ``halo / 4`` is their decimation step: tiles
    (and their halo windows) that start on it sample the whole frame's pyramid grid.
    """
    return 1 << max(0, int(math.log2(max(1, halo // 4))))


def _tiles(h: int, w: int, tile: int, halo: int, periodic: bool = False):
    """(core window, halo window) pairs covering an (h, w) frame.

    The halo window is clamped at the frame edges, or with ``periodic`` wraps around them
    (its bounds then run below 0 or past the frame; :func:`_read` wraps them).
    """
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(h, y0 + tile), min(w, x0 + tile)
            if periodic:
                yield (y0, y1, x0, x1), (y0 - halo, y1 + halo, x0 - halo, x1 + halo)
                continue
            yield (y0, y1, x0, x1), (max(0, y0 - halo), min(h, y1 + halo),
                                     max(0, x0 - halo), min(w, x1 + halo))


def _read(frames, t0: int, t1: int, window=None) -> np.ndarray:
    if window is None:
        return np.asarray(frames[t0:t1])
    h, w = frames.shape[1:3]
    if window[0] < 0 or window[2] < 0 or window[1] > h or window[3] > w:  # periodic halo
        rows = np.arange(window[0], window[1]) % h
        cols = np.arange(window[2], window[3]) % w
        return np.asarray(frames[t0:t1])[:, rows][:, :, cols]
    return np.asarray(frames[t0:t1, window[0]:window[1], window[2]:window[3]])


def iter_magnify(frames, out: np.ndarray, fps: float, method: str = "phase",
                 alpha: float = 20.0, band: tuple[float, float] | None = (0.5, 3.0),
                 temporal: str = "ideal", mode: str = "temporal", reference: int = 0,
                 device: str = "cpu", roi_mask: np.ndarray | None = None, order: int = 2,
                 taps: int | None = None, zero_phase: bool = False,
                 chunk_size: int | None = None, memory_budget: int = DEFAULT_MEMORY_BUDGET,
                 tile_size: int | None = None, path: str = "auto",
                 **method_options: Any) -> Iterator[tuple[int, int]]:
    """Magnify ``frames`` into ``out``, yielding ``(done, total)`` after every chunk.

    Same parameters as :func:`magnify`; ``out`` is a preallocated array (or any writable array
    with numpy slicing) of the input's shape and dtype. Stopping the generator stops the work
    within one chunk. ``path`` forces the ``"stream"`` or ``"whole"`` path (default: the
    streaming path whenever the filter is causal).
    """
    shape = tuple(frames.shape)
    h, w, _ = check_frame_shape(shape)
    check_dtype(frames.dtype)
    if tuple(out.shape) != shape:
        raise VMMError(f"out has shape {tuple(out.shape)}, expected {shape}")
    n = shape[0]
    pipeline = _Pipeline(fps=fps, method=method, alpha=alpha, band=band, temporal=temporal,
                         mode=mode, reference=reference, device=device, roi_mask=roi_mask,
                         order=order, taps=taps, zero_phase=zero_phase,
                         method_options=method_options)
    if pipeline.roi_mask is not None:
        pipeline._mask_for((h, w))
    chunk = chunk_size or default_chunk(h, w)
    needs_whole = not pipeline.filter.causal or (mode == "static" and reference != 0)
    if path not in ("auto", "stream", "whole"):
        raise VMMError(f"path must be 'auto', 'stream' or 'whole', got {path!r}")
    if path == "stream" and needs_whole:
        raise VMMError("this filter needs the whole clip; it cannot run on the streaming path")
    if path != "whole" and not needs_whole:
        pipeline.reset()
        for t0 in range(0, n, chunk):
            t1 = min(n, t0 + chunk)
            out[t0:t1] = pipeline.stream_chunk(_read(frames, t0, t1))
            yield t1, n
        return
    yield from _whole_clip(frames, out, pipeline, chunk, memory_budget, tile_size)


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


def _projection_block(n: int, chunk: int) -> int:
    return min(n, chunk * max(1, PROJECTION_BLOCK // chunk))


def whole_signal_frames(filt: Any, n: int, chunk: int) -> float:
    """Frames of motion signal per pixel the whole-clip path holds for an ``n``-frame clip.

    The basis coefficients and one block of frames on the projection route
    (:func:`band_basis`), else ``FFT_SIGNAL_FACTOR * n`` (signal, filtered copy, FFT).
    """
    basis = band_basis(filt, n)
    if basis is None:
        return FFT_SIGNAL_FACTOR * n
    return basis.shape[1] + _projection_block(n, chunk)


def _whole_clip(frames, out, pipeline: _Pipeline, chunk: int, memory_budget: int,
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
        x, _ = pipeline.prepare(_read(frames, 0, 1))
        signal, _ = mag.encode(x)
        per_px = sum(s.numel() * s.element_size() for s in signal) / (h * w)
    basis = band_basis(pipeline.filter, n)
    block = _projection_block(n, chunk)
    # Keep the held signal (whole_signal_frames: coefficients and a block, or signal,
    # filtered copy and FFT) within the budget.
    held = FFT_SIGNAL_FACTOR * n if basis is None else basis.shape[1] + block
    max_area = memory_budget / max(1.0, held * per_px)
    if (tile_size is None and h * w > max_area) or (tile_size or max(h, w)) < max(h, w):
        auto = not mag.opts.get("levels")
        mag.opts.update(mag.frame_options(h, w))  # tiles build the whole frame's pyramid
        # Automatic depth, tiles from the budget: the deepest pyramid whose halo still leaves
        # 32 px tiles (the same depth in every tile, so no seams).
        while (auto and tile_size is None and mag.opts.get("levels", 0) > 2
               and int(math.sqrt(max_area)) - 2 * mag.spatial_support < 32):
            mag.opts["levels"] -= 1
    if tile_size is None:
        if h * w <= max_area:
            tile_size = max(h, w)
        else:
            tile_size = int(math.sqrt(max_area)) - 2 * mag.spatial_support
            if tile_size < 32:
                raise VMMError(
                    f"the {n}-frame clip needs more than memory_budget={memory_budget} bytes "
                    "for whole-clip filtering even with 32 px tiles; use a causal filter or a "
                    "larger budget"
                )
    halo = 0 if tile_size >= max(h, w) else mag.spatial_support
    if halo:
        step = tile_alignment(halo)
        tile_size = max(step, tile_size // step * step)
    tiles = list(_tiles(h, w, tile_size, halo, mag.boundary == "periodic"))
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
                x, _ = pipeline.prepare(_read(frames, t0, t1, window))
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
                block_in = _read(frames, t0, t1, window)
                x, rest = pipeline.prepare(block_in)
                signal, ctx = mag.encode(x)
                y = mag.decode(x, pipeline.unflatten(part.to(signal[0].dtype), signal), ctx)
                core_block = block_in[:, crop[0]:crop[1], crop[2]:crop[3]]
                out[t0:t1, core[0]:core[1], core[2]:core[3]] = pipeline.finish(
                    y, rest, core_block, crop=crop, region=core)
                done += 1
                yield done, total


def magnify(frames, fps: float, method: str = "phase", alpha: float = 20.0,
            band: tuple[float, float] | None = (0.5, 3.0), temporal: str = "ideal",
            mode: str = "temporal", reference: int = 0, device: str = "cpu",
            roi_mask: np.ndarray | None = None, progress: ProgressCallback | None = None,
            **options: Any):
    """Magnify the motion in a time series.

    Parameters
    ----------
    frames : array-like (T, H, W) or (T, H, W, C), or an iterable of frames
        C is 1 or 3 (RGB, processed in YIQ); dtype uint8, uint16, float32 or float64. NumPy,
        dask or any array with NumPy slicing. An iterable of (H, W[, C]) frames is streamed:
        the result is then a generator of frames and the filter must be causal.
    fps : float
        Frame rate in Hz (the true capture rate).
    method : str
        A name from :func:`available_methods` (``linear``, ``phase``, ``riesz``, learned ...).
    alpha : float
        Magnification, Wu et al. Eq. 1: output displacement = ``(1 + alpha)`` x input.
    band : (float, float)
        Temporal pass band in Hz; below Nyquist.
    temporal : str
        ``ideal`` (whole clip), ``butterworth``, ``fir``, ``iir`` or ``none``.
    mode : str
        ``temporal`` (use ``temporal``), ``static`` (motion relative to frame ``reference``)
        or ``dynamic`` (relative to the previous frame).
    device : str
        ``cpu`` (default) or ``cuda``.
    roi_mask : ndarray (H, W), optional
        Magnify only where the mask is > 0 (feathered weights in [0, 1]).
    progress : callable(done, total), optional
        Called after each chunk; returning ``False`` cancels with :class:`Cancelled`.
    **options
        Engine options ``order`` (Butterworth), ``taps`` (FIR), ``zero_phase``, ``chunk_size``,
        ``memory_budget``, ``tile_size``, and the method's own options.

    Returns
    -------
    ndarray or dask.array.Array
        Same shape and dtype as ``frames`` (a generator of frames for iterable input). A dask
        array in gives a lazy dask array out, with the same chunks, computed on whatever
        scheduler computes it (see :func:`napari_vmm.core.parallel.magnify_dask`; ``progress``
        is not called then).

    Raises
    ------
    VMMError
        Bad input or parameters, with a message that names the problem.
    """
    if _is_stream(frames):
        return _magnify_stream(iter(frames), fps=fps, method=method, alpha=alpha, band=band,
                               temporal=temporal, mode=mode, device=device,
                               roi_mask=roi_mask, **options)
    if not hasattr(frames, "shape"):
        raise VMMError(
            f"frames must be an array or an iterable of frames, got {type(frames).__name__}")
    if hasattr(frames, "dask"):  # dask in, dask out: lazy, same chunks (core.parallel)
        from .parallel import magnify_dask

        return magnify_dask(frames, fps=fps, method=method, alpha=alpha, band=band,
                            temporal=temporal, mode=mode, reference=reference, device=device,
                            roi_mask=roi_mask, **options)
    frames = np.asarray(frames)
    out = np.empty_like(frames)
    gen = iter_magnify(frames, out, fps=fps, method=method, alpha=alpha, band=band,
                       temporal=temporal, mode=mode, reference=reference, device=device,
                       roi_mask=roi_mask, **options)
    for done, total in gen:
        if progress is not None and progress(done, total) is False:
            gen.close()
            raise Cancelled("magnification cancelled")
    return out


def _magnify_stream(frames: Iterator[np.ndarray], **kwargs: Any) -> Iterator[np.ndarray]:
    chunk_size = kwargs.pop("chunk_size", None)
    for key in ("memory_budget", "tile_size", "zero_phase", "path"):
        kwargs.pop(key, None)
    sm: StreamingMagnifier | None = None
    buf: list[np.ndarray] = []
    for frame in frames:
        frame = np.asarray(frame)
        if sm is None:
            sm = StreamingMagnifier(**kwargs)
            chunk_size = chunk_size or default_chunk(frame.shape[0], frame.shape[1])
        buf.append(frame)
        if len(buf) >= chunk_size:
            yield from sm.push(np.stack(buf))
            buf.clear()
    if buf and sm is not None:
        yield from sm.push(np.stack(buf))
