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


def _listed(values: tuple[float, ...]) -> str:
    return ",".join(f"{v:g}" for v in values)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``evaluate`` subcommand to ``subparsers`` (its ``func`` runs it). Each
    setting's default is :class:`EvalConfig`'s (an option left out is not passed on)."""
    from ..training.eval_config import TEST_NAMES
    from ..training.eval_config import EvalConfig as D  # the defaults

    p = subparsers.add_parser(
        "evaluate", help="SSIM of learned and classical methods on the synthetic tests",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods",
                   help="comma-separated methods (default: the learned ones that have "
                        "weights, then linear, phase, riesz); NAME:LABEL adds a variant of a "
                        "learned model with its own --weights NAME:LABEL=PATH (ablations)")
    p.add_argument("--tests",
                   help=f"comma-separated, of {', '.join(TEST_NAMES)} (default "
                        f"{','.join(D.tests)}); linearity is Ha et al.'s achieved vs "
                        "requested magnification, thesis the Singh thesis circles protocol "
                        "(MSE)")
    p.add_argument("--no-static", action="store_true",
                   help="score learned models in temporal mode only (default: also in Oh's "
                        "static two-frame mode, as NAME@static columns)")
    p.add_argument("--real-textures", metavar="DIR",
                   help="cut every scene from frames of the videos in DIR (e.g. "
                        "../shared/videos) instead of generated test-split textures")
    p.add_argument("--size", type=int, help=f"frame size in px (default {D.size})")
    p.add_argument("--scenes", type=int, help=f"scenes per setting (default {D.scenes})")
    p.add_argument("--frames", type=int,
                   help=f"frames per clip for the Oh tests (default {D.frames} = 3 periods)")
    p.add_argument("--seed", type=int, help=f"default {D.seed}")
    p.add_argument("--device", help=f"default {D.device}")
    p.add_argument("--weights", action="append", default=[], metavar="MODEL=PATH",
                   help="use these weights for a learned model (default: shipped); repeatable")
    p.add_argument("--option", action="append", default=[], metavar="METHOD.KEY=VALUE",
                   help="a method option for one column, e.g. realtime:dn.denoise=true beside "
                        "realtime (see vmm methods); repeatable")
    p.add_argument("--fd4mm-factors",
                   help="FD4MM protocol: comma-separated magnifications 1 + alpha of its "
                        f"clean rows (default the paper's {_listed(D.fd4mm_factors)})")
    p.add_argument("--fd4mm-sigmas",
                   help="FD4MM protocol: comma-separated Gaussian noise sigmas in [0, 1] units "
                        f"for its noisy rows at 20x (default: the paper's "
                        f"{_listed(D.fd4mm_sigmas)}; 6 DN is 0.0235)")
    p.add_argument("--linearity-amplitudes",
                   help="linearity test: comma-separated input amplitudes in px (default "
                        f"Ha et al.'s {_listed(D.linearity_amplitudes)})")
    p.add_argument("--linearity-factors",
                   help="linearity test: comma-separated requested magnifications 1 + alpha "
                        f"(default {_listed(D.linearity_factors)})")
    p.add_argument("--thesis-clips", type=int,
                   help=f"thesis protocol: number of clips (default {D.thesis_clips}, the "
                        "thesis')")
    p.add_argument("--thesis-size", type=int,
                   help="thesis protocol: frame size in px (silent in the thesis; default "
                        f"{D.thesis_size})")
    p.add_argument("--thesis-sigmas",
                   help="thesis protocol: comma-separated Gaussian noise sigmas in [0, 1] "
                        f"units (the thesis' noise sweep; default {_listed(D.thesis_sigmas)})")
    p.add_argument("--merge", metavar="EARLIER.json",
                   help="re-score only --methods and merge them into this earlier --json "
                        "result of the same settings (e.g. a model with new weights)")
    p.add_argument("--json", metavar="OUT.json", help="write all results as JSON")
    p.add_argument("--markdown", metavar="OUT.md", help="write the tables as Markdown")
    p.set_defaults(func=run)
    return p


def _names(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _numbers(name: str, text: str) -> tuple[float, ...]:
    """A comma-separated list of numbers for setting ``name`` (their ranges are
    :class:`EvalConfig`'s to check)."""
    from ..training.eval_config import setting_name

    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise VMMError(f"{setting_name(name)} takes comma-separated numbers, got {text!r}"
                       ) from None


#: command-line options passed on as they are, and those that are comma-separated lists
_PLAIN = ("size", "scenes", "frames", "seed", "device", "real_textures", "thesis_clips",
          "thesis_size")
_NUMBER_LISTS = ("fd4mm_factors", "fd4mm_sigmas", "linearity_amplitudes",
                 "linearity_factors", "thesis_sigmas")


def config_from_args(ns: argparse.Namespace) -> Any:
    """The :class:`EvalConfig` of a command line: only the options given, the rest its
    defaults; VMMError names a malformed or out-of-range option."""
    from ..training.eval_config import EvalConfig

    kw: dict[str, Any] = {k: getattr(ns, k) for k in _PLAIN if getattr(ns, k) is not None}
    for k in _NUMBER_LISTS:
        if getattr(ns, k) is not None:
            kw[k] = _numbers(k, getattr(ns, k))
    if ns.methods:
        kw["methods"] = _names(ns.methods)
    if ns.tests is not None:
        kw["tests"] = _names(ns.tests)
    for item in ns.weights:
        if "=" not in item:
            raise VMMError(f"--weights takes MODEL=PATH, got {item!r}")
        k, v = item.split("=", 1)
        kw.setdefault("weights", {})[k.strip()] = v.strip()
    for item in ns.option:
        column, _, value = item.partition("=")
        method, _, key = column.rpartition(".")
        if not (value and method and key):
            raise VMMError(f"--option takes METHOD.KEY=VALUE, got {item!r}")
        kw.setdefault("options", {}).setdefault(method, {})[key] = value
    return EvalConfig(static_too=not ns.no_static, **kw)


def run(ns: argparse.Namespace) -> int:
    from ..training.eval_tables import check_mergeable, markdown_tables, merge_results
    from ..training.evaluate import run_evaluation

    cfg = config_from_args(ns)
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
