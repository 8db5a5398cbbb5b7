"""The magnify form's fields, limits and defaults come from MagnifyParams (``xvfb-run -a``)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from napari_vmm._napari._qt.magnify import MagnifyWidget  # noqa: E402
from napari_vmm.core.params import MAX_ALPHA, MagnifyParams  # noqa: E402

pytestmark = pytest.mark.gui


def _viewer_with_clip(make_napari_viewer):
    viewer = make_napari_viewer()
    frames = np.random.default_rng(0).integers(0, 255, (12, 32, 48)).astype(np.uint8)
    viewer.add_image(frames, name="clip", scale=(1 / 30, 1, 1), units=("s", "um", "um"),
                     axis_labels=("t", "y", "x"))
    return viewer


def test_alpha_is_limited_to_what_the_engine_accepts(make_napari_viewer):
    """The form took alpha up to 10,000; the engine refuses above MAX_ALPHA (1,000)."""
    widget = MagnifyWidget(_viewer_with_clip(make_napari_viewer))
    assert widget._alpha.max == MAX_ALPHA
    widget._alpha.native.setValue(5000.0)  # typed in: the spin box keeps it in range
    params = widget.params()  # validated: what the form holds, the engine runs
    assert params.alpha == MAX_ALPHA
    assert -1 < widget._alpha.min < 0  # attenuation down to (not including) a freeze


def test_form_fields_limits_and_defaults_are_the_models(make_napari_viewer):
    widget = MagnifyWidget(_viewer_with_clip(make_napari_viewer))
    spec = MagnifyParams.describe()
    defaults = MagnifyParams()
    assert list(widget._temporal.choices) == spec["temporal"]["choices"]
    assert list(widget._mode.choices) == spec["mode"]["choices"]
    assert (widget._order.min, widget._order.max) == (spec["order"]["min"], spec["order"]["max"])
    assert widget._taps.max == spec["taps"]["max"]
    assert widget._reference.min == spec["reference"]["min"]
    # a fresh form shows the model's defaults (fps: the layer's)
    params = widget.params()
    for name in ("method", "alpha", "band", "temporal", "order", "taps", "zero_phase", "mode",
                 "reference", "device"):
        assert getattr(params, name) == getattr(defaults, name), name
    assert params.fps == pytest.approx(30.0)
    # every field of the model is on the form: a changed one comes back from it
    widget._order.value = 4
    widget._taps.value = 31
    widget._zero_phase.value = True
    params = widget.params()
    assert (params.order, params.taps, params.zero_phase) == (4, 31, True)
    widget._taps.value = 0  # 0: automatic
    assert widget.params().taps is None
