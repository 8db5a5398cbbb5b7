"""Backward reads of a video: seeking by keyframe against restarting the decoder at frame 0.

Run:  .venv/bin/python benchmarks/bench_io.py [--clip PATH] [--keyint 30] [--json FILE]

A napari layer scrubbed backwards, or a Dask task reading its segment, asks
``VideoSource`` for frames before the last ones decoded. The reference is the reader before
issue 20, which restarted decoding from frame 0 for such a read (measured here with the same
``VideoSource``, its keyframe index disabled, so both routes run in the same process and
run). The clip is ``../shared/videos/baby.mp4`` re-encoded with a keyframe every
``--keyint`` frames (H.264, B-frames), or ``--clip``. Reads of 8 frames walk from the end of
the clip to its start; every read is checked against one sequential decode.
The machine is shared: compare the two routes, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "videos"


def make_clip(dst: Path, keyint: int, frames: int = 240) -> Path:
    """The first ``frames`` frames of baby.mp4 (or a synthetic pattern) with fixed GOPs."""
    import av

    from napari_vmm.io import open_video

    src = SHARED / "baby.mp4"
    if src.exists():
        with open_video(src) as v:
            data = v[:min(frames, v.n_frames)]
    else:
        t = np.arange(frames)[:, None, None]
        y, x = np.mgrid[:360, :480]
        gray = (128 + 100 * np.sin(2 * np.pi * (x + 0.5 * t) / 40) * np.cos(y / 20))
        data = np.repeat(gray.astype(np.uint8)[..., None], 3, axis=-1)
    h, w = (data.shape[1] // 2) * 2, (data.shape[2] // 2) * 2
    with av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(30), options={
            "x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0:bframes=2",
            "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for frame in data[:, :h, :w]:
            for packet in stream.encode(av.VideoFrame.from_ndarray(
                    np.ascontiguousarray(frame), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return dst


def backward_walk(path: Path, seek: bool, reference: np.ndarray, step: int = 8) -> float:
    """Seconds to read ``[k, k + step)`` for k from the end to 0 with one VideoSource."""
    from napari_vmm.io import VideoSource

    with VideoSource(path) as src:
        if not seek:
            src._index = False  # the reader before issue 20: back to frame 0 for every read
        n = src.n_frames
        start = time.perf_counter()
        for k in range(n - step, -1, -step):
            got = src[k:k + step]
            if not np.array_equal(got, reference[k:k + step]):
                raise SystemExit(f"frames {k}..{k + step} differ from a sequential decode")
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=None)
    parser.add_argument("--keyint", type=int, default=30)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    from napari_vmm.io import VideoSource, index_video

    with tempfile.TemporaryDirectory() as tmp:
        clip = args.clip or make_clip(Path(tmp) / "gop.mp4", args.keyint)
        with VideoSource(clip) as src:
            reference = src[:]
        index = index_video(clip)
        t0 = time.perf_counter()
        index_video(clip)
        index_s = time.perf_counter() - t0
        restart = backward_walk(clip, False, reference)
        seek = backward_walk(clip, True, reference)
    res = {"clip": str(args.clip or f"baby.mp4 re-encoded, keyint {args.keyint}"),
           "frames": int(reference.shape[0]), "size": list(reference.shape[1:3]),
           "keyframes": len(index.keyframes), "index_s": round(index_s, 3),
           "restart_s": round(restart, 3), "seek_s": round(seek, 3),
           "speedup": round(restart / seek, 2), "load": os.getloadavg()[0]}
    print(json.dumps(res, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
