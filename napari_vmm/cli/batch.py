"""Several inputs, Zarr, and Dask clusters for ``vmm magnify``.

- :func:`plan_jobs` turns the positional paths (``INPUT OUTPUT``, or inputs and folders with
  ``--out-dir``) into (input, output) pairs.
- :func:`run_on_cluster` runs the pairs on a Dask cluster (``--cluster local:N`` or
  ``tcp://host:port``): with at least as many files as workers, one task per file (each runs
  the single-file path on a worker); otherwise each file is split across the cluster
  (keyframe segments for videos with a causal filter, full-T tiles or time segments through
  :func:`napari_vmm.scale.magnify_dask` otherwise, as
  :func:`napari_vmm.core.route.choose_route` decides). Progress comes from the futures on
  stderr; Ctrl-C cancels them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.errors import VMMError
from ..io import (
    STACK_EXTENSIONS,
    VIDEO_EXTENSIONS,
    ZARR_EXTENSIONS,
    ZARR_TIME_CHUNK,
    Progress,
    VideoSource,
    as_dask,
    is_zarr,
    media_in,
    open_any,
    read_zarr_frames,
    write_stack,
    write_video,
)

#: The single-file path of ``vmm magnify``: ``magnify_file(src, dst, args)``.
FileJob = Callable[[str, str, argparse.Namespace], None]


def plan_jobs(paths: list[str], out_dir: str | None,
              out_ext: str | None = None) -> list[tuple[str, str]]:
    """(input, output) pairs from the positional paths.

    Without ``out_dir`` the paths must be ``INPUT OUTPUT``. With it, every path is an input
    (a folder stands for the videos, stacks and ``.zarr`` stores it holds) and the output is
    ``out_dir/<name>`` with the extension ``out_ext`` when given.
    """
    if out_dir is None:
        if out_ext:
            raise VMMError("--out-ext needs --out-dir")
        if len(paths) != 2:
            raise VMMError("give INPUT OUTPUT, or several inputs (or a folder) with --out-dir")
        src = Path(paths[0])
        if src.is_dir() and not is_zarr(src):
            raise VMMError(f"{src} is a folder: give --out-dir to magnify the files in it")
        return [(paths[0], paths[1])]
    dest = Path(out_dir)
    if dest.exists() and not dest.is_dir():
        raise VMMError(f"--out-dir {dest} is not a folder")
    if out_ext is not None and not out_ext.startswith("."):
        out_ext = "." + out_ext
    inputs: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir() and not is_zarr(path):
            found = media_in(path)
            if not found:
                raise VMMError(f"{path} holds no video, stack or .zarr to magnify")
            inputs.extend(found)
        elif not path.exists():
            raise VMMError(f"cannot read {path}: no such file")
        else:
            inputs.append(str(path))
    dest.mkdir(parents=True, exist_ok=True)
    jobs, seen = [], set()
    for src in inputs:
        name = Path(src).name if out_ext is None else Path(src).stem + out_ext
        out = str(dest / name)
        if out in seen:
            raise VMMError(f"two inputs would both write {out}; rename one")
        seen.add(out)
        if os.path.exists(out) and os.path.samefile(src, out):
            raise VMMError(f"--out-dir would overwrite the input {src}; choose another folder")
        jobs.append((src, out))
    return jobs


# -- clusters -----------------------------------------------------------------------------


def _file_job(src: str, dst: str, options: dict[str, Any], magnify_file: FileJob) -> str:
    """One whole file on one worker: the single-file path of ``vmm magnify``."""
    magnify_file(src, dst, argparse.Namespace(**{**options, "quiet": True}))
    return dst


def run_on_cluster(jobs: list[tuple[str, str]], args: argparse.Namespace,
                   magnify_file: FileJob) -> int:
    """Run (input, output) pairs on the Dask cluster named by ``args.cluster``.

    ``magnify_file(src, dst, args)`` is the single-file path, run on a worker for each file
    when there are at least as many files as workers.
    """
    from ..scale.cluster import close_client, get_client

    client = get_client(args.cluster)
    try:
        workers = len(client.nthreads()) or 1
        if len(jobs) > 1 and len(jobs) >= workers:
            return _files_in_parallel(client, jobs, args, magnify_file)
        for i, (src, dst) in enumerate(jobs):
            if len(jobs) > 1 and not args.quiet:
                print(f"[{i + 1}/{len(jobs)}] {src}", file=sys.stderr, flush=True)
            magnify_on_cluster(src, dst, args, client)
            print(f"wrote {dst}", flush=True)
        return 0
    finally:
        close_client(client)


def _files_in_parallel(client: Any, jobs: list[tuple[str, str]], args: argparse.Namespace,
                       magnify_file: FileJob) -> int:
    from distributed import as_completed

    options = {k: v for k, v in vars(args).items() if k != "func"}
    futures = [client.submit(_file_job, src, dst, options, magnify_file, pure=False)
               for src, dst in jobs]
    names = {f.key: src for f, (src, _) in zip(futures, jobs, strict=True)}
    bar = Progress("files", len(futures), unit="file", quiet=args.quiet)
    failed = 0
    try:
        for done, fut in enumerate(as_completed(futures), start=1):
            try:
                print(f"wrote {fut.result()}", flush=True)
            except VMMError as exc:
                failed += 1
                print(f"error: {names[fut.key]}: {exc}", file=sys.stderr, flush=True)
            bar(done, len(futures))
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        bar.close()
    if failed:
        raise VMMError(f"{failed} of {len(jobs)} files failed")
    return 0


def magnify_on_cluster(src: str, dst: str, args: argparse.Namespace, client: Any) -> None:
    """One file split across the cluster: keyframe segments, or dask tiles/segments."""
    from ..core.plan import DEFAULT_MEMORY_BUDGET, estimate_task_memory
    from ..core.route import SEGMENTS, choose_route
    from ..io.zarr import write_zarr_blocks
    from ..scale import magnify_dask, magnify_video_segments
    from .common import params_from_args, roi_mask_for

    out_suffix = Path(dst).suffix.lower()
    if out_suffix not in VIDEO_EXTENSIONS + STACK_EXTENSIONS + ZARR_EXTENSIONS:
        raise VMMError(f"cannot write {dst}: use a video (.mp4, .mkv, .mov), a stack "
                       "(.tif, .npy) or a .zarr extension")
    if os.path.exists(dst) and os.path.samefile(src, dst):
        raise VMMError(f"refusing to overwrite the input {src}")
    params = params_from_args(args)
    source, src_fps = open_any(src)
    is_video = isinstance(source, VideoSource)
    shape, dtype = tuple(source.shape), source.dtype
    meta = (source.fps, source.has_audio, source) if is_video else None
    if is_video:
        source.close()
    fps = params.pop("fps") or src_fps
    if not fps:
        raise VMMError(f"{src} has no frame rate; give the capture rate with --fps")
    mask = roi_mask_for(params, shape[1], shape[2])
    budget = int(args.memory_budget * 2**30) if args.memory_budget else DEFAULT_MEMORY_BUDGET
    route = choose_route(params, lazy=True, video=is_video and out_suffix in VIDEO_EXTENSIONS)
    whole = route.whole_clip
    bar = Progress(Path(src).name, unit="task", quiet=args.quiet)
    try:
        if route.kind == SEGMENTS and route.video:
            magnify_video_segments(src, dst, fps, client=client, roi_mask=mask,
                                   audio=not args.no_audio, codec=args.codec, crf=args.crf,
                                   ten_bit=args.ten_bit, memory_budget=budget,
                                   progress=bar, **params)
            return
        plan = estimate_task_memory(shape, dtype, fps, memory_budget=budget, **params)
        x = as_dask(src, max(ZARR_TIME_CHUNK, plan.frames if not whole else 64))
        scratch = tempfile.mkdtemp(prefix=f".{Path(dst).stem}.", dir=Path(dst).parent)
        try:
            time_chunked = len(x.chunks[0]) > 1
            result = magnify_dask(
                x, fps, roi_mask=mask, memory_budget=budget, keep_chunks=False,
                rechunk_store=os.path.join(scratch, "in.zarr") if whole and time_chunked
                else None, **params)
            zchunks = (min(ZARR_TIME_CHUNK, shape[0]),) + tuple(
                int(c[0]) for c in result.chunks[1:])
            target = dst if out_suffix in ZARR_EXTENSIONS else os.path.join(scratch, "out.zarr")
            write_zarr_blocks(result, target, fps=fps, client=client, progress=bar,
                              protect=[src], zarr_chunks=zchunks)
            if out_suffix in VIDEO_EXTENSIONS:
                file_fps, has_audio, color_src = meta if meta else (fps, False, None)
                audio = src if has_audio and not args.no_audio else None
                write_video(dst, read_zarr_frames(target), file_fps, audio_from=audio,
                            codec=args.codec, crf=args.crf, color_from=color_src,
                            ten_bit=args.ten_bit, protect=[src])
            elif out_suffix in STACK_EXTENSIONS:
                write_stack(dst, read_zarr_frames(target), shape, dtype, protect=[src])
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    finally:
        bar.close()
