"""Shipped weights: fp16 state dicts in ``napari_vmm/weights/`` with a provenance JSON beside each.

``<model>.pt``   the state dict (fp16), written with ``torch.save``
``<model>.json`` provenance: command, seed, steps, data recipe, wall time, hardware, validation
                 metrics, training curve, status and the file's sha256 (verified on every load)
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any

from ..errors import VMMError

QUALITY_BAR = 0.95  # validation SSIM a model needs before its weights count as finished
STATUS_FINISHED = "finished"
STATUS_TRAINING = "in training: below the quality bar"
STATUS_NOT_USEFUL = ("in training: not yet useful (validation SSIM below the copy-the-input "
                     "baseline)")

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"


def training_status(validation: dict[str, Any]) -> str:
    """The status that validation metrics earn: finished, in training, or not yet useful.

    ``validation`` holds ``ssim`` and ``ssim_input`` (the SSIM of the unmagnified input against
    the ground truth on the same split). Weights that score below that copy-the-input baseline
    do worse than no magnification on validation, and say so in ``vmm methods``.
    """
    ssim, baseline = validation.get("ssim"), validation.get("ssim_input")
    if ssim is None:
        return STATUS_TRAINING
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


def hardware_string() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}; {os.cpu_count()} logical CPUs; {platform.system()} {platform.release()}"


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


def save_weights(state_dict: dict, provenance: dict[str, Any], model: str,
                 directory: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``state_dict`` as fp16 plus provenance (with sha256) atomically into ``directory``."""
    import torch

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    pt, js = weights_paths(model, d)
    half = {k: (v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.cpu())
            for k, v in state_dict.items()}
    tmp = pt.with_suffix(".pt.tmp")
    torch.save(half, tmp)
    prov = dict(provenance)
    prov["model"] = model
    prov["file"] = pt.name
    prov["format"] = "torch.save state_dict, float16"
    prov["sha256"] = sha256_file(tmp)
    prov["bytes"] = tmp.stat().st_size
    jtmp = js.with_suffix(".json.tmp")
    jtmp.write_text(json.dumps(prov, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, pt)
    os.replace(jtmp, js)
    return pt, js


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
        "quality_bar": prov.get("quality_bar", QUALITY_BAR),
        "steps": prov.get("steps"),
        "samples_seen": prov.get("samples_seen"),
        "wall_time_h": round(float(prov.get("wall_time_s", 0.0)) / 3600, 2),
        "sha256": prov.get("sha256"),
    }


def _subset_lines(val: dict[str, Any]) -> list[str]:
    """One line: validation SSIM per scene subset, beside copying the input."""
    from .data import SUBSETS

    parts = [f"{k} {SUBSETS[k]} {val[f'ssim_s{k}']:.3f} / {val[f'ssim_input_s{k}']:.3f}"
             for k in SUBSETS if f"ssim_s{k}" in val]
    return [f"- by scene subset (output / copy-input): {'; '.join(parts)}"] if parts else []


def _segment_lines(segments: list[dict[str, Any]]) -> list[str]:
    """The training history: one line per invocation, with its steps, lr and command."""
    if not segments:
        return []
    return ["- training segments:"] + [
        f"  - steps {g.get('start_step')}-{g.get('end_step')}: lr {g.get('lr')}, "
        f"`{g.get('command')}`" + (f" ({g['note']})" if g.get("note") else "")
        for g in segments]


def provenance_markdown(directory: str | os.PathLike | None = None) -> str:
    """A readable summary of every provenance JSON in ``directory`` (default: the package's).

    The JSON files stay authoritative (the loader verifies their sha256); this is what
    ``provenance.md`` beside the weights holds, written by ``scripts/train_snapshot.sh``.
    """
    d = Path(directory) if directory is not None else WEIGHTS_DIR
    lines = ["# Provenance of the shipped weights", "",
             "Generated from the `<model>.json` files beside each `<model>.pt` (those are",
             "authoritative, and `load_weights` checks each sha256 on every load).", ""]
    provs = [json.loads(path.read_text()) for path in sorted(d.glob("*.json"))]
    lines += ["| model | steps | samples | wall time | val SSIM | copy-the-input | status |",
              "|---|---|---|---|---|---|---|"]
    for p in provs:
        val = p.get("validation", {})
        lines.append(f"| {p.get('model')} | {p.get('steps')} | {p.get('samples_seen')} | "
                     f"{float(p.get('wall_time_s', 0)) / 3600:.2f} h | {val.get('ssim')} | "
                     f"{val.get('ssim_input')} | {p.get('status')} |")
    lines.append("")
    for p in provs:
        val = p.get("validation", {})
        recipe = p.get("data_recipe", {})
        lines += [
            f"## {p.get('model')} (`{p.get('file')}`)", "",
            f"- command: `{p.get('command')}`",
            *([f"- architecture switches: `{json.dumps(p['arch'], sort_keys=True)}`"]
              if p.get("arch") else []),
            f"- seed {p.get('seed')}, steps {p.get('steps')}, samples {p.get('samples_seen')}, "
            f"batch {p.get('batch')}, crop {p.get('crop')}",
            f"- data recipe: `{recipe.get('generator')}` ({recipe.get('train_split')}, "
            f"{recipe.get('size')} px)",
            f"- wall time {float(p.get('wall_time_s', 0)) / 3600:.2f} h; hardware: "
            f"{p.get('hardware')}",
            f"- validation ({val.get('split')}, n {val.get('n')}): SSIM {val.get('ssim')}, "
            f"copy-input {val.get('ssim_input')}, L1 {val.get('l1')}",
            *_subset_lines(val),
            *_segment_lines(p.get("segments", [])),
            f"- status: {p.get('status')} (quality bar {p.get('quality_bar', QUALITY_BAR)})",
            f"- sha256 `{p.get('sha256')}` ({p.get('bytes')} bytes)", ""]
    return "\n".join(lines)
