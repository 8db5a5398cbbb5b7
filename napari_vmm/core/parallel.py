"""Moved: planning to :mod:`napari_vmm.core.plan`, Dask to :mod:`napari_vmm.scale`, Zarr and
video segments to :mod:`napari_vmm.io` (a re-export while importers move; to be deleted)."""

from ..io.segments import (  # noqa: F401
    VideoIndex,
    index_video,
    read_video_frames,
    video_segments,
    video_to_dask,
)
from ..io.zarr import (  # noqa: F401
    ZARR_COMPLETE,
    mark_zarr,
    open_zarr,
    rechunk_through_zarr,
    write_zarr_blocks,
)
from ..scale.cluster import check_scheduler, close_client, get_client  # noqa: F401
from ..scale.compute import iter_compute  # noqa: F401
from ..scale.graphs import magnify_dask  # noqa: F401
from ..scale.tasks import run_tasks  # noqa: F401
from ..scale.video import magnify_video_segments  # noqa: F401
from .plan import (  # noqa: F401
    TaskMemory,
    estimate_task_memory,
    task_memory_summary,
    warmup_frames,
)
from .route import choose_route


def needs_whole_clip(temporal: str, mode: str = "temporal", zero_phase: bool = False) -> bool:
    """True when the filter needs every frame of a pixel at once (see :mod:`.route`)."""
    return choose_route({"temporal": temporal, "mode": mode, "zero_phase": zero_phase}).whole_clip
