"""MagnifyParams: one frozen, validated model with the only defaults."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from napari_vmm.core.errors import VMMError
from napari_vmm.core.params import (
    ARRAY_ALPHA,
    ARRAY_METHOD,
    ARRAY_TEMPORAL,
    MAX_ALPHA,
    MagnifyParams,
)


@pytest.mark.parametrize("kwargs,message", [
    (dict(alpha=MAX_ALPHA + 1), "alpha 1001 is out of range"),
    (dict(alpha=-1), "must be > -1"),
    (dict(alpha="x"), "alpha must be a number"),
    (dict(band=(3, 1)), "below band high"),
    (dict(band=(1, 20), fps=30), "Nyquist"),
    (dict(band=(-1, 2)), "non-negative"),
    (dict(band=(0, 2), temporal="iir"), "band low > 0"),
    (dict(band=None), "needs a band"),
    (dict(fps=0), "fps must be a positive number"),
    (dict(fps=float("nan")), "fps must be a positive number"),
    (dict(method="nope"), "unknown method 'nope'; available: linear, phase, riesz"),
    (dict(temporal="gauss"), "unknown temporal filter 'gauss'; choose one of ideal"),
    (dict(mode="x"), "unknown mode 'x'"),
    (dict(order=9), "butterworth order must be 1..8"),
    (dict(taps=2), "at least 3 taps"),
    (dict(taps=5000), "at most 4097 taps"),
    (dict(temporal="fir", band=(0.01, 3), fps=2000), "fir would need"),
    (dict(reference=-1), "reference frame must be an integer >= 0"),
    (dict(device="tpu"), "unknown device 'tpu'"),
    (dict(options={"nope": 1}), "unknown option(s) ['nope'] for method 'riesz'"),
    (dict(options={"levels": "x"}), "option 'levels' must be of type int"),
    (dict(zero_phase="yes"), "zero_phase must be true or false"),
])
def test_bad_parameters_are_one_clear_error(kwargs, message):
    with pytest.raises(VMMError) as exc:
        MagnifyParams(**kwargs)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_frozen_normalised_and_round_trips():
    p = MagnifyParams.from_kwargs(method="phase", alpha=7, band=[1, 3], fps=30,
                                  temporal="ideal", levels="3")
    assert p.alpha == 7.0 and p.band == (1.0, 3.0) and p.options == {"levels": 3}
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.alpha = 5
    assert MagnifyParams.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    assert p.engine_kwargs() == {"method": "phase", "alpha": 7.0, "band": (1.0, 3.0),
                                 "fps": 30.0, "temporal": "ideal", "order": 2, "taps": None,
                                 "mode": "temporal", "reference": 0, "device": "cpu",
                                 "levels": 3}
    with pytest.raises(VMMError, match="Nyquist"):  # a changed copy is checked again
        p.replace(fps=4)
    with pytest.raises(VMMError, match="unknown parameter"):
        p.replace(alhpa=3)


def test_band_is_checked_against_nyquist_once_fps_is_known():
    p = MagnifyParams(band=(1, 20))  # fps None: the input's rate, not known yet
    with pytest.raises(VMMError, match="Nyquist"):
        p.replace(fps=30)
    assert p.replace(fps=60).fps == 60.0


def test_the_two_sets_of_defaults_are_named_here():
    """The model (every front end) and the array functions' published keyword defaults."""
    import inspect

    from napari_vmm.core.engine import magnify

    d = MagnifyParams()
    assert (d.method, d.alpha, d.temporal, d.fps) == ("riesz", 10.0, "butterworth", None)
    sig = inspect.signature(magnify).parameters
    assert (sig["method"].default, sig["alpha"].default, sig["temporal"].default) == (
        ARRAY_METHOD, ARRAY_ALPHA, ARRAY_TEMPORAL)


def test_engine_and_filter_use_the_models_checks():
    from napari_vmm.core import engine, params, temporal

    assert engine.check_alpha is params.check_alpha
    with pytest.raises(VMMError, match="butterworth order must be 1..8"):
        temporal.make_filter("butterworth", (1, 3), 30, order=0)


def test_model_is_light():
    """Building the default model (as `vmm --help` and the form do) imports no torch."""
    code = ("import sys; from napari_vmm.core.params import MagnifyParams; "
            "MagnifyParams(); MagnifyParams.describe(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


def test_zero_phase_on_a_too_short_clip_is_one_clear_error():
    """It was scipy's ValueError ("padlen"), with a traceback in every front end."""
    import numpy as np

    from napari_vmm import magnify

    frames = np.zeros((16, 32, 32), np.uint8)
    with pytest.raises(VMMError, match="zero-phase butterworth filter needs more than 21"):
        magnify(frames, fps=30, method="riesz", temporal="butterworth", band=(1, 4),
                zero_phase=True, order=3)
    with pytest.raises(VMMError, match="zero-phase fir filter needs more than"):
        magnify(frames, fps=30, method="riesz", temporal="fir", band=(1, 4), taps=15,
                zero_phase=True)
