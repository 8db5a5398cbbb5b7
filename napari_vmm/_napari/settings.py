"""Where and what the Magnify widget remembers between sessions (Qt-free).

The settings file holds only what is meaningful in a later process: a Dask scheduler address
that names this process (``inproc://``) or a Zarr output under the temporary folder is never
written, and on loading, a saved scheduler or Zarr output that cannot be used any more falls
back to the local default (local threads, no Zarr output) with one warning.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Environment variable that overrides where the widget keeps its settings (tests use it).
CONFIG_DIR_ENV = "NAPARI_VMM_CONFIG_DIR"
SETTINGS_FILE = "magnify_widget.json"


def settings_path() -> Path:
    """Where the widget keeps its parameters between sessions."""
    base = os.environ.get(CONFIG_DIR_ENV)
    if not base:
        from platformdirs import user_config_dir

        base = user_config_dir("napari-vmm", appauthor=False)
    return Path(base) / SETTINGS_FILE


def is_process_local_scheduler(address: str | None) -> bool:
    """True for a scheduler address that only this process can reach (``inproc://``)."""
    return (address or "").strip().lower().startswith("inproc://")


def is_temporary_path(path: str | os.PathLike | None) -> bool:
    """True when ``path`` lies under the system's temporary folder (e.g. pytest's ``tmp_path``)."""
    if not path or not str(path).strip():
        return False
    try:
        resolved = Path(str(path).strip()).expanduser().resolve()
        return resolved.is_relative_to(Path(tempfile.gettempdir()).resolve())
    except (OSError, ValueError):
        return False


def zarr_output_problem(path: str | None) -> str | None:
    """Why a saved Zarr output cannot be used any more (None when it can)."""
    text = (path or "").strip()
    if not text:
        return None
    if is_temporary_path(text):
        return f"Zarr output {text} is in the temporary folder"
    parent = Path(text).expanduser().parent
    if not parent.is_dir():
        return f"the folder of Zarr output {text} no longer exists"
    return None


def scheduler_problem(address: str | None) -> str | None:
    """Why a saved Dask scheduler cannot be used in a new process (None when it may be)."""
    text = (address or "").strip()
    if is_process_local_scheduler(text):
        return f"Dask scheduler {text} belonged to another process"
    from napari_vmm.core.errors import VMMError
    from napari_vmm.scale import check_scheduler

    try:
        check_scheduler(text)
    except VMMError as exc:
        return str(exc)
    return None


def persistable(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` without what a later session could not use (process-local, temporary)."""
    state = dict(state)
    if is_process_local_scheduler(state.get("dask_scheduler")):
        state["dask_scheduler"] = ""
    if is_temporary_path(state.get("zarr_output")):
        state["zarr_output"] = ""
    return state


def write_settings(state: dict[str, Any], path: Path | None = None) -> Path:
    """Write :func:`persistable` ``state`` as JSON, atomically; returns the path."""
    from napari_vmm.io.atomic import atomic_output

    path = settings_path() if path is None else Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(persistable(state), indent=1, default=str))
    return path


def read_settings(path: Path | None = None) -> tuple[dict[str, Any], str | None]:
    """The saved state (``{}`` when there is none) and one warning, or None.

    A saved scheduler or Zarr output that cannot be used any more is replaced by the local
    default (``""``: local threads, no Zarr output); the warning says which and why. A file
    that cannot be parsed gives ``{}`` and a warning.
    """
    path = settings_path() if path is None else Path(path)
    if not path.is_file():
        return {}, None
    try:
        state = json.loads(path.read_text())
        if not isinstance(state, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        return {}, f"napari-vmm: ignoring the settings in {path}: {exc}"
    problems = []
    for key, check in (("dask_scheduler", scheduler_problem),
                       ("zarr_output", zarr_output_problem)):
        value = str(state.get(key, "") or "")
        problem = check(value)
        if problem:
            problems.append(problem)
            value = ""
        state[key] = value
    if not problems:
        return state, None
    return state, ("napari-vmm: " + "; ".join(problems)
                   + ": using the local default (local threads, no Zarr output)")
