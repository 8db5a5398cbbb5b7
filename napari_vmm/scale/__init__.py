"""Scale out on Dask: lazy dask arrays in and out, task runners, the cluster client, videos in
keyframe segments. The engine (:mod:`napari_vmm.core`) never imports this package; the
top-level :func:`napari_vmm.magnify` hands dask arrays to :func:`magnify_dask`.

- :mod:`.graphs`: :func:`magnify_dask` (full-T tiles or time segments, as
  :func:`napari_vmm.core.route.choose_route` decides).
- :mod:`.tasks` and :mod:`.compute`: :func:`run_tasks`, :func:`iter_compute`.
- :mod:`.cluster`: :func:`get_client`, :func:`close_client`, :func:`check_scheduler`.
- :mod:`.video`: :func:`magnify_video_segments`.

Names load on first use, so ``import napari_vmm.scale`` imports neither dask nor torch.
"""

from typing import Any

_LAZY = {
    "magnify_dask": "graphs",
    "run_tasks": "tasks",
    "iter_compute": "compute",
    "get_client": "cluster",
    "close_client": "cluster",
    "check_scheduler": "cluster",
    "magnify_video_segments": "video",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
