"""The parameter model: one frozen, validated :class:`MagnifyParams` for every front end.

The CLI's options (``vmm magnify``, ``vmm-filter``), ``--params`` JSON files, the napari form,
``vmm methods --json``, "Copy as command" and provenance are generated from it or read into
it. It holds the only defaults and all validation of the parameters; the checks are also
plain functions (:func:`check_alpha`, :func:`check_band`, ...) that the filter design
(:func:`napari_vmm.core.temporal.make_filter`) calls with the same messages.

This module imports neither torch nor numpy: it is read to build ``vmm --help``.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

from .errors import VMMError

#: Largest alpha: output motion = (1 + alpha) x input motion (Wu et al. Eq. 1).
MAX_ALPHA = 1000.0
#: Temporal filters; ``ideal`` needs the whole clip, the others run on streams.
FILTERS = ("ideal", "butterworth", "fir", "iir", "none")
CAUSAL_FILTERS = ("butterworth", "fir", "iir", "none")
#: temporal: band-pass; static: motion against a reference frame; dynamic: against the previous.
MODES = ("temporal", "static", "dynamic")
#: Butterworth orders the filter design accepts.
MIN_ORDER, MAX_ORDER = 1, 8
#: FIR lengths: a causal FIR keeps ``taps - 1`` frames of every signal in memory.
MIN_FIR_TAPS, MAX_FIR_TAPS = 3, 4097
#: Device names: ``cpu``, ``cuda`` or ``cuda:N``.
DEVICES = ("cpu", "cuda")
_DEVICE_RE = re.compile(r"^(cpu|cuda(:\d+)?)$")

#: The defaults of the model: of every front end (``vmm``, ``vmm-filter``, napari, JSON
#: files) and of :class:`~napari_vmm.core.engine.StreamingMagnifier`. A causal filter and
#: the fast Riesz pyramid stream any clip length in bounded memory.
DEFAULT_METHOD = "riesz"
DEFAULT_ALPHA = 10.0
DEFAULT_BAND = (0.5, 3.0)
DEFAULT_TEMPORAL = "butterworth"
#: Keyword defaults of the array functions ``magnify``/``iter_magnify``/``magnify_dask``,
#: kept as published (phase-based, ideal whole-clip filter, alpha 20) so that existing calls
#: give the same output. Everything else they default to is the model's.
ARRAY_METHOD = "phase"
ARRAY_ALPHA = 20.0
ARRAY_TEMPORAL = "ideal"
#: The frame rate a front end shows when the input has none (the napari form's fps field).
FALLBACK_FPS = 30.0


# -- the checks ------------------------------------------------------------------------------


def check_alpha(alpha: Any) -> float:
    """Alpha must be finite, above -1 (attenuation down to a freeze) and at most MAX_ALPHA."""
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


def check_fps(fps: Any) -> float:
    """A frame rate: a finite number > 0."""
    try:
        value = float(fps)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value <= 0 or isinstance(fps, bool):
        raise VMMError(f"fps must be a positive number, got {fps!r}")
    return value


def check_choice(what: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices``, else a VMMError listing them."""
    choices = tuple(choices)
    if value not in choices:
        raise VMMError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")
    return value


def check_method(method: Any) -> str:
    """A registered method name (the registry's list; nothing is imported)."""
    from .registry import method_names

    names = method_names()
    if method not in names:
        raise VMMError(f"unknown method {method!r}; available: {', '.join(names)}")
    return method


def check_band(band: Any, fps: float, temporal: str) -> tuple[float, float]:
    """Validate the frame rate and the pass band of filter ``temporal``; the band as floats."""
    fps = check_fps(fps)
    if temporal == "none":
        return (0.0, fps / 2)
    return _check_band(band, fps, temporal)


def check_band_edges(low: Any, high: Any) -> tuple[float, float]:
    """A band's own checks, before a frame rate is known: finite, ``0 <= low < high``."""
    return _check_band((low, high), None, "ideal")


def _check_band(band: Any, fps: float | None, temporal: str) -> tuple[float, float]:
    """The band's checks; against Nyquist only when ``fps`` is known."""
    low, high = _band_pair(band)
    if not (math.isfinite(low) and math.isfinite(high)) or low < 0:
        raise VMMError(f"band must be finite and non-negative, got ({low}, {high})")
    if low >= high:
        raise VMMError(f"band low ({low} Hz) must be below band high ({high} Hz)")
    nyquist = math.inf if fps is None else fps / 2
    if high >= nyquist:
        raise VMMError(
            f"band high {high} Hz is at or above the Nyquist frequency {nyquist:g} Hz "
            f"(fps {fps:g}); lower the band or give the true capture rate with --fps"
        )
    if temporal in ("butterworth", "iir") and low <= 0:
        raise VMMError(f"the {temporal} filter needs band low > 0 Hz")
    return low, high


def _band_pair(band: Any) -> tuple[float, float]:
    try:
        if isinstance(band, (str, bytes)) or len(band) != 2:
            raise TypeError
        return float(band[0]), float(band[1])
    except (TypeError, ValueError):
        raise VMMError(f"band must be two frequencies (low, high) in Hz, got {band!r}") from None


def check_order(order: Any) -> int:
    """A Butterworth order, MIN_ORDER..MAX_ORDER."""
    if not _is_int(order) or not MIN_ORDER <= int(order) <= MAX_ORDER:
        raise VMMError(f"butterworth order must be {MIN_ORDER}..{MAX_ORDER}, got {order}")
    return int(order)


def fir_taps(taps: int | None, fps: float, low: float) -> int:
    """The FIR length: ``taps``, or about two periods of the low cut-off (at most 4 s), odd.

    Raises VMMError below MIN_FIR_TAPS or above MAX_FIR_TAPS (each tap holds a frame of
    every signal in memory).
    """
    if taps is None:
        taps = int(min(4 * fps, max(2 * fps / max(low, 1e-6), 15)))
        taps += 1 - taps % 2  # odd length: integer group delay
    if not _is_int(taps) or taps < MIN_FIR_TAPS:
        raise VMMError(f"fir needs at least {MIN_FIR_TAPS} taps, got {taps}")
    if taps > MAX_FIR_TAPS:
        raise VMMError(
            f"fir would need {taps} taps (frames held in memory) at {fps:g} fps; give "
            f"--taps {MAX_FIR_TAPS} or fewer, or use the butterworth filter"
        )
    return int(taps)


def check_taps(taps: Any) -> int:
    """An FIR length given explicitly: an integer MIN_FIR_TAPS..MAX_FIR_TAPS."""
    if not _is_int(taps) or taps < MIN_FIR_TAPS:
        raise VMMError(f"fir needs at least {MIN_FIR_TAPS} taps, got {taps}")
    if taps > MAX_FIR_TAPS:
        raise VMMError(f"fir takes at most {MAX_FIR_TAPS} taps (frames held in memory), "
                       f"got {taps}")
    return int(taps)


def check_device(device: Any) -> str:
    """A device name (``cpu``, ``cuda``, ``cuda:N``; a torch.device gives its name).

    Whether CUDA is there is checked when the engine opens it.
    """
    name = str(device) if type(device).__name__ == "device" else device
    if not isinstance(name, str) or not _DEVICE_RE.match(name):
        raise VMMError(f"unknown device {device!r}; use 'cpu' or 'cuda'")
    return name


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        return int(value) == value
    except (TypeError, ValueError, OverflowError):
        return False


# -- recipes ---------------------------------------------------------------------------------

#: Named recipes: parameter sets for a classic use, shared by every front end. A front end
#: applies one before the user's own choices (:func:`apply_recipe`).
RECIPES: dict[str, dict[str, Any]] = {
    # Wu et al. 2012's colour magnification ("face"): a Gaussian-pyramid spatial low-pass,
    # no motion term, a large alpha on a narrow band around the heart rate. The band covers
    # 48-120 BPM; narrow it around the rate `vmm analyze` reports (e.g. 1.1 1.3 for 72 BPM).
    "pulse": {"method": "color", "alpha": 50.0, "band": (0.8, 2.0), "temporal": "ideal",
              "mode": "temporal", "options": {"level": 4, "chroma_attenuation": 1.0}},
    # phase at full HD on a 2-core CPU: 4.2 fps at 1080p against the default's 1.2, for
    # 0.90-0.92 of (1 + alpha) against 0.95-0.96 (docs/benchmarks.md, "Phase at 1080p")
    "phase-hd": {"method": "phase", "options": {"pyramid": "octave", "orientations": 4,
                                                "split_finest": False, "sigma": 1.0}},
}


def apply_recipe(name: str, params: dict[str, Any], keep: Iterable[str] = ()) -> dict[str, Any]:
    """``params`` with recipe ``name`` filled in, except the keys in ``keep`` (the user's).

    The recipe's ``options`` go in as top-level keys (the engine's keyword form); method
    options already in ``params`` win.
    """
    if name not in RECIPES:
        raise VMMError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    keep = set(keep)
    out = dict(params)
    for key, value in RECIPES[name].items():
        if key == "options":
            for opt, v in value.items():
                out.setdefault(opt, v)
        elif key not in keep:
            out[key] = value
    return out


# -- the model -------------------------------------------------------------------------------


def _meta(help: str, **extra: Any) -> dict[str, Any]:
    """Field metadata the front ends read: ``help``, ``choices`` (a tuple, or a callable giving
    one), ``min``/``max`` (``min_open``: the minimum itself is refused), ``metavar``."""
    return {"help": help, **extra}


def _method_choices() -> tuple[str, ...]:
    from .registry import method_names

    return tuple(method_names())


@dataclass(frozen=True)
class MagnifyParams:
    """Everything a magnification needs besides the frames, validated on construction.

    ``alpha`` follows Wu et al. Eq. 1: output displacement = (1 + alpha) x input displacement.
    Construction raises :class:`~napari_vmm.core.errors.VMMError` naming the first bad
    parameter; use :func:`dataclasses.replace` (or :meth:`replace`) for a changed copy.
    The band is checked against Nyquist once ``fps`` is known (``None``: the input's rate).

    Examples
    --------
    >>> p = MagnifyParams(alpha=20, band=(1, 3), fps=30)
    >>> p.engine_kwargs()["alpha"]
    20.0
    """

    method: str = field(default=DEFAULT_METHOD, metadata=_meta(
        "magnifier (see `vmm methods`)", choices=_method_choices))
    alpha: float = field(default=DEFAULT_ALPHA, metadata=_meta(
        "magnification: output motion = (1 + alpha) x input motion",
        min=-1.0, min_open=True, max=MAX_ALPHA))
    band: tuple[float, float] | None = field(default=DEFAULT_BAND, metadata=_meta(
        "temporal pass band in Hz, below Nyquist (fps/2)", metavar=("LOW", "HIGH")))
    fps: float | None = field(default=None, metadata=_meta(
        "true capture frame rate in Hz; default: the input's (give it for high-speed footage)",
        min=0.0, min_open=True))
    temporal: str = field(default=DEFAULT_TEMPORAL, metadata=_meta(
        "temporal filter: ideal (whole clip) or a causal one", choices=FILTERS))
    order: int = field(default=2, metadata=_meta(
        "Butterworth order", min=MIN_ORDER, max=MAX_ORDER))
    taps: int | None = field(default=None, metadata=_meta(
        "FIR length in frames (default about two periods of the low cut-off)",
        min=MIN_FIR_TAPS, max=MAX_FIR_TAPS))
    zero_phase: bool = field(default=False, metadata=_meta(
        "forward-backward Butterworth / centred FIR (needs the whole clip)"))
    mode: str = field(default="temporal", metadata=_meta(
        "temporal: band-pass; static: motion against the reference frame; dynamic: against "
        "the previous frame", choices=MODES))
    reference: int = field(default=0, metadata=_meta(
        "reference frame of static mode", min=0))
    device: str = field(default="cpu", metadata=_meta(
        "cpu or cuda (cuda:N)"))
    options: Mapping[str, Any] = field(default_factory=dict, metadata=_meta(
        "method options (see `vmm methods`)"))

    def __post_init__(self) -> None:
        put = object.__setattr__  # frozen: normalise in place, once
        put(self, "method", check_method(self.method))
        put(self, "alpha", check_alpha(self.alpha))
        put(self, "mode", check_choice("mode", self.mode, MODES))
        put(self, "temporal", check_choice("temporal filter", self.temporal, FILTERS))
        if self.fps is not None:
            put(self, "fps", check_fps(self.fps))
        band = self.band
        if band is not None:
            band = _band_pair(band)
            put(self, "band", band)
        uses_band = self.mode == "temporal" and self.temporal != "none"
        if uses_band and band is None:
            raise VMMError(f"the {self.temporal} filter needs a band (low, high) in Hz")
        if uses_band:  # the band's own checks; against Nyquist when the rate is known
            _check_band(band, self.fps, self.temporal)
        put(self, "order", check_order(self.order))
        if self.taps is not None:
            put(self, "taps", check_taps(self.taps))
        if uses_band and self.temporal == "fir" and self.fps is not None:
            fir_taps(self.taps, self.fps, band[0])
        if not isinstance(self.zero_phase, bool):
            raise VMMError(f"zero_phase must be true or false, got {self.zero_phase!r}")
        if not _is_int(self.reference) or int(self.reference) < 0:
            raise VMMError(f"reference frame must be an integer >= 0, got {self.reference!r}")
        put(self, "reference", int(self.reference))
        put(self, "device", check_device(self.device))
        put(self, "options", self._checked_options(self.options))

    def _checked_options(self, options: Any) -> dict[str, Any]:
        """The given method options, converted and checked by the method's declarations."""
        if options is None:
            return {}
        if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
            raise VMMError(f"method options must be a mapping of names to values, "
                           f"got {options!r}")
        if not options:
            return {}
        from .registry import resolve_options

        resolved = resolve_options(self.method, dict(options))  # imports the method
        return {k: resolved[k] for k in options}

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The model's fields (the engine keywords; ``options`` holds the method's)."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """``{field: default}`` of every field."""
        out = {}
        for f in fields(cls):
            out[f.name] = f.default_factory() if f.default is MISSING else f.default
        return out

    @classmethod
    def describe(cls) -> dict[str, dict[str, Any]]:
        """Every field as plain JSON: ``{name: {"default", "type", "help", ...}}``.

        ``type`` is ``str``, ``float``, ``int``, ``bool``, ``pair`` (two floats) or ``options``;
        ``choices``, ``min``, ``max`` and ``min_open`` (the minimum itself is refused) where
        the field has them; ``optional`` where None is allowed (fps: the input's rate). The
        CLI's flags, ``vmm methods --json`` and the napari form are generated from it.
        """
        import typing

        hints = typing.get_type_hints(cls)
        out: dict[str, dict[str, Any]] = {}
        defaults = cls.defaults()
        for f in fields(cls):
            hint = hints[f.name]
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            optional = len(args) < len(typing.get_args(hint))
            if optional and len(args) == 1:
                hint = args[0]
            base = typing.get_origin(hint) or hint
            kind = {tuple: "pair", bool: "bool", int: "int", float: "float", str: "str"}.get(
                base, "options")
            default = defaults[f.name]
            d: dict[str, Any] = {"default": list(default) if isinstance(default, tuple)
                                 else default, "type": kind, "help": f.metadata["help"]}
            if optional:
                d["optional"] = True
            for key in ("choices", "min", "max", "min_open"):
                value = f.metadata.get(key)
                if value is not None:
                    d[key] = list(value()) if callable(value) else (
                        list(value) if isinstance(value, tuple) else value)
            out[f.name] = d
        return out

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> MagnifyParams:
        """The model from the engine's keyword form: ``magnify(..., alpha=5, levels=4)``.

        Keys that are not fields are method options (checked by the method's declarations);
        an ``options`` mapping adds to them.
        """
        known = {k: v for k, v in kwargs.items() if k in cls.__dataclass_fields__}
        options = {k: v for k, v in kwargs.items() if k not in cls.__dataclass_fields__}
        known["options"] = {**dict(known.get("options") or {}), **options}
        return cls(**known)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MagnifyParams:
        """Inverse of :meth:`to_dict` (a ``--params`` JSON file); unknown keys are an error.

        The engine's keyword form is accepted too: keys that are not fields are method options.
        """
        if not isinstance(d, Mapping):
            raise VMMError(f"parameters must be a JSON object, got {type(d).__name__}")
        return cls.from_kwargs(**d)

    @classmethod
    def from_recipe(cls, name: str, **overrides: Any) -> MagnifyParams:
        """The parameters of recipe ``name`` (see :data:`RECIPES`), with ``overrides``."""
        return cls.from_kwargs(**{**apply_recipe(name, {}), **overrides})

    def replace(self, **changes: Any) -> MagnifyParams:
        """A validated copy with ``changes`` (fields only)."""
        unknown = sorted(set(changes) - set(self.__dataclass_fields__))
        if unknown:
            raise VMMError(f"unknown parameter(s) {unknown}; valid: {list(self.field_names())}")
        return replace(self, **changes)

    # -- output -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (provenance, settings, ``--params`` files)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["band"] = None if self.band is None else [float(b) for b in self.band]
        d["options"] = dict(self.options)
        return d

    def engine_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``magnify``/``iter_magnify``/``StreamingMagnifier``.

        ``fps`` is None while the input's rate is not known yet (:meth:`replace` it then).
        """
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "options"}
        if not self.zero_phase:  # streams take no zero_phase keyword
            del d["zero_phase"]
        return {**d, **self.options}

    def to_cli(self, input_path: str = "INPUT", output_path: str = "OUTPUT") -> str:
        """The equivalent ``vmm magnify`` command line (fields away from their defaults
        are written, and always the method, alpha, band, fps, filter and mode)."""
        args = ["vmm", "magnify", input_path, output_path]
        defaults = self.defaults()
        shown = ("method", "alpha", "band", "fps", "temporal", "mode")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "options":
                for key, opt in value.items():
                    args += ["--option", f"{key}={opt}"]
                continue
            if value is None or (f.name not in shown and value == defaults[f.name]):
                continue
            if f.name == "reference" and self.mode != "static":
                continue
            flag = "--" + f.name.replace("_", "-")
            if isinstance(value, bool):
                args.append(flag)
            elif f.name == "band":
                args += [flag, f"{value[0]:g}", f"{value[1]:g}"]
            elif isinstance(value, float):
                args += [flag, f"{value:g}"]
            else:
                args += [flag, str(value)]
        return shlex.join(args)
