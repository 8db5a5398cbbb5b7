"""Shared fixtures and markers.

- ``@pytest.mark.gui`` tests need a display: run them under ``xvfb-run -a pytest``.
  (``QT_QPA_PLATFORM=offscreen`` cannot add image layers to a napari viewer.) Without a
  display they are skipped instead of aborting the whole run in Qt.
- Every test gets its own user config dir, so no test reads or writes the user's settings.
  Before the first test, the whole session (and every subprocess and Dask worker it starts)
  is pointed at a temporary config dir too: pytest-qt processes Qt events once more after a
  test's fixtures are torn down, and a widget's pending save timer fired there used to write
  the user's real ``napari-vmm/magnify_widget.json``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

#: Real clips shared between checkouts; tests that use them skip when they are absent.
SHARED_VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "videos"


#: Variables that point programs at the user's config and cache dirs.
_USER_DIR_VARS = ("NAPARI_VMM_CONFIG_DIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")
_SESSION_DIRS: dict[str, str | None] = {}


def pytest_configure(config: pytest.Config) -> None:
    """Point the whole session at a temporary config dir (inherited by subprocesses)."""
    root = tempfile.mkdtemp(prefix="vmm-test-home-")
    for name in _USER_DIR_VARS:
        _SESSION_DIRS[name] = os.environ.get(name)
        os.environ[name] = os.path.join(root, name.lower())
    _SESSION_DIRS["_root"] = root


def pytest_unconfigure(config: pytest.Config) -> None:
    root = _SESSION_DIRS.pop("_root", None)
    for name, value in _SESSION_DIRS.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if root:
        shutil.rmtree(root, ignore_errors=True)


def _has_display() -> bool:
    if sys.platform != "linux":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _has_display():
        return
    skip = pytest.mark.skip(reason="needs a display: run under `xvfb-run -a pytest`")
    for item in items:
        if "gui" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_user_config(tmp_path_factory: pytest.TempPathFactory,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAPARI_VMM_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))


@pytest.fixture
def shared_video():
    """``shared_video(name)`` is the path of a clip in ../shared/videos, or skips the test."""

    def get(name: str) -> Path:
        path = SHARED_VIDEOS / name
        if not path.is_file():
            pytest.skip(f"{path} is absent")
        return path

    return get
