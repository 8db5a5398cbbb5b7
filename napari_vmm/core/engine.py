"""The engine's entrances for NumPy arrays and iterables: :func:`magnify`, :func:`iter_magnify`.

The keywords are read into one :class:`~napari_vmm.core.params.MagnifyParams`, which builds a
:class:`~napari_vmm.core.pipeline.Pipeline`; :func:`~napari_vmm.core.route.choose_route`
decides the path:

- **Streaming** (:class:`StreamingMagnifier`, and :func:`magnify` with a causal filter): frames
  go through in chunks, the temporal filter carries its state, and memory does not depend on
  the clip length.
- **Whole clip** (:mod:`.wholeclip`: ``temporal="ideal"``, ``zero_phase=True``, or the static
  mode against a frame other than 0): the frame is cut into spatial tiles with a halo; each
  tile's motion signal over all T frames is filtered at once. Tiles are sized so that the
  signal fits ``memory_budget`` bytes (:func:`napari_vmm.core.plan.whole_clip_tiles`).

Both paths call the same magnifier ``encode``/``decode`` and the same filter, so where the
filter is the same (e.g. causal Butterworth) they give the same result. Dask arrays stay lazy
through :func:`napari_vmm.magnify` (:mod:`napari_vmm.scale`); this module never imports Dask.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from .errors import Cancelled, VMMError
from .frames import check_dtype, check_frame_shape
from .params import (
    ARRAY_ALPHA,
    ARRAY_METHOD,
    ARRAY_TEMPORAL,
    DEFAULT_BAND,
    MAX_ALPHA,
    MagnifyParams,
    check_alpha,
)
from .pipeline import Pipeline, StreamingMagnifier, resolve_device
from .plan import DEFAULT_MEMORY_BUDGET, default_chunk
from .route import STREAM, choose_route
from .wholeclip import band_basis, read_frames, whole_clip, whole_signal_frames

__all__ = ["DEFAULT_MEMORY_BUDGET", "MAX_ALPHA", "Pipeline", "StreamingMagnifier", "band_basis",
           "check_alpha", "default_chunk", "iter_magnify", "magnify", "resolve_device",
           "whole_signal_frames"]

ProgressCallback = Callable[[int, int], "bool | None"]


def _is_stream(frames: Any) -> bool:
    return not hasattr(frames, "shape") and isinstance(frames, (Iterator, Iterable))


def iter_magnify(frames, out: np.ndarray, fps: float, method: str = ARRAY_METHOD,
                 alpha: float = ARRAY_ALPHA, band: tuple[float, float] | None = DEFAULT_BAND,
                 temporal: str = ARRAY_TEMPORAL, mode: str = "temporal", reference: int = 0,
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
    params = MagnifyParams(fps=fps, method=method, alpha=alpha, band=band, temporal=temporal,
                           mode=mode, reference=reference, device=device, order=order,
                           taps=taps, zero_phase=zero_phase, options=method_options)
    pipeline = Pipeline(params, roi_mask)
    if pipeline.roi_mask is not None:
        pipeline.mask_for((h, w))
    chunk = chunk_size or default_chunk(h, w)
    if path not in ("auto", "stream", "whole"):
        raise VMMError(f"path must be 'auto', 'stream' or 'whole', got {path!r}")
    route = choose_route(params, shape, path=path)
    if route.kind == STREAM:
        pipeline.reset()
        for t0 in range(0, n, chunk):
            t1 = min(n, t0 + chunk)
            out[t0:t1] = pipeline.stream_chunk(read_frames(frames, t0, t1))
            yield t1, n
        return
    yield from whole_clip(frames, out, pipeline, chunk, memory_budget, tile_size)


def magnify(frames, fps: float, method: str = ARRAY_METHOD, alpha: float = ARRAY_ALPHA,
            band: tuple[float, float] | None = DEFAULT_BAND, temporal: str = ARRAY_TEMPORAL,
            mode: str = "temporal", reference: int = 0, device: str = "cpu",
            roi_mask: np.ndarray | None = None, progress: ProgressCallback | None = None,
            **options: Any):
    """Magnify the motion in a time series.

    Parameters
    ----------
    frames : array-like (T, H, W) or (T, H, W, C), or an iterable of frames
        C is 1 or 3 (RGB, processed in YIQ); dtype uint8, uint16, float32 or float64. NumPy
        or any array with NumPy slicing (a dask array is computed here; the top-level
        :func:`napari_vmm.magnify` keeps it lazy). An iterable of (H, W[, C]) frames is
        streamed: the result is then a generator of frames and the filter must be causal
        (the static mode's ``reference`` frame is waited for: frames before it are held).
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
        Called after each chunk; returning ``False`` cancels with :class:`Cancelled`. For an
        iterable, ``done`` counts the frames read so far and ``total`` is None (unknown);
        the generator raises :class:`Cancelled` after handing out that chunk.
    **options
        Engine options ``order`` (Butterworth), ``taps`` (FIR), ``zero_phase``, ``chunk_size``,
        ``memory_budget``, ``tile_size``, and the method's own options.

    Returns
    -------
    ndarray
        Same shape and dtype as ``frames`` (a generator of frames for iterable input).

    Raises
    ------
    VMMError
        Bad input or parameters, with a message that names the problem.
    """
    if _is_stream(frames):
        return _magnify_stream(iter(frames), progress, fps=fps, method=method, alpha=alpha,
                               band=band, temporal=temporal, mode=mode, reference=reference,
                               device=device, roi_mask=roi_mask, **options)
    if not hasattr(frames, "shape"):
        raise VMMError(
            f"frames must be an array or an iterable of frames, got {type(frames).__name__}")
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


def _magnify_stream(frames: Iterator[np.ndarray], progress: ProgressCallback | None = None,
                    **kwargs: Any) -> Iterator[np.ndarray]:
    """Frames of an iterator through a :class:`StreamingMagnifier`, ``chunk_size`` at a time.

    ``progress(done, None)`` after each chunk: ``done`` frames read, total unknown.
    """
    chunk_size = kwargs.pop("chunk_size", None)
    for key in ("memory_budget", "tile_size", "zero_phase", "path"):
        kwargs.pop(key, None)
    sm: StreamingMagnifier | None = None
    buf: list[np.ndarray] = []

    def report(done: int) -> None:
        if progress is not None and progress(done, None) is False:
            raise Cancelled("magnification cancelled")

    for frame in frames:
        frame = np.asarray(frame)
        if sm is None:
            sm = StreamingMagnifier(**kwargs)
            chunk_size = chunk_size or default_chunk(frame.shape[0], frame.shape[1])
        buf.append(frame)
        if len(buf) >= chunk_size:
            yield from sm.push(np.stack(buf))
            buf.clear()
            report(sm.frames_in)
    if buf and sm is not None:
        yield from sm.push(np.stack(buf))
        report(sm.frames_in)
    if sm is not None:
        yield from sm.flush()
