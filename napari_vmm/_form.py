"""Form pieces of the Magnify widget: method option widgets, labels and spin-box precision."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
    SpinBox,
)
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QScrollArea, QSizePolicy, QVBoxLayout, QWidget
from superqt import QCollapsible

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


def form_values(w: Any) -> dict[str, Any]:
    """The Magnify form's parameters as :meth:`MagnifyParams.to_dict` lays them out, unchecked
    (what is shown and saved while the user is still typing)."""
    return {
        "method": w._method.value, "alpha": float(w._alpha.value), "band": list(w.band_hz()),
        "fps": float(w._fps.value), "temporal": w._temporal.value, "order": int(w._order.value),
        "taps": int(w._taps.value) or None, "zero_phase": bool(w._zero_phase.value),
        "mode": w._mode.value, "reference": int(w._reference.value), "device": w._device.value,
        "options": w._current_options(),
    }


def show_fields(w: Any, params: Any) -> None:
    """Show the plain fields of ``params`` (a :class:`MagnifyParams`) in the form: alpha, fps
    (unless the layer fixes it, or None), filter, order, taps, zero phase, mode, reference and
    device (when the form offers it). Method, options and band are the view's."""
    w._alpha.value = params.alpha
    if w._fps.enabled and params.fps is not None:
        w._fps.value = params.fps
    w._temporal.value = params.temporal
    w._order.value = params.order
    w._taps.value = params.taps or 0
    w._zero_phase.value = params.zero_phase
    w._mode.value = params.mode
    w._reference.value = min(int(params.reference), w._reference.max)
    if params.device in w._device.choices:
        w._device.value = params.device


def field_widget(spec: dict[str, Any], open_step: float = 0.01, **kwargs: Any):
    """A magicgui widget for one :meth:`MagnifyParams.describe` field: its choices, limits,
    default and help (the tooltip), with ``kwargs`` (label, tooltip, ...) on top.

    An open minimum (alpha > -1) becomes ``min + open_step``; an optional int (taps) shows
    None as 0, "automatic".
    """
    kwargs.setdefault("tooltip", spec["help"])
    default = spec["default"]
    if "choices" in spec:
        return ComboBox(choices=list(spec["choices"]), value=default, **kwargs)
    if spec["type"] == "bool":
        return CheckBox(value=bool(default), **kwargs)
    is_int = spec["type"] == "int"
    lo = spec.get("min", -(10**9))
    if spec.get("min_open"):
        lo += open_step
    if is_int and spec.get("optional"):
        lo = 0
    hi = spec.get("max", 10**9 if is_int else 1e6)
    kwargs.setdefault("value", 0 if default is None else default)
    cls = SpinBox if is_int else FloatSpinBox
    return cls(min=lo, max=hi, **kwargs)


def form_params(w: Any):
    """The Magnify form's parameters as a validated :class:`MagnifyParams` (VMMError if not)."""
    from napari_vmm.core.params import MagnifyParams

    return MagnifyParams.from_dict(form_values(w))


def form_engine_kwargs(w: Any) -> dict[str, Any]:
    """The form's parameters in the engine's keyword form, unchecked (for estimates that
    report a bad parameter themselves)."""
    values = form_values(w)
    return {**{k: v for k, v in values.items() if k != "options"}, "band": w.band_hz(),
            **values["options"]}


def build_magnify_form(w: Any) -> None:
    """Create the Magnify widget's inputs as attributes of ``w`` and lay them out.

    The fields of :class:`~napari_vmm.core.params.MagnifyParams` take their choices, limits,
    defaults and help from it (:func:`field_widget`). The main form holds what most runs
    change; the method's options, the filter order, FIR taps, zero phase, the device, the
    Dask scheduler, the Zarr output and the Dask memory line sit in a collapsed "Advanced"
    section, so the form fits a 950 px high window without scrolling.
    """
    from napari_vmm.core.params import FALLBACK_FPS, MagnifyParams

    spec = MagnifyParams.describe()  # fields, limits, defaults and help of the model
    # inputs (values come from MagnifyParams defaults and the saved session below)
    w._layer = ComboBox(label="image", choices=w._image_choices, nullable=True,
                        tooltip="T,Y,X or T,Y,X,C layer (numpy or dask)")
    w._method = ComboBox(label="method", choices=list(w._methods),
                         tooltip="magnification method")
    w._method_summary = Label(value="")
    w._options = Container(labels=True)
    w._alpha = field_widget(spec["alpha"], label="α", step=1.0,
                            tooltip="output displacement = (1+α) × input displacement")
    w._band_unit = ComboBox(label="band unit", choices=["Hz", "BPM"], value="Hz")
    w._band_lo = FloatSpinBox(label="band low", min=0.0, max=1e6, step=0.1)
    w._band_hi = FloatSpinBox(label="band high", min=0.0, max=1e6, step=0.1)
    w._fps = field_widget(spec["fps"], open_step=0.001, label="fps", value=FALLBACK_FPS,
                          step=1.0, tooltip="frame rate; taken from the layer when its first "
                                  "axis is in time units; for a video file, the true "
                                  "capture rate (high-speed footage)")
    w._fps_note = Label(value="")
    w._temporal = field_widget(spec["temporal"], label="temporal",
                               tooltip="ideal: whole clip FFT; others are causal")
    w._order = field_widget(spec["order"], label="Butterworth order")
    w._taps = field_widget(spec["taps"], label="FIR taps (0: auto)")
    w._zero_phase = field_widget(spec["zero_phase"], label="zero phase (whole clip)")
    w._mode = field_widget(spec["mode"], label="mode")
    w._reference = field_widget(spec["reference"], label="reference frame")
    w._device = ComboBox(label="device", choices=w._devices(), value=spec["device"]["default"],
                         tooltip=spec["device"]["help"])
    w._roi = ComboBox(label="ROI", choices=w._shapes_choices, nullable=True,
                      tooltip="optional Shapes layer: magnify inside its shapes only")
    w._feather = FloatSpinBox(label="ROI feather (px)", value=4.0, min=0.0, max=500.0)
    w._preview_frames = SpinBox(label="preview frames (0: auto)", value=0, min=0, max=10**6,
                                tooltip="Preview processes the first N frames (cropped "
                                        "to the ROI when one is set); auto: two periods "
                                        "of the band's low edge, at most 300 frames")
    # Dask: where dask-backed layers run, and an optional Zarr output
    w._scheduler = LineEdit(label="Dask scheduler", value="",
                            tooltip="where Run sends a dask-backed layer: empty = this "
                                    "process, chunk by chunk; local:N = a LocalCluster "
                                    "of N processes; tcp://host:port = a running "
                                    "scheduler")
    w._zarr_out = LineEdit(label="Zarr output", value="",
                           tooltip="optional .zarr folder: Run writes the result there "
                                   "(block by block, on the scheduler) and adds it back "
                                   "as a lazy layer")
    w._memory = Label(value="")
    # buttons
    w._preview_btn = PushButton(text="Preview")
    w._run_btn = PushButton(text="Run")
    w._cancel_btn = PushButton(text="Cancel", enabled=False)
    w._copy_btn = PushButton(text="Copy as command")
    w._status = Label(value="")

    w._form = Container(widgets=[
        w._layer, w._method, w._method_summary, w._alpha, w._band_unit, w._band_lo,
        w._band_hi, w._fps, w._fps_note, w._temporal, w._mode, w._reference, w._roi,
        w._feather, w._preview_frames,
    ])
    w._advanced_form = Container(widgets=[w._options, w._order, w._taps, w._zero_phase,
                                          w._device, w._scheduler, w._zarr_out, w._memory])
    w._advanced = QCollapsible("Advanced")
    w._advanced.addWidget(w._advanced_form.native)
    buttons = Container(widgets=[w._preview_btn, w._run_btn, w._cancel_btn],
                        layout="horizontal", labels=False)
    for label in (w._method_summary, w._fps_note, w._status, w._memory):
        label.native.setWordWrap(True)
        label.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    w._root = QWidget()
    column = QVBoxLayout(w._root)
    for part in (w._form.native, w._advanced, buttons.native, w._copy_btn.native,
                 w._status.native):
        column.addWidget(part)
    column.addStretch(1)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(w._root)
    layout = QVBoxLayout(w)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(scroll)
    # scroll vertically only: never narrower than the form
    scroll.setMinimumWidth(w._root.minimumSizeHint().width()
                           + scroll.verticalScrollBar().sizeHint().width() + 12)
