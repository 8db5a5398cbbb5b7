"""Tables of ``vmm evaluate`` results: Markdown, and merging a re-scored method into an
earlier result (:mod:`.evaluate` runs the tests)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .eval_config import LOWER_IS_BETTER, columns

#: Configuration fields that must agree for two results to be merged (the clips they score).
_CLIP_FIELDS = ("size", "scenes", "frames", "seed", "subpixel_amplitudes", "noise_factors",
                "noise_motions", "fd4mm_factors", "fd4mm_sigmas", "fd4mm_amplitude",
                "thesis_clips", "thesis_size", "thesis_radius", "thesis_frames",
                "thesis_amplitude", "thesis_factor", "thesis_sigmas", "static_too",
                "real_textures", "linearity_amplitudes", "linearity_factors", "linearity_size")


def check_mergeable(old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
    """Raise VMMError unless two evaluation configs score the same clips with the same tests."""
    from ..core.errors import VMMError

    def numbers_as_floats(value: Any) -> Any:
        """5 and 5.0 (a parsed flag and a stored default) read alike."""
        if isinstance(value, list):
            return [numbers_as_floats(v) for v in value]
        if isinstance(value, dict):
            return {k: numbers_as_floats(v) for k, v in value.items()}
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    def same(a: Any, b: Any) -> bool:
        a, b = (numbers_as_floats(json.loads(json.dumps(v, default=str))) for v in (a, b))
        return a == b

    diff = [k for k in _CLIP_FIELDS if not same(old_config.get(k), new_config.get(k))]
    if diff:
        raise VMMError(f"cannot merge: the results differ in {', '.join(diff)}")
    if sorted(new_config["tests"]) != sorted(old_config["tests"]):
        raise VMMError(f"cannot merge: tests {', '.join(new_config['tests'])} against "
                       f"{', '.join(old_config['tests'])} in the earlier result")


def merge_results(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``old`` with the columns of ``new``'s methods replaced or added.

    For re-scoring a few methods (a model with new weights) without re-running the rest: both
    results must come from the same clips (same settings, tests and seed, so the same
    ``input`` scores), else VMMError. Rows are matched on their test and setting.
    """
    from ..core.errors import VMMError

    oc, nc = old["config"], new["config"]
    check_mergeable(oc, nc)
    added = [m for m in nc["methods"] if m not in oc["methods"]]
    new_cols = columns(nc)

    def key(row: dict) -> str:
        return json.dumps({k: v for k, v in row.items()
                           if k not in ("input", "gain", *columns(oc), *new_cols)},
                          sort_keys=True)

    fresh = {key(r): r for r in new["rows"]}
    rows = []
    for row in old["rows"]:
        r = fresh.get(key(row))
        if r is not None:
            if abs(r["input"] - row["input"]) > 1e-6:
                raise VMMError(f"cannot merge: the input scores differ in {key(row)}")
            row = {**row, **{m: r[m] for m in new_cols if m in r},
                   "gain": {**row.get("gain", {}),
                            **{m: v for m, v in r.get("gain", {}).items() if m in new_cols}}}
        rows.append(row)
    config = {**oc, "methods": [*oc["methods"], *added],
              "weights": {**oc.get("weights", {}), **nc.get("weights", {})}}
    return {"config": config, "rows": rows,
            "weights": {**old.get("weights", {}), **new.get("weights", {})},
            "wall_time_s": old.get("wall_time_s"),
            "merged": [*old.get("merged", []),
                       {"methods": list(nc["methods"]), "wall_time_s": new.get("wall_time_s")}]}


def _cell(row: dict[str, Any], m: str, best: float | None) -> str:
    """``SSIM ×gain`` of column ``m``; bold the row's best, ✗ a column that fails the row."""
    v = row.get(m)
    if v is None:
        return "–"
    g = row.get("gain", {}).get(m)
    text = f"{v:.4f}"
    if m != "input" and v == best:
        text = f"**{text}**"
    if g is not None:
        text += f" ×{g:.2f}" + (" ✗" if m != "input" and fails(row, m) else "")
    return text


def fails(row: dict[str, Any], m: str) -> bool:
    """Column ``m`` delivers less than half of the requested magnification in ``row``."""
    from .gain import FAIL_BELOW

    g = row.get("gain", {}).get(m)
    return g is not None and row.get("alpha", 0) > 0 and g < FAIL_BELOW


def markdown_tables(result: dict[str, Any]) -> str:
    """The result as Markdown tables, one per test.

    Each cell is the SSIM against the ground truth and, after ×, the achieved magnification
    over the requested 1 + α (1.00: all of it; 1/(1+α): none, as the input). A column below
    half the request is marked ✗ and cannot be the row's best, whatever its SSIM.
    """
    methods = columns(result["config"])
    cols = ["input", *methods]
    out = []
    keyset = {"subpixel": ["amplitude_px", "alpha"],
              "noise": ["amplitude_px", "alpha", "noise_factor"],
              "fd4mm": ["factor", "sigma"],
              "linearity": ["amplitude_px", "factor"],
              "thesis": ["amplitude_px", "factor", "alpha", "sigma"]}
    titles = {"subpixel": "Sub-pixel test (Oh et al.): SSIM vs ground truth ×achieved/requested "
                          "magnification, magnified amplitude 10 px",
              "noise": "Noise test (Oh et al.): SSIM vs ground truth ×achieved/requested "
                       "magnification",
              "fd4mm": "FD4MM sinusoid protocol: SSIM vs ground truth ×achieved/requested "
                       "magnification",
              "linearity": "Linearity (Ha et al.): SSIM vs ground truth ×achieved/requested "
                           "magnification",
              "thesis": "Thesis circles protocol (dynamic mode): MSE (0-255) vs ground truth, "
                        "lower is better"}
    for m, w in result.get("weights", {}).items():
        if "error" in w:
            out.append(f"- `{m}` weights: {w['error']}")
        else:
            arch = (f", arch {w['arch']}" if w.get("arch") else "") \
                + (f", options {w['options']}" if w.get("options") else "")
            out.append(f"- `{m}` weights: step {w['steps']}, validation SSIM {w['val_ssim']}, "
                       f"sha256 `{str(w['sha256'])[:12]}…`, status: {w['status']}{arch}")
    if out:
        out.append("")
    for test, keys in keyset.items():
        rows = [r for r in result["rows"] if r["test"] == test]
        if not rows:
            continue
        out.append(f"### {titles[test]}\n")
        if any("gain" in r for r in rows):
            out.append("Achieved magnification measured around the moving object; on the "
                       "ground truth the estimator reads ×" + ", ×".join(
                           f"{r['gain']['truth']:.3f}" for r in rows[:3])
                       + (" (first rows)" if len(rows) > 3 else "")
                       + ". ✗: below half the request.\n")
        out.append("| " + " | ".join(keys + cols) + " |")
        out.append("|" + "---|" * (len(keys) + len(cols)))
        for r in rows:
            pick = min if test in LOWER_IS_BETTER else max
            best = pick((r[m] for m in methods if m in r and not fails(r, m)), default=None)
            cells = [f"{r[k]:g}" for k in keys] + [_cell(r, m, best) for m in cols]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
        if test != "thesis" and any("gain" in r for r in rows):
            out.append(_summary(rows, methods))
            out.append("")
    return "\n".join(out)


def _summary(rows: list[dict[str, Any]], methods: list[str]) -> str:
    """One line per table: each column's mean SSIM, mean achieved/requested, rows failed.

    The mean miss, the mean of ``|achieved/requested − 1|``, follows the mean gain: an
    overshoot on one row and a shortfall on another cancel in the mean gain, not in the miss.
    """
    parts = []
    for m in methods:
        have = [r for r in rows if m in r]
        if not have:
            continue
        gains = np.array([r["gain"][m] for r in have if m in r.get("gain", {})])
        nfail = sum(fails(r, m) for r in have)
        parts.append(f"`{m}` {np.mean([r[m] for r in have]):.3f} ×{np.mean(gains):.2f} "
                     f"±{np.mean(np.abs(gains - 1)):.0%}{f' ({nfail} ✗)' if nfail else ''}")
    return "Means (SSIM ×gain ±miss, rows failed): " + "; ".join(parts)
