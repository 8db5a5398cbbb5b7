"""napari_vmm.io: the one video reader (seeks by keyframe), the atomic folder swap, Progress."""

from __future__ import annotations

import os
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from napari_vmm.io import Progress, VideoSource, atomic_output_dir  # noqa: E402
from napari_vmm.io.video import index_video  # noqa: E402

KEYINT = 12


@pytest.fixture(scope="module")
def gop_clip(tmp_path_factory) -> Path:
    """60 frames of a moving pattern, H.264 with a keyframe every 12 frames and B-frames."""
    path = tmp_path_factory.mktemp("gop") / "gop.mp4"
    t = np.arange(60)[:, None, None]
    y, x = np.mgrid[:48, :64]
    frames = (128 + 100 * np.sin(2 * np.pi * (x + 0.7 * t) / 16) * np.cos(y / 6)).astype(np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(30), options={
            "x264-params": f"keyint={KEYINT}:min-keyint={KEYINT}:scenecut=0:bframes=2"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for f in frames:
            rgb = np.repeat(f[..., None], 3, axis=-1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def test_backward_reads_seek_by_keyframe_and_equal_a_fresh_decode(gop_clip, monkeypatch):
    index = index_video(gop_clip)
    assert index.keyframes == list(range(0, 60, KEYINT))
    with VideoSource(gop_clip) as fresh:
        reference = fresh[0:60]  # one sequential decode from frame 0
    assert reference.shape == (60, 48, 64, 3)

    starts = []  # (asked, decoder position after opening) of every decoder (re)start
    real_restart = VideoSource._restart

    def spy(self, start):
        real_restart(self, start)
        starts.append((start, self._next))

    monkeypatch.setattr(VideoSource, "_restart", spy)
    with VideoSource(gop_clip) as src:
        assert np.array_equal(src[50:58], reference[50:58])
        for k, n in ((30, 5), (3, 4), (25, 10), (13, 2), (12, 1), (0, 3), (59, 1)):
            assert np.array_equal(src[k:k + n], reference[k:k + n]), (k, n)
            assert np.array_equal(src[k], reference[k])
    # every restart at or past the second keyframe began there, not at frame 0
    assert all(pos == asked for asked, pos in starts if asked >= KEYINT)
    assert (50, 50) in starts and (30, 30) in starts and (25, 25) in starts


def test_forward_jump_past_a_keyframe_seeks(gop_clip, monkeypatch):
    with VideoSource(gop_clip) as src:
        first = src[0:2]
        decoded = []
        real = VideoSource._restart
        monkeypatch.setattr(VideoSource, "_restart",
                            lambda self, start: (decoded.append(start), real(self, start)))
        later = src[40:42]
        near = src[43:44]  # same GOP as the last read: decodes on, no restart
    assert decoded == [40]
    with VideoSource(gop_clip) as fresh:
        whole = fresh[0:60]
    assert np.array_equal(first, whole[0:2]) and np.array_equal(later, whole[40:42])
    assert np.array_equal(near, whole[43:44])


def test_untimed_frames_fall_back_to_decoding_from_the_start(gop_clip):
    with VideoSource(gop_clip) as fresh:
        whole = fresh[0:60]
    with VideoSource(gop_clip) as src:
        src._index = False  # as for a file whose timestamps do not address frames
        assert src.keyframe_index() is None
        assert np.array_equal(src[30:33], whole[30:33])
        assert np.array_equal(src[5:7], whole[5:7])


def test_zarr_folder_swap_keeps_the_old_output_until_the_new_one_is_in(tmp_path, monkeypatch):
    dest = tmp_path / "out.zarr"
    dest.mkdir()
    (dest / "old").write_text("old")
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(src).name.startswith(".out.") and str(src).endswith(".zarr"):
            raise OSError(5, "Input/output error")  # the new folder cannot be renamed in
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError), atomic_output_dir(dest) as tmp:
        Path(tmp, "new").write_text("new")
    assert (dest / "old").read_text() == "old"  # the old output is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]  # nothing left over
    monkeypatch.setattr(os, "replace", real_replace)
    with atomic_output_dir(dest) as tmp:
        Path(tmp, "new").write_text("new")
    assert sorted(p.name for p in dest.iterdir()) == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr"]


def test_background_cleanup_deletes_the_partial_folder_after_returning(tmp_path):
    """A cancel in napari must not wait for a large partial store to be deleted."""
    import time

    dest = tmp_path / "out.zarr"
    with pytest.raises(KeyboardInterrupt), atomic_output_dir(dest, background_cleanup=True) \
            as tmp:
        for i in range(200):
            (Path(tmp) / str(i)).write_bytes(b"x" * 1000)
        raise KeyboardInterrupt
    deadline = time.monotonic() + 10
    while Path(tmp).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(tmp).exists() and not dest.exists()


def test_progress_takes_engine_callbacks_and_increments(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stderr", sys.stdout)  # capsys captures it; not a terminal
    bar = Progress("job", 10, unit="frame", force=True, leave=True)
    assert bar(3, 10) is None  # the engine's progress(done, total): never cancels
    bar.update(2)
    bar(9, 12)
    bar.close()
    out = capsys.readouterr().out
    assert "job" in out and "9/12" in out
    quiet = Progress("hidden", 4, quiet=True)
    quiet(4, 4)
    quiet.close()
    never = Progress("unused", 4, force=True)
    never.close()  # a bar that never got work prints nothing
    assert capsys.readouterr().out == ""
