"""``vmm magnify INPUT OUTPUT``: magnify a video or stack into a video or stack."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import VMMError
from .common import add_magnify_arguments, params_from_args, roi_mask_for


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "magnify", help="magnify motion in a video or stack",
        description="Magnify motion in INPUT (any video PyAV reads, or .tif/.tiff/.npy) and "
        "write OUTPUT (.mp4/.mkv/.mov video, or .tif/.npy stack). Videos keep their frame "
        "rate, colour tags and audio.")
    p.add_argument("input")
    p.add_argument("output")
    add_magnify_arguments(p)
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
    p.set_defaults(func=run)
    return p


def _progress(total: int, quiet: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc=desc, disable=quiet or None, leave=False)


def run(args: argparse.Namespace) -> int:
    from ..core.engine import StreamingMagnifier, iter_magnify
    from ..core.io import (STACK_EXTENSIONS, VIDEO_EXTENSIONS, VideoSource, iter_frame_chunks,
                           open_input, write_stack, write_video)
    from ..core.temporal import CAUSAL_FILTERS

    out_suffix = Path(args.output).suffix.lower()
    if out_suffix not in VIDEO_EXTENSIONS + STACK_EXTENSIONS:
        raise VMMError(f"cannot write {args.output}: use a video (.mp4, .mkv, .mov) or a stack "
                       "(.tif, .npy) extension")
    if os.path.exists(args.output) and os.path.exists(args.input) and os.path.samefile(
            args.input, args.output):
        raise VMMError(f"refusing to overwrite the input {args.input}")
    params = params_from_args(args)
    src = open_input(args.input)
    is_video = isinstance(src, VideoSource)
    fps = params.pop("fps") or (src.fps if is_video else None)
    if not fps:
        raise VMMError(f"{args.input} has no frame rate; give the capture rate with --fps")
    n, h, w = src.shape[:3]
    mask = roi_mask_for(params, h, w)
    compare = None
    if args.compare:
        from ..core.compare import SliceRecorder

        compare = SliceRecorder(row=args.slice_row)
        if args.slice_row is not None and not 0 <= args.slice_row < h:
            raise VMMError(f"--slice-row {args.slice_row} is outside 0..{h - 1}")
    streaming = params["mode"] == "dynamic" or (
        params["mode"] == "temporal" and params["temporal"] in CAUSAL_FILTERS) or (
        params["mode"] == "static" and params["reference"] == 0)
    bar = _progress(n, args.quiet, "magnify")
    tmp_dir = None
    try:
        if streaming:
            sm = StreamingMagnifier(fps=fps, roi_mask=mask, **params)

            def frames_out():
                for chunk in iter_frame_chunks(src, 8):
                    result = sm.push(chunk)
                    if compare is not None:
                        compare.add(chunk, result)
                    bar.update(len(chunk))
                    yield result
        else:
            # Whole-clip filter: the result goes to a memory-mapped scratch file, not RAM.
            tmp_dir = tempfile.mkdtemp(prefix=".vmm-", dir=Path(args.output).parent)
            out = np.lib.format.open_memmap(os.path.join(tmp_dir, "out.npy"), mode="w+",
                                            dtype=src.dtype, shape=src.shape)
            last = 0
            for done, total in iter_magnify(src, out, fps=fps, roi_mask=mask, **params):
                bar.update(int(done * n / total) - last)
                last = int(done * n / total)

            def frames_out():
                for t0 in range(0, n, 8):
                    result = np.asarray(out[t0:t0 + 8])
                    if compare is not None:
                        compare.add(np.asarray(src[t0:t0 + 8]), result)
                    yield result
        if out_suffix in VIDEO_EXTENSIONS:
            audio = args.input if is_video and src.has_audio and not args.no_audio else None
            write_video(args.output, frames_out(), src.fps if is_video else fps,
                        audio_from=audio, codec=args.codec, crf=args.crf,
                        color_from=src if is_video else None, ten_bit=args.ten_bit,
                        protect=[args.input])
        else:
            write_stack(args.output, frames_out(), src.shape, src.dtype, protect=[args.input])
        if compare is not None:
            compare.save(args.compare)
    finally:
        bar.close()
        if is_video:
            src.close()
        if tmp_dir is not None:
            import shutil

            shutil.rmtree(tmp_dir, ignore_errors=True)
    print(f"wrote {args.output}" + (f" and {args.compare}" if args.compare else ""),
          flush=True)
    return 0
