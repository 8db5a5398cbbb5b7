"""napari-vmm: video motion magnification for napari and ffmpeg.

``import napari_vmm`` stays light: the engine (torch) and the napari widgets load on first use.
"""

import os
from typing import Any

# torch's OpenMP threads spin between operations by default. Beside other busy processes (an
# ffmpeg chain, napari, Dask workers, any shared machine) each operation then waits for a
# descheduled thread: measured 5-10x slower at 640x480 on 2 cores, against about 1.4x slower
# for passive waiting on an idle machine. Set before torch loads; an explicit value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

_LAZY = {
    "magnify": "napari_vmm.api",
    "iter_magnify": "napari_vmm.core.engine",
    "StreamingMagnifier": "napari_vmm.core.pipeline",
    "Pipeline": "napari_vmm.core.pipeline",
    "MagnifyParams": "napari_vmm.core.params",
    "magnify_dask": "napari_vmm.scale",
    "available_methods": "napari_vmm.core.registry",
    "VMMError": "napari_vmm.core.errors",
    "MagnifyWidget": "napari_vmm._napari._qt.magnify",
    "MotionTracesWidget": "napari_vmm._napari._qt.traces",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'napari_vmm' has no attribute {name!r}")
