"""The npe2 manifest: contributions, menus and importable commands."""

from __future__ import annotations

from pathlib import Path

import pytest

npe2 = pytest.importorskip("npe2")

import napari_vmm  # noqa: E402

MANIFEST = Path(napari_vmm.__file__).with_name("napari.yaml")


@pytest.fixture(scope="module")
def manifest():
    return npe2.PluginManifest.from_file(MANIFEST)


def test_widgets_and_menus(manifest):
    widgets = manifest.contributions.widgets
    assert [w.display_name for w in widgets] == ["Motion magnification", "Motion traces",
                                                 "Deflection shapes"]
    commands = {c.id: c.python_name for c in manifest.contributions.commands}
    qt = "napari_vmm._napari._qt"
    assert commands[widgets[0].command] == f"{qt}.magnify:MagnifyWidget"
    assert commands[widgets[1].command] == f"{qt}.traces:MotionTracesWidget"
    assert commands[widgets[2].command] == f"{qt}.deflection:DeflectionShapesWidget"
    assert all(cid.startswith("napari-vmm.") for cid in commands)
    menus = manifest.contributions.menus
    assert [m.command for m in menus["napari/layers/filter"]] == [widgets[0].command]
    assert [m.command for m in menus["napari/layers/measure"]] == [widgets[1].command,
                                                                   widgets[2].command]


def test_reader_writer_and_samples(manifest):
    (reader,) = manifest.contributions.readers
    assert sorted(reader.filename_patterns) == ["*.avi", "*.mkv", "*.mov", "*.mp4"]
    (writer,) = manifest.contributions.writers
    assert set(writer.filename_extensions) == {".mp4", ".mkv", ".mov"}
    assert [s.display_name for s in manifest.contributions.sample_data] == [
        "Vibrating target", "Pulsing 16-bit time-lapse"]


def test_installed_manifest_imports():
    """What ``npe2 validate napari-vmm --imports`` checks: every python_name imports."""
    try:
        pm = npe2.PluginManifest.from_distribution("napari-vmm")
    except ValueError:
        pytest.skip("napari-vmm is not installed (pip install -e .)")
    pm.validate_imports()
