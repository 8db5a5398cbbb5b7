"""Shipped weights: fp16 state dicts in ``napari_vmm/weights/`` with a provenance JSON beside each.

Reading and verifying them here; training writes them with
:func:`napari_vmm.training.export.save_weights`.

``<model>.pt``   the state dict (fp16), written with ``torch.save``
``<model>.json`` provenance: command, seed, steps, data recipe, wall time, hardware, validation
                 metrics, training curve, status and the file's sha256 (verified on every load)
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..errors import VMMError

QUALITY_BAR = 0.95  # validation SSIM a model needs before its weights count as finished
STATUS_FINISHED = "finished"
STATUS_TRAINING = "in training: below the quality bar"
STATUS_NOT_USEFUL = ("in training: not yet useful (validation SSIM below the copy-the-input "
                     "baseline)")
#: below this share of the target's change (validation ``motion_gain``) a model does not
#: magnify, whatever its SSIM: decoding twice keeps such a model at the copy-input level
MOTION_GAIN_FLOOR = 0.05
STATUS_NO_MOTION = ("in training: not yet useful (it does not magnify: its motion path "
                    "delivers under 5 % of the requested change)")

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"


def training_status(validation: dict[str, Any]) -> str:
    """The status that validation metrics earn: finished, in training, or not yet useful.

    ``validation`` holds ``ssim`` and ``ssim_input`` (the SSIM of the unmagnified input against
    the ground truth on the same split). Weights that score below that copy-the-input baseline
    do worse than no magnification on validation, and say so in ``vmm methods``; so do
    weights whose ``motion_gain`` (when recorded) is below :data:`MOTION_GAIN_FLOOR`.
    """
    ssim, baseline = validation.get("ssim"), validation.get("ssim_input")
    if ssim is None:
        return STATUS_TRAINING
    motion = validation.get("motion_gain")
    if motion is not None and motion < MOTION_GAIN_FLOOR:
        return STATUS_NO_MOTION
    if ssim >= QUALITY_BAR:
        return STATUS_FINISHED
    if baseline is not None and ssim < baseline:
        return STATUS_NOT_USEFUL
    return STATUS_TRAINING


def weights_paths(model: str, directory: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """(weights file, provenance JSON) of ``model`` in ``directory`` (default: the package's)."""
    d = Path(directory) if directory is not None else WEIGHTS_DIR
    return d / f"{model}.pt", d / f"{model}.json"


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def train_hint(model: str) -> str:
    return (f"train them with `vmm train {model}` (see docs/learned.md), or pass "
            f"weights=PATH to a .pt file that has its provenance .json beside it")


def read_provenance(model: str, directory: str | os.PathLike | None = None,
                    ) -> dict[str, Any] | None:
    """The provenance dict, or None when the model has no weights there."""
    pt, js = weights_paths(model, directory)
    if not (pt.exists() and js.exists()):
        return None
    try:
        return json.loads(js.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise VMMError(f"cannot read the provenance of the {model} weights ({js}): {e}") from None


def load_weights(model: str, path: str | os.PathLike | None = None,
                 ) -> tuple[dict, dict[str, Any]]:
    """Load and verify ``model``'s weights; returns (float32 state dict, provenance).

    ``path`` is a .pt file (its .json beside it) or a directory; default the package's weights.
    Raises VMMError when the files are missing or the checksum does not match.
    """
    import torch

    if path is not None and Path(path).suffix == ".pt":
        pt = Path(path)
        js = pt.with_suffix(".json")
    else:
        pt, js = weights_paths(model, path)
    if not pt.exists():
        raise VMMError(f"no trained weights for {model!r} at {pt}; {train_hint(model)}")
    if not js.exists():
        raise VMMError(f"the {model} weights {pt} have no provenance file {js.name} beside "
                       "them, so their checksum cannot be verified")
    try:
        prov = json.loads(js.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VMMError(f"the provenance {js} of the {model} weights is unreadable ({e}), so "
                       f"the checksum of {pt} cannot be verified") from None
    if not isinstance(prov, dict):
        raise VMMError(f"the provenance {js} of the {model} weights is not a JSON object")
    digest = sha256_file(pt)
    if digest != prov.get("sha256"):
        raise VMMError(f"checksum mismatch for the {model} weights {pt}: sha256 {digest[:16]}… "
                       f"but the provenance says {str(prov.get('sha256'))[:16]}…; the file is "
                       f"corrupt or was replaced. Reinstall the package or {train_hint(model)}")
    try:
        sd = torch.load(pt, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise VMMError(f"cannot load the {model} weights {pt}: {e}") from None
    return {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}, prov


def describe_weights(model: str, directory: str | os.PathLike | None = None) -> dict[str, Any]:
    """What ``available_methods()`` reports under ``"weights"`` for a learned model."""
    try:
        prov = read_provenance(model, directory)
    except VMMError as e:
        return {"available": False, "status": f"unreadable: {e}"}
    if prov is None:
        return {"available": False,
                "status": "no trained weights (none ship with the package); "
                          + train_hint(model)}
    val = prov.get("validation", {})
    return {
        "available": True,
        "status": training_status(val) if val else prov.get("status", STATUS_TRAINING),
        "val_ssim": val.get("ssim"),
        "val_ssim_input": val.get("ssim_input"),
        "val_motion_gain": val.get("motion_gain"),
        "quality_bar": prov.get("quality_bar", QUALITY_BAR),
        "steps": prov.get("steps"),
        "samples_seen": prov.get("samples_seen"),
        "wall_time_h": round(float(prov.get("wall_time_s", 0.0)) / 3600, 2),
        "sha256": prov.get("sha256"),
    }
