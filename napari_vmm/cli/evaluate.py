"""``vmm evaluate``: learned and classical magnifiers on the quantitative synthetic tests.

Example::

    vmm evaluate                                  # all tests, all methods, 128 px, 2 scenes
    vmm evaluate --tests noise --methods oh2018,phase --size 192 --scenes 4 --markdown out.md
    vmm evaluate --weights realtime=runs/realtime/export/realtime.pt --json results.json
    vmm evaluate --methods fd4mm,fd4mm:nocr,oh2018 \
        --weights fd4mm:nocr=runs/fd4mm-nocr/export/fd4mm.pt      # an ablation side by side
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..core.errors import VMMError
from . import run_subcommand

DESCRIPTION = """\
Run Oh et al.'s sub-pixel and noise tests, the FD4MM sinusoid protocol and Ha et al.'s
linearity test on synthetic clips (textures from the test split of the training-data generator,
or cut from real videos with --real-textures) and report, for every method side by side, SSIM
against the ground truth and the achieved magnification (measured output motion of the object
over its input motion) against the requested 1 + alpha. A method below half the request fails
the row whatever its SSIM. Every method runs in temporal mode with an ideal band-pass around the
motion frequency; learned models also in Oh's static two-frame mode (see docs/evaluation.md).
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``evaluate`` subcommand to ``subparsers`` (its ``func`` runs it)."""
    p = subparsers.add_parser(
        "evaluate", help="SSIM of learned and classical methods on the synthetic tests",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default="",
                   help="comma-separated methods (default: the learned ones that have "
                        "weights, then linear, phase, riesz); NAME:LABEL adds a variant of a "
                        "learned model with its own --weights NAME:LABEL=PATH (ablations)")
    p.add_argument("--tests", default="subpixel,noise,fd4mm,linearity",
                   help="comma-separated: subpixel, noise, fd4mm, linearity (Ha et al.: "
                        "achieved vs requested magnification 1-80x), thesis (the Singh thesis "
                        "circles protocol, MSE; not in the default)")
    p.add_argument("--no-static", action="store_true",
                   help="score learned models in temporal mode only (default: also in Oh's "
                        "static two-frame mode, as NAME@static columns)")
    p.add_argument("--real-textures", metavar="DIR", default="",
                   help="cut every scene from frames of the videos in DIR (e.g. "
                        "../shared/videos) instead of generated test-split textures")
    p.add_argument("--size", type=int, default=128, help="frame size in px (default 128)")
    p.add_argument("--scenes", type=int, default=2, help="scenes per setting (default 2)")
    p.add_argument("--frames", type=int, default=30,
                   help="frames per clip for the Oh tests (default 30 = 3 periods)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--weights", action="append", default=[], metavar="MODEL=PATH",
                   help="use these weights for a learned model (default: shipped); repeatable")
    p.add_argument("--option", action="append", default=[], metavar="METHOD.KEY=VALUE",
                   help="a method option for one column, e.g. realtime:dn.denoise=true beside "
                        "realtime (see vmm methods); repeatable")
    p.add_argument("--fd4mm-factors", default="5,10,20,50,100",
                   help="FD4MM protocol: comma-separated magnifications 1 + alpha of its "
                        "clean rows (default the paper's 5,10,20,50,100)")
    p.add_argument("--fd4mm-sigmas", default="0.01,0.05,0.1,0.2",
                   help="FD4MM protocol: comma-separated Gaussian noise sigmas in [0, 1] units "
                        "for its noisy rows at 20x (default: the paper's 0.01,0.05,0.1,0.2; "
                        "6 DN is 0.0235)")
    p.add_argument("--linearity-amplitudes", default="0.05,1",
                   help="linearity test: comma-separated input amplitudes in px (default "
                        "Ha et al.'s 0.05,1)")
    p.add_argument("--linearity-factors", default="1,2,5,10,20,40,80",
                   help="linearity test: comma-separated requested magnifications 1 + alpha "
                        "(default 1,2,5,10,20,40,80)")
    p.add_argument("--thesis-clips", type=int, default=25,
                   help="thesis protocol: number of clips (default 25, the thesis')")
    p.add_argument("--thesis-size", type=int, default=256,
                   help="thesis protocol: frame size in px (silent in the thesis; default 256)")
    p.add_argument("--thesis-sigmas", default="0",
                   help="thesis protocol: comma-separated Gaussian noise sigmas in [0, 1] "
                        "units (the thesis' noise sweep; default 0)")
    p.add_argument("--merge", metavar="EARLIER.json",
                   help="re-score only --methods and merge them into this earlier --json "
                        "result of the same settings (e.g. a model with new weights)")
    p.add_argument("--json", metavar="OUT.json", help="write all results as JSON")
    p.add_argument("--markdown", metavar="OUT.md", help="write the tables as Markdown")
    p.set_defaults(func=run)
    return p


def _floats(flag: str, text: str, low: float = 0.0, high: float = 1.0,
            what: str = "sigmas in [0, 1] (fractions of full scale)") -> tuple[float, ...]:
    """A comma-separated list of numbers in [``low``, ``high``]."""
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise VMMError(f"{flag} takes comma-separated numbers, got {text!r}") from None
    if not values or any(not low <= v <= high for v in values):
        raise VMMError(f"{flag} takes {what}, got {text!r}")
    return values


def _magnifications(flag: str, text: str) -> tuple[float, ...]:
    """A comma-separated list of requested magnifications 1 + alpha, in [1, 1000]."""
    return _floats(flag, text, 1.0, 1000.0, "magnifications 1 + alpha between 1 and 1000")


def run(ns: argparse.Namespace) -> int:
    from ..core.registry import method_names
    from ..training.eval_tables import check_mergeable, markdown_tables, merge_results
    from ..training.evaluate import (
        TESTS,
        EvalConfig,
        base_method,
        default_methods,
        run_evaluation,
    )

    methods = tuple(m.strip() for m in ns.methods.split(",") if m.strip()) \
        or default_methods()
    tests = tuple(t.strip() for t in ns.tests.split(",") if t.strip())
    bad = [t for t in tests if t not in TESTS]
    if bad:
        raise VMMError(f"unknown test(s) {bad}; choose from {sorted(TESTS)}")
    unknown = [m for m in methods if base_method(m) not in method_names()]
    if unknown:
        raise VMMError(f"unknown method(s) {unknown}; available: {method_names()}")
    weights = {}
    for item in ns.weights:
        if "=" not in item:
            raise VMMError(f"--weights takes MODEL=PATH, got {item!r}")
        k, v = item.split("=", 1)
        weights[k.strip()] = v.strip()
    options: dict[str, dict[str, str]] = {}
    for item in ns.option:
        column, _, value = item.partition("=")
        method, _, key = column.rpartition(".")
        if not (value and method and key):
            raise VMMError(f"--option takes METHOD.KEY=VALUE, got {item!r}")
        if method not in methods:
            raise VMMError(f"--option {item!r}: {method!r} is not among --methods")
        options.setdefault(method, {})[key] = value
    if ns.size < 32:
        raise VMMError("--size must be at least 32")
    cfg = EvalConfig(methods=methods, size=ns.size, scenes=ns.scenes, frames=ns.frames,
                     seed=ns.seed, device=ns.device, weights=weights, options=options,
                     tests=tests,
                     static_too=not ns.no_static, real_textures=ns.real_textures,
                     fd4mm_factors=_magnifications("--fd4mm-factors", ns.fd4mm_factors),
                     fd4mm_sigmas=_floats("--fd4mm-sigmas", ns.fd4mm_sigmas),
                     linearity_amplitudes=_floats(
                         "--linearity-amplitudes", ns.linearity_amplitudes, 0.001, 20.0,
                         "amplitudes in px between 0.001 and 20"),
                     linearity_factors=_magnifications("--linearity-factors",
                                                       ns.linearity_factors),
                     thesis_clips=ns.thesis_clips, thesis_size=ns.thesis_size,
                     thesis_sigmas=_floats("--thesis-sigmas", ns.thesis_sigmas))
    earlier = None
    if ns.merge:
        if not ns.methods:
            raise VMMError("--merge needs --methods: the ones to re-score")
        try:
            with open(ns.merge) as f:
                earlier = json.load(f)
        except (OSError, ValueError) as e:
            raise VMMError(f"cannot read --merge {ns.merge}: {e}") from None
        if not isinstance(earlier, dict) or "config" not in earlier:
            raise VMMError(f"--merge {ns.merge} is not a vmm evaluate --json result")
        check_mergeable(earlier["config"], dict(cfg.__dict__))
    result = run_evaluation(cfg, log=lambda s: print(s, file=sys.stderr, flush=True))
    if earlier is not None:
        result = merge_results(earlier, result)
    md = markdown_tables(result)
    print(md)
    if ns.json:
        with open(ns.json, "w") as f:
            json.dump(result, f, indent=1, default=str)
    if ns.markdown:
        with open(ns.markdown, "w") as f:
            f.write(md + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry: ``python -m napari_vmm.cli.evaluate ...`` is ``vmm evaluate ...``."""
    return run_subcommand("evaluate", argv)


if __name__ == "__main__":
    sys.exit(main())
