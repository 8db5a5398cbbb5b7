"""The parameter model shared by the CLI, the napari widget and JSON parameter files."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

#: Named recipes: parameter sets for a classic use, shared by every front end. A front end
#: applies one before the user's own choices (:func:`apply_recipe`).
RECIPES: dict[str, dict[str, Any]] = {
    # Wu et al. 2012's colour magnification ("face"): a Gaussian-pyramid spatial low-pass,
    # no motion term, a large alpha on a narrow band around the heart rate. The band covers
    # 48-120 BPM; narrow it around the rate `vmm analyze` reports (e.g. 1.1 1.3 for 72 BPM).
    "pulse": {"method": "color", "alpha": 50.0, "band": (0.8, 2.0), "temporal": "ideal",
              "mode": "temporal", "options": {"level": 4, "chroma_attenuation": 1.0}},
}


def apply_recipe(name: str, params: dict[str, Any], keep: Iterable[str] = ()) -> dict[str, Any]:
    """``params`` with recipe ``name`` filled in, except the keys in ``keep`` (the user's).

    The recipe's ``options`` go in as top-level keys (the engine's keyword form); method
    options already in ``params`` win.
    """
    from .errors import VMMError

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


@dataclass
class MagnifyParams:
    """Everything :func:`napari_vmm.core.engine.magnify` needs besides the frames.

    ``alpha`` follows Wu et al. Eq. 1: output displacement = (1 + alpha) x input displacement.
    """

    method: str = "riesz"
    alpha: float = 10.0
    band: tuple[float, float] = (0.5, 3.0)
    fps: float = 30.0
    temporal: str = "butterworth"
    mode: str = "temporal"
    reference: int = 0
    device: str = "cpu"
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_recipe(cls, name: str, **overrides: Any) -> MagnifyParams:
        """The parameters of recipe ``name`` (see :data:`RECIPES`), with ``overrides``."""
        recipe = apply_recipe(name, {})
        options = {k: v for k, v in recipe.items() if k not in cls.__dataclass_fields__}
        known = {k: v for k, v in recipe.items() if k in cls.__dataclass_fields__}
        return cls(**{**known, "options": options, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        d = asdict(self)
        d["band"] = [float(b) for b in self.band]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MagnifyParams:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "band" in known:
            known["band"] = tuple(float(b) for b in known["band"])
        if "options" in known:
            known["options"] = dict(known["options"] or {})
        return cls(**known)

    def engine_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``magnify``/``StreamingMagnifier``."""
        return {"fps": self.fps, "method": self.method, "alpha": self.alpha,
                "band": tuple(self.band), "temporal": self.temporal, "mode": self.mode,
                "reference": self.reference, "device": self.device, **self.options}

    def to_cli(self, input_path: str = "INPUT", output_path: str = "OUTPUT") -> str:
        """The equivalent ``vmm magnify`` command line."""
        args = ["vmm", "magnify", input_path, output_path, "--method", self.method,
                "--alpha", f"{self.alpha:g}", "--band", f"{self.band[0]:g}", f"{self.band[1]:g}",
                "--fps", f"{self.fps:g}", "--temporal", self.temporal, "--mode", self.mode]
        if self.mode == "static" and self.reference:
            args += ["--reference", str(self.reference)]
        if self.device != "cpu":
            args += ["--device", self.device]
        for key, value in self.options.items():
            args += ["--option", f"{key}={value}"]
        return shlex.join(args)
