"""Every file format of napari-vmm, one atomic write and one progress report.

- :mod:`~napari_vmm.io.video`: :class:`VideoSource` (the one video reader: lazy, seeks by
  keyframe) and :func:`write_video` (PyAV; audio and colour tags kept).
- :mod:`~napari_vmm.io.stacks`: ``.npy`` and ``.tif`` stacks.
- :mod:`~napari_vmm.io.files`: any input by extension (:func:`open_input`, :func:`open_any`,
  :func:`as_dask`).
- :mod:`~napari_vmm.io.zarr`: Zarr and OME-Zarr stores (:func:`open_zarr`, block and frame
  writes with a completion marker); :mod:`~napari_vmm.io.segments`: keyframe segments.
- :mod:`~napari_vmm.io.probe`: stream metadata for the ffmpeg wrapper (:func:`probe_video`:
  PyAV, no decoding).
- :mod:`~napari_vmm.io.atomic`: the output policy (:func:`check_output_path`) and the atomic
  write (:func:`atomic_output`, :func:`atomic_output_dir`) used for every output.
- :mod:`~napari_vmm.io.progress`: :class:`Progress`, the tqdm bar of the command lines.

Submodules import each other, never this package, so the package can re-export them all.
"""

from ..core.frames import iter_frame_chunks
from .atomic import atomic_output, atomic_output_dir, check_output_path, check_outputs
from .files import as_dask, is_zarr, media_in, open_any, open_input, video_as_dask
from .probe import VideoInfo, probe_video
from .progress import Progress
from .stacks import STACK_EXTENSIONS, open_stack, read_stack, write_stack
from .video import (
    CODECS,
    VIDEO_EXTENSIONS,
    VideoIndex,
    VideoSource,
    frame_to_rgb,
    index_video,
    open_video,
    read_video_frames,
    write_video,
    yuv_conversion,
)
from .zarr import (
    ZARR_EXTENSIONS,
    ZARR_TIME_CHUNK,
    open_zarr,
    read_zarr_frames,
    write_zarr_blocks,
    write_zarr_frames,
)

__all__ = [
    "CODECS", "STACK_EXTENSIONS", "VIDEO_EXTENSIONS", "ZARR_EXTENSIONS", "ZARR_TIME_CHUNK",
    "as_dask", "atomic_output", "atomic_output_dir", "check_output_path", "check_outputs",
    "frame_to_rgb", "index_video", "is_zarr", "iter_frame_chunks", "media_in", "open_any",
    "open_input", "open_stack", "open_video", "open_zarr", "probe_video", "Progress",
    "read_stack", "read_video_frames", "read_zarr_frames", "video_as_dask", "VideoIndex",
    "VideoInfo", "VideoSource", "write_stack", "write_video", "write_zarr_blocks",
    "write_zarr_frames", "yuv_conversion",
]
