"""``vmm-ffmpeg``: magnify a video file to a video file through ffmpeg, keeping the rest.

::

    vmm-ffmpeg -i in.mp4 -o out.mp4 --method riesz --alpha 20 --band 0.5 3 [-- extra ffmpeg args]

It runs three stages without a shell: a decoding ffmpeg that writes YUV4MPEG2 to a pipe, the
``vmm-filter`` loop in this process, and an encoding ffmpeg that reads the pipe, copies the
audio of the input (``-map 1:a? -c:a copy``) and re-asserts the colour tags read with PyAV
(:func:`napari_vmm.io.probe_video`; y4m carries only the range). The output is written under a
temporary name in the destination folder and renamed at the end; the input is never overwritten.

Decisions:

- the frame rate is the input's ``r_frame_rate`` (variable-rate input is resampled to it, as
  ffmpeg does for y4m); ``--fps`` only tells the temporal filter the true capture rate (high-speed
  clips), the output keeps the container's rate;
- the time base of MP4/MOV output is kept with ``-video_track_timescale``;
- chroma keeps its subsampling (4:2:0 stays 4:2:0) and passes through untouched;
- the bit depth is kept (8 stays 8; deeper sources give 10 bits with the default encoder), or
  set with ``--bit-depth``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from fractions import Fraction

from napari_vmm.cli.common import add_magnify_arguments, params_from_args, run_cli
from napari_vmm.core.errors import VMMError, VMMWarning
from napari_vmm.io import Progress, atomic_output, check_output_path
from napari_vmm.io.probe import VideoInfo, pix_fmt_bit_depth, probe_video

from .cli import add_stream_arguments, filter_stream, make_magnifier, set_threads
from .y4m import Y4MReader, Y4MWriter

__all__ = ["FFmpeg", "VideoInfo", "build_parser", "decode_command", "encode_command",
           "find_ffmpeg", "is_rgb", "main", "pipe_pix_fmt", "pix_fmt_bit_depth", "probe_video",
           "run", "split_extra"]

PROG = "vmm-ffmpeg"
#: Containers whose video time base ffmpeg sets with ``-video_track_timescale``.
_MOV_LIKE = {".mp4", ".m4v", ".mov", ".3gp", ".3g2"}
_RANGE_TO_FFMPEG = {"FULL": "pc", "LIMITED": "tv"}


# --------------------------------------------------------------------------- finding ffmpeg
@dataclass(frozen=True)
class FFmpeg:
    """The ffmpeg executable in use and its version."""

    ffmpeg: str
    version: str


def find_ffmpeg(ffmpeg: str | None = None) -> FFmpeg:
    """Locate ffmpeg (the input is probed with PyAV: no ffprobe is needed).

    Parameters
    ----------
    ffmpeg : str, optional
        Path or name of ffmpeg; default ``$VMM_FFMPEG`` or ``ffmpeg`` on ``PATH``.

    Returns
    -------
    FFmpeg

    Raises
    ------
    VMMError
        When ffmpeg cannot be found or run.
    """
    hint = (
        "install it (Debian/Ubuntu: apt install ffmpeg; macOS: brew install ffmpeg; conda: "
        "conda install -c conda-forge ffmpeg) or give --ffmpeg /path/to/ffmpeg"
    )
    name = ffmpeg or os.environ.get("VMM_FFMPEG") or "ffmpeg"
    ffmpeg_path = shutil.which(name)
    if ffmpeg_path is None:
        raise VMMError(f"ffmpeg was not found ({name!r} is not an executable on PATH); {hint}")
    try:
        first = subprocess.run(
            [ffmpeg_path, "-hide_banner", "-version"], capture_output=True, text=True,
            check=True, timeout=60,
        ).stdout.splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        raise VMMError(f"{ffmpeg_path} does not run as ffmpeg (ffmpeg -version failed)") from None
    m = re.match(r"ffmpeg version (\S+)", first)
    return FFmpeg(ffmpeg_path, m.group(1) if m else first.strip())


# --------------------------------------------------------------------------- command lines
def pipe_pix_fmt(src_pix_fmt: str, bit_depth: int) -> str:
    """The planar format to decode to: the source's chroma layout at ``bit_depth`` bits.

    Full-range ``yuvj*`` 8-bit sources stay ``yuvj*`` so that ffmpeg does no range conversion.
    """
    if src_pix_fmt.startswith("gray") or src_pix_fmt in {"ya8", "ya16le", "ya16be"}:
        return "gray" if bit_depth == 8 else f"gray{bit_depth}le"
    family = "444"
    for fam in ("420", "422", "444"):
        if fam in src_pix_fmt:
            family = fam
            break
    else:
        if src_pix_fmt.startswith(("nv12", "nv21", "p010", "p016")):
            family = "420"
        elif src_pix_fmt.startswith(("nv16", "p210", "p216", "yuyv422", "uyvy422")):
            family = "422"
    if bit_depth == 8:
        return f"yuvj{family}p" if src_pix_fmt.startswith("yuvj") else f"yuv{family}p"
    return f"yuv{family}p{bit_depth}le"


def is_rgb(pix_fmt: str) -> bool:
    """Whether an FFmpeg pixel format holds RGB (y4m has none: ffmpeg converts it to YUV)."""
    return pix_fmt.startswith(("rgb", "bgr", "gbr", "argb", "abgr", "0rgb", "0bgr", "x2rgb",
                               "x2bgr"))


def decode_command(tools: FFmpeg, src: str, pix_fmt: str, rate: Fraction,
                   loglevel: str = "error", from_rgb: bool = False) -> list[str]:
    """ffmpeg argv that decodes the first video stream of ``src`` to y4m on stdout.

    With ``from_rgb``, the RGB to YUV conversion uses the BT.709 matrix (limited range), which
    :func:`encode_command` then tags, instead of swscale's untagged BT.601 default.
    """
    convert = ["-vf", "scale=out_color_matrix=bt709:out_range=tv"] if from_rgb else []
    return [
        tools.ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", loglevel,
        "-i", src, "-map", "0:v:0", "-an", "-sn", "-dn", *convert,
        "-r", f"{rate.numerator}/{rate.denominator}",
        "-pix_fmt", pix_fmt, "-strict", "-1", "-f", "yuv4mpegpipe", "pipe:1",
    ]


def encode_command(
    tools: FFmpeg,
    src: str,
    dst: str,
    info: VideoInfo,
    pix_fmt: str,
    color_range: str | None,
    vcodec: str = "libx264",
    crf: float | None = 18,
    preset: str | None = "medium",
    acodec: str = "copy",
    extra: list[str] | None = None,
    loglevel: str = "error",
) -> list[str]:
    """ffmpeg argv that encodes y4m from stdin to ``dst``, with ``src``'s audio and metadata.

    Parameters
    ----------
    color_range : str, optional
        ``pc`` or ``tv`` (from the y4m header's ``XCOLORRANGE``, else the input's tag).
    extra : list of str, optional
        Extra output options placed last, so they override the defaults.
    """
    cmd = [
        tools.ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", loglevel, "-y",
        "-f", "yuv4mpegpipe", "-i", "pipe:0", "-i", src,
        "-map", "0:v:0", "-map", "1:a?", "-map_metadata", "1", "-map_chapters", "1",
        "-c:v", vcodec, "-pix_fmt", pix_fmt.replace("yuvj", "yuv"),
    ]
    if crf is not None and vcodec in {"libx264", "libx265", "libvpx-vp9", "libaom-av1",
                                      "libsvtav1"}:
        cmd += ["-crf", f"{crf:g}"]
    if preset and vcodec in {"libx264", "libx265"}:
        cmd += ["-preset", preset]
    if info.has_audio:
        cmd += ["-c:a", acodec]
    if color_range:
        cmd += ["-color_range", color_range]
    if is_rgb(info.pix_fmt):
        cmd += ["-colorspace", "bt709"]  # the matrix decode_command(from_rgb=True) used
    elif info.color_space:
        cmd += ["-colorspace", info.color_space]
    if info.color_primaries:
        cmd += ["-color_primaries", info.color_primaries]
    if info.color_transfer:
        cmd += ["-color_trc", info.color_transfer]
    if os.path.splitext(dst)[1].lower() in _MOV_LIKE and info.time_base.numerator == 1:
        cmd += ["-video_track_timescale", str(info.time_base.denominator)]
    if os.path.splitext(dst)[1].lower() in {".mp4", ".m4v", ".mov"}:
        cmd += ["-movflags", "+faststart"]
    cmd += list(extra or [])
    cmd.append(dst)
    return cmd


# --------------------------------------------------------------------------- running
def build_parser() -> argparse.ArgumentParser:
    """The ``vmm-ffmpeg`` argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        usage=f"{PROG} -i IN -o OUT [magnify options] [-- extra ffmpeg output options]",
        description="Magnify motion in a video file with ffmpeg doing the decoding and encoding: "
        "audio is copied, the frame rate, time base and colour tags are kept. Options after "
        "'--' go to the encoding ffmpeg (e.g. -- -c:v libx265 -crf 22).",
    )
    io_group = parser.add_argument_group("files")
    io_group.add_argument("-i", "--input", required=True, help="input video file")
    io_group.add_argument("-o", "--output", required=True, help="output video file")
    io_group.add_argument("-y", "--overwrite", action="store_true",
                          help="replace OUT if it exists (never the input)")
    enc = parser.add_argument_group("encoding")
    enc.add_argument("--bit-depth", type=int, choices=(8, 10, 12, 16), default=None,
                     help="output bits per sample (default: 8 for 8-bit sources, else 10)")
    enc.add_argument("--vcodec", default="libx264", help="video encoder (default libx264)")
    enc.add_argument("--crf", type=float, default=18, help="quality for x264/x265/vp9/av1 "
                     "(default 18, lower is better)")
    enc.add_argument("--preset", default="medium", help="x264/x265 preset (default medium)")
    enc.add_argument("--pix-fmt", default=None,
                     help="output pixel format (default: the source's chroma layout at the "
                     "output bit depth, e.g. yuv420p10le)")
    enc.add_argument("--acodec", default="copy",
                     help="audio codec (default copy; e.g. aac when the container refuses it)")
    tools = parser.add_argument_group("ffmpeg")
    tools.add_argument("--ffmpeg", default=None, help="ffmpeg executable (default: on PATH)")
    tools.add_argument("--ffprobe", default=None,
                       help="ignored (kept for old command lines): the input is probed with PyAV")
    tools.add_argument("--loglevel", default="error", help="ffmpeg -loglevel (default error)")
    tools.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    add_magnify_arguments(parser, streaming=True)
    add_stream_arguments(parser)
    return parser


def split_extra(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split ``argv`` at the first ``--``: (our arguments, extra ffmpeg output options)."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def _say(text: str) -> None:
    sys.stderr.write(f"{PROG}: {text}\n")
    sys.stderr.flush()


def _spawn(procs: list[subprocess.Popen], cmd: list[str], **kwargs) -> subprocess.Popen:
    """Start ``cmd`` and add it to ``procs``, with SIGINT/SIGTERM held until it is there.

    A signal that came while the process started is obeyed once it is in ``procs``, so the
    caller's cleanup stops it (interrupted inside ``Popen``, an ffmpeg was left running).
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        procs.append(subprocess.Popen(cmd, **kwargs))
        return procs[-1]
    held: list[int] = []
    old = {sig: signal.signal(sig, lambda signum, frame: held.append(signum))
           for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        procs.append(subprocess.Popen(cmd, **kwargs))
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
    if held:
        signal.raise_signal(held[0])
    return procs[-1]


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()


def run(args: argparse.Namespace, extra: list[str]) -> int:
    """Probe, decode, filter and encode; errors are raised as :class:`VMMError`."""
    src, dst = args.input, args.output
    if not os.path.isfile(src):
        raise VMMError(f"input {src} does not exist or is not a file")
    check_output_path(dst, protect=[src], overwrite=args.overwrite)  # the one file policy
    tools = find_ffmpeg(args.ffmpeg)
    _say(f"using {tools.ffmpeg} (ffmpeg {tools.version})")
    info = probe_video(src)
    depth = args.bit_depth or (8 if info.bit_depth <= 8 else 10)
    pipe_fmt = pipe_pix_fmt(info.pix_fmt, depth)
    out_fmt = args.pix_fmt or pipe_fmt.replace("yuvj", "yuv")
    params = params_from_args(args)
    if not args.quiet:
        tags = "/".join(t or "?" for t in (info.color_space, info.color_primaries,
                                           info.color_transfer, info.color_range))
        true_fps = f", magnified as {params['fps']:g} fps" if params.get("fps") else ""
        _say(
            f"{src}: {info.width}x{info.height} {info.pix_fmt}, {float(info.rate):g} fps "
            f"({info.rate}), time base {info.time_base}, colour {tags}, "
            f"{'with' if info.has_audio else 'no'} audio{true_fps} -> {out_fmt} {args.vcodec}"
        )

    with atomic_output(dst, protect=[src], overwrite=args.overwrite) as tmp:
        n = _run_pipeline(args, extra, tools, info, params, pipe_fmt, out_fmt, tmp)
    if not args.quiet:
        _say(f"wrote {dst} ({n} frames)")
    return 0


def _run_pipeline(args: argparse.Namespace, extra: list[str], tools: FFmpeg, info: VideoInfo,
                  params: dict, pipe_fmt: str, out_fmt: str, tmp: str) -> int:
    """Decoding ffmpeg -> filter loop -> encoding ffmpeg writing ``tmp``; the frames written."""
    src = args.input
    procs: list[subprocess.Popen] = []
    progress = None
    try:
        dec = _spawn(
            procs,
            decode_command(tools, src, pipe_fmt, info.rate, args.loglevel,
                           from_rgb=is_rgb(info.pix_fmt)),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        )
        try:
            reader = Y4MReader(dec.stdout)
        except VMMError as err:
            if dec.wait() != 0:
                raise VMMError(f"ffmpeg could not decode {src} (exit {dec.returncode})") from None
            raise err
        header = reader.header
        set_threads(args.threads)
        magnifier = make_magnifier(params, header, args.hop)
        color_range = _RANGE_TO_FFMPEG.get(header.color_range or "", info.color_range)
        enc_cmd = encode_command(tools, src, tmp, info, out_fmt, color_range, args.vcodec,
                                 args.crf, args.preset, args.acodec, extra, args.loglevel)
        enc = _spawn(procs, enc_cmd, stdin=subprocess.PIPE)
        writer = Y4MWriter(enc.stdin, header)
        progress = None if args.quiet else Progress(PROG, info.frames, force=True, leave=True)
        try:
            n = filter_stream(reader, writer, magnifier, args.chunk, progress)
            enc.stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            enc.wait()
            raise VMMError(
                f"the encoding ffmpeg stopped early (exit {enc.returncode}); its message is "
                "above. Check --vcodec/--pix-fmt/--acodec and the extra options"
            ) from None
        except VMMError as err:
            if dec.poll() is None:
                dec.wait(timeout=30)
            if dec.returncode not in (0, None):
                raise VMMError(
                    f"ffmpeg failed while decoding {src} (exit {dec.returncode})"
                ) from None
            raise err
        if progress is not None:
            progress.close()
        if info.declared_frames and n < info.declared_frames:
            warnings.warn(f"{src}: read {n} frames of the {info.declared_frames} the container "
                          "declares (truncated or damaged file?); the output has the frames "
                          "read", VMMWarning, stacklevel=2)
        if enc.wait() != 0:
            raise VMMError(f"the encoding ffmpeg failed (exit {enc.returncode}); see above")
        if dec.wait() != 0:
            raise VMMError(f"ffmpeg failed while decoding {src} (exit {dec.returncode})")
    finally:
        if progress is not None:
            progress.close()
        for proc in procs:
            if proc is not None and proc.stdin is not None and not proc.stdin.closed:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            _stop(proc)
            if proc is not None and proc.stdout is not None:
                proc.stdout.close()
    return n




def main(argv: list[str] | None = None) -> int:
    """``vmm-ffmpeg`` entry point.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; ``sys.argv[1:]`` when ``None``.

    Returns
    -------
    int
        0 on success, 1 on an error (message on stderr), 2 on a usage error, 130 when
        interrupted.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    ours, extra = split_extra(argv)
    args = build_parser().parse_args(ours)
    return run_cli(run, args, extra, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())
