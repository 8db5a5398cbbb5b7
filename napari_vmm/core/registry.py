"""Registry of magnification methods and their declared options.

Methods register lazily (module path + class name) so that listing the registry or importing
``napari_vmm`` does not import torch. ``available_methods()`` imports each method's module to
read its declared options.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from .errors import VMMError
from .learned.table import MODELS as _LEARNED_MODELS


@dataclass(frozen=True)
class Option:
    """One method option: its default, type, help text and allowed values or range."""

    default: Any
    type: type
    help: str
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None

    def coerce(self, name: str, value: Any) -> Any:
        """Convert ``value`` (possibly a CLI string) to this option's type and check it."""
        try:
            if self.type is bool and isinstance(value, str):
                low = value.strip().lower()
                if low not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                    raise ValueError(value)
                value = low in {"1", "true", "yes", "on"}
            else:
                value = self.type(value)
        except (TypeError, ValueError):
            raise VMMError(
                f"option {name!r} must be of type {self.type.__name__}, got {value!r}"
            ) from None
        if self.choices is not None and value not in self.choices:
            raise VMMError(f"option {name!r} must be one of {list(self.choices)}, got {value!r}")
        if self.min is not None and value < self.min:
            raise VMMError(f"option {name!r} must be >= {self.min}, got {value!r}")
        if self.max is not None and value > self.max:
            raise VMMError(f"option {name!r} must be <= {self.max}, got {value!r}")
        return value


@dataclass
class MethodEntry:
    name: str
    module: str
    cls_name: str
    summary: str
    kind: str = "classical"  # "classical" or "learned"
    _cls: Any = field(default=None, repr=False)

    def load(self):
        if self._cls is None:
            self._cls = getattr(importlib.import_module(self.module), self.cls_name)
        return self._cls


_METHODS: dict[str, MethodEntry] = {}

#: options every method takes; the pipeline applies them around the magnifier, which does not
#: see them (:class:`napari_vmm.core.pipeline.Pipeline`)
COMMON_OPTIONS: dict[str, Option] = {
    "denoise": Option(False, bool, "add the change to the frame with its noise removed (a "
                                   "local Wiener filter for each frame's estimated noise "
                                   "level) instead of to the frame as it is; the change itself "
                                   "is left alone"),
}


def declared_options(name: str) -> dict[str, Option]:
    """The options method ``name`` takes: its own, then :data:`COMMON_OPTIONS`."""
    return {**get_method(name).options, **COMMON_OPTIONS}


def register_method(name: str, module: str, cls_name: str, summary: str,
                    kind: str = "classical") -> None:
    """Register a magnifier class by import path (imported on first use)."""
    _METHODS[name] = MethodEntry(name, module, cls_name, summary, kind)


def method_names(kind: str | None = None) -> list[str]:
    """Registered method names (only ``kind``'s: "classical" or "learned"), importing none."""
    return [name for name, entry in _METHODS.items() if kind is None or entry.kind == kind]


def get_method(name: str):
    """Return the magnifier class registered as ``name``."""
    if name not in _METHODS:
        raise VMMError(f"unknown method {name!r}; available: {', '.join(_METHODS)}")
    return _METHODS[name].load()


def resolve_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and validate ``options`` for method ``name``; unknown keys are an error."""
    declared = declared_options(name)
    unknown = sorted(set(options) - set(declared))
    if unknown:
        raise VMMError(
            f"unknown option(s) {unknown} for method {name!r}; valid: {sorted(declared)}"
        )
    return {k: opt.coerce(k, options.get(k, opt.default)) for k, opt in declared.items()}


def available_methods() -> dict[str, dict[str, Any]]:
    """Describe every registered method.

    Returns
    -------
    dict
        ``{name: {"summary", "kind", "options": {opt: {"default", "type", "help", ...}}, ...}}``.
        Learned methods add ``"weights"`` (whether trained weights ship, and their metrics).
    """
    out: dict[str, dict[str, Any]] = {}
    for name, entry in _METHODS.items():
        cls = entry.load()
        info: dict[str, Any] = {"summary": entry.summary, "kind": entry.kind, "options": {}}
        for key, opt in declared_options(name).items():
            d = {"default": opt.default, "type": opt.type.__name__, "help": opt.help}
            if opt.choices is not None:
                d["choices"] = list(opt.choices)
            if opt.min is not None:
                d["min"] = opt.min
            if opt.max is not None:
                d["max"] = opt.max
            info["options"][key] = d
        describe = getattr(cls, "describe", None)
        if callable(describe):
            info.update(describe())
        out[name] = info
    return out


# Built-in methods.
register_method("linear", "napari_vmm.core.magnifiers.linear", "LinearMagnifier",
                "Laplacian-pyramid linear Eulerian magnification (Wu et al. 2012)")
register_method("phase", "napari_vmm.core.magnifiers.phase", "PhaseMagnifier",
                "Phase-based magnification, complex steerable pyramid (Wadhwa et al. 2013)")
register_method("riesz", "napari_vmm.core.magnifiers.riesz", "RieszMagnifier",
                "Riesz-pyramid phase magnification, fast streaming (Wadhwa et al. 2014)")
register_method("color", "napari_vmm.core.magnifiers.color", "ColorMagnifier",
                "Colour magnification on a Gaussian pyramid, no motion term: the pulse demo "
                "(Wu et al. 2012)")
# The learned models, one per entry of their table (napari_vmm.core.learned.table).
for _spec in _LEARNED_MODELS.values():
    register_method(_spec.name, "napari_vmm.core.learned.magnifier", _spec.magnifier,
                    _spec.summary, kind="learned")
