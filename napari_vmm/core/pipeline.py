"""The engine's pipeline: colour and dtype handling around a magnifier and a temporal filter.

:class:`Pipeline` is what every route runs (the stream, the whole clip, Dask tasks);
:class:`StreamingMagnifier` pushes chunks of frames through one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import VMMError
from .frames import check_dtype, check_frame_shape, from_float, to_float
from .params import (
    CAUSAL_FILTERS,
    DEFAULT_ALPHA,
    DEFAULT_BAND,
    DEFAULT_METHOD,
    DEFAULT_TEMPORAL,
    MagnifyParams,
    check_alpha,
)
from .registry import get_method, resolve_options
from .route import WINDOW, choose_route
from .temporal import make_filter


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


class Pipeline:
    """Colour/dtype handling around a magnifier and a temporal filter.

    Every route runs one (:mod:`napari_vmm.core.route`): chunk by chunk for streams and
    segments (:meth:`stream_chunk`), tile by tile for the whole clip
    (:func:`napari_vmm.core.wholeclip.whole_clip`).

    Parameters
    ----------
    params : MagnifyParams
        The validated parameters; ``fps`` must be known.
    roi_mask : ndarray (H, W), optional
        Weights in [0, 1]; the output is ``input + mask * (magnified - input)``.

    Examples
    --------
    >>> pipe = Pipeline(MagnifyParams(method="linear", alpha=5, fps=30))  # doctest: +SKIP
    >>> pipe.reset(); out = pipe.stream_chunk(frames)                      # doctest: +SKIP
    """

    def __init__(self, params: MagnifyParams, roi_mask: np.ndarray | None = None) -> None:
        import torch

        if params.fps is None:
            raise VMMError("the frame rate is not known; give one with --fps")
        self.params = params
        self.torch = torch
        self.device = resolve_device(params.device)
        cls = get_method(params.method)
        options = resolve_options(params.method, dict(params.options))
        self.denoise = bool(options.pop("denoise"))  # COMMON_OPTIONS: ours, not the method's
        self.magnifier = cls(check_alpha(params.alpha), self.device, **options)
        self.filter = make_filter(params.temporal, params.band, params.fps, mode=params.mode,
                                  reference=params.reference, order=params.order,
                                  taps=params.taps, zero_phase=params.zero_phase)
        self.roi_mask = None if roi_mask is None else np.asarray(roi_mask, dtype=np.float32)
        if self.roi_mask is not None and (
            self.roi_mask.ndim != 2 or not np.isfinite(self.roi_mask).all()
        ):
            raise VMMError("roi_mask must be a finite 2-D (H, W) array of weights in [0, 1]")

    def reset(self) -> None:
        """Forget the magnifier's and the filter's stream state."""
        self.magnifier.reset()
        self.filter.reset()

    def prime(self, first: np.ndarray | None = None,
              reference: np.ndarray | None = None) -> None:
        """Start a stream that does not begin with the clip's frame 0 or reference frame.

        Resets, then encodes ``first`` (frame 0, the magnifier's phase reference, as on the
        in-memory path) and feeds ``reference`` (the static mode's reference frame) to the
        filter, whose differences are then taken to it. Each is a (1, H, W[, C]) array.
        """
        self.reset()
        with self.torch.inference_mode():
            if first is not None:
                x, _ = self.prepare(np.asarray(first))
                self.magnifier.encode(x)
            # The filter runs on the signal flattened to one (N, K) tensor, stream key 0.
            if reference is not None:
                x, _ = self.prepare(np.asarray(reference))
                signal, _ = self.magnifier.encode(x)
                self.filter.step(self.flatten(signal))

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

    def finish(self, x, y, rest, like: np.ndarray, crop=None, region=None) -> np.ndarray:
        """Tensors back to the input's layout and dtype, with the ROI blend.

        ``x``, ``rest``: the magnifier's input and the channels it does not see (from
        :meth:`prepare`), ``y`` its output; with ``denoise``, ``y − x`` is added to the
        denoised ``x`` and ``rest`` is denoised (:mod:`.denoise`). ``crop`` cuts the tile's
        halo off ``y``; ``region`` is the (y0, y1, x0, x1) box of ``like`` in the full frame,
        for the ROI mask.
        """
        from .frames import yiq_to_rgb

        if self.denoise:
            from .denoise import denoise_frames

            y = y - x + denoise_frames(x)
            rest = None if rest is None else denoise_frames(rest)
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
            mask = self.mask_for(original.shape[1:3], region)
            mask = mask if like.ndim == 3 else mask[..., None]
            out = original + mask * (out - original)
        return from_float(out, like.dtype)

    def mask_for(self, hw, region=None) -> np.ndarray:
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
            return self.finish(x, y, rest, chunk)


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

    def __init__(self, fps: float, method: str = DEFAULT_METHOD, alpha: float = DEFAULT_ALPHA,
                 band: tuple[float, float] | None = DEFAULT_BAND,
                 temporal: str = DEFAULT_TEMPORAL,
                 mode: str = "temporal", reference: int = 0, device: str = "cpu",
                 roi_mask: np.ndarray | None = None, order: int = 2, taps: int | None = None,
                 **method_options: Any) -> None:
        params = MagnifyParams(fps=fps, method=method, alpha=alpha, band=band,
                               temporal=temporal, mode=mode, reference=reference,
                               device=device, order=order, taps=taps, options=method_options)
        self._start(params, roi_mask)

    @classmethod
    def from_params(cls, params: MagnifyParams,
                    roi_mask: np.ndarray | None = None) -> StreamingMagnifier:
        """A streaming magnifier for ``params`` (``fps`` must be known)."""
        self = cls.__new__(cls)
        self._start(params, roi_mask)
        return self

    def _start(self, params: MagnifyParams, roi_mask: np.ndarray | None) -> None:
        route = choose_route(params, stream=True)
        if route.kind == WINDOW:
            raise VMMError(
                f"the {params.temporal!r} filter needs the whole clip; streams take a causal "
                f"filter ({', '.join(CAUSAL_FILTERS)})"
            )
        # A reference other than frame 0: frames are held back until it arrives (prime).
        self._reference = route.reference or 0
        self._held: list[np.ndarray] | None = [] if self._reference else None
        self._pipeline = Pipeline(params.replace(reference=0), roi_mask)
        self._shape: tuple[int, ...] | None = None
        self._dtype: np.dtype | None = None
        self.frames_in = 0

    def push(self, frames: np.ndarray) -> np.ndarray:
        """Magnify the next chunk (N, H, W[, C]); returns frames of the same shape and dtype.

        N frames come back, except in static mode with a ``reference`` other than frame 0:
        frames are held back (none come back) until the reference frame arrives, then all
        held frames come back magnified.
        """
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
        if self._held is None:
            return self._pipeline.stream_chunk(frames)
        self._held.append(frames)
        if self.frames_in <= self._reference:
            return frames[:0].copy()
        held, self._held = np.concatenate(self._held), None
        r = self._reference
        self._pipeline.prime(held[:1], held[r:r + 1])
        return np.concatenate([self._pipeline.stream_chunk(c) for c in self._chunks(held)])

    @staticmethod
    def _chunks(held: np.ndarray, size: int = 16) -> list[np.ndarray]:
        return [held[t:t + size] for t in range(0, held.shape[0], size)]

    def flush(self) -> np.ndarray:
        """Frames still held back at the end of the stream (none for causal filters).

        Raises VMMError when the stream ended before the static mode's reference frame.
        """
        if self._held is not None and self.frames_in:
            raise VMMError(f"reference frame {self._reference} is outside the clip "
                           f"(0..{self.frames_in - 1})")
        shape = (0,) + (self._shape or (0, 0))
        return np.empty(shape, dtype=self._dtype or np.float32)
