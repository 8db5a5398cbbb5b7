"""``vmm magnify INPUT OUTPUT``: magnify a video or stack into a video or stack.

Several inputs (or a folder) go to ``--out-dir``; ``--cluster local:N`` or
``--cluster tcp://host:port`` runs them on Dask (:mod:`napari_vmm.cli.batch`).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import VMMError
from .common import (
    add_magnify_arguments,
    add_overwrite_argument,
    magnify_params_from_args,
    roi_args,
    roi_mask_for,
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "magnify", help="magnify motion in a video or stack",
        usage="vmm magnify INPUT OUTPUT [options]\n"
              "       vmm magnify INPUT|FOLDER [INPUT ...] --out-dir DIR [options]",
        description="Magnify motion in INPUT (any video PyAV reads, .tif/.tiff/.npy, or a "
        ".zarr / OME-Zarr store) and write OUTPUT (.mp4/.mkv/.mov video, .tif/.npy stack or "
        ".zarr). Videos keep their frame rate, colour tags and audio. With --out-dir, every "
        "INPUT (and every video, stack or .zarr in an INPUT folder) is written there under "
        "its own name. --cluster runs the work on Dask.")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="INPUT OUTPUT, or inputs and folders with --out-dir")
    add_magnify_arguments(p)
    scale = p.add_argument_group("several files and clusters")
    scale.add_argument("--out-dir", metavar="DIR",
                       help="write one output per input into DIR (same file name)")
    scale.add_argument("--out-ext", metavar="EXT",
                       help="with --out-dir: output extension, e.g. .mkv or .zarr "
                       "(default: the input's)")
    scale.add_argument("--cluster", metavar="local:N|tcp://HOST:PORT",
                       help="run on Dask: a LocalCluster of N worker processes, or an existing "
                       "scheduler (whose workers see the same files)")
    scale.add_argument("--memory-budget", type=float, default=None, metavar="GIB",
                       help="GiB of motion signal the whole-clip filter (or, with --cluster, "
                       "one task) may hold (default 1); sizes tiles and time segments")
    out = p.add_argument_group("output")
    out.add_argument("--codec", default=None,
                     choices=["h264", "h264-lossless", "hevc", "ffv1"],
                     help="video codec (default h264 for .mp4/.mov, lossless ffv1 for .mkv)")
    out.add_argument("--crf", type=int, default=None, help="h264/hevc quality (default 17)")
    out.add_argument("--ten-bit", action="store_true", help="encode 10-bit video")
    out.add_argument("--no-audio", action="store_true", help="do not copy the audio")
    out.add_argument("--compare", metavar="PNG",
                     help="also write input|output frames with space-time slices")
    out.add_argument("--slice-row", type=int, default=None,
                     help="row of the space-time slice in --compare (default: middle)")
    out.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_overwrite_argument(out)
    p.set_defaults(func=run)
    return p


#: Pixels per chunk of frames on the file path: a few frames of a small clip, one of a large
#: one, so the working memory stays near the pipe filter's (docs/benchmarks.md).
FILE_CHUNK_PIXELS = 500_000


def run(args: argparse.Namespace) -> int:
    from ..io import check_outputs
    from .batch import plan_jobs, run_on_cluster

    jobs = plan_jobs(args.paths, args.out_dir, args.out_ext)
    if args.compare and (len(jobs) > 1 or args.cluster):
        raise VMMError("--compare works with one input and no --cluster")
    # the file policy, before any work: writable folders, no input overwritten, -y to replace
    check_outputs([dst for _, dst in jobs] + [args.compare], protect=[src for src, _ in jobs],
                  overwrite=args.overwrite)
    if args.cluster:
        return run_on_cluster(jobs, args, magnify_file)
    for i, (src, dst) in enumerate(jobs):
        if len(jobs) > 1 and not args.quiet:
            print(f"[{i + 1}/{len(jobs)}] {src}", file=sys.stderr, flush=True)
        magnify_file(src, dst, args)
    return 0


def magnify_file(input_path: str, output_path: str, args: argparse.Namespace) -> None:
    """Magnify one file in this process (the single-file ``vmm magnify``)."""
    from ..core.engine import iter_magnify
    from ..core.pipeline import StreamingMagnifier
    from ..core.plan import DEFAULT_MEMORY_BUDGET
    from ..core.route import STREAM, choose_route
    from ..core.spool import FrameSpool, spool_frames
    from ..io import (
        STACK_EXTENSIONS,
        VIDEO_EXTENSIONS,
        ZARR_EXTENSIONS,
        Progress,
        VideoSource,
        iter_frame_chunks,
        open_any,
        write_stack,
        write_video,
        write_zarr_frames,
    )

    args = argparse.Namespace(**{**vars(args), "input": input_path, "output": output_path})
    out_suffix = Path(args.output).suffix.lower()
    if out_suffix not in VIDEO_EXTENSIONS + STACK_EXTENSIONS + ZARR_EXTENSIONS:
        raise VMMError(f"cannot write {args.output}: use a video (.mp4, .mkv, .mov), a stack "
                       "(.tif, .npy) or a .zarr extension")
    if os.path.exists(args.output) and os.path.exists(args.input) and os.path.samefile(
            args.input, args.output):
        raise VMMError(f"refusing to overwrite the input {args.input}")
    params = magnify_params_from_args(args)  # checked before any work
    roi = roi_args(args)
    src, src_fps = open_any(args.input)
    is_video = isinstance(src, VideoSource)
    if params.fps is None:  # neither --fps nor the --params file: the input's rate
        if not src_fps:
            raise VMMError(f"{args.input} has no frame rate; give the capture rate with --fps")
        params = params.replace(fps=src_fps)  # the band is checked against Nyquist now
    fps = params.fps
    n, h, w = src.shape[:3]
    shape = tuple(src.shape)
    chunk = max(1, min(8, FILE_CHUNK_PIXELS // (h * w)))
    if args.memory_budget is not None and args.memory_budget <= 0:
        raise VMMError(f"--memory-budget must be > 0 GiB, got {args.memory_budget:g}")
    budget = int(args.memory_budget * 2**30) if args.memory_budget else DEFAULT_MEMORY_BUDGET
    mask = roi_mask_for(roi, h, w)
    compare = None
    if args.compare:
        from ..core.compare import SliceRecorder

        compare = SliceRecorder(row=args.slice_row)
        if args.slice_row is not None and not 0 <= args.slice_row < h:
            raise VMMError(f"--slice-row {args.slice_row} is outside 0..{h - 1}")
    streaming = choose_route(params, shape).kind == STREAM  # the one decision (core.route)
    bar = Progress("magnify", n, quiet=args.quiet)
    tmp_dir, spools = None, []
    try:
        if streaming:
            sm = StreamingMagnifier.from_params(params, roi_mask=mask)

            def frames_out():
                for part in iter_frame_chunks(src, chunk):
                    result = sm.push(part)
                    if compare is not None:
                        compare.add(part, result)
                    bar.update(len(part))
                    yield result
        else:
            # Whole-clip filter: a video (any lazy input) is decoded once into a scratch
            # spool that the tiles and passes read back; the result goes to another spool.
            # Both are files read by rows, so neither is held in RAM.
            tmp_dir = tempfile.mkdtemp(prefix=".vmm-", dir=Path(args.output).parent)
            frames = src
            if not isinstance(src, np.ndarray):
                with Progress("decode", n, quiet=args.quiet) as decode_bar:
                    frames = spool_frames(src, os.path.join(tmp_dir, "in.raw"), chunk,
                                          decode_bar.update)
                spools.append(frames)
                shape = frames.shape
                n = shape[0]
            out = FrameSpool(os.path.join(tmp_dir, "out.raw"), shape, src.dtype)
            spools.append(out)
            last = 0
            engine = {"chunk_size": chunk, "memory_budget": budget, **params.engine_kwargs()}
            for done, total in iter_magnify(frames, out, roi_mask=mask, **engine):
                bar.update(int(done * n / total) - last)
                last = int(done * n / total)

            def frames_out():
                for t0 in range(0, n, chunk):
                    result = out[t0:t0 + chunk]
                    if compare is not None:
                        compare.add(np.asarray(frames[t0:t0 + chunk]), result)
                    yield result
        if out_suffix in VIDEO_EXTENSIONS:
            audio = args.input if is_video and src.has_audio and not args.no_audio else None
            write_video(args.output, frames_out(), src.fps if is_video else fps,
                        audio_from=audio, codec=args.codec, crf=args.crf,
                        color_from=src if is_video else None, ten_bit=args.ten_bit,
                        protect=[args.input])
        elif out_suffix in ZARR_EXTENSIONS:
            write_zarr_frames(args.output, frames_out(), shape, src.dtype, fps,
                              protect=[args.input])
        else:
            write_stack(args.output, frames_out(), shape, src.dtype, protect=[args.input])
        if compare is not None:
            compare.save(args.compare)
    finally:
        bar.close()
        for spool in spools:
            spool.close()
        if is_video:
            src.close()
        if tmp_dir is not None:
            import shutil

            shutil.rmtree(tmp_dir, ignore_errors=True)
    print(f"wrote {args.output}" + (f" and {args.compare}" if args.compare else ""),
          flush=True)
