"""`vmm magnify` / `vmm methods` end to end, and the import-weight rules."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_vmm.cli import main
from napari_vmm.core.samples import vibrating_target
from napari_vmm.io import open_input, open_video, write_video

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    frames, info = vibrating_target(n_frames=24, shape=(48, 64))
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_video(path, frames, info["fps"], codec="h264-lossless")
    return path


def test_magnify_video_to_video_and_compare_png(clip, tmp_path, capsys):
    out, png = tmp_path / "out.mp4", tmp_path / "cmp.png"
    assert main(["magnify", str(clip), str(out), "--alpha", "20", "--band", "1.5", "2.5",
                 "--compare", str(png), "-q"]) == 0
    src, res = open_video(clip), open_video(out)
    assert res.shape == src.shape and res.fps == src.fps
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*"))  # no temporary files left


@pytest.mark.parametrize("suffix", [".npy", ".tif"])
def test_magnify_whole_clip_to_stack(clip, tmp_path, suffix):
    out = tmp_path / f"out{suffix}"
    assert main(["magnify", str(clip), str(out), "--method", "phase", "--temporal", "ideal",
                 "--band", "1.5", "2.5", "-q"]) == 0
    data = np.asarray(open_input(out))
    assert data.shape == open_video(clip).shape and data.dtype == np.uint8


def test_sixteen_bit_stack_round_trip(tmp_path):
    frames = (np.random.default_rng(0).integers(0, 65535, (12, 32, 32))).astype(np.uint16)
    np.save(tmp_path / "in.npy", frames)
    assert main(["magnify", str(tmp_path / "in.npy"), str(tmp_path / "out.tif"), "--fps", "10",
                 "--alpha", "0", "--band", "1", "3", "-q"]) == 0
    out = np.asarray(open_input(tmp_path / "out.tif"))
    assert out.dtype == np.uint16 and np.abs(out.astype(int) - frames).max() <= 1


@pytest.mark.ffmpeg
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_magnify_keeps_audio(tmp_path):
    src = tmp_path / "av.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=64x48:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
                    "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    str(src)], check=True)
    out = tmp_path / "out.mp4"
    assert main(["magnify", str(src), str(out), "--band", "1", "5", "-q"]) == 0
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                            "stream=codec_type,nb_frames,r_frame_rate", "-of", "json", str(out)],
                           capture_output=True, text=True, check=True)
    streams = json.loads(probe.stdout)["streams"]
    assert {s["codec_type"] for s in streams} == {"video", "audio"}
    video = next(s for s in streams if s["codec_type"] == "video")
    assert video["r_frame_rate"] == "25/1" and int(video["nb_frames"]) == 25


@pytest.mark.parametrize("args,message", [
    (["--band", "1", "40"], "Nyquist"),
    (["--method", "nope"], "unknown method"),
    (["--option", "levels=x"], "levels"),
    (["--alpha", "1e9"], "alpha"),
])
def test_bad_input_gives_one_line_and_no_output(clip, tmp_path, capsys, args, message):
    out = tmp_path / "out.mp4"
    assert main(["magnify", str(clip), str(out), "-q", *args]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_corrupt_and_empty_files_are_refused(tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00not a video" * 100)
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    for path in (bad, empty):
        assert main(["magnify", str(path), str(tmp_path / "o.mp4"), "-q"]) == 1
        assert "cannot read" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


def test_refuses_to_overwrite_input(clip, capsys):
    before = clip.read_bytes()
    assert main(["magnify", str(clip), str(clip), "-q"]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert clip.read_bytes() == before


def test_methods_json_lists_options():
    proc = subprocess.run([sys.executable, "-m", "napari_vmm", "methods", "--json"],
                          capture_output=True, text=True, check=True)
    listing = json.loads(proc.stdout)
    methods, params = listing["methods"], listing["parameters"]
    assert {"linear", "phase", "riesz"} <= set(methods)
    assert methods["phase"]["options"]["pyramid"]["default"] == "half_octave"
    # the parameters are the model's: defaults, limits and choices
    from napari_vmm.core.params import MAX_ALPHA, MagnifyParams

    assert set(params) == set(MagnifyParams.field_names())
    assert params["alpha"]["max"] == MAX_ALPHA and params["alpha"]["default"] == 10.0
    assert params["method"]["choices"] == list(methods)
    assert MagnifyParams.from_dict({k: v["default"] for k, v in params.items()}) == MagnifyParams()


def test_import_napari_vmm_is_light():
    code = ("import sys, napari_vmm, napari_vmm.core.registry; "
            "heavy = [m for m in ('torch', 'napari', 'qtpy', 'PyQt6', 'av') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_engine_never_imports_napari_or_qt():
    offenders = []
    for path in (ROOT / "napari_vmm" / "core").rglob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")):
                module = stripped.split()[1]
                if module.split(".")[0] in {"napari", "qtpy", "PyQt5", "PyQt6", "PySide6",
                                            "magicgui", "superqt"}:
                    offenders.append(f"{path.name}: {stripped}")
    assert offenders == []


def _cli_output(tmp_path, frames, name, *args) -> np.ndarray:
    src, out = tmp_path / "in.npy", tmp_path / f"{name}.npy"
    np.save(src, frames)
    assert main(["magnify", str(src), str(out), "-q", "-y", *args]) == 0
    return np.load(out)


def test_params_file_is_read_and_only_given_flags_override_it(tmp_path):
    """--params FILE sets method, alpha, band, filter and fps; argparse defaults do not
    override them, flags given on the command line do."""
    from napari_vmm import magnify
    from napari_vmm.core.params import MagnifyParams

    frames, _ = vibrating_target(n_frames=24, shape=(32, 40))
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"method": "phase", "alpha": 7, "band": [1, 3],
                                  "temporal": "ideal", "fps": 30}))
    got = _cli_output(tmp_path, frames, "file", "--params", str(params))
    want = magnify(frames, fps=30, method="phase", alpha=7, band=(1, 3), temporal="ideal")
    np.testing.assert_array_equal(got, want)
    got = _cli_output(tmp_path, frames, "flags", "--params", str(params), "--alpha", "3",
                      "--fps", "20")
    want = magnify(frames, fps=20, method="phase", alpha=3, band=(1, 3), temporal="ideal")
    np.testing.assert_array_equal(got, want)
    # the napari widget's provenance/settings layout: {"params": {...}, ...}
    params.write_text(json.dumps({"version": "x", "params": MagnifyParams.from_kwargs(
        method="phase", alpha=7, band=(1, 3), temporal="ideal", fps=30).to_dict()}))
    got = _cli_output(tmp_path, frames, "nested", "--params", str(params))
    np.testing.assert_array_equal(got, magnify(frames, fps=30, method="phase", alpha=7,
                                               band=(1, 3), temporal="ideal"))


@pytest.mark.parametrize("args,kwargs", [
    (["--zero-phase", "--order", "3"], dict(zero_phase=True, order=3)),  # the whole clip
    (["--temporal", "iir", "--zero-phase"], dict(temporal="iir", zero_phase=True)),  # a stream
    (["--mode", "static", "--reference", "5"], dict(mode="static", reference=5)),
])
def test_every_model_field_reaches_the_engine(tmp_path, args, kwargs):
    from napari_vmm import magnify

    frames, _ = vibrating_target(n_frames=32, shape=(32, 40))
    got = _cli_output(tmp_path, frames, "out", "--fps", "30", "--band", "1", "4", *args)
    want = magnify(frames, fps=30, method="riesz", alpha=10, band=(1, 4),
                   **{"temporal": "butterworth", **kwargs})
    np.testing.assert_array_equal(got, want)


def test_bad_params_file_is_one_line(tmp_path, capsys):
    np.save(tmp_path / "in.npy", np.zeros((4, 16, 16), np.uint8))
    bad = tmp_path / "p.json"
    for content, message in (('{"alpha": 5000}', "alpha 5000 is out of range"),
                             ('[1, 2]', "expected a JSON object"),
                             ('{"band": [1, 20], "fps": 30}', "Nyquist"),
                             ('{"nope": 1}', "unknown option")):
        bad.write_text(content)
        assert main(["magnify", str(tmp_path / "in.npy"), str(tmp_path / "o.npy"), "-q",
                     "--params", str(bad)]) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.npy").exists()


def test_cli_flags_are_the_model_fields_and_to_cli_round_trips():
    import shlex
    from dataclasses import fields

    from napari_vmm.cli import build_parser
    from napari_vmm.cli.common import magnify_params_from_args
    from napari_vmm.core.params import MagnifyParams

    parser = build_parser()
    flags = {a.dest for a in parser._subparsers._group_actions[0].choices["magnify"]._actions}
    assert {f.name for f in fields(MagnifyParams)} - {"options"} <= flags
    for params in (MagnifyParams(), MagnifyParams.from_recipe("pulse", fps=25),
                   MagnifyParams(method="linear", alpha=0.5, fps=120, band=(2, 9),
                                 temporal="fir", taps=31, mode="static", reference=4,
                                 zero_phase=True, options={"levels": 3})):
        argv = shlex.split(params.to_cli("in.npy", "out.npy"))[1:]
        assert magnify_params_from_args(parser.parse_args(argv)) == params


def test_methods_states_the_share_of_the_motion_delivered(capsys):
    """``vmm methods`` gives each learned model's validation motion gain beside its SSIM,
    from the shipped provenance."""
    from napari_vmm.core.learned import weights as W

    assert main(["methods"]) == 0
    text = capsys.readouterr().out
    gain = W.read_provenance("realtime")["validation"]["motion_gain"]
    assert f"delivers {gain:.0%} of the requested change on validation" in text
