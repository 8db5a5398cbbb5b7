"""Magnification options shared by ``vmm magnify``, ``vmm-filter`` and ``vmm-ffmpeg``."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable
from typing import Any

from ..core.errors import VMMError


def method_help() -> str:
    """``--method`` help listing every registered method (from the registry, no torch import)."""
    from ..core.registry import method_names

    return f"magnifier: {', '.join(method_names())} (see `vmm methods`)"


def positive_float(text: str) -> float:
    """argparse type: a float > 0 (``--fps 0`` is a usage error, not a silent default)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def add_overwrite_argument(parser: argparse.ArgumentParser) -> None:
    """``-y``/``--overwrite``: the one switch that lets a command replace an existing output."""
    parser.add_argument("-y", "--overwrite", action="store_true",
                        help="replace outputs that exist (never an input)")


#: Defaults of the flags a recipe may set (a flag left at its default takes the recipe's value).
_RECIPE_KEYS = {"method": "riesz", "alpha": 10.0, "band": [0.5, 3.0], "temporal": "butterworth",
                "mode": "temporal"}


def _as_list(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def add_magnify_arguments(parser: argparse.ArgumentParser, streaming: bool = False) -> None:
    """Add the magnification options; ``streaming`` makes a causal filter the default."""
    from ..core.params import RECIPES

    g = parser.add_argument_group("magnification")
    g.add_argument("--recipe", choices=sorted(RECIPES), default=None,
                   help="a named parameter set the other options refine. pulse: Wu et al.'s "
                   "colour magnification of the heartbeat (--method color, alpha 50, ideal "
                   "band 0.8-2 Hz = 48-120 BPM; narrow --band around the rate vmm analyze "
                   "reports)")
    g.add_argument("--method", default="riesz", help=method_help() + " (default riesz)")
    g.add_argument("--alpha", type=float, default=10.0,
                   help="magnification: output motion = (1 + alpha) x input motion (default 10)")
    g.add_argument("--band", type=float, nargs=2, metavar=("LOW", "HIGH"), default=(0.5, 3.0),
                   help="temporal pass band in Hz (default 0.5 3)")
    g.add_argument("--fps", type=positive_float, default=None,
                   help="true capture frame rate; overrides the file's (high-speed footage)")
    g.add_argument("--temporal", default="butterworth",
                   choices=["ideal", "butterworth", "fir", "iir", "none"],
                   help="temporal filter (default butterworth, causal)"
                   + ("; ideal needs --window in a pipe" if streaming else ""))
    g.add_argument("--mode", default="temporal", choices=["temporal", "static", "dynamic"],
                   help="temporal: band-pass; static: motion against --reference frame; "
                   "dynamic: against the previous frame")
    g.add_argument("--reference", type=int, default=0, help="reference frame of static mode")
    g.add_argument("--order", type=int, default=2, help="Butterworth order (default 2)")
    g.add_argument("--taps", type=int, default=None, help="FIR length in frames")
    g.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    g.add_argument("--option", "-O", action="append", default=[], metavar="KEY=VALUE",
                   help="method option, repeatable (see `vmm methods`)")
    g.add_argument("--roi", action="append", default=[], metavar="X,Y,W,H|FILE.json",
                   help="magnify only inside this rectangle (top-left column,row) or the ROIs "
                   "of a JSON file; repeatable")
    g.add_argument("--feather", type=float, default=8.0,
                   help="ROI edge feathering in px (default 8)")
    g.add_argument("--params", metavar="JSON", help="read parameters from a JSON file")
    if streaming:
        g.add_argument("--window", type=int, default=None, metavar="FRAMES",
                       help="sliding window for --temporal ideal in a stream")
        g.add_argument("--latency", type=int, default=None, metavar="FRAMES",
                       help="frames of delay for --temporal ideal (default window/2)")


def parse_options(items: list[str]) -> dict[str, str]:
    """``["key=value", ...]`` to a dict (values stay strings; methods coerce them)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise VMMError(f"--option must look like KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def params_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Engine keyword arguments from parsed options (``fps`` may be None: take the file's).

    ROIs stay as ``rois`` (list of x,y,w,h) with ``feather``; the caller turns them into a
    mask once the frame size is known (:func:`roi_mask_for`).
    """
    params: dict[str, Any] = {}
    if getattr(args, "params", None):
        try:
            with open(args.params) as fh:
                params.update(json.load(fh))
        except (OSError, json.JSONDecodeError) as exc:
            raise VMMError(f"cannot read parameters from {args.params}: {exc}") from None
        params.update(params.pop("options", {}) or {})
    params.update({
        "method": args.method, "alpha": args.alpha, "band": tuple(args.band), "fps": args.fps,
        "temporal": args.temporal, "mode": args.mode, "reference": args.reference,
        "order": args.order, "taps": args.taps, "device": args.device,
    })
    params.update(parse_options(args.option))
    if getattr(args, "recipe", None):
        from ..core.params import apply_recipe

        given = {key for key, default in _RECIPE_KEYS.items()  # flags set away from their
                 if _as_list(getattr(args, key)) != default}  # defaults win
        params = apply_recipe(args.recipe, params, keep=given)
    if getattr(args, "window", None) is not None:
        params["window"] = args.window
    if getattr(args, "latency", None) is not None:
        params["latency"] = args.latency
    if args.roi:
        from ..core.analysis import as_rois

        params["rois"] = as_rois(list(args.roi))  # validates X,Y,W,H and JSON files now
        params["feather"] = args.feather
    return params


def roi_mask_for(params: dict[str, Any], height: int, width: int):
    """Pop ``rois``/``feather`` from ``params`` and return the feathered mask (or None)."""
    rois = params.pop("rois", None)
    feather = params.pop("feather", 8.0)
    if not rois:
        return None
    from ..core.analysis import roi_mask

    return roi_mask((height, width), rois, feather_px=feather)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every ``finally`` cleans up (temporary files)."""


_interrupted: list[int] = []  # the signals received by run_cli's handler


def _on_signal(signum: int, frame: Any) -> None:
    """SIGINT/SIGTERM: quiet the libraries that log while they are torn down, then raise."""
    import logging
    import signal

    _interrupted.append(signum)
    for name in ("distributed", "tornado", "asyncio"):
        logging.getLogger(name).disabled = True
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _unraisable(unraisable: Any) -> None:
    """An interrupt raised where Python ignores exceptions (a gc callback, ``__del__``) is
    delivered again; once interrupted, the errors ignored during shutdown are not printed."""
    import signal

    exc = unraisable.exc_value
    if isinstance(exc, KeyboardInterrupt):
        signal.raise_signal(signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)
    elif not _interrupted:
        sys.__unraisablehook__(unraisable)


@contextlib.contextmanager
def vmm_warnings(prefix: str = ""):
    """Show :class:`~napari_vmm.core.errors.VMMWarning` as one ``warning:`` line on stderr."""
    import warnings

    from ..core.errors import VMMWarning

    default_show = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, VMMWarning):
            print(f"{prefix}warning: {message}", file=sys.stderr, flush=True)
        else:
            default_show(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def run_cli(func: Callable[..., int | None], *args: Any, prog: str | None = None) -> int:
    """Run a command's ``func(*args)``: a VMMError becomes one line on stderr and exit code 1.

    ``prog`` prefixes the line (``vmm-filter: error: ...``); Cancelled and Ctrl-C exit with 130,
    SIGTERM with 143 (after the same cleanup as Ctrl-C).
    """
    import signal
    import threading

    from ..core.errors import Cancelled

    prefix = f"{prog}: " if prog else ""
    handlers, old_hook = {}, sys.unraisablehook
    if threading.current_thread() is threading.main_thread():
        handlers = {sig: signal.signal(sig, _on_signal)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        sys.unraisablehook = _unraisable
    try:
        with vmm_warnings(prefix):
            return int(func(*args) or 0)
    except VMMError as exc:
        print(f"{prefix}error: {exc}", file=sys.stderr)
        return 1
    except Cancelled:
        print(f"{prefix}cancelled", file=sys.stderr)
        return 130
    except Terminated:
        print(f"{prefix}terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"{prefix}interrupted", file=sys.stderr)
        return 130
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        if handlers and not _interrupted:  # once interrupted, keep the shutdown quiet
            sys.unraisablehook = old_hook


def run_subcommand(name: str, argv: list[str] | None = None) -> int:
    """Stand-alone entry of a subcommand: ``python -m napari_vmm.cli.NAME ...`` is ``vmm NAME``."""
    from . import main as vmm_main

    argv = list(sys.argv[1:] if argv is None else argv)
    return vmm_main(argv if argv[:1] == [name] else [name, *argv])
