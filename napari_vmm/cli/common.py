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


def _shown(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(_shown(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def add_magnify_arguments(parser: argparse.ArgumentParser, streaming: bool = False) -> None:
    """Add the magnification options: one flag per :class:`MagnifyParams` field (its help,
    default and choices), plus ``--option``, ``--recipe``, ``--params`` and the ROI.

    The flags default to None (not given), so a ``--params`` file or a ``--recipe`` is only
    overridden by what the command line says (:func:`magnify_params_from_args`).
    ``streaming`` adds ``--window``/``--latency`` for the ideal filter in a pipe.
    """
    from ..core.params import RECIPES, MagnifyParams

    g = parser.add_argument_group("magnification")
    g.add_argument("--recipe", choices=sorted(RECIPES), default=None,
                   help="a named parameter set the other options refine. pulse: Wu et al.'s "
                   "colour magnification of the heartbeat (--method color, alpha 50, ideal "
                   "band 0.8-2 Hz = 48-120 BPM; narrow --band around the rate vmm analyze "
                   "reports). phase-hd: phase at full HD speed (octave bands, 4 "
                   "orientations, one finest band, sigma 1: 3.5x faster, 0.90-0.92 of the "
                   "gain instead of 0.95)")
    for name, spec in MagnifyParams.describe().items():
        if spec["type"] == "options":
            continue
        text = method_help() if name == "method" else spec["help"]
        if name == "temporal" and streaming:
            text += "; ideal needs --window in a pipe"
        if spec["default"] is not None and spec["default"] is not False:
            text += f" (default {_shown(spec['default'])})"
        kw: dict[str, Any] = {"dest": name, "default": None, "help": text}
        if spec["type"] == "bool":
            kw["action"] = "store_true"
        elif spec["type"] == "pair":
            kw.update(type=float, nargs=2, metavar=("LOW", "HIGH"))
        elif spec["type"] == "float":
            positive = spec.get("min") == 0 and spec.get("min_open")
            kw["type"] = positive_float if positive else float
        else:
            kw["type"] = int if spec["type"] == "int" else str
        if "choices" in spec and name != "method":  # an unknown method: the model's message
            kw["choices"] = spec["choices"]
        g.add_argument("--" + name.replace("_", "-"), **kw)
    g.add_argument("--option", "-O", action="append", default=[], metavar="KEY=VALUE",
                   help="method option, repeatable (see `vmm methods`)")
    g.add_argument("--roi", action="append", default=[], metavar="X,Y,W,H|FILE.json",
                   help="magnify only inside this rectangle (top-left column,row) or the ROIs "
                   "of a JSON file; repeatable")
    g.add_argument("--feather", type=float, default=8.0,
                   help="ROI edge feathering in px (default 8)")
    g.add_argument("--params", metavar="JSON",
                   help="read parameters from a JSON file (the fields of `vmm methods --json`'s "
                   "\"parameters\"); the options given here override it")
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


def read_params_file(path: str) -> dict[str, Any]:
    """The parameters of a ``--params`` JSON file (an object), unchecked.

    A file whose ``"params"`` is an object (the napari widget's settings, a layer's
    provenance) gives that object.
    """
    try:
        with open(path) as fh:
            values = json.load(fh)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VMMError(f"cannot read parameters from {path}: {exc}") from None
    if not isinstance(values, dict):
        raise VMMError(f"cannot read parameters from {path}: expected a JSON object, got "
                       f"{type(values).__name__}")
    nested = values.get("params")
    return dict(nested) if isinstance(nested, dict) else values


def magnify_params_from_args(args: argparse.Namespace):
    """The validated :class:`MagnifyParams` of parsed options.

    Lowest to highest: the model's defaults, ``--recipe``, the ``--params`` file, the flags
    given on the command line (method options likewise, ``--option`` last). ``fps`` stays
    None unless given: the input's rate is filled in by the caller.
    """
    from dataclasses import fields

    from ..core.params import MagnifyParams, apply_recipe

    names = [f.name for f in fields(MagnifyParams) if f.name != "options"]
    values: dict[str, Any] = {}
    if getattr(args, "recipe", None):
        values = apply_recipe(args.recipe, values)
    if getattr(args, "params", None):
        from_file = read_params_file(args.params)
        options = from_file.pop("options", None) or {}
        if not isinstance(options, dict):
            raise VMMError(f"{args.params}: \"options\" must be a JSON object")
        values.update(from_file)
        values.update(options)
    values.update({k: getattr(args, k) for k in names if getattr(args, k, None) is not None})
    values.update(parse_options(args.option))
    return MagnifyParams.from_kwargs(**values)


def roi_args(args: argparse.Namespace) -> dict[str, Any]:
    """``{"rois": [(x, y, w, h), ...], "feather": px}`` of ``--roi``/``--feather`` (checked
    now), or ``{}`` without ``--roi``; :func:`roi_mask_for` makes the mask."""
    if not args.roi:
        return {}
    from ..core.analysis import as_rois

    return {"rois": as_rois(list(args.roi)), "feather": args.feather}


def params_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Engine keyword arguments from parsed options (``fps`` may be None: take the file's).

    :func:`magnify_params_from_args` in the engine's keyword form, plus the front-end
    settings: ROIs stay as ``rois`` (list of x,y,w,h) with ``feather``, for the caller to turn
    into a mask once the frame size is known (:func:`roi_mask_for`); ``window``/``latency``
    of a stream when given.
    """
    params = magnify_params_from_args(args).engine_kwargs()
    if getattr(args, "window", None) is not None:
        params["window"] = args.window
    if getattr(args, "latency", None) is not None:
        params["latency"] = args.latency
    params.update(roi_args(args))
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
    prefixes = ("distributed", "tornado", "asyncio")
    names = [n for n in list(logging.root.manager.loggerDict)
             if n.partition(".")[0] in prefixes]
    for name in {*prefixes, *names}:  # a child logger is not silenced by its parent's flag
        logging.getLogger(name).disabled = True
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _unraisable(unraisable: Any) -> None:
    """An interrupt raised where Python ignores exceptions (a gc callback, ``__del__``) is
    delivered again; once interrupted, the errors ignored during shutdown are not printed.

    The signal is sent to the main thread again from a new thread, once this hook has
    returned: raised in the hook (``raise_signal`` runs the handler at once), or while the
    hook waits for a ``threading.Thread`` to start, it was ignored again and the run went on.
    """
    import _thread
    import signal

    exc = unraisable.exc_value
    if isinstance(exc, KeyboardInterrupt):
        sig = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
        _thread.start_new_thread(_signal_main_later, (sig,))  # does not wait for the thread
    elif not _interrupted:
        sys.__unraisablehook__(unraisable)


def _signal_main_later(sig: int) -> None:
    """Send ``sig`` to the main thread in 10 ms (from :func:`_unraisable`'s thread)."""
    import signal
    import threading
    import time

    time.sleep(0.01)
    signal.pthread_kill(threading.main_thread().ident, sig)


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


def _leave(code: int, at_once: bool) -> int:
    """``code``, or with ``at_once`` an exit now, after the ``atexit`` handlers: the
    interpreter's teardown (1 to 3 s with torch loaded, on a busy machine) would keep an
    interrupted command alive past the 2 s a cancel may take (docs/reliability.md)."""
    import atexit
    import os

    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if not at_once or run_exitfuncs is None:
        return code
    run_exitfuncs()  # temporary folders' finalizers, multiprocessing, distributed
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def run_cli(func: Callable[..., int | None], *args: Any, prog: str | None = None,
            exit_at_once: bool = False) -> int:
    """Run a command's ``func(*args)``: a VMMError becomes one line on stderr and exit code 1.

    ``prog`` prefixes the line (``vmm-filter: error: ...``); Cancelled and Ctrl-C exit with 130,
    SIGTERM with 143 (after the same cleanup as Ctrl-C). With ``exit_at_once`` (a command run
    from the shell, not a call from Python), an interrupted process exits at once after
    that cleanup and the ``atexit`` handlers, without the interpreter's slow teardown.
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
        return _leave(143, exit_at_once)
    except KeyboardInterrupt:
        print(f"{prefix}interrupted", file=sys.stderr)
        return _leave(130, exit_at_once)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        if handlers and not _interrupted:  # once interrupted, keep the shutdown quiet
            sys.unraisablehook = old_hook
