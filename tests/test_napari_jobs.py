"""The Magnify widget's worker generators, without a viewer."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from napari_vmm import scale
from napari_vmm._napari import jobs as _jobs
from napari_vmm.core.errors import Cancelled
from napari_vmm.core.samples import translating_texture

pytest.importorskip("dask")


def _clip(n: int = 16) -> np.ndarray:
    return np.rint(translating_texture(n, (32, 48), 30.0, 3.0, 0.5) * 255).astype(np.uint8)


def test_dask_job_cancels_while_a_long_block_runs(monkeypatch):
    """Cancel is seen within a heartbeat, not after the block in progress."""
    release = threading.Event()
    closed = threading.Event()

    def slow_iter_compute(lazy, out, **kwargs):
        try:
            yield 1, 3
            release.wait(30)  # a block that takes long
            yield 2, 3
        finally:
            closed.set()

    monkeypatch.setattr(scale, "iter_compute", slow_iter_compute)
    cancel = threading.Event()
    frames = _clip()
    gen = _jobs.dask_job(frames, np.empty_like(frames), None, None,
                         {"fps": 30.0, "method": "linear", "band": (1.0, 6.0),
                          "temporal": "butterworth"}, cancel)
    assert next(gen) == (1, 3)
    t0 = time.perf_counter()
    cancel.set()
    with pytest.raises(Cancelled):
        next(gen)
    assert time.perf_counter() - t0 < 2 * _jobs.HEARTBEAT + 0.5
    release.set()
    assert closed.wait(10)  # the helper closes the block iterator afterwards


def test_dask_job_falls_back_to_local_threads_once(monkeypatch):
    frames = _clip()
    out = np.empty_like(frames)
    gen = _jobs.dask_job(frames, out, None, "tcp://127.0.0.1:9",
                         {"fps": 30.0, "method": "linear", "band": (1.0, 6.0),
                          "temporal": "butterworth"}, threading.Event(), fallback=True)
    monkeypatch.setattr(scale, "get_client", _refuse)
    values = []
    with pytest.raises(StopIteration) as stop:
        while True:
            values.append(next(gen))
    warnings = [v for v in values if isinstance(v, str)]
    assert len(warnings) == 1 and "local threads" in warnings[0]
    assert values[-1][0] == values[-1][1]
    assert stop.value.value is out


def _refuse(address):
    from napari_vmm.core.errors import VMMError

    if address:
        raise VMMError(f"cannot connect to the Dask scheduler {address}: refused")
    return None
