"""core.route.choose_route: the one place that decides stream, whole, tiles, segments, window."""

from __future__ import annotations

import subprocess
import sys

import pytest

from napari_vmm.core.errors import VMMError
from napari_vmm.core.params import MagnifyParams
from napari_vmm.core.route import SEGMENTS, STREAM, TILES, WHOLE, WINDOW, choose_route

SHAPE = (40, 32, 32)


@pytest.mark.parametrize("fields,memory,lazy,stream,whole_clip,reference", [
    (dict(temporal="butterworth"), STREAM, SEGMENTS, STREAM, False, None),
    (dict(temporal="ideal"), WHOLE, TILES, WINDOW, True, None),
    (dict(temporal="butterworth", zero_phase=True), WHOLE, TILES, WINDOW, True, None),
    (dict(temporal="iir", zero_phase=True), STREAM, SEGMENTS, STREAM, False, None),
    (dict(mode="dynamic", temporal="ideal"), STREAM, SEGMENTS, STREAM, False, None),
    (dict(mode="static"), STREAM, SEGMENTS, STREAM, False, 0),
    # a stream starts at frame 0: another reference needs the clip in memory, or is fed to
    # each segment / held for on a stream
    (dict(mode="static", reference=5), WHOLE, SEGMENTS, STREAM, False, 5),
    (dict(temporal="none", reference=3), WHOLE, SEGMENTS, STREAM, False, 3),
])
def test_routes(fields, memory, lazy, stream, whole_clip, reference):
    params = MagnifyParams(fps=30.0, **fields)
    for kw, kind in ((dict(), memory), (dict(lazy=True), lazy), (dict(stream=True), stream)):
        route = choose_route(params, SHAPE, **kw)
        assert (route.kind, route.whole_clip, route.reference) == (kind, whole_clip, reference)
    # the CLI's and the batch's parameter dicts give the same answer as the model
    assert choose_route(params.to_dict(), SHAPE) == choose_route(params, SHAPE)


def test_forced_paths_and_refusals():
    causal = MagnifyParams(fps=30.0)
    ideal = MagnifyParams(fps=30.0, temporal="ideal")
    assert choose_route(causal, SHAPE, path="whole").kind == WHOLE
    assert choose_route(causal, SHAPE, path="whole", lazy=True).kind == TILES
    video = choose_route(causal, lazy=True, video=True)
    assert video.kind == SEGMENTS and video.video and video.streams
    with pytest.raises(VMMError, match="cannot run on the streaming path"):
        choose_route(ideal, SHAPE, path="stream")
    with pytest.raises(VMMError, match="cannot run in time segments"):
        choose_route(ideal, SHAPE, path="segments", lazy=True)
    with pytest.raises(VMMError, match="path must be one of"):
        choose_route(causal, SHAPE, path="tiles")
    with pytest.raises(VMMError, match=r"reference frame 40 is outside the clip \(0..39\)"):
        choose_route(MagnifyParams(fps=30.0, mode="static", reference=40), SHAPE)


def test_the_engine_imports_no_dask_and_no_scale():
    code = ("import sys, numpy as np; from napari_vmm.core import engine; "
            "engine.magnify(np.zeros((4, 16, 16), np.float32), 30.0, method='linear', "
            "temporal='butterworth', band=(1, 5), levels=2); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'dask' "
            "or m.startswith('napari_vmm.scale') or m.startswith('napari_vmm.io')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
