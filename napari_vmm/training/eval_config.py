"""What ``vmm evaluate`` runs: the evaluation's one parameter model, with its defaults and
all of its validation (no torch import, so the command line can read the defaults).

The tests themselves are :mod:`.evaluate`; the tables :mod:`.eval_tables`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.errors import VMMError
from ..core.learned import weights as W
from ..core.learned.table import MODELS

LEARNED = tuple(MODELS)
CLASSICAL = ("linear", "phase", "riesz")
#: the tests, in the order a full run takes them (``thesis`` only on request)
TEST_NAMES = ("subpixel", "noise", "fd4mm", "linearity", "thesis")
#: tests whose score is an error (lower is better)
LOWER_IS_BETTER = {"thesis"}


def base_method(method: str) -> str:
    """``"fd4mm:nocr"`` -> ``"fd4mm"``: a label after a colon names a variant (its own
    weights, e.g. an ablation) of a registered method; ``"realtime@static"`` -> ``"realtime"``:
    a column of a learned model run in static mode."""
    return method.split("@", 1)[0].split(":", 1)[0]


def weights_key(column: str) -> str:
    """The ``weights`` key of a table column: ``"fd4mm:nocr@static"`` -> ``"fd4mm:nocr"``."""
    return column.split("@", 1)[0]


def columns(cfg: EvalConfig | dict[str, Any]) -> list[str]:
    """The table columns: each method (learned ones in temporal mode, as users run them) and,
    with ``static_too``, each learned model again in Oh's static two-frame mode (``@static``)."""
    c = cfg if isinstance(cfg, dict) else cfg.__dict__
    out = []
    for m in c["methods"]:
        out.append(m)
        if c.get("static_too", False) and base_method(m) in LEARNED and "@" not in m:
            out.append(f"{m}@static")
    return out


def default_methods() -> tuple[str, ...]:
    """The learned models that have weights in the package, then the classical methods."""
    learned = []
    for m in LEARNED:
        try:
            if W.read_provenance(m) is not None:
                learned.append(m)
        except Exception:  # noqa: BLE001 - unreadable provenance: leave the model out
            pass
    return (*learned, *CLASSICAL)


def setting_name(name: str) -> str:
    """A field as errors name it: ``fd4mm_factors (--fd4mm-factors)``, the command line's flag
    beside it (each flag of ``vmm evaluate`` is its field's name)."""
    return f"{name} (--{name.replace('_', '-')})"


def _check_range(name: str, values: tuple[float, ...], low: float, high: float,
                 what: str) -> None:
    if not values or any(not low <= v <= high for v in values):
        got = ",".join(f"{v:g}" for v in values)
        raise VMMError(f"{setting_name(name)} takes {what}, got {got!r}")


@dataclass
class EvalConfig:
    """Every setting of an evaluation run; constructing one validates it (:class:`VMMError`
    naming the bad setting)."""

    #: methods; a learned one may carry a label, ``fd4mm:nocr``, for a variant with its own
    #: ``weights`` entry (ablations side by side)
    methods: tuple[str, ...] = field(default_factory=default_methods)
    size: int = 128
    scenes: int = 2
    frames: int = 30
    seed: int = 0
    device: str = "cpu"
    weights: dict[str, str] = field(default_factory=dict)  # model -> .pt path
    #: method options per column (without ``@static``), e.g. {"realtime:dn": {"denoise": "1"}}
    options: dict[str, dict[str, str]] = field(default_factory=dict)
    tests: tuple[str, ...] = ("subpixel", "noise", "fd4mm", "linearity")
    subpixel_amplitudes: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
    noise_factors: tuple[float, ...] = (0.0, 0.3, 1.0, 2.0, 4.0)
    noise_motions: tuple[tuple[float, float], ...] = ((0.05, 199.0), (0.5, 19.0))
    fd4mm_factors: tuple[float, ...] = (5, 10, 20, 50, 100)
    fd4mm_sigmas: tuple[float, ...] = (0.01, 0.05, 0.1, 0.2)
    fd4mm_amplitude: float = 0.2
    thesis_clips: int = 25
    thesis_size: int = 256
    thesis_radius: float = 40.0
    thesis_frames: int = 10
    thesis_amplitude: float = 0.1
    thesis_factor: float = 100.0
    thesis_sigmas: tuple[float, ...] = (0.0,)
    #: also score each learned model in Oh's static two-frame mode (columns ``name@static``)
    static_too: bool = True
    #: a folder of real videos: scenes cut from their frames instead of generated textures
    real_textures: str = ""
    #: Ha et al.'s linearity test: achieved vs requested magnification (1 + alpha)
    linearity_amplitudes: tuple[float, ...] = (0.05, 1.0)
    linearity_factors: tuple[float, ...] = (1, 2, 5, 10, 20, 40, 80)
    linearity_size: int = 0   # 0: large enough for the largest output motion

    def __post_init__(self) -> None:
        from ..core.registry import method_names

        bad = [t for t in self.tests if t not in TEST_NAMES]
        if bad:
            raise VMMError(f"unknown test(s) {bad}; choose from {sorted(TEST_NAMES)}")
        unknown = [m for m in self.methods if base_method(m) not in method_names()]
        if unknown:
            raise VMMError(f"unknown method(s) {unknown}; available: {method_names()}")
        for method in self.options:
            if method not in self.methods:
                raise VMMError(f"options for {method!r}, which is not among the methods")
        if self.size < 32:
            raise VMMError(f"{setting_name('size')} must be at least 32 px, got {self.size}")
        if self.scenes < 1 or self.frames < 2:
            raise VMMError("an evaluation needs at least 1 scene and 2 frames per clip")
        mags = "magnifications 1 + alpha between 1 and 1000"
        sigmas = "sigmas in [0, 1] (fractions of full scale)"
        _check_range("fd4mm_factors", self.fd4mm_factors, 1.0, 1000.0, mags)
        _check_range("linearity_factors", self.linearity_factors, 1.0, 1000.0, mags)
        _check_range("fd4mm_sigmas", self.fd4mm_sigmas, 0.0, 1.0, sigmas)
        _check_range("thesis_sigmas", self.thesis_sigmas, 0.0, 1.0, sigmas)
        _check_range("linearity_amplitudes", self.linearity_amplitudes, 0.001, 20.0,
                     "amplitudes in px between 0.001 and 20")
