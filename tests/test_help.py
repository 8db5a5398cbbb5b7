"""Help, labels and set-up (issue 24 item 6)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from napari_vmm.cli import build_parser, main
from napari_vmm.core.registry import method_names

ROOT = Path(__file__).resolve().parents[1]


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit):
        main(argv)
    return " ".join(capsys.readouterr().out.split())  # unwrap argparse's line breaks


def test_method_help_lists_every_registered_method(capsys):
    text = _help(["magnify", "--help"], capsys)
    assert len(method_names()) >= 14
    for name in method_names():
        assert name in text, name


def test_ffmpeg_front_ends_list_every_method(capsys):
    from ffmpeg_filter import cli, wrap

    for parser in (cli.build_parser(), wrap.build_parser()):
        text = " ".join(parser.format_help().split())
        assert all(name in text for name in method_names())


def test_train_help_lists_every_learned_method(capsys):
    text = _help(["train", "--help"], capsys)
    learned = method_names("learned")
    assert len(learned) >= 11
    for name in learned:
        assert name in text, name
    top = " ".join(build_parser().format_help().split())
    assert ", ".join(learned) in top


def test_unknown_flag_after_a_subcommand_prints_its_usage(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["magnify", "in.mp4", "out.mp4", "--bogus"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage: vmm magnify" in err and "unrecognized arguments: --bogus" in err


def test_roi_label_is_not_doubled():
    from napari_vmm.core.analysis import parse_roi
    from napari_vmm.core.analysis.output import roi_title

    assert roi_title(1, parse_roi("0,0,4,4", name="ROI 1")) == "ROI 1"
    assert roi_title(2, parse_roi("0,0,4,4", name="wrist")) == "ROI 2 (wrist)"


def test_suggested_band_at_nyquist_stays_below_it():
    from napari_vmm.core.analysis.spectra import band_for_peaks, suggest_band

    freqs = np.linspace(0, 150, 301)
    amp = np.exp(-((freqs - 150) / 2) ** 2)
    lo, hi = suggest_band(freqs, amp, 150.0, 300.0, 301)
    assert lo < hi < 150
    fps = 300.0
    peaks = [_peak(1.03, 1.0), _peak(150.0, 0.9)]
    band = band_for_peaks(freqs, amp + np.exp(-((freqs - 1.03) / 0.5) ** 2), peaks, fps, 301)
    assert band[1] < fps / 2


def _peak(hz: float, amplitude: float):
    from napari_vmm.core.analysis.results import Peak

    return Peak(hz=hz, amplitude=amplitude)


def test_compare_png_has_labels():
    pytest.importorskip("PIL")
    from napari_vmm.core.compare import SliceRecorder

    rec = SliceRecorder()
    frames = np.full((6, 20, 30, 3), 128, np.uint8)
    rec.add(frames, frames)
    plain, labelled = rec.image(labels=False), rec.image()
    assert labelled.shape[0] > plain.shape[0]  # caption strips above both rows
    # dark text pixels in the strip over the frames
    assert (labelled[:14] < 100).any()


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


@pytest.mark.parametrize("flag,wants_xvfb", [("--cli", False), ("", True)])
def test_setup_installs_xvfb_only_for_napari(tmp_path, flag, wants_xvfb):
    """setup.sh with apt, dpkg and the venv's python stubbed: what would it install?"""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    (repo / "scripts" / "setup.sh").write_text((ROOT / "scripts" / "setup.sh").read_text())
    stubs = tmp_path / "bin"
    stubs.mkdir()
    log = tmp_path / "log"
    _stub(stubs, "apt-get", f'echo "apt-get $*" >> {log}')
    _stub(stubs, "dpkg", "exit 1")  # nothing installed
    _stub(stubs, "sudo", '"$@"')
    _stub(stubs, "ffmpeg", "exit 0")
    venv = repo / ".venv" / "bin"
    venv.mkdir(parents=True)
    _stub(venv, "python", f'echo "python $*" >> {log}; echo napari-vmm 0 torch 0')
    path = f"{stubs}:/usr/bin:/bin"  # no Xvfb on this PATH
    res = subprocess.run(["bash", str(repo / "scripts" / "setup.sh"), *([flag] if flag else [])],
                         capture_output=True, text=True, env={**os.environ, "PATH": path},
                         timeout=60)
    assert res.returncode == 0, res.stderr
    installed = log.read_text()
    assert ("libxcb" in installed) is wants_xvfb  # napari's X/GL libraries (dpkg: missing)
    if not wants_xvfb:
        assert "xvfb" not in installed
    assert ("[napari,dask,dev]" in installed) is wants_xvfb
    noise = [ln for ln in res.stderr.splitlines() if not ln.startswith("setup: ")]
    assert noise == []


def test_demo_sets_up_without_napari():
    demo = (ROOT / "scripts" / "demo.sh").read_text()
    assert "setup.sh --cli" in demo
