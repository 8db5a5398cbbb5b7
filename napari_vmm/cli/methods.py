"""``vmm methods``: list the magnifiers, their options and (for learned ones) their weights."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("methods", help="list magnification methods and their options")
    p.add_argument("--json", action="store_true",
                   help="machine-readable output: {\"parameters\": the magnification "
                   "parameters (default, type, help, limits), \"methods\": every method "
                   "with its options}")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..core.params import MagnifyParams
    from ..core.registry import available_methods

    methods = available_methods()
    if args.json:
        out = {"parameters": MagnifyParams.describe(), "methods": methods}
        print(json.dumps(out, indent=2, default=str))
        return 0
    for name, info in methods.items():
        print(f"{name:10s} [{info['kind']}] {info['summary']}")
        weights = info.get("weights")
        if isinstance(weights, dict):
            status = weights.get("status") or ("available" if weights.get("available")
                                               else "missing")
            metric, baseline = weights.get("val_ssim"), weights.get("val_ssim_input")
            score = f", val SSIM {metric:.3f}" if metric else ""
            if metric and baseline:
                score += f" (copy-the-input {baseline:.3f}, bar {weights['quality_bar']})"
            gain = weights.get("val_motion_gain")
            if gain is not None:  # SSIM alone cannot tell a magnifier from a copy
                score += f", delivers {gain:.0%} of the requested change on validation"
            print(f"{'':12s}weights: {status}{score}")
        for key, opt in info["options"].items():
            extra = f" choices={opt['choices']}" if "choices" in opt else ""
            print(f"{'':12s}--option {key}={opt['default']!s:<10s} {opt['help']}{extra}")
    return 0
