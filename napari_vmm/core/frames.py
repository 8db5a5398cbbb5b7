"""Frame validation, the dtype policy and colour conversion.

Dtype policy
------------
- ``uint8`` is scaled by 1/255 and ``uint16`` by 1/65535 to float32 in [0, 1]; on the way out,
  values are clipped to the dtype's range and rounded. 16-bit input keeps its 16-bit precision.
- ``float32``/``float64`` are processed as they are (no rescaling, no clipping) and returned in
  their own dtype.
- Anything else (bool, int32, complex, ...) is refused with a :class:`VMMError`.

Colour
------
RGB is processed in YIQ (NTSC), as Wu et al. do; gray is processed directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .errors import VMMError

SUPPORTED_DTYPES = (np.uint8, np.uint16, np.float32, np.float64)

RGB_TO_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]],
    dtype=np.float32,
)
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ).astype(np.float32)


def check_frame_shape(shape: tuple[int, ...], what: str = "frames") -> tuple[int, int, int]:
    """Check a (T,H,W) or (T,H,W,C) shape with C in {1, 3}; return (H, W, C)."""
    if len(shape) == 3:
        h, w, c = shape[1], shape[2], 1
    elif len(shape) == 4 and shape[3] in (1, 3):
        h, w, c = shape[1], shape[2], shape[3]
    else:
        raise VMMError(
            f"{what} must have shape (T, H, W) or (T, H, W, C) with C = 1 or 3, got {tuple(shape)}"
        )
    if shape[0] < 1 or h < 8 or w < 8:
        raise VMMError(f"{what} are too small: shape {tuple(shape)} (need T >= 1 and H, W >= 8)")
    return h, w, c


def check_dtype(dtype: np.dtype, what: str = "frames") -> np.dtype:
    """Refuse dtypes outside the policy above."""
    dtype = np.dtype(dtype)
    if dtype.type not in SUPPORTED_DTYPES:
        raise VMMError(
            f"{what} have dtype {dtype}; supported are uint8, uint16, float32 and float64"
        )
    return dtype


def to_float(chunk: np.ndarray) -> np.ndarray:
    """Convert a chunk to float32 following the dtype policy; refuse NaN and infinity."""
    if chunk.dtype == np.uint8:
        return chunk.astype(np.float32) * np.float32(1 / 255)
    if chunk.dtype == np.uint16:
        return chunk.astype(np.float32) * np.float32(1 / 65535)
    out = np.asarray(chunk, dtype=np.float32)
    if not np.isfinite(out).all():
        raise VMMError("frames contain NaN or infinite values; clean or mask them first")
    # a read-only map (.npy, .tif) gets a private copy: torch refuses to share it silently
    return out if out.flags.writeable else out.copy()


def from_float(chunk: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Convert float32 back to ``dtype`` (clip and round for integer types)."""
    dtype = np.dtype(dtype)
    if dtype in (np.uint8, np.uint16):
        top = np.float32(np.iinfo(dtype).max)
        scaled = np.multiply(chunk, top, dtype=np.float32)  # one temporary, then in place
        np.rint(scaled, out=scaled)
        np.clip(scaled, 0, top, out=scaled)
        return scaled.astype(dtype)
    return chunk.astype(dtype, copy=False)


def iter_frame_chunks(frames: Any, n: int = 8) -> Iterator[np.ndarray]:
    """Chunks (N, H, W[, C]) of an array-like (numpy, dask, a video source) or of an iterable.

    A source with an ``iter_chunks(n)`` method (``napari_vmm.io.VideoSource``) is read with it
    (sequential decoding).

    An iterable may yield frames ((H, W) or (H, W, C) with C in {1, 3}) or whole chunks
    ((N, H, W, C), or (N, H, W) when the last axis is not 1 or 3).
    """
    if callable(getattr(frames, "iter_chunks", None)):
        yield from frames.iter_chunks(n)
        return
    if hasattr(frames, "shape"):
        for t0 in range(0, frames.shape[0], n):
            yield np.asarray(frames[t0:t0 + n])
        return
    buf: list[np.ndarray] = []
    for item in frames:
        item = np.asarray(item)
        is_frame = item.ndim == 2 or (item.ndim == 3 and item.shape[-1] in (1, 3))
        if not is_frame:
            if buf:
                yield np.stack(buf)
                buf = []
            yield item
            continue
        buf.append(item)
        if len(buf) == n:
            yield np.stack(buf)
            buf = []
    if buf:
        yield np.stack(buf)


def rgb_to_yiq(x):
    """RGB to YIQ along dim 1 of a torch tensor (N, 3, H, W)."""
    import torch

    m = torch.as_tensor(RGB_TO_YIQ, device=x.device, dtype=x.dtype)
    return torch.einsum("oc,nchw->nohw", m, x)


def yiq_to_rgb(x):
    """YIQ to RGB along dim 1 of a torch tensor (N, 3, H, W)."""
    import torch

    m = torch.as_tensor(YIQ_TO_RGB, device=x.device, dtype=x.dtype)
    return torch.einsum("oc,nchw->nohw", m, x)
