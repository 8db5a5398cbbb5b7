"""The parameter model shared by the CLI, the napari widget and JSON parameter files."""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from typing import Any


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
