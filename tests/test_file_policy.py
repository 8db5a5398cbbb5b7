"""One file policy for every command (issue 24 item 4, issue 23's analyze/disk-full cases).

Unwritable or missing output folders and unwritable side outputs (``--compare``, ``--plot``,
``--csv``) are refused before any work; an existing output needs ``-y``/``--overwrite``;
``--fps 0`` is a usage error; a truncated input warns; a full disk or a file-size limit is one
clear message with no partial output and the input untouched.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from napari_vmm.cli import main
from napari_vmm.core.samples import vibrating_target
from napari_vmm.io import write_video

ROOT = Path(__file__).resolve().parents[1]
HAS_FFMPEG = shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    frames, info = vibrating_target(n_frames=16, shape=(32, 48))
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_video(path, frames, info["fps"], codec="h264-lossless")
    return path


def _mount_tmpfs(path: Path, options: str) -> bool:
    """Mount a tmpfs at ``path`` (root only); False when that is not possible here."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                         capture_output=True)
    return res.returncode == 0


@pytest.fixture
def readonly_dir(tmp_path):
    """A folder nobody can write into: chmod 555, or a read-only tmpfs when we are root."""
    path = tmp_path / "ro"
    path.mkdir()
    mounted = _mount_tmpfs(path, "ro,size=64k")
    if not mounted:
        if os.geteuid() == 0:
            pytest.skip("root without mount: cannot make a read-only folder")
        path.chmod(0o555)
    yield path
    if mounted:
        subprocess.run(["umount", str(path)], check=False)
    else:
        path.chmod(0o755)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_error_line(err: str, *words: str) -> None:
    assert "Traceback" not in err
    lines = [ln for ln in err.strip().splitlines() if "error" in ln]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], err


# --------------------------------------------------------------------------- before any work
def test_missing_output_folder_is_refused_before_work(clip, tmp_path, capsys):
    assert main(["magnify", str(clip), str(tmp_path / "no" / "out.mp4"), "-q"]) == 1
    _one_error_line(capsys.readouterr().err, "does not exist")


def test_readonly_output_folder_is_refused(clip, readonly_dir, capsys):
    assert main(["magnify", str(clip), str(readonly_dir / "out.mp4"), "-q"]) == 1
    _one_error_line(capsys.readouterr().err, "not writable")


def test_unwritable_compare_path_fails_before_the_video_is_written(clip, tmp_path,
                                                                   readonly_dir, capsys):
    out = tmp_path / "out.mp4"
    assert main(["magnify", str(clip), str(out), "--compare", str(readonly_dir / "c.png"),
                 "-q"]) == 1
    _one_error_line(capsys.readouterr().err, "c.png", "not writable")
    assert not out.exists()  # the video was not made and left behind


def test_analyze_plot_into_readonly_folder_is_one_message(clip, readonly_dir, capsys):
    assert main(["analyze", str(clip), "--roi", "0,0,16,16",
                 "--plot", str(readonly_dir / "p.png")]) == 1
    _one_error_line(capsys.readouterr().err, "p.png", "not writable")


def test_compare_naming_the_output_is_refused(clip, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    assert main(["magnify", str(clip), str(out), "--compare", str(out), "-q"]) == 1
    _one_error_line(capsys.readouterr().err, "two outputs")


# --------------------------------------------------------------------------- -y / --overwrite
def test_magnify_needs_overwrite_to_replace(clip, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep me")
    assert main(["magnify", str(clip), str(out), "-q"]) == 1
    _one_error_line(capsys.readouterr().err, "exists", "--overwrite")
    assert out.read_bytes() == b"keep me"
    assert main(["magnify", str(clip), str(out), "-q", "-y"]) == 0
    assert out.read_bytes() != b"keep me"


def test_analyze_needs_overwrite_to_replace(clip, tmp_path, capsys):
    csv = tmp_path / "t.csv"
    csv.write_text("keep me")
    assert main(["analyze", str(clip), "--roi", "0,0,16,16", "--csv", str(csv)]) == 1
    _one_error_line(capsys.readouterr().err, "exists")
    assert csv.read_text() == "keep me"
    assert main(["analyze", str(clip), "--roi", "0,0,16,16", "--csv", str(csv), "-y"]) == 0
    assert csv.read_text() != "keep me"


def test_vmm_filter_output_needs_overwrite(tmp_path, capsys):
    from ffmpeg_filter import cli

    src = tmp_path / "in.y4m"
    src.write_bytes(b"YUV4MPEG2 W8 H8 F30:1 C420jpeg\n" + (b"FRAME\n" + bytes(96)) * 4)
    dst = tmp_path / "out.y4m"
    dst.write_bytes(b"keep me")
    args = ["-i", str(src), "-o", str(dst), "--method", "linear", "--band", "1", "5"]
    assert cli.main(args) == 1
    _one_error_line(capsys.readouterr().err, "exists")
    assert dst.read_bytes() == b"keep me"
    assert cli.main([*args, "-y"]) == 0
    assert dst.read_bytes().startswith(b"YUV4MPEG2")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_vmm_filter_readonly_output_folder(tmp_path, readonly_dir, capsys):
    from ffmpeg_filter import cli

    src = tmp_path / "in.y4m"
    src.write_bytes(b"YUV4MPEG2 W8 H8 F30:1 C420jpeg\n" + (b"FRAME\n" + bytes(96)) * 4)
    assert cli.main(["-i", str(src), "-o", str(readonly_dir / "o.y4m")]) == 1
    _one_error_line(capsys.readouterr().err, "not writable")


@pytest.mark.skipif(not HAS_FFMPEG, reason="needs ffmpeg")
def test_vmm_ffmpeg_readonly_output_folder_before_ffmpeg_runs(clip, readonly_dir, capsys):
    from ffmpeg_filter import wrap

    assert wrap.main(["-i", str(clip), "-o", str(readonly_dir / "o.mp4"), "-q"]) == 1
    err = capsys.readouterr().err
    _one_error_line(err, "not writable")
    assert "using" not in err  # refused before ffmpeg was even looked up


def test_napari_writer_refuses_readonly_folder_before_computing(readonly_dir):
    from napari_vmm import _writer

    class Untouchable:
        shape, dtype, ndim = (4, 8, 8), np.dtype(np.uint8), 3

        def __getitem__(self, key):
            raise AssertionError("frames were computed before the folder was checked")

    assert _writer.write_video_layer(str(readonly_dir / "o.mp4"), Untouchable(),
                                     {"scale": (1, 1, 1)}) == []


# --------------------------------------------------------------------------- --fps 0
@pytest.mark.parametrize("command", ["magnify", "analyze"])
def test_fps_zero_is_refused(clip, tmp_path, capsys, command):
    args = ([str(clip), str(tmp_path / "o.mp4"), "-q"] if command == "magnify"
            else [str(clip), "--roi", "0,0,8,8"])
    with pytest.raises(SystemExit) as exc:
        main([command, *args, "--fps", "0"])
    assert exc.value.code == 2
    assert "--fps" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_vmm_filter_fps_zero_is_refused(capsys):
    from ffmpeg_filter import cli

    with pytest.raises(SystemExit) as exc:
        cli.main(["--fps", "0"])
    assert exc.value.code == 2


# --------------------------------------------------------------------------- inputs
@pytest.mark.skipif(not HAS_FFMPEG, reason="needs ffmpeg")
@pytest.mark.parametrize("front", ["vmm magnify", "vmm-ffmpeg"])
def test_truncated_input_warns_frames_read_against_declared(tmp_path, capsys, front):
    full = tmp_path / "full.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=64x48:rate=30:duration=3", "-c:v", "libx264", "-g", "10",
                    "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(full)], check=True)
    cut = tmp_path / "cut.mp4"
    data = full.read_bytes()
    cut.write_bytes(data[:int(len(data) * 0.6)])
    out = tmp_path / "out.mp4"
    if front == "vmm magnify":
        assert main(["magnify", str(cut), str(out), "--method", "linear", "--band", "1", "5",
                     "-q"]) == 0
    else:
        from ffmpeg_filter import wrap

        assert wrap.main(["-i", str(cut), "-o", str(out), "--method", "linear", "--band", "1",
                          "5", "-q", "--loglevel", "quiet"]) == 0
    err = capsys.readouterr().err
    warning = [ln for ln in err.splitlines() if "warning:" in ln]
    assert len(warning) == 1 and "of the 90" in warning[0] and "truncated" in warning[0]


@pytest.mark.parametrize("temporal", ["butterworth", "ideal"])
def test_npy_input_gives_no_torch_not_writable_warning(tmp_path, temporal):
    frames, info = vibrating_target(n_frames=12, shape=(32, 32))
    np.save(tmp_path / "in.npy", frames.astype(np.float32) / 255)  # float maps are not copied
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert main(["magnify", str(tmp_path / "in.npy"), str(tmp_path / "out.npy"),
                     "--fps", str(info["fps"]), "--band", "1", "5", "--temporal", temporal,
                     "--method", "linear", "-q"]) == 0


# --------------------------------------------------------------------------- out of space
def _set_fsize_limit() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


@pytest.mark.parametrize("suffix", [".mp4", ".npy"])
def test_file_size_limit_is_one_message_and_no_partial_output(clip, tmp_path, suffix):
    frames, info = vibrating_target(n_frames=40, shape=(96, 128))
    src = tmp_path / "big.npy"
    np.save(src, frames)
    before = _digest(src)
    out = tmp_path / "out" / f"o{suffix}"
    out.parent.mkdir()
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PYTHONDONTWRITEBYTECODE": "1"}
    res = subprocess.run([sys.executable, "-m", "napari_vmm", "magnify", str(src), str(out),
                          "--fps", "30", "--band", "1", "5", "--method", "linear", "-q",
                          "--codec", "h264-lossless"] if suffix == ".mp4" else
                         [sys.executable, "-m", "napari_vmm", "magnify", str(src), str(out),
                          "--fps", "30", "--band", "1", "5", "--method", "linear", "-q"],
                         capture_output=True, text=True, env=env, cwd=tmp_path,
                         preexec_fn=_set_fsize_limit, timeout=300)
    assert res.returncode == 1, res.stderr
    _one_error_line(res.stderr, "cannot write", "File too large")
    assert list(out.parent.iterdir()) == []  # no partial output, no temporary file
    assert _digest(src) == before


def test_full_disk_is_one_message_and_no_partial_output(tmp_path, capsys):
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _mount_tmpfs(disk, "size=48k"):
        pytest.skip("needs root and mount for a tiny tmpfs")
    try:
        frames, info = vibrating_target(n_frames=40, shape=(96, 128))
        src = tmp_path / "big.npy"
        np.save(src, frames)
        before = _digest(src)
        for suffix in (".mp4", ".npy", ".tif"):
            assert main(["magnify", str(src), str(disk / f"o{suffix}"), "--method", "linear",
                         "--fps", "30", "--band", "1", "5", "--codec", "h264-lossless",
                         "-q"]) == 1
            _one_error_line(capsys.readouterr().err, "No space left on device")
            assert list(disk.iterdir()) == []
        assert _digest(src) == before
    finally:
        subprocess.run(["umount", str(disk)], check=False)
