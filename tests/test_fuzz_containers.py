"""The container side of fuzzing: awkward files through ``vmm magnify``, ``vmm-ffmpeg``,
``vmm analyze`` and the napari reader. Each either works (the output has the input's size and
frame count) or gives one clear line, leaving nothing in the output folder.

The clips are made with ffmpeg here (1 s, tiny): truncated, empty, zero-frame, variable frame
rate, rotated, odd sized (37x29; 50x30 not divisible by 4; 52x36 not by 8), 1 pixel high,
alpha, 10-bit 4:2:2, 12-bit 4:4:4 and audio only.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")

SRC = "testsrc2=r=15:d=1"
#: name -> ffmpeg arguments before the output path (None: made in Python).
CLIPS: dict[str, list[str] | None] = {
    "ok.mp4": ["-f", "lavfi", "-i", f"{SRC}:s=64x48", "-c:v", "libx264", "-pix_fmt", "yuv420p"],
    "truncated.mp4": None,
    "empty.mp4": None,
    "zero_frames.avi": None,
    "vfr.mp4": ["-f", "lavfi", "-i", "testsrc2=r=30:d=1:s=64x48",
                "-vf", r"select='not(mod(n\,3))+eq(n\,1)'", "-fps_mode", "vfr",
                "-c:v", "libx264", "-pix_fmt", "yuv420p"],
    "rotated.mp4": None,
    "odd_37x29.mkv": ["-f", "lavfi", "-i", f"{SRC}:s=37x29,format=yuv444p", "-c:v", "ffv1"],
    "mod2_50x30.mkv": ["-f", "lavfi", "-i", f"{SRC}:s=50x30", "-c:v", "ffv1",
                       "-pix_fmt", "yuv420p"],
    "mod4_52x36.mp4": ["-f", "lavfi", "-i", f"{SRC}:s=52x36", "-c:v", "libx264",
                       "-pix_fmt", "yuv420p"],
    "high1_64x1.mkv": ["-f", "lavfi", "-i", f"{SRC}:s=64x48,format=yuv444p,crop=64:1:0:10",
                       "-c:v", "ffv1"],
    "alpha.mkv": ["-f", "lavfi", "-i", f"{SRC}:s=64x48,format=yuva420p", "-c:v", "ffv1"],
    "yuv422p10.mkv": ["-f", "lavfi", "-i", f"{SRC}:s=64x48", "-c:v", "ffv1",
                      "-pix_fmt", "yuv422p10le"],
    "yuv444p12.mkv": ["-f", "lavfi", "-i", f"{SRC}:s=64x48", "-c:v", "ffv1",
                      "-pix_fmt", "yuv444p12le"],
    "audio_only.mp4": ["-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac"],
}
#: Clips that no front end can use: each must say why in one line.
UNUSABLE = {"truncated.mp4", "empty.mp4", "zero_frames.avi", "audio_only.mp4"}
#: Clips too small to magnify (the engine needs 8 px), which analysis and viewing still take.
TOO_SMALL = {"high1_64x1.mkv"}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    paths = {name: folder / name for name in CLIPS}

    def ffmpeg(*args: str) -> None:
        subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)

    for name, args in CLIPS.items():
        if args is not None:
            ffmpeg(*args, str(paths[name]))
    ok = paths["ok.mp4"].read_bytes()
    paths["truncated.mp4"].write_bytes(ok[: len(ok) * 9 // 10])
    paths["empty.mp4"].write_bytes(b"")
    ffmpeg("-i", str(paths["ok.mp4"]), "-c", "copy", "-frames:v", "0",
           str(paths["zero_frames.avi"]))
    ffmpeg("-i", str(paths["ok.mp4"]), "-c", "copy", "-metadata:s:v:0", "rotate=90",
           str(paths["rotated.mp4"]))
    return paths


@functools.cache
def _probe(path: Path) -> tuple[int, int, int]:
    """(width, height, decoded frames) of the first video stream."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
         "stream=width,height,nb_read_frames", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True).stdout.strip().split(",")
    return int(out[0]), int(out[1]), int(out[2])


def _check(name: str, rc: int, err: str, out_dir: Path, expect_ok: bool) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, f"{name}: {err}"
    if expect_ok:
        assert rc == 0, f"{name}: rc {rc}: {lines[-2:]}"
        return
    errors = [ln for ln in lines if "error:" in ln]
    assert rc == 1 and len(errors) == 1 and lines[-1] == errors[0], f"{name}: {rc} {lines}"
    assert list(out_dir.iterdir()) == [], f"{name}: left {list(out_dir.iterdir())}"


def _run(func, argv, capsys) -> tuple[int, str]:
    rc = func(argv)
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("front", ["vmm magnify", "vmm-ffmpeg"])
def test_magnify_front_ends(clips, tmp_path, capsys, front):
    from ffmpeg_filter import wrap
    from napari_vmm.cli import main

    for name, src in clips.items():
        out_dir = tmp_path / name
        out_dir.mkdir()
        dst = out_dir / f"out{src.suffix}"
        if front == "vmm magnify":
            rc, err = _run(main, ["magnify", str(src), str(dst)], capsys)
        else:
            rc, err = _run(wrap.main, ["-i", str(src), "-o", str(dst), "-q"], capsys)
        expect_ok = name not in UNUSABLE | TOO_SMALL
        _check(name, rc, err, out_dir, expect_ok)
        if expect_ok:
            w, h, n = _probe(src)
            ow, oh, on = _probe(dst)
            if name == "rotated.mp4" and front == "vmm-ffmpeg":
                w, h = h, w  # ffmpeg applies the rotation when it decodes
            assert (ow, oh) == (w, h), f"{front} {name}: {ow}x{oh}, input {w}x{h}"
            if name != "vfr.mp4":  # vmm-ffmpeg resamples variable rates to r_frame_rate
                assert on == n, f"{front} {name}: {on} frames of {n}"
            assert [p.name for p in out_dir.iterdir()] == [dst.name]


def test_analyze(clips, tmp_path, capsys):
    from napari_vmm.cli import main

    for name, src in clips.items():
        out_dir = tmp_path / name
        out_dir.mkdir()
        rc, err = _run(main, ["analyze", str(src), "--roi", "0,0,16,1",
                              "--csv", str(out_dir / "traces.csv")], capsys)
        _check(name, rc, err, out_dir, name not in UNUSABLE)


def test_napari_reader(clips):
    from napari_vmm._reader import napari_get_reader

    for name, src in clips.items():
        reader = napari_get_reader(str(src))
        if name in UNUSABLE:
            assert reader is None, name  # napari then says no reader could open it
            continue
        layers = reader(str(src))
        assert layers, name
        data = layers[0][0]
        w, h, n = _probe(src)
        assert data.shape[:3] == (n, h, w), f"{name}: {data.shape} vs {(n, h, w)}"
        assert data[-1].compute().shape == (h, w, 3)


def _rotation(path: Path) -> int:
    """The display rotation ffprobe reads from the first video stream (0: none)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream_side_data=rotation", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]) if out else 0


@pytest.mark.parametrize("degrees", [90, 270])
def test_vmm_magnify_keeps_the_display_rotation(clips, tmp_path, capsys, degrees):
    # was: the output lost the input's display matrix, so a phone video played sideways
    from napari_vmm.cli import main

    src = tmp_path / "rotated.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(clips["ok.mp4"]), "-c", "copy",
                    "-metadata:s:v:0", f"rotate={degrees}", str(src)], check=True)
    assert _rotation(src) != 0
    for ext in (".mp4", ".mov", ".mkv"):
        dst = tmp_path / f"out{ext}"
        rc, err = _run(main, ["magnify", str(src), str(dst)], capsys)
        assert rc == 0, err
        assert _rotation(dst) == _rotation(src), ext
        assert _probe(dst) == _probe(src), ext  # the coded frames are not turned
    rc, err = _run(main, ["magnify", str(clips["ok.mp4"]), str(tmp_path / "plain.mp4")],
                   capsys)
    assert rc == 0 and _rotation(tmp_path / "plain.mp4") == 0


ALPHA = {  # name -> ffmpeg arguments: three ways a video carries alpha
    "ffv1_yuva.mkv": ["-vf", "format=yuva420p", "-c:v", "ffv1"],
    "qtrle_argb.mov": ["-vf", "format=argb", "-c:v", "qtrle"],
    "vp9_yuva.webm": ["-vf", "format=yuva420p", "-c:v", "libvpx-vp9", "-b:v", "200k"],
}


@pytest.mark.parametrize("name", ALPHA)
def test_vmm_magnify_says_that_alpha_is_dropped(clips, tmp_path, capsys, name):
    # was: the alpha plane vanished without a word
    from napari_vmm.cli import main

    src = tmp_path / name
    r = subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"{SRC}:s=64x48",
                        *ALPHA[name], str(src)], capture_output=True)
    if r.returncode:
        pytest.skip(f"this ffmpeg cannot encode {name}")
    dst = tmp_path / "out.mkv"
    rc, err = _run(main, ["magnify", str(src), str(dst)], capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 0 and dst.exists()
    assert [ln for ln in lines if "alpha" in ln] == [
        f"warning: {src} has an alpha channel; {dst} has none (the RGB is magnified, the "
        "alpha plane is dropped)"], lines
    rc, err = _run(main, ["magnify", str(clips["ok.mp4"]), str(tmp_path / "plain.mkv")],
                   capsys)
    assert rc == 0 and "alpha" not in err
