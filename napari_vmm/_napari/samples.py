"""File > Open Sample: synthetic clips with known motion (from ``napari_vmm.core.samples``).

Each layer carries its true parameters (frequency, amplitude, ...) in
``metadata["napari_vmm"]["sample"]`` and its frame interval as the time scale, so the
magnification widget picks up the frame rate by itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _layer(frames: np.ndarray, info: dict[str, Any], name: str) -> list[tuple]:
    """One LayerDataTuple with time scale, units, axis labels and the sample's truth."""
    pixel = info.get("pixel_size_um")
    yx_scale = (pixel, pixel) if pixel else (1.0, 1.0)
    yx_unit = "um" if pixel else "pixel"
    kwargs: dict[str, Any] = {
        "name": name,
        "scale": (1.0 / info["fps"], *yx_scale),
        "units": ("s", yx_unit, yx_unit),
        "axis_labels": ("t", "y", "x"),
        "metadata": {"napari_vmm": {"sample": info}},
    }
    if frames.ndim == 4:
        kwargs["rgb"] = True
    else:
        kwargs["contrast_limits"] = (float(frames.min()), float(frames.max()))
    return [(frames, kwargs, "image")]


def vibrating_target() -> list[tuple]:
    """A textured disc vibrating sub-pixel over a static background (uint8 RGB)."""
    from napari_vmm.core.samples import vibrating_target as make

    frames, info = make()
    return _layer(frames, info, "vibrating_target")


def pulsing_timelapse() -> list[tuple]:
    """A 16-bit gray time-lapse of a ring whose radius pulses sub-pixel."""
    from napari_vmm.core.samples import pulsing_timelapse as make

    frames, info = make()
    return _layer(frames, info, "pulsing_timelapse")
