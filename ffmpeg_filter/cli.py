"""``vmm-filter``: motion magnification as a YUV4MPEG2 pipe filter for ffmpeg chains.

::

    ffmpeg -i in.mp4 -f yuv4mpegpipe - | vmm-filter --method riesz --alpha 20 --band 0.5 3 \\
        | ffmpeg -f yuv4mpegpipe -i - -c:v libx264 out.mp4

It reads a y4m stream (stdin by default) and writes one (stdout by default) with exactly one
output frame per input frame. Only luma (the Y plane) is magnified; chroma and alpha planes pass
through untouched at their own resolution. The stream header is copied as it is (size, frame
rate, aspect, colour space, ``XCOLORRANGE`` and every other extension).

Memory does not depend on the stream's length: frames are read in chunks into preallocated
buffers and the temporal filter is causal (``butterworth`` by default). The non-causal ``ideal``
filter runs only over a sliding window (``--window``) with a fixed latency (``--latency``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol

import numpy as np

from napari_vmm.cli.common import add_magnify_arguments, params_from_args, roi_mask_for, run_cli
from napari_vmm.core.errors import VMMError
from napari_vmm.io import Progress, atomic_output, check_output_path

from .y4m import FrameBuffer, Y4MHeader, Y4MReader, Y4MWriter, check_memory

PROG = "vmm-filter"
#: The engine's working memory per luma pixel of a chunk, at the least: measured at 1080p,
#: linear 45 B, riesz 184 B, phase 594 B (ru_maxrss growth over 3 single-frame pushes).
MIN_ENGINE_BYTES_PER_PIXEL = 40


class FrameMagnifier(Protocol):
    """What the filter loop needs from a streaming magnifier (``StreamingMagnifier`` has it)."""

    def push(self, frames: np.ndarray) -> np.ndarray: ...

    def flush(self) -> np.ndarray: ...


# --------------------------------------------------------------------------- luma adaptation
class LumaMagnifier:
    """Feed y4m luma samples to a magnifier and return samples of the same bit depth.

    8-bit luma goes to the engine as ``uint8`` (its dtype policy scales by 1/255). Deeper luma
    (9..16 bits, stored in the low bits of ``uint16``) goes as float32 normalised by
    ``2**bit_depth - 1``, and comes back clipped and rounded to the same range, so an unchanged
    sample is restored exactly.

    Parameters
    ----------
    magnifier : FrameMagnifier
        Takes and returns gray frames ``(N, H, W)``.
    bit_depth : int
        Bits per luma sample on the wire.
    """

    def __init__(self, magnifier: FrameMagnifier, bit_depth: int) -> None:
        self.magnifier = magnifier
        self.bit_depth = bit_depth
        self.max_value = (1 << bit_depth) - 1
        self.wire_dtype = np.dtype(np.uint8) if bit_depth == 8 else np.dtype("<u2")

    def _to_engine(self, luma: np.ndarray) -> np.ndarray:
        if self.bit_depth == 8:
            return luma
        return luma.astype(np.float32) * np.float32(1.0 / self.max_value)

    def _from_engine(self, out: np.ndarray) -> np.ndarray:
        out = np.asarray(out)
        if out.ndim == 4 and out.shape[-1] == 1:
            out = out[..., 0]
        if self.bit_depth == 8:
            if out.dtype != np.uint8:  # engines keep the dtype; be strict about what we write
                out = np.clip(np.rint(np.asarray(out, np.float32) * 255.0), 0, 255)
            return out.astype(np.uint8, copy=False)
        scaled = np.rint(np.asarray(out, np.float32) * np.float32(self.max_value))
        return np.clip(scaled, 0, self.max_value).astype(self.wire_dtype)

    def push(self, luma: np.ndarray) -> np.ndarray:
        """Magnify ``luma`` ``(N, H, W)``; return the frames that are ready (maybe fewer)."""
        return self._from_engine(self.magnifier.push(self._to_engine(luma)))

    def flush(self) -> np.ndarray:
        """Return the frames still held back (non-empty only with a latency)."""
        return self._from_engine(self.magnifier.flush())


class SlidingWindowIdeal:
    """The non-causal ``ideal`` filter over a sliding window, for streams.

    Output frame ``t`` is magnified with the ideal (FFT) band-pass over a window of at most
    ``window`` frames that holds ``latency`` frames after ``t`` (fewer at the end of the
    stream). The window advances ``hop`` frames at a time, so each output frame sees between
    ``latency`` and ``latency + hop - 1`` future frames; ``hop=1`` is an exact sliding window.
    Memory holds ``window`` frames, whatever the stream's length.

    Parameters
    ----------
    magnify_window : callable
        ``magnify_window(frames) -> frames``: the whole-clip engine on a window ``(n, H, W)``.
    window : int
        Window length in frames.
    latency : int
        Future frames each output waits for (``0 <= latency < window``).
    hop : int, optional
        Frames output per window evaluation (``1 <= hop <= window - latency``); default
        ``max(1, min(latency, window - latency) // 2)``.
    """

    def __init__(
        self,
        magnify_window: Callable[[np.ndarray], np.ndarray],
        window: int,
        latency: int,
        hop: int | None = None,
    ) -> None:
        if window < 2:
            raise VMMError(f"--window must be at least 2 frames, got {window}")
        if not 0 <= latency < window:
            raise VMMError(f"--latency must be in 0..{window - 1} (window - 1), got {latency}")
        if hop is None:
            hop = max(1, min(latency, window - latency) // 2)
        if not 1 <= hop <= window - latency:
            raise VMMError(
                f"--hop must be in 1..{window - latency} (window - latency), got {hop}"
            )
        self.magnify_window = magnify_window
        self.window, self.latency, self.hop = window, latency, hop
        self._ring: np.ndarray | None = None  # (window, H, W) in arrival order modulo window
        self._n_in = 0  # frames received
        self._n_out = 0  # frames returned

    def _window_ending_at(self, end: int) -> np.ndarray:
        """Frames ``max(0, end - window + 1) .. end`` in time order (a copy)."""
        start = max(0, end - self.window + 1)
        idx = np.arange(start, end + 1) % self.window
        return self._ring[idx]

    def _emit(self, end: int, count: int) -> np.ndarray:
        frames = self._window_ending_at(end)
        out = np.asarray(self.magnify_window(frames))
        first = self._n_out - max(0, end - self.window + 1)
        self._n_out += count
        return out[first : first + count]

    def push(self, frames: np.ndarray) -> np.ndarray:
        """Add frames ``(N, H, W)``; return the output frames that are now ready."""
        if self._ring is None:
            self._ring = np.empty((self.window, *frames.shape[1:]), dtype=frames.dtype)
        ready = []
        for frame in frames:
            self._ring[self._n_in % self.window] = frame
            self._n_in += 1
            end = self._n_in - 1
            if end - self.latency >= self._n_out + self.hop - 1:
                ready.append(self._emit(end, self.hop))
        if not ready:
            return np.empty((0, *frames.shape[1:]), dtype=frames.dtype)
        return np.concatenate(ready)

    def flush(self) -> np.ndarray:
        """Return the last frames, magnified over the window that ends the stream."""
        left = self._n_in - self._n_out
        if self._ring is None or left == 0:
            shape = (0,) if self._ring is None else (0, *self._ring.shape[1:])
            return np.empty(shape, dtype=np.uint8 if self._ring is None else self._ring.dtype)
        return self._emit(self._n_in - 1, left)


# --------------------------------------------------------------------------- the filter loop
class _ReadAhead:
    """``reader.read_into(buf)`` in a daemon thread (file reads release the GIL).

    A daemon thread, not an executor: a read blocked on a stalled pipe must not keep the
    process alive after an error.
    """

    def __init__(self, reader: Y4MReader, buf: FrameBuffer) -> None:
        self.buf = buf
        self._filled = 0
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(reader,), daemon=True)
        self._thread.start()

    def _run(self, reader: Y4MReader) -> None:
        try:
            self._filled = reader.read_into(self.buf)
        except BaseException as exc:  # re-raised in the caller's thread
            self._error = exc

    def result(self) -> int:
        """Frames read into :attr:`buf` (0 at the end of the stream); re-raises read errors."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._filled


class _WriteBehind:
    """``writer.write`` in a daemon thread, one submission queued at most.

    A buffer submitted with ``release=True`` goes back to ``free`` once it is written. A write
    error (a closed pipe, say) is raised again in the caller's thread by the next
    :meth:`submit` or by :meth:`close`.
    """

    def __init__(self, writer: Y4MWriter, free: list[FrameBuffer]) -> None:
        import queue

        self._writer = writer
        self._free = free
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            buf, count, start, release = item
            if self._error is None:
                try:
                    self._writer.write(buf, count, start=start)
                except BaseException as exc:  # re-raised in the caller's thread
                    self._error = exc
            if release:
                self._free.append(buf)

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, buf: FrameBuffer, count: int, start: int, release: bool) -> None:
        """Queue frames ``start .. start + count - 1`` of ``buf`` for writing."""
        self._raise()
        self._queue.put((buf, count, start, release))

    def close(self) -> None:
        """Wait for every queued write; re-raise a write error."""
        self._queue.put(None)
        self._thread.join()
        self._raise()


def filter_stream(
    reader: Y4MReader,
    writer: Y4MWriter,
    magnifier: FrameMagnifier,
    chunk: int | None = None,
    progress: Callable[[int, int | None], Any] | None = None,
) -> int:
    """Magnify the luma of every frame from ``reader`` and write it to ``writer``.

    Chroma (and alpha) planes are written back unchanged. Output frames pair with input frames
    in order; when the magnifier holds frames back (a latency), their other planes wait in a
    small queue of reusable buffers, so memory depends on ``chunk`` and the latency only.

    Parameters
    ----------
    reader : Y4MReader
        Source stream (header already read).
    writer : Y4MWriter
        Destination stream (header already written).
    magnifier : FrameMagnifier
        Gray-frame magnifier in the wire's bit depth (see :class:`LumaMagnifier`).
    chunk : int, optional
        Frames read and pushed at a time; default the engine's ``default_chunk`` for the
        frame size.
    progress : callable, optional
        ``progress(done, None)`` with the frames written so far after each chunk (the total
        of a stream is unknown), e.g. a :class:`napari_vmm.io.Progress`.

    Returns
    -------
    int
        Number of frames written (equal to the number read).

    Raises
    ------
    VMMError
        On a truncated or malformed stream, or if the magnifier does not return one frame per
        input frame.
    """
    header = reader.header
    if chunk is None:
        from napari_vmm.core.plan import default_chunk

        chunk = default_chunk(header.height, header.width)
    if chunk < 1:
        raise VMMError(f"--chunk must be at least 1 frame, got {chunk}")
    # Before any allocation: the read-ahead, magnified and written chunks, and the engine.
    hint = "scale the video down" + (f" or give a --chunk below {chunk}" if chunk > 1 else "")
    check_memory(header, 3 * chunk, MIN_ENGINE_BYTES_PER_PIXEL, hint=hint)
    free: list[FrameBuffer] = []
    pending: deque[list] = deque()  # [buffer, frames filled, frames already handed to write]
    # Writes go through a thread too: the encoding ffmpeg reads its pipe only between frames
    # it encodes, so a blocking write would stall the magnification of the next chunk.
    write_behind = _WriteBehind(writer, free)

    def write_ready(out: np.ndarray) -> None:
        done = 0
        while done < len(out):
            if not pending:
                raise VMMError(
                    "internal error: the magnifier returned more frames than it was given"
                )
            entry = pending[0]
            buf, filled, written = entry
            n = min(filled - written, len(out) - done)
            buf.luma[written : written + n] = out[done : done + n]
            entry[2] += n
            done += n
            last = entry[2] == filled
            if last:
                pending.popleft()
            write_behind.submit(buf, n, written, release=last)

    def read_ahead() -> _ReadAhead:
        return _ReadAhead(reader, free.pop() if free else FrameBuffer(header, chunk))

    try:
        # The next chunk is read while this one is magnified, so the upstream decoder
        # (blocked on a full pipe otherwise) works in parallel; memory stays constant.
        next_read = read_ahead()
        while True:
            buf, filled = next_read.buf, next_read.result()
            if filled == 0:
                free.append(buf)
                break
            pending.append([buf, filled, 0])
            if filled == chunk:
                next_read = read_ahead()
            write_ready(magnifier.push(buf.luma[:filled]))
            if progress is not None:
                progress(writer.frames_written, None)
            if filled < chunk:
                break
        write_ready(magnifier.flush())
    finally:
        write_behind.close()
    if writer.frames_written != reader.frames_read:
        raise VMMError(
            f"internal error: wrote {writer.frames_written} frames for {reader.frames_read} "
            "input frames"
        )
    writer.flush()
    if progress is not None:
        progress(writer.frames_written, None)
    return writer.frames_written


# --------------------------------------------------------------------------- building magnifiers
def add_stream_arguments(parser: argparse.ArgumentParser) -> None:
    """Stream options beside the shared magnify options (which bring --window/--latency)."""
    g = parser.add_argument_group("streaming")
    g.add_argument(
        "--hop",
        type=int,
        default=None,
        metavar="FRAMES",
        help="with --window: frames output per window evaluation "
        "(default min(latency, window-latency)/2; 1 = exact sliding window, slowest)",
    )
    g.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="CPU threads of the engine (default: half the CPUs, since the decoding and "
        "encoding ffmpeg run beside the filter)",
    )
    g.add_argument(
        "--chunk",
        type=int,
        default=None,
        metavar="FRAMES",
        help="frames read and magnified at a time (default: the engine's choice for the frame "
        "size, about 2 megapixels: 1 frame at 1080p, 16 at 320x240)",
    )


def default_threads() -> int:
    """Engine threads beside ffmpeg: half the CPUs the process may use, at least 1.

    The decoding and encoding ffmpeg run at the same time on the same cores. On 2 cores a
    1080p linear chain took 6.9 s with 1 engine thread and 7.5 s with 2 (torch's default).
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, cpus // 2)


def set_threads(threads: int | None) -> None:
    """Set the engine's CPU thread count (``torch.set_num_threads``); None: the default."""
    if threads is None:
        threads = default_threads()
    if threads < 1:
        raise VMMError(f"--threads must be at least 1, got {threads}")
    import torch

    torch.set_num_threads(threads)


def make_magnifier(
    params: dict[str, Any],
    header: Y4MHeader,
    hop: int | None = None,
) -> LumaMagnifier:
    """Build the luma magnifier for a stream.

    Parameters
    ----------
    params : dict
        Keyword arguments for ``StreamingMagnifier`` as ``params_from_args`` gives them:
        ``fps`` of ``None`` means the header's frame rate; ``window``/``latency`` select the
        sliding-window ``ideal`` filter; ``rois``/``feather`` become the ROI mask.
    header : Y4MHeader
        The input stream's header (frame size, frame rate, bit depth).
    hop : int, optional
        Window hop for ``temporal="ideal"`` (see :class:`SlidingWindowIdeal`).

    Returns
    -------
    LumaMagnifier
    """
    import napari_vmm
    from napari_vmm.core.params import check_band
    from napari_vmm.core.route import WINDOW, choose_route

    params = dict(params)
    window = params.pop("window", None)
    latency = params.pop("latency", None)
    params["roi_mask"] = roi_mask_for(params, header.height, header.width)
    if params.get("fps") is None:
        if header.fps is None:
            raise VMMError("the y4m header has no frame rate (F field); give --fps")
        params["fps"] = header.fps
    temporal = params.get("temporal", "butterworth")
    if choose_route(params, stream=True).kind == WINDOW:  # a non-causal filter on a pipe
        if temporal != "ideal":  # zero phase: forward-backward over the whole clip only
            raise VMMError(
                "--zero-phase needs the whole clip, which a pipe never has: magnify a file "
                "with vmm magnify, or use --temporal ideal --window FRAMES, or a causal filter"
            )
        if window is None:
            raise VMMError(
                "--temporal ideal needs the whole clip, which a pipe never has: give "
                "--window FRAMES (and optionally --latency FRAMES) to run it over a sliding "
                "window, or use a causal filter (butterworth, fir, iir)"
            )
        latency = window // 2 if latency is None else latency

        def magnify_window(frames: np.ndarray) -> np.ndarray:
            return napari_vmm.magnify(frames, **params)

        # Check the band now, not after `latency` frames of waiting.
        check_band(params.get("band"), params["fps"], temporal)
        core = SlidingWindowIdeal(magnify_window, window, latency, hop)
        return LumaMagnifier(core, header.colorspace.bit_depth)
    if window is not None or latency is not None or hop is not None:
        raise VMMError("--window/--latency/--hop apply only to --temporal ideal")
    return LumaMagnifier(napari_vmm.StreamingMagnifier(**params), header.colorspace.bit_depth)


# --------------------------------------------------------------------------- entry point
def build_parser() -> argparse.ArgumentParser:
    """The ``vmm-filter`` argument parser (the ``vmm magnify`` options plus stream options)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Motion magnification as a YUV4MPEG2 (y4m) pipe filter: reads y4m on stdin, "
        "writes y4m on stdout, one output frame per input frame. Luma is magnified, chroma "
        "passes through. Example: ffmpeg -i in.mp4 -f yuv4mpegpipe - | vmm-filter --alpha 20 "
        "--band 0.5 3 | ffmpeg -f yuv4mpegpipe -i - out.mp4",
    )
    parser.add_argument(
        "-i", "--input", default="-", help="y4m file to read, or - for stdin (default)"
    )
    parser.add_argument(
        "-o", "--output", default="-", help="y4m file to write, or - for stdout (default)"
    )
    parser.add_argument(
        "-y", "--overwrite", action="store_true", help="replace -o FILE if it exists"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print the stream and progress to stderr"
    )
    add_magnify_arguments(parser, streaming=True)
    add_stream_arguments(parser)
    return parser


def _open_input(path: str) -> BinaryIO:
    if path == "-":
        if sys.stdin.isatty():
            raise VMMError(
                "no input: stdin is a terminal; pipe a y4m stream in "
                "(ffmpeg -i in.mp4 -f yuv4mpegpipe - | vmm-filter ...) or give -i FILE"
            )
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as err:
        raise VMMError(f"cannot read {path}: {err.strerror}") from None


def _quiet_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the exit flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def run(args: argparse.Namespace) -> int:
    """Run the filter for parsed arguments; errors are raised as :class:`VMMError`."""
    params = params_from_args(args)
    to_stdout = args.output == "-"
    if to_stdout and sys.stdout.isatty():
        raise VMMError(
            "refusing to write video to a terminal; pipe it into ffmpeg "
            "(... | ffmpeg -f yuv4mpegpipe -i - out.mp4) or give -o FILE"
        )
    if not to_stdout:  # the one file policy, before reading anything
        check_output_path(args.output, protect=[] if args.input == "-" else [args.input],
                          overwrite=args.overwrite)
    inp = _open_input(args.input)
    try:
        reader = Y4MReader(inp)
        header = reader.header
        set_threads(args.threads)
        magnifier = make_magnifier(params, header, args.hop)
        if args.verbose:
            fps = params.get("fps") or header.fps
            sys.stderr.write(
                f"{PROG}: {header.width}x{header.height} {header.colorspace.pix_fmt} "
                f"(C{header.colorspace.tag}), {fps:g} fps, range "
                f"{header.color_range or 'unstated'}; magnifying luma\n"
            )
        with contextlib.ExitStack() as stack:
            if to_stdout:
                out = sys.stdout.buffer
            else:  # temporary name beside the output, renamed on success
                tmp_path = stack.enter_context(atomic_output(args.output, overwrite=True))
                out = stack.enter_context(open(tmp_path, "wb"))
            writer = Y4MWriter(out, header)
            progress = Progress(PROG, force=True, leave=True) if args.verbose else None
            try:
                filter_stream(reader, writer, magnifier, args.chunk, progress)
            finally:
                if progress is not None:
                    progress.close()
    finally:
        if inp is not sys.stdin.buffer:
            inp.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """``vmm-filter`` entry point.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; ``sys.argv[1:]`` when ``None``.

    Returns
    -------
    int
        0 on success (also when the downstream process closed the pipe early), 1 on bad input
        or parameters, 2 on a usage error, 130 when interrupted.
    """
    args = build_parser().parse_args(argv)

    def run_quietly_on_broken_pipe(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except (BrokenPipeError, ConnectionResetError):
            # The reader downstream has gone (ffmpeg -t, head, a closed player): stop quietly.
            _quiet_stdout()
            return 0

    return run_cli(run_quietly_on_broken_pipe, args, prog=PROG)
