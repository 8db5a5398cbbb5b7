"""Qt-free helpers of the napari widgets: layer checks, fps, ROI masks, output layers."""

from __future__ import annotations

import tempfile
from typing import Any

import numpy as np
from napari.layers import Image, Shapes

from napari_vmm._writer import fps_from_scale
from napari_vmm.core.errors import VMMError
from napari_vmm.core.frames import check_dtype, check_frame_shape

#: Output arrays above this size go to an anonymous temporary file instead of RAM.
MEMMAP_BYTES = 1 << 30


def check_image_layer(layer: Any) -> None:
    """Refuse layers the engine cannot magnify, with one clear message.

    Parameters
    ----------
    layer : napari.layers.Layer or None
        The layer chosen in the widget.

    Raises
    ------
    VMMError
        For no layer, a non-image, a multiscale or 2-D layer, RGBA, or an unsupported dtype.
    """
    if layer is None:
        raise VMMError("no image layer selected: open a time-lapse or a video first")
    if not isinstance(layer, Image):
        raise VMMError(f"layer {layer.name!r} is not an image layer")
    if layer.multiscale:
        raise VMMError(
            f"layer {layer.name!r} is multiscale; motion magnification needs a single-resolution "
            "T,Y,X or T,Y,X,C layer (add the level you want as its own layer)"
        )
    shape = tuple(layer.data.shape)
    spatial_ndim = len(shape) - (1 if layer.rgb else 0)
    if spatial_ndim < 3:
        raise VMMError(
            f"layer {layer.name!r} is 2-D (shape {shape}): motion magnification needs a time "
            "series T,Y,X or T,Y,X,C"
        )
    if layer.rgb and shape[-1] == 4:
        raise VMMError(f"layer {layer.name!r} is RGBA; convert it to RGB or gray first")
    what = f"the frames of layer {layer.name!r}"
    check_frame_shape(shape, what=what)
    check_dtype(layer.data.dtype, what=what)
    if shape[0] < 2:
        raise VMMError(f"layer {layer.name!r} has a single frame; magnification needs a video")


def fps_from_layer(layer: Image) -> float | None:
    """Frame rate from the layer's first-axis scale when that axis has a time unit.

    Returns
    -------
    float or None
        ``1 / frame interval`` in Hz, or None when the first axis is not in time units.
    """
    return fps_from_scale(layer.scale, layer.units)


def frame_hw(layer: Image) -> tuple[int, int]:
    """(H, W) of one frame of a T,Y,X or T,Y,X,C layer."""
    return int(layer.data.shape[1]), int(layer.data.shape[2])


def shapes_to_rois(shapes: Shapes, image: Image) -> list:
    """ROIs (:class:`napari_vmm.core.analysis.ROI`) of a Shapes layer in ``image`` pixels.

    Shapes drawn in a T,Y,X viewer carry the frame index in their vertices; the ROI applies to
    every frame, so only the last two coordinates are used. Scale and translate of both layers
    are honoured (shapes data -> world -> image data).
    """
    from napari_vmm.core.analysis import rois_from_shapes

    vertices = []
    for verts in shapes.data:
        yx = np.asarray(verts, dtype=np.float64)[:, -2:]
        world = yx * shapes.scale[-2:] + shapes.translate[-2:]
        vertices.append((world - image.translate[-2:]) / image.scale[-2:])
    return rois_from_shapes(vertices, list(shapes.shape_type))


def roi_mask_from_shapes(shapes: Shapes, image: Image, feather_px: float) -> np.ndarray:
    """Feathered (H, W) float32 mask in [0, 1] of all shapes of ``shapes`` over ``image``.

    Raises
    ------
    VMMError
        When the Shapes layer is empty, holds lines or paths, or its shapes miss the image.
    """
    from napari_vmm.core.analysis import roi_mask

    if len(shapes.data) == 0:
        raise VMMError(f"ROI layer {shapes.name!r} has no shapes: draw a region first")
    mask = np.asarray(roi_mask(frame_hw(image), shapes_to_rois(shapes, image), feather_px),
                      dtype=np.float32)
    if not mask.any():
        raise VMMError(f"the shapes of ROI layer {shapes.name!r} lie outside layer {image.name!r}")
    return mask


def mask_bbox(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    """Bounding box of the non-zero part of ``mask`` grown by ``margin`` px (clipped)."""
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    y0, y1 = max(int(ys.min()) - margin, 0), min(int(ys.max()) + 1 + margin, h)
    x0, x1 = max(int(xs.min()) - margin, 0), min(int(xs.max()) + 1 + margin, w)
    # the engine needs frames of at least 8 x 8 pixels
    if y1 - y0 < 8:
        y0 = max(min(y0, h - 8), 0)
        y1 = min(y0 + 8, h)
    if x1 - x0 < 8:
        x0 = max(min(x0, w - 8), 0)
        x1 = min(x0 + 8, w)
    return slice(y0, y1), slice(x0, x1)


def allocate_output(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Output array for the engine: in RAM, or an anonymous temporary file when large."""
    dtype = np.dtype(dtype)
    if int(np.prod(shape)) * dtype.itemsize <= MEMMAP_BYTES:
        return np.empty(shape, dtype=dtype)
    # the file is unlinked at once; its space is freed when the array is released
    return np.memmap(tempfile.TemporaryFile(), dtype=dtype, mode="w+", shape=shape)


def output_layer_kwargs(source: Image, name: str, provenance: dict[str, Any],
                        yx_offset: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    """``add_image`` keyword arguments so the output overlays and matches ``source``.

    Copies scale, translate (shifted by ``yx_offset`` pixels for a crop), units, axis labels,
    contrast limits, colormap and rgb; stores ``provenance`` in ``metadata["napari_vmm"]``.
    """
    translate = np.array(source.translate, dtype=float)
    translate[-2:] += np.asarray(yx_offset, dtype=float) * np.asarray(source.scale[-2:])
    kwargs: dict[str, Any] = {
        "name": name,
        "scale": tuple(source.scale),
        "translate": tuple(translate),
        "units": tuple(source.units),
        "axis_labels": tuple(source.axis_labels),
        "contrast_limits": tuple(source.contrast_limits),
        "rgb": source.rgb,
        "metadata": {"napari_vmm": provenance},
    }
    if not source.rgb:
        kwargs["colormap"] = source.colormap.name
    return kwargs


def video_file_info(layer: Any) -> dict[str, Any] | None:
    """The ``napari_vmm.video`` metadata of a layer opened by this plugin's reader, or None.

    Holds the file's ``path``, the container's ``fps`` and, once the user has set it, the
    true ``capture_fps`` (high-speed footage is usually stored at 25-30 fps).
    """
    meta = getattr(layer, "metadata", None) or {}
    info = (meta.get("napari_vmm") or {}).get("video")
    return info if isinstance(info, dict) and info.get("path") else None


def layer_rate(layer: Any, fallback_fps: float) -> tuple[float | None, bool, str]:
    """How the magnify form shows ``layer``'s frame rate.

    Returns
    -------
    fps : float or None
        The rate to show (None: keep the field's value, ``fallback_fps``).
    editable : bool
        False when the layer's time scale fixes the rate; a video file's rate stays editable
        (high-speed footage is stored at 25-30 fps).
    note : str
        The line shown under the field.
    """
    fps = fps_from_layer(layer)
    video = video_file_info(layer)
    if fps is not None and video is not None:  # a video file: the rate may be wrong
        return (round(fps, 6), True, f"capture rate (the file says {video.get('fps', fps):g} "
                "fps): set the true rate of high-speed footage here")
    if fps is not None:
        return round(fps, 6), False, f"fps from the layer's time scale ({1 / fps:.4g} s/frame)"
    return None, True, f"⚠ first axis has no time unit: check fps (using {fallback_fps:g})"


def set_capture_rate(layer: Image, fps: float) -> bool:
    """Make ``fps`` the time scale of a file-backed video layer; True when it changed.

    The layer's first axis becomes ``1 / fps`` seconds per frame and ``capture_fps`` is kept
    in its ``napari_vmm.video`` metadata (and so in the provenance of its outputs).
    """
    info = video_file_info(layer)
    fps = float(fps)
    if info is None or not np.isfinite(fps) or fps <= 0:
        return False
    current = fps_from_layer(layer)
    if current is not None and abs(current - fps) <= 1e-6 * fps:  # the field rounds to 1e-6
        return False
    info["capture_fps"] = fps
    scale = np.array(layer.scale, dtype=float)
    scale[0] = 1.0 / fps
    layer.scale = tuple(scale)
    if layer.units[0] != "s":
        layer.units = ("s", *tuple(layer.units)[1:])
    return True


def magnify_command(layer: Any, params: Any) -> str:
    """The ``vmm magnify`` command that runs ``params`` on ``layer``'s file.

    The input is the layer's file (``<name>.tif`` when it has none), the output
    ``<stem>_<method><suffix>`` beside it.
    """
    from pathlib import Path

    path = getattr(getattr(layer, "source", None), "path", None) if layer else None
    src = Path(path) if path else Path(f"{layer.name if layer else 'input'}.tif")
    out = src.with_name(f"{output_name(src.stem, params.method)}{src.suffix}")
    return params.to_cli(str(src), str(out))


def pixel_size_from_layer(layer: Image) -> tuple[float, str] | None:
    """``(size, unit)`` of one pixel when the layer's y and x axes share a physical length unit.

    None for pixel units, non-square pixels or units without the dimension of length.
    """
    try:
        import pint

        units = [pint.get_application_registry().Unit(str(u)) for u in layer.units[-2:]]
        sy, sx = (float(v) for v in layer.scale[-2:])
    except Exception:  # missing or unparsable units
        return None
    if len(units) != 2 or units[0] != units[1] or sy != sx or not sx > 0:
        return None
    unit = units[1]
    if unit.dimensionality != pint.get_application_registry().Unit("m").dimensionality:
        return None  # "pixel" is dimensionless in napari's registry
    return sx, f"{unit:~}".replace("µ", "u") or str(unit)


def output_name(source: str, method: str, preview: bool = False) -> str:
    """``<source>_<method>`` (``_preview`` appended for a preview): one layer per method, so
    results of two methods can be compared side by side."""
    return f"{source}_{method}_preview" if preview else f"{source}_{method}"


def preview_length(fps: float, band_low_hz: float, n_frames: int, least: int = 30,
                   cap: int = 300) -> int:
    """Default preview length: two periods of the band's low edge, at least ``least`` and at
    most ``cap`` frames (and never more than the clip)."""
    n = least
    if band_low_hz > 0 and np.isfinite(band_low_hz) and fps > 0:
        n = max(least, int(np.ceil(2.0 * fps / band_low_hz)))
    return int(max(2, min(n, cap, n_frames)))
