"""vmm evaluate machinery on tiny settings."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_vmm.core.learned.table import build_model  # noqa: E402
from napari_vmm.training.eval_config import EvalConfig  # noqa: E402
from napari_vmm.training.eval_tables import markdown_tables, merge_results  # noqa: E402
from napari_vmm.training.evaluate import (  # noqa: E402
    TESTS,
    make_scene,
    photon_noise,
    run_evaluation,
    ssim_clip,
)
from napari_vmm.training.export import save_weights  # noqa: E402


def test_scene_motion_is_subpixel_accurate():
    scene = make_scene(0, 0, 48)
    a = scene.render(np.zeros(2), np.zeros(2))
    b = scene.render(np.zeros(2), np.array([0.0, 0.5]))
    c = scene.render(np.zeros(2), np.array([0.0, 1.0]))
    assert a.shape == (3, 48, 48)
    # half a pixel of foreground motion changes the frame less than a whole pixel
    assert 0 < float((b - a).abs().mean()) < float((c - a).abs().mean())


def test_photon_noise_scales_with_factor():
    x = np.full((4, 16, 16, 3), 0.5, np.float32)
    rng = np.random.default_rng(0)
    s1 = np.std(photon_noise(x, 1.0, rng) - x)
    s2 = np.std(photon_noise(x, 2.0, rng) - x)
    assert abs(s1 - np.sqrt(127.5) / 255) < 0.01 and 1.7 < s2 / s1 < 2.3
    assert ssim_clip(x, x) == pytest.approx(1.0)


def test_run_evaluation_tiny(tmp_path):
    pt, _ = save_weights(build_model("realtime").state_dict(), {"steps": 0}, "realtime",
                           tmp_path)
    cfg = EvalConfig(methods=("realtime", "linear"), size=32, scenes=1, frames=10,
                     weights={"realtime": str(pt)}, tests=("subpixel", "noise"),
                     subpixel_amplitudes=(0.5,), noise_factors=(1.0,),
                     noise_motions=((0.5, 9.0),))
    res = run_evaluation(cfg, log=lambda s: None)
    assert len(res["rows"]) == 2
    for row in res["rows"]:
        for m in ("input", "realtime", "linear"):
            assert -1 <= row[m] <= 1
    md = markdown_tables(res)
    assert "Sub-pixel" in md and "Noise test" in md and "realtime" in md


def test_merging_a_rescored_method_equals_one_run():
    from napari_vmm.core.errors import VMMError

    kw = dict(size=32, scenes=1, frames=10, tests=("subpixel", "noise"),
              subpixel_amplitudes=(0.5,), noise_factors=(1.0,), noise_motions=((0.5, 9.0),))
    quiet = dict(log=lambda s: None)
    both = run_evaluation(EvalConfig(methods=("linear", "riesz"), **kw), **quiet)
    first = run_evaluation(EvalConfig(methods=("linear",), **kw), **quiet)
    second = run_evaluation(EvalConfig(methods=("riesz",), **kw), **quiet)
    merged = merge_results(first, second)
    assert merged["config"]["methods"] == ["linear", "riesz"]
    assert merged["rows"] == both["rows"]
    assert markdown_tables(merged) == markdown_tables(both)
    other = run_evaluation(EvalConfig(methods=("riesz",), **{**kw, "seed": 1}), **quiet)
    with pytest.raises(VMMError, match="seed"):
        merge_results(first, other)


def test_achieved_magnification_reads_the_truth_and_the_input():
    from napari_vmm.training.evaluate import Probe, _clip

    scene = make_scene(0, 3, 48)
    fps, f0, alpha, amp = 30.0, 3.0, 9.0, 0.3
    u = np.array([0.6, 0.8])
    s = np.sin(2 * np.pi * f0 * np.arange(12) / fps)
    rng = np.random.default_rng(0)
    zero = np.zeros((12, 2))
    frames = _clip(scene, zero, s[:, None] * amp * u, rng, quantize=False)
    gt = _clip(scene, zero, s[:, None] * (1 + alpha) * amp * u, rng, quantize=False)
    fam = Probe(scene, amp, u, f0).family(alpha)
    assert fam.achieved(gt, fps, f0) == pytest.approx(1 + alpha, rel=0.03)
    assert fam.achieved(frames, fps, f0) == pytest.approx(1.0, rel=0.05)
    # half the motion reads as half
    half = _clip(scene, zero, s[:, None] * 0.5 * (1 + alpha) * amp * u, rng, quantize=False)
    assert fam.achieved(half, fps, f0) == pytest.approx(0.5 * (1 + alpha), rel=0.05)


def test_a_method_below_half_the_request_fails_its_row_whatever_its_ssim():
    from napari_vmm.training.eval_tables import fails

    res = {"config": {"methods": ["copy", "real"], "static_too": False},
           "rows": [{"test": "noise", "amplitude_px": 0.05, "alpha": 199.0,
                     "noise_factor": 1.0, "input": 0.9, "copy": 0.95, "real": 0.80,
                     "gain": {"truth": 1.0, "input": 0.005, "copy": 0.01, "real": 0.9}}]}
    row = res["rows"][0]
    assert fails(row, "copy") and not fails(row, "real")
    md = markdown_tables(res)
    assert "0.9500 ×0.01 ✗" in md and "**0.8000** ×0.90" in md


def test_the_mean_miss_does_not_let_overshoot_cancel_shortfall():
    rows = [{"test": "fd4mm", "factor": f, "sigma": 0.0, "alpha": f - 1.0, "input": 0.9,
             "even": 0.9, "gain": {"truth": 1.0, "input": 1 / f, "even": g}}
            for f, g in ((5, 0.6), (10, 1.4))]
    md = markdown_tables({"config": {"methods": ["even"], "static_too": False}, "rows": rows})
    assert "`even` 0.900 ×1.00 ±40%" in md


def test_linearity_rows_measure_gain_and_learned_models_get_two_modes(tmp_path):
    pt, _ = save_weights(build_model("realtime").state_dict(), {"steps": 0}, "realtime",
                           tmp_path)
    cfg = EvalConfig(methods=("realtime", "linear"), size=32, scenes=1,
                     weights={"realtime": str(pt)}, tests=("linearity",),
                     linearity_amplitudes=(0.5,), linearity_factors=(1, 4))
    res = run_evaluation(cfg, log=lambda s: None)
    assert [r["factor"] for r in res["rows"]] == [1, 4]
    for r in res["rows"]:
        assert set(r["gain"]) == {"truth", "input", "realtime", "realtime@static", "linear"}
        assert r["gain"]["truth"] == pytest.approx(1.0, abs=0.05)
        assert r["gain"]["input"] == pytest.approx(1 / r["factor"], rel=0.1)
    assert "Linearity" in markdown_tables(res)
    pytest.importorskip("matplotlib")
    import json

    from napari_vmm.training.figures import linearity_figure

    (tmp_path / "lin.json").write_text(json.dumps(res))
    linearity_figure(str(tmp_path / "lin.png"), str(tmp_path / "lin.json"))
    assert (tmp_path / "lin.png").read_bytes()[:4] == b"\x89PNG"
    res["rows"] = []
    (tmp_path / "none.json").write_text(json.dumps(res))
    with pytest.raises(ValueError, match="no linearity rows"):
        linearity_figure(str(tmp_path / "x.png"), str(tmp_path / "none.json"))


def test_cli_fd4mm_runs_only_the_requested_rows_and_refuses_bad_factors(tmp_path, capsys):
    from napari_vmm.cli import main

    out = tmp_path / "fd.json"
    assert main(["evaluate", "--tests", "fd4mm", "--methods", "linear", "--size", "32",
                 "--scenes", "1", "--frames", "8", "--no-static", "--fd4mm-factors", "3",
                 "--fd4mm-sigmas", "0.02", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["factor"], r["sigma"]) for r in rows] == [(3.0, 0.0), (20, 0.02)]
    assert main(["evaluate", "--tests", "fd4mm", "--methods", "linear",
                 "--fd4mm-factors", "0.5"]) != 0
    err = capsys.readouterr().err
    assert "--fd4mm-factors" in err and "Traceback" not in err


def test_cli_linearity_runs_only_the_requested_amplitudes_and_refuses_bad_ones(tmp_path, capsys):
    from napari_vmm.cli import main

    out = tmp_path / "lin.json"
    assert main(["evaluate", "--tests", "linearity", "--methods", "linear", "--size", "32",
                 "--scenes", "1", "--linearity-amplitudes", "0.5",
                 "--linearity-factors", "1,3", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["amplitude_px"], r["factor"]) for r in rows] == [(0.5, 1.0), (0.5, 3.0)]
    for flag, value in (("--linearity-amplitudes", "0"), ("--linearity-factors", "0.5,2"),
                        ("--linearity-amplitudes", "a")):
        assert main(["evaluate", "--tests", "linearity", "--methods", "linear",
                     flag, value]) != 0
        err = capsys.readouterr().err
        assert flag in err and "Traceback" not in err


def test_merge_reads_a_parsed_flag_and_its_default_alike_but_not_other_values():
    from napari_vmm.core.errors import VMMError
    from napari_vmm.training.eval_tables import check_mergeable

    old = {"tests": ["linearity"], "linearity_factors": [1, 2, 5], "size": 96}
    check_mergeable(old, {"tests": ("linearity",), "linearity_factors": (1.0, 2.0, 5.0),
                          "size": 96})
    with pytest.raises(VMMError, match="linearity_factors"):
        check_mergeable(old, {"tests": ("linearity",), "linearity_factors": (1.0, 2.0),
                              "size": 96})


def test_eval_config_validates_and_names_the_flag():
    from napari_vmm.core.errors import VMMError
    from napari_vmm.training.eval_config import TEST_NAMES

    assert tuple(TESTS) == TEST_NAMES  # one list of tests: the config's
    for bad, match in (({"tests": ("nope",)}, "unknown test"),
                       ({"methods": ("linear", "nope")}, "unknown method"),
                       ({"size": 16}, "--size"),
                       ({"fd4mm_sigmas": (1.5,)}, "--fd4mm-sigmas"),
                       ({"linearity_factors": ()}, "--linearity-factors"),
                       ({"methods": ("linear",), "options": {"phase": {"x": "1"}}}, "phase")):
        with pytest.raises(VMMError, match=match):
            EvalConfig(**{"methods": ("linear",), **bad})


def test_cli_defaults_are_the_configs():
    import argparse

    from napari_vmm.cli.evaluate import add_parser, config_from_args

    sub = argparse.ArgumentParser().add_subparsers()
    add_parser(sub)
    ns = sub.choices["evaluate"].parse_args(["--methods", "linear"])
    assert config_from_args(ns) == EvalConfig(methods=("linear",))
    ns = sub.choices["evaluate"].parse_args(["--methods", "linear", "--fd4mm-factors", "3,7",
                                             "--size", "64", "--no-static"])
    cfg = config_from_args(ns)
    assert (cfg.fd4mm_factors, cfg.size, cfg.static_too) == ((3.0, 7.0), 64, False)
