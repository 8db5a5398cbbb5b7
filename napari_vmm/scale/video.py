"""A video with a causal filter, in keyframe segments processed and encoded in parallel,
joined with the ffmpeg concat demuxer (``-c copy``, no re-encoding), audio muxed once."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import VMMError
from ..core.params import MagnifyParams
from ..core.pipeline import Pipeline
from ..core.plan import DEFAULT_MEMORY_BUDGET, RUN_OPTIONS, plan_tasks
from ..core.route import choose_route
from ..io.segments import video_segments
from ..io.video import VideoIndex, index_video, read_video_frames
from .graphs import segment_task
from .tasks import run_tasks


def magnify_video_segments(src_path: str | os.PathLike, dst_path: str | os.PathLike,
                           fps: float | None = None, *, client: Any = None,
                           roi_mask: np.ndarray | None = None, audio: bool = True,
                           codec: str | None = None, crf: int | None = None,
                           ten_bit: bool = False, segment_frames: int | None = None,
                           warmup: int | None = None, progress: Callable[[int, int], Any]
                           | None = None, **params: Any) -> int:
    """Magnify a video with a causal filter in keyframe segments processed in parallel.

    Each task decodes ``[start - warm-up, stop)`` of one keyframe segment (seeking, not
    decoding from the start), magnifies it as :func:`magnify_dask`'s segments do, and encodes
    it to its own file. The files are joined with the ffmpeg concat demuxer without
    re-encoding, and the audio of the input is muxed once.

    Parameters
    ----------
    src_path, dst_path : path
        Input video and output video (same container family: .mp4/.mov/.mkv).
    fps : float, optional
        The true capture rate (default: the file's); the output keeps the file's rate.
    client : distributed.Client, optional
        Where to run (default: the local threaded scheduler).
    roi_mask, audio, codec, crf, ten_bit
        As for ``vmm magnify``.
    segment_frames : int, optional
        Minimum frames per segment (default: :func:`napari_vmm.core.plan.plan_tasks`' choice).
    progress : callable(done, total), optional
        Called as each segment's future completes.
    **params
        ``method``, ``alpha``, ``band``, ``temporal``, ``mode``, ``reference``, ``device``,
        engine and method options, as for :func:`napari_vmm.core.engine.magnify`.

    Returns
    -------
    int
        The number of segments.
    """
    import dask

    from ..io.atomic import atomic_output
    from ..io.video import VIDEO_EXTENSIONS, open_video

    if Path(dst_path).suffix.lower() not in VIDEO_EXTENSIONS:
        raise VMMError(f"cannot write {dst_path}: segments are joined into a video file")
    if shutil.which("ffmpeg") is None:
        raise VMMError("joining video segments needs the ffmpeg program on PATH")
    with open_video(src_path) as src:
        file_fps, color, has_audio, shape, dtype = (src.fps, dict(src.color), src.has_audio,
                                                     src.shape, src.dtype)
    fps = fps or file_fps
    run = {k: params.pop(k) for k in list(params) if k in RUN_OPTIONS}
    model = MagnifyParams.from_kwargs(**{**params, "fps": fps})
    if choose_route(model, lazy=True, video=True).whole_clip:
        raise VMMError(f"the {model.temporal!r} filter needs the whole clip; video segments "
                       "need a causal filter")
    index = index_video(src_path)
    n = len(index.pts)
    plan = plan_tasks((n,) + tuple(shape[1:]), dtype.itemsize, model, None, segment_frames,
                      warmup, run.get("chunk_size"),
                      run.get("memory_budget", DEFAULT_MEMORY_BUDGET))
    seg_params = model.replace(reference=0)
    probe = Pipeline(seg_params, roi_mask)
    if probe.roi_mask is not None:
        probe.mask_for(shape[1:3])
    reference = choose_route(model, (n,) + tuple(shape[1:]), lazy=True).reference
    segments = video_segments(index, max(1, plan.segment))
    dest = Path(dst_path)
    work = os.path.abspath(tempfile.mkdtemp(prefix=f".{dest.stem}.", dir=dest.parent))
    try:
        encode = dask.delayed(_encode_video_segment, pure=False)
        tasks = []
        for i, (t0, t1) in enumerate(segments):
            m = max(0, t0 - plan.warmup)
            tasks.append(encode(
                str(src_path), os.path.join(work, f"seg{i:05d}{dest.suffix}"), index,
                (m, t0, t1), reference,
                seg_params, roi_mask, plan.chunk, file_fps,
                dict(codec=codec, crf=crf, ten_bit=ten_bit, color=color),
                dtype == np.uint16))
        parts = run_tasks(tasks, client, progress)
        listing = os.path.join(work, "list.txt")
        with open(listing, "w") as fh:
            for part in parts:
                fh.write(f"file '{part}'\n")
        joined = os.path.join(work, f"joined{dest.suffix}")
        _ffmpeg(["-f", "concat", "-safe", "0", "-i", listing, "-c", "copy", joined])
        with atomic_output(dest, protect=[src_path]) as tmp:
            if audio and has_audio:
                _ffmpeg(["-i", joined, "-i", str(src_path), "-map", "0:v:0", "-map", "1:a?",
                         "-c", "copy", "-f", _muxer(dest), tmp])
            else:
                _ffmpeg(["-i", joined, "-map", "0:v:0", "-c", "copy", "-f", _muxer(dest), tmp])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return len(segments)


def _muxer(path: Path) -> str:
    return {".mkv": "matroska", ".webm": "webm", ".mov": "mov", ".avi": "avi"}.get(
        path.suffix.lower(), "mp4")


def _ffmpeg(args: list[str]) -> None:
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise VMMError(f"ffmpeg failed joining segments: {proc.stderr.strip()[-400:]}")


def _encode_video_segment(src: str, dst: str, index: VideoIndex, span: tuple[int, int, int],
                          reference: int | None, params: MagnifyParams,
                          mask: np.ndarray | None, chunk: int,
                          file_fps: float, out: dict[str, Any], deep: bool) -> str:
    """Decode one segment with its warm-up, magnify it and encode it (no audio)."""
    from types import SimpleNamespace

    from ..io.video import write_video

    m, t0, t1 = span
    block = read_video_frames(src, m, t1, index)
    static = reference is not None
    ref0 = read_video_frames(src, 0, 1, index) if (m > 0 or static) else None
    refr = read_video_frames(src, reference, reference + 1, index) if static else None
    h, w = block.shape[1:3]
    result = segment_task(block, ref0, refr, params=params, crop=(t0 - m, 0, h, 0, w),
                          mask=mask, chunk=chunk)
    write_video(dst, result, file_fps, codec=out["codec"], crf=out["crf"],
                ten_bit=out["ten_bit"], color_from=SimpleNamespace(
                    color=out["color"], dtype=np.uint16 if deep else np.uint8))
    return dst
