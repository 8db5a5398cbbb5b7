"""The evented model the napari dock widgets share (Qt-free: no viewer, no display)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("napari")

from napari.components import ViewerModel  # noqa: E402

from napari_vmm._napari.model import WidgetsModel, shared_model  # noqa: E402
from napari_vmm.core.errors import VMMError  # noqa: E402
from napari_vmm.core.params import MagnifyParams  # noqa: E402


def test_one_model_per_viewer_and_proxy():
    from napari.utils._proxies import PublicOnlyProxy

    viewer, other = ViewerModel(), ViewerModel()
    model = shared_model(viewer)
    assert shared_model(viewer) is model
    assert shared_model(PublicOnlyProxy(viewer)) is model  # what docked widgets receive
    assert shared_model(other) is not model


def test_set_band_emits_once_and_validates():
    model = WidgetsModel(params=MagnifyParams(fps=30.0))
    seen = []
    model.events.params.connect(lambda e: seen.append(e.value.band))
    assert model.set_band(2, 4) == (2.0, 4.0)
    model.set_band(2.0, 4.0)  # the same band: no event
    assert seen == [(2.0, 4.0)]
    for lo, hi in ((4.0, 2.0), (-1.0, 2.0), (1.0, float("nan"))):
        with pytest.raises(VMMError, match="band"):
            model.set_band(lo, hi)
    with pytest.raises(VMMError, match="Nyquist"):  # MagnifyParams checks it at 30 fps
        model.set_band(1.0, 20.0)
    assert model.params.band == (2.0, 4.0)


def test_set_params_remembers_the_methods_options():
    model = WidgetsModel()
    model.set_params(MagnifyParams(method="linear", options={"levels": 3}))
    assert model.options_by_method["linear"] == {"levels": 3}
    assert model.params.method == "linear"


def test_settings_round_trip(tmp_path):
    """A model's settings go to the file it is given and come back equal."""
    model = WidgetsModel()
    model.set_params(MagnifyParams(method="linear", alpha=33.0, band=(2.0, 5.0), fps=30.0))
    model.update({"band_unit": "BPM", "feather_px": 2.5, "preview_frames": 12})
    path = tmp_path / "s.json"
    model.save_settings(path)
    assert json.loads(path.read_text())["params"]["alpha"] == 33.0
    again = WidgetsModel()
    assert again.load_settings(path) is None
    assert again.params == model.params and again.band_unit == "BPM"
    assert (again.feather_px, again.preview_frames) == (2.5, 12)
    path.write_text("{not json")
    fresh = WidgetsModel()
    assert "ignoring" in fresh.load_settings(path) and fresh.params == MagnifyParams()
