"""Writing learned weights: the fp16 state dict with its provenance JSON (format and checksum
in :mod:`napari_vmm.core.learned.weights`, which reads and verifies them), the hardware line of a
provenance and the ``provenance.md`` summary beside the shipped weights.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from ..core.learned.weights import (
    QUALITY_BAR,
    WEIGHTS_DIR,
    sha256_file,
    weights_paths,
)
from ..io.atomic import atomic_output
from .data import SUBSETS


def hardware_string() -> str:
    """This machine in one line (CPU model, logical CPUs, OS) for a provenance."""
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


def save_weights(state_dict: dict, provenance: dict[str, Any], model: str,
                 directory: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``state_dict`` as fp16 plus provenance (with sha256) atomically into ``directory``."""
    import torch

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    pt, js = weights_paths(model, d)
    half = {k: (v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.cpu())
            for k, v in state_dict.items()}
    # the .pt is renamed into place first, then its provenance
    with atomic_output(js) as jtmp, atomic_output(pt) as tmp:
        torch.save(half, tmp)
        prov = dict(provenance)
        prov["model"] = model
        prov["file"] = pt.name
        prov["format"] = "torch.save state_dict, float16"
        prov["sha256"] = sha256_file(tmp)
        prov["bytes"] = Path(tmp).stat().st_size
        Path(jtmp).write_text(json.dumps(prov, indent=1, sort_keys=False) + "\n")
    return pt, js


def _subset_lines(val: dict[str, Any]) -> list[str]:
    """One line: validation SSIM per scene subset, beside copying the input."""
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
