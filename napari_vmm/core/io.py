"""Moved to :mod:`napari_vmm.io` (re-exported here until every importer is updated)."""
from napari_vmm.io import *  # noqa: F401,F403
from napari_vmm.io import __all__  # noqa: F401
