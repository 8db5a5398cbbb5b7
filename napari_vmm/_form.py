"""Form pieces of the Magnify widget: method option widgets, labels and spin-box precision."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, FloatSpinBox, LineEdit, SpinBox

#: Significant digits a band edge keeps in its spin box (Hz or BPM).
BAND_DIGITS = 4


def human_label(key: str) -> str:
    """``finest_level`` -> ``finest level``: an option name as a form label."""
    return key.replace("_", " ")


def gui_message(message: str) -> str:
    """An engine message with its command-line advice turned into the widget's words."""
    return (message.replace("give the true capture rate with --fps",
                            "set the true capture rate in the fps field")
            .replace("give one with --fps", "set it in the fps field"))


def significant_decimals(values: Any, digits: int = BAND_DIGITS, least: int = 2,
                         most: int = 10) -> int:
    """Decimals a spin box needs to show every non-zero value with ``digits`` significant
    digits (between ``least`` and ``most``)."""
    need = least
    for v in values:
        v = abs(float(v))
        if v > 0 and math.isfinite(v):
            need = max(need, digits - 1 - math.floor(math.log10(v)))
    return int(min(most, need))


def option_widget(key: str, spec: dict[str, Any], value: Any):
    """A magicgui widget for one method option described by ``available_methods()``."""
    common = {"name": key, "label": human_label(key), "tooltip": spec.get("help", "")}
    if spec.get("choices"):
        choices = list(spec["choices"])
        return ComboBox(choices=choices, value=value if value in choices else spec["default"],
                        **common)
    kind = spec.get("type")
    if kind == "bool":
        return CheckBox(value=bool(value), **common)
    if kind in ("int", "float"):
        cls = SpinBox if kind == "int" else FloatSpinBox
        lo = spec.get("min", -1e9 if kind == "float" else -(10**9))
        hi = spec.get("max", 1e9 if kind == "float" else 10**9)
        extra = {} if kind == "int" else {"step": float_step(spec["default"])}
        cast = int if kind == "int" else float
        try:
            value = min(max(cast(value), lo), hi)
        except (TypeError, ValueError):
            value = spec["default"]
        return cls(value=value, min=lo, max=hi, **extra, **common)
    return LineEdit(value="" if value is None else str(value), **common)


def float_step(default: Any) -> float:
    try:
        mag = abs(float(default))
    except (TypeError, ValueError):
        return 0.1
    return 10 ** np.floor(np.log10(mag)) / 10 if mag > 0 else 0.1


def loadable_methods() -> dict[str, dict[str, Any]]:
    """Fallback catalogue with only the methods whose module imports."""
    from napari_vmm.core.registry import get_method, method_names

    out = {}
    for name in method_names():
        try:
            cls = get_method(name)
        except Exception:
            continue
        options = {}
        for key, opt in cls.options.items():
            spec = {"default": opt.default, "type": opt.type.__name__, "help": opt.help}
            for attr in ("choices", "min", "max"):
                if getattr(opt, attr) is not None:
                    spec[attr] = getattr(opt, attr)
            options[key] = spec
        out[name] = {"summary": "", "kind": "classical", "options": options}
    return out
