"""The ``vmm`` command: one module per subcommand, each with ``add_parser(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from .common import run_cli

SUBCOMMANDS = ("magnify", "methods", "analyze", "train", "evaluate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vmm", description="Video motion magnification (napari-vmm).")
    parser.add_argument("--version", action="version", version=f"napari-vmm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            continue
        module.add_parser(sub)
    parser.set_defaults(subcommands=sub.choices)  # for usage errors in a subcommand's words
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # the subcommand's usage, not the top-level one
        sub = args.subcommands.get(getattr(args, "command", None) or "", parser)
        sub.error(f"unrecognized arguments: {' '.join(unknown)}")
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    return run_cli(args.func, args, exit_at_once=argv is None)  # from the shell: exit fast


def run_subcommand(name: str, argv: list[str] | None = None) -> int:
    """Stand-alone entry of a subcommand: ``python -m napari_vmm.cli.NAME ...`` is ``vmm NAME``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return main(argv if argv[:1] == [name] else [name, *argv])


if __name__ == "__main__":
    sys.exit(main())
