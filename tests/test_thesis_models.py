"""The Singh thesis models (LNVMM, MDLMM, σ-θ Net, HMN) and the KL-DNAS search, on CPU.

Tiny tensors only: parameter counts, shapes through the engine on odd sizes, the identities
the architectures guarantee, a few training steps of every stage, and the search loop.
"""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_vmm.core.errors import VMMError  # noqa: E402
from napari_vmm.core.learned import weights as W  # noqa: E402
from napari_vmm.core.learned.models import count_parameters  # noqa: E402
from napari_vmm.core.learned.table import build_model  # noqa: E402
from napari_vmm.core.learned.thesis import THESIS_FIGURES, wrap_phase  # noqa: E402
from napari_vmm.training.export import save_weights  # noqa: E402

NAMES = list(THESIS_FIGURES)  # the seven thesis models (thesis.py and hmn.py)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_within_10_percent_of_the_thesis(name):
    n = count_parameters(build_model(name))
    target = THESIS_FIGURES[name][0]
    assert abs(n - target) / target <= 0.10, (name, n, target)


def test_flop_counter_counts_conv_macs():
    from napari_vmm.training.flops import count_macs, pair_gflops

    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    assert count_macs(conv, lambda: conv(torch.zeros(1, 3, 10, 12))) == 10 * 12 * 8 * 3 * 9
    up = torch.nn.ConvTranspose2d(4, 2, 2, stride=2)
    assert count_macs(up, lambda: up(torch.zeros(1, 4, 5, 5))) == 25 * 4 * 2 * 4
    # the probe-size scaling is exact for a fully convolutional net
    net = build_model("lnvmm_light")
    assert pair_gflops(net, 144, probe=48) == pytest.approx(pair_gflops(net, 144, probe=144))


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Untrained (random) weights with provenance for every thesis model (none ship)."""
    d = tmp_path_factory.mktemp("w")
    out = {}
    for n in ("lnvmm_light", "mdlmm_d2", "sigma_theta", "hmn_light"):
        torch.manual_seed(0)
        out[n], _ = save_weights(build_model(n).state_dict(), {"steps": 0}, n, d)
    return {k: str(v) for k, v in out.items()}


@pytest.mark.parametrize("name", ["lnvmm_light", "mdlmm_d2", "sigma_theta", "hmn_light"])
def test_engine_modes_on_odd_sizes(weights, name):
    from napari_vmm.core.engine import magnify

    frames = np.random.default_rng(0).random((3, 21, 27, 3)).astype(np.float32)
    for mode, temporal in (("static", "none"), ("dynamic", "none"),
                           ("temporal", "butterworth")):
        out = magnify(frames, fps=30, method=name, alpha=5, band=(1, 5), mode=mode,
                      temporal=temporal, weights=weights[name])
        assert out.shape == frames.shape and out.dtype == frames.dtype
        assert np.isfinite(out).all()
    gray = magnify(frames[..., 0], fps=30, method=name, alpha=5, mode="static",
                   temporal="none", weights=weights[name])
    assert gray.shape == frames.shape[:3]


def test_shapes_of_the_two_frame_forward():
    x = torch.rand(1, 3, 16, 24) * 2 - 1
    for name in ("lnvmm_light", "mdlmm_d2", "sigma_theta", "hmn_light"):
        torch.manual_seed(0)
        net = build_model(name).eval()
        with torch.inference_mode():
            out = net(x, x.roll(1, -1), torch.tensor([4.0]))
        assert out.shape == x.shape and torch.isfinite(out).all(), name


def test_lnvmm_zero_motion_and_zero_alpha_give_the_appearance_alone():
    # guaranteed: the manipulator has no biases, so M(0) = 0 and the decoder sees A only
    torch.manual_seed(0)
    net = build_model("lnvmm_light").eval()
    xa, xb = torch.rand(2, 1, 3, 16, 16) * 2 - 1
    with torch.inference_mode():
        v, m = net.encode(xb)
        assert torch.equal(net.manipulate(m, m, 50.0), torch.zeros_like(m))
        _, ma = net.encode(xa)
        assert torch.equal(net.manipulate(ma, m, 0.0), torch.zeros_like(m))
        assert not torch.equal(net.manipulate(ma, m, 5.0), torch.zeros_like(m))
        # the cross-stream forward at alpha 0 is the decoded appearance of the pair
        ea, pa, eb, pb = net.streams(xa, xb)
        assert torch.allclose(net(xa, xb, 0.0), net.decode(net.appearance(pb, pa),
                                                          torch.zeros_like(eb)))


def test_lnvmm_streams_share_features_across_frames():
    torch.manual_seed(0)
    net = build_model("lnvmm_light").eval()
    xa, xb, xc = torch.rand(3, 1, 3, 16, 16) * 2 - 1
    with torch.inference_mode():
        _, _, eb1, _ = net.streams(xa, xb)
        _, _, eb2, _ = net.streams(xc, xb)
        e_self, _, _, _ = net.streams(xb)
        _, _, eb3, _ = net.streams(xb, xb)
    assert not torch.allclose(eb1, eb2)  # b's features depend on the other frame
    assert torch.allclose(e_self, eb3)   # a self-pair is the engine's per-frame encoding


def test_static_identical_frames_give_identical_outputs(weights):
    # every model sees the same (frame, reference) pair for identical frames
    from napari_vmm.core.engine import magnify

    f = np.random.default_rng(2).random((1, 24, 24, 3)).astype(np.float32)
    for name, pt in weights.items():
        out = magnify(np.repeat(f, 3, axis=0), fps=30, method=name, alpha=10, mode="static",
                      temporal="none", weights=pt)
        assert np.allclose(out[0], out[1], atol=1e-6) and np.allclose(out[0], out[2],
                                                                       atol=1e-6), name


def test_mdlmm_fft_roundtrip_and_phase_prior():
    from napari_vmm.core.learned.thesis import inverse_spectrum, spectrum

    x = torch.rand(1, 3, 16, 16) * 2 - 1
    la, ph = spectrum(x)
    assert torch.allclose(inverse_spectrum(la, ph), x, atol=1e-5)
    net = build_model("mdlmm_d2").eval()
    with torch.inference_mode():
        i_hat, a_m, p_m, i1, i0, _ = net.manipulate(x, x, 3.0)
    assert i_hat.shape == x.shape and a_m.shape == x.shape and torch.equal(i0, x)


def test_no_weights_is_reported_and_magnify_says_how_to_train(tmp_path):
    from napari_vmm.core.engine import magnify
    from napari_vmm.core.registry import available_methods

    info = available_methods()
    for name in (*NAMES, "kldnas"):
        w = info[name]["weights"]
        assert info[name]["kind"] == "learned"
        if not w["available"]:  # none ship yet
            assert "no trained weights" in w["status"]
            assert f"vmm train {name}" in w["status"]
    with pytest.raises(VMMError, match="vmm train hmn"):
        magnify(np.zeros((2, 16, 16), np.float32), fps=30, method="hmn", alpha=5,
                mode="static", temporal="none", weights=str(tmp_path / "hmn.pt"))


# -- training ----------------------------------------------------------------------------------

def _cfg(tmp_path, model, run, steps=2, **kw):
    from napari_vmm.training.config import TrainConfig

    return TrainConfig(model=model, run_dir=str(tmp_path / run), steps=steps, batch=1, crop=32,
                       val_every=steps, val_n=1, val_size=32, log_every=1, command="test",
                       **{"init": "scratch", **kw})


def _losses(run):
    return [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()
            if "loss" in json.loads(x)]


def test_train_every_model_and_the_lnvmm_proxy_stage(tmp_path):
    from napari_vmm.training.train import train

    for m in ("mdlmm_d2", "sigma_theta"):
        assert train(_cfg(tmp_path, m, m)) == 0
        rows = _losses(tmp_path / m)
        assert [r["step"] for r in rows] == [1, 2] and all(np.isfinite(r["loss"]) for r in rows)
    assert {"phase", "amplitude"} <= set(_losses(tmp_path / "mdlmm_d2")[0])
    # LNVMM: the proxy (noise-free), then the noisy model with L_A and L_M against it
    assert train(_cfg(tmp_path, "lnvmm_light", "proxy", stage="proxy")) == 0
    prov = json.loads((tmp_path / "proxy" / "export" / "lnvmm_light.json").read_text())
    assert prov["loss"]["stage"] == "proxy" and prov["loss"]["poisson_noise_max"] == 0.0
    px = str(tmp_path / "proxy" / "export" / "lnvmm_light.pt")
    assert train(_cfg(tmp_path, "lnvmm_light", "main", proxy=px)) == 0
    rows = _losses(tmp_path / "main")
    assert all("L_A" in r and "L_M" in r for r in rows)
    prov = json.loads((tmp_path / "main" / "export" / "lnvmm_light.json").read_text())
    assert prov["loss"]["proxy"] == px and prov["status"] != W.STATUS_FINISHED
    W.load_weights("lnvmm_light", tmp_path / "main" / "export")


def test_hmn_contrastive_fine_tuning_stage(tmp_path):
    from napari_vmm.training.train import train

    assert train(_cfg(tmp_path, "hmn_light", "base")) == 0
    assert train(_cfg(tmp_path, "hmn_light", "proxy", stage="proxy")) == 0
    with pytest.raises(VMMError, match="--proxy"):
        train(_cfg(tmp_path, "hmn_light", "cl0", stage="contrastive"))
    best = str(tmp_path / "base" / "export" / "hmn_light.pt")
    px = str(tmp_path / "proxy" / "export" / "hmn_light.pt")
    cfg = _cfg(tmp_path, "hmn_light", "cl", steps=5, stage="contrastive", proxy=px,
               epoch_steps=2, init=best)
    assert train(cfg) == 0
    rows = _losses(tmp_path / "cl")
    assert [r["step"] for r in rows] == [3, 4, 5]  # continues the fine-tuned weights' steps
    assert all(np.isfinite(r["contrastive"]) and r["contrastive"] > 0 for r in rows)
    with pytest.raises(VMMError, match="contrastive applies to hmn"):
        train(_cfg(tmp_path, "sigma_theta", "x", stage="contrastive", proxy=px))


def test_cli_accepts_the_thesis_models_and_stages():
    import argparse

    from napari_vmm.cli.train import add_parser
    from napari_vmm.training.config import config_from_args

    p = add_parser(argparse.ArgumentParser().add_subparsers())
    c = config_from_args(p.parse_args(["hmn", "--stage", "contrastive", "--proxy", "x.pt",
                                       "--epoch-steps", "7"]))
    assert (c.model, c.stage, c.proxy, c.epoch_steps) == ("hmn", "contrastive", "x.pt", 7)
    with pytest.raises(VMMError, match="multiple of 8"):
        config_from_args(p.parse_args(["mdlmm", "--crop", "36"])).resolve()


# -- KL-DNAS -----------------------------------------------------------------------------------

TINY = dict(c_enc=4, c_dec=8, ops=("c3d1", "c5d2", "none"))


def test_latency_term_moves_the_expected_latency(tmp_path):
    from napari_vmm.core.learned.kldnas import StudentNet
    from napari_vmm.training.kldnas_search import latency_loss, measure_lut

    net = StudentNet(None, **TINY)
    lut = measure_lut(net, 32, tmp_path / "lut.json", reps=2)
    assert (tmp_path / "lut.json").exists() and lut["meta"]["size"] == 32
    assert all(v >= 0 for v in lut["entries"].values())
    again = measure_lut(StudentNet(None, **TINY), 32, tmp_path / "lut.json", reps=2)
    assert again["entries"] == lut["entries"]  # cached for this machine
    lat0 = float(net.expected_latency().detach())
    for target, sign in ((0.2 * lat0, -1), (5 * lat0, 1)):
        for p in net.arch_parameters():
            p.data.zero_()
        opt = torch.optim.Adam(net.arch_parameters(), lr=0.05)
        for _ in range(5):
            opt.zero_grad()
            latency_loss(net.expected_latency(), target).backward()
            opt.step()
        assert sign * (float(net.expected_latency().detach()) - lat0) > 0


def test_search_loop_derives_a_student_that_runs(tmp_path):
    from napari_vmm.core.engine import magnify
    from napari_vmm.core.learned.kldnas import CONNS, OPS
    from napari_vmm.core.learned.magnifier import load_network
    from napari_vmm.training.kldnas_search import SearchConfig, search

    cfg = SearchConfig(run_dir=str(tmp_path / "s"), search_size=32, steps=2, batch=1, crop=32,
                       val_n=1, val_size=32, lut_reps=1, log_every=1, **TINY)
    s = search(cfg, log=lambda x: None)
    run = tmp_path / "s"
    log = [json.loads(x) for x in (run / "search_log.jsonl").read_text().splitlines()]
    assert [r["part"] for r in log] == ["encoder"] * 2 + ["manipulator"] * 2 + ["decoder"] * 2
    assert all(r["expected_latency_ms"] > 0 and np.isfinite(r["loss"]) for r in log)
    g = s["genotype"]
    assert len(g) == 5 * 6  # five blocks of three R and three C layers
    assert all(v in OPS if ".r" in k else v in CONNS for k, v in g.items())
    assert s["teacher"] == "realtime" and s["student_ms_measured"] > 0
    pt = run / "export" / "kldnas.pt"
    prov = json.loads(pt.with_suffix(".json").read_text())
    assert prov["arch"]["genotype"] == g
    net = load_network("kldnas", torch.device("cpu"), str(pt))
    assert count_parameters(net) == prov["parameters"]
    out = magnify(np.random.default_rng(0).random((3, 19, 23, 3)).astype(np.float32), fps=30,
                  method="kldnas", alpha=5, mode="dynamic", temporal="none", weights=str(pt))
    assert out.shape == (3, 19, 23, 3) and np.isfinite(out).all()


# -- evaluation --------------------------------------------------------------------------------

def test_thesis_protocol_on_a_reduced_config(weights):
    from napari_vmm.training.eval_config import EvalConfig
    from napari_vmm.training.eval_tables import markdown_tables
    from napari_vmm.training.evaluate import circles_clip, run_evaluation

    # sub-pixel rendering: a 0.1 px move changes only the edge pixels, by about 0.1
    bg = np.zeros((32, 32, 3), np.float32)
    f = circles_clip(bg, np.ones((1, 3)), np.array([[16.0, 16.0]]), np.array([[0.0, 1.0]]),
                     8.0, np.array([0.0, 0.1]))
    d = np.abs(f[1] - f[0])
    assert 0.05 < d.max() <= 0.11 and d[16, 16].max() == 0
    cfg = EvalConfig(methods=("phase", "sigma_theta"), tests=("thesis",), thesis_clips=2,
                     thesis_size=64, thesis_radius=10, thesis_frames=4,
                     weights={"sigma_theta": weights["sigma_theta"]})
    res = run_evaluation(cfg, log=lambda s: None)
    (row,) = res["rows"]
    assert row["alpha"] == 49.5 and row["factor"] == 100.0
    assert all(row[m] > 0 and np.isfinite(row[m]) for m in ("input", "phase", "sigma_theta"))
    # the achieved magnification: the estimator reads the truth's motion as the request,
    # the input's as 1/factor of it
    assert row["gain"]["truth"] == pytest.approx(1.0, abs=0.02)
    assert row["gain"]["input"] == pytest.approx(0.01, abs=0.005)
    md = markdown_tables(res)
    assert "lower is better" in md and f"×{row['gain']['phase']:.2f}" in md
    passing = [row[m] for m in ("phase", "sigma_theta") if row["gain"][m] >= 0.5]
    assert ("**" in md) == bool(passing)  # only a method that magnifies can be the best


def test_a_searched_student_fine_tunes_with_vmm_train(tmp_path):
    import argparse

    from napari_vmm.cli.train import add_parser
    from napari_vmm.core.learned.kldnas import StudentNet
    from napari_vmm.training.config import config_from_args
    from napari_vmm.training.kldnas_search import derive_genotype
    from napari_vmm.training.train import train

    g = derive_genotype(StudentNet(None, **TINY))
    arch = {"genotype": g, "c_enc": 4, "c_dec": 8, "ops": list(TINY["ops"])}
    torch.manual_seed(0)
    pt, _ = save_weights(build_model("kldnas", **arch).state_dict(), {"steps": 0,
                                                                         "arch": arch},
                           "kldnas", tmp_path / "s")
    p = add_parser(argparse.ArgumentParser().add_subparsers())
    with pytest.raises(VMMError, match="--init"):
        config_from_args(p.parse_args(["kldnas", "--init", "scratch"]))
    cfg = config_from_args(p.parse_args(
        ["kldnas", "--init", str(pt), "--run-dir", str(tmp_path / "ft"), "--steps", "2",
         "--batch", "1", "--crop", "32", "--val-every", "2", "--val-n", "1",
         "--val-size", "32"]))
    assert cfg.arch["genotype"] == g
    assert train(cfg) == 0
    prov = json.loads((tmp_path / "ft" / "export" / "kldnas.json").read_text())
    assert prov["arch"]["genotype"] == g and prov["steps"] == 2


def test_tiled_close_to_untiled_and_mdlmm_does_not_tile_by_default(weights):
    from napari_vmm.core.engine import magnify
    from napari_vmm.core.registry import resolve_options

    f = np.random.default_rng(3).random((1, 136, 200, 3)).astype(np.float32)
    for name, tol in (("lnvmm_light", 1e-3), ("hmn_light", 1e-2)):
        kw = dict(fps=30, method=name, alpha=5, mode="static", temporal="none",
                  weights=weights[name])
        a = magnify(f, **kw)
        b = magnify(f, net_tile=128, **kw)
        assert np.abs(a - b).mean() < tol, name
    # MDLMM's FFT is global: its default tile covers 4K frames
    assert resolve_options("mdlmm", {})["net_tile"] == 4096
    assert resolve_options("mdlmm_d2", {})["net_tile"] == 4096


def test_derived_blocks_are_never_dead():
    from napari_vmm.core.learned.kldnas import StudentNet
    from napari_vmm.training.kldnas_search import block_is_live, derive_genotype

    def blk(r, c):
        return {**{f"b.r{i}": o for i, o in enumerate(r)},
                **{f"b.c{i}": o for i, o in enumerate(c)}}

    assert not block_is_live(blk(["none", "c3d1", "none"], ["none"] * 3), "b")
    assert not block_is_live(blk(["c3d1", "c3d1", "none"], ["none", "none", "none"]), "b")
    assert block_is_live(blk(["c3d1", "c3d1", "none"], ["add", "none", "none"]), "b")
    assert block_is_live(blk(["none"] * 3, ["none", "none", "add"]), "b")  # x passes
    net = StudentNet(None, **TINY)
    with torch.no_grad():
        for _, m in net.layers("manipulator"):  # the search's collapse: "none" wins all
            if m.alpha is not None:
                m.alpha.zero_()
                m.alpha[m.names.index("none")] = 5.0
    g = derive_genotype(net, "manipulator")
    assert block_is_live(g, "g0") and block_is_live(g, "h0")
    assert sum(v != "none" for k, v in g.items() if ".r" in k) <= 6
    from napari_vmm.core.learned.kldnas import build_student

    student = build_student(derive_genotype(net), **TINY)
    m_ref = torch.randn(1, 16, 8, 8)
    m = m_ref + 0.1 * torch.randn_like(m_ref)
    with torch.no_grad():
        assert (student.manipulate(m_ref, m, 10.0) - m).abs().max() > 1e-4  # it magnifies


@pytest.mark.parametrize("name", list(THESIS_FIGURES))
def test_decode_twice_gives_back_the_input_at_alpha_zero(name):
    """``x + net(alpha) - net(0)`` for the thesis models: exactly the input at alpha 0 in
    the two-frame pass and in the engine's encode/manipulate/decode path; alpha moves it."""
    torch.manual_seed(0)
    net = build_model(name, decode_twice=True).eval()
    xa = torch.rand(2, 3, 32, 32) * 2 - 1
    xb = torch.roll(xa, 1, dims=-1)
    with torch.no_grad():
        assert torch.allclose(net(xa, xb, 0.0), xb, atol=1e-6)
        assert float((net(xa, xb, 10.0) - xb).abs().mean()) > 0
        _, ma = net.encode(xa)
        vb, mb = net.encode(xb)
        assert torch.allclose(net.magnified(vb, mb, mb - ma, 0.0, xb), xb, atol=1e-6)


@pytest.mark.parametrize("name,stage", [("lnvmm_light", "main"), ("mdlmm_d2", "main"),
                                        ("hmn_light", "contrastive"), ("sigma_theta", "main")])
def test_every_stage_trains_the_decoded_twice_output(name, stage, tmp_path):
    """With decode twice, each stage's own two-frame path is B + D(amp) − D(0), as at
    inference (it used to train the plain decode), and the gain term is logged."""
    from napari_vmm.training.thesis_train import ThesisStage

    torch.manual_seed(0)
    net = build_model(name, decode_twice=True)
    proxy = ""
    if stage == "contrastive":
        save_weights(build_model(name).state_dict(), {"steps": 1}, name, tmp_path)
        proxy = str(tmp_path / f"{name}.pt")
    st = ThesisStage(name, net, stage, proxy, torch.device("cpu"), gain_weight=0.1)
    xa = torch.rand(2, 3, 32, 32) * 2 - 1
    xb = torch.roll(xa, 1, dims=-1)
    b = {"A": xa, "B": xb, "Y": torch.roll(xa, 2, dims=-1), "A_clean": xa, "B_clean": xb,
         "alpha": torch.zeros(2)}
    with torch.no_grad():
        out, (loss, parts) = st.loss(net, b, 0, torch.device("cpu"))
        assert torch.allclose(out, xb, atol=1e-6)
        assert parts["gain"] == pytest.approx(1.0)  # a copy delivers none of the change
        out, _ = st.loss(net, {**b, "alpha": torch.full((2,), 5.0)}, 0, torch.device("cpu"))
        assert float((out - xb).abs().mean()) > 0


@pytest.mark.parametrize("name", ["hmn", "hmn_light"])
def test_hmn_linear_manipulator_keeps_a_still_scene_still(name):
    """The paper's MSM multiplies the frames' features by amp, so a scene with no motion
    changes with α (shipped hmn_light: 0.036 mean |change| at the validation α); the linear
    manipulator carries the edge difference alone, so it gives the input back exactly."""
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    changes = {}
    for manipulator in ("paper", "linear", "still-gated"):
        net = build_model(name, decode_twice=True, manipulator=manipulator).eval()
        with torch.no_grad():
            changes[manipulator] = float((net(x, x, 20.0) - x).abs().max())
            moved = float((net(x, torch.roll(x, 1, dims=-1), 20.0)
                           - torch.roll(x, 1, dims=-1)).abs().mean())
        assert moved > 1e-4  # motion still moves the output
    assert changes["paper"] > 1e-3
    assert changes["linear"] < 1e-6
    assert changes["still-gated"] < 1e-6


def test_sigma_theta_linear_manipulator_passes_the_motion_before_training():
    """With its residual blocks r silenced, the paper's σ-θ manipulator ignores α (r must
    learn to pass α·Δ on); the linear one magnifies the directional phase and magnitude."""
    torch.manual_seed(0)
    xa = torch.rand(1, 3, 32, 32) * 2 - 1
    xb = torch.roll(xa, 1, dims=-1)
    moved = {}
    for manipulator in ("paper", "linear"):
        net = build_model("sigma_theta", manipulator=manipulator).eval()
        with torch.no_grad():
            for block in (net.r_phase, net.r_mag):
                for prm in block.parameters():
                    prm.zero_()
            moved[manipulator] = float((net.manipulate(xa, xb, 10.0)
                                        - net.manipulate(xa, xb, 0.0)).abs().mean())
    assert moved["paper"] == 0.0
    assert moved["linear"] > 1e-3


@pytest.mark.parametrize(("manipulator", "expected"),
                         [("linear", 0.0), ("riesz", -1.0), ("riesz-pyramid", -1.0)])
def test_sigma_theta_riesz_phase_moves_with_a_translation(manipulator, expected):
    """A grating shifted by δ along θ: the Riesz form's φ moves by −ω·δ (local phase), the
    digest's reading (the gradient's orientation) does not move."""
    import math

    size, wavelength, delta = 64, 8.0, 0.1
    omega = 2 * math.pi / wavelength
    x = torch.arange(size, dtype=torch.float32)

    def grating(shift: float) -> torch.Tensor:
        row = 0.5 + 0.3 * torch.cos(omega * (x - shift))
        return row.expand(1, 3, size, size).contiguous() * 2 - 1

    net = build_model("sigma_theta", manipulator=manipulator)
    with torch.no_grad():
        net.w_sigma.copy_(torch.tensor([10.0, 0.0, 0.0, 0.0]))  # the frame unblurred
        net.theta.zero_()  # every direction along x
        (p0, _), (p1, _) = net.directional(grating(0.0)), net.directional(grating(delta))
    shift = wrap_phase(p1 - p0)[..., 16:48, 16:48].mean() / (omega * delta)
    assert float(shift) == pytest.approx(expected, abs=0.12)


def test_sigma_theta_directions_form_keeps_the_direction_of_a_translation():
    """Eq. 6.7's sum over nine directions spread over 2π cancels most of a translation's
    phase change; the "riesz-directions" form's per-direction bands keep it, and tell a
    shift along x from one along y."""
    torch.manual_seed(0)
    size = 64
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32),
                            torch.arange(size, dtype=torch.float32), indexing="ij")

    def texture(dx: float, dy: float) -> torch.Tensor:
        g = (0.3 * torch.sin(2 * torch.pi * (xx - dx) / 11)
             + 0.3 * torch.sin(2 * torch.pi * (yy - dy) / 13)
             + 0.2 * torch.sin(2 * torch.pi * (0.6 * (xx - dx) + 0.8 * (yy - dy)) / 17))
        return g.expand(1, 3, size, size).contiguous()

    net = build_model("sigma_theta", manipulator="riesz-directions")
    ref = texture(0.0, 0.0)
    with torch.no_grad():
        for block in (net.r_phase, net.r_mag):  # the linear magnification alone
            for prm in block.parameters():
                prm.zero_()
        summed, bands = {}, {}
        for name, shift in (("x", (0.2, 0.0)), ("y", (0.0, 0.2))):
            s1, b1 = net._magnify_level(texture(*shift), ref, 10.0)
            s0, b0 = net._magnify_level(texture(*shift), ref, 0.0)
            summed[name] = (s1 - s0)[..., 16:48, 16:48]
            bands[name] = (b1 - b0)[..., 16:48, 16:48]
    for name in ("x", "y"):
        # each direction's band changes several times as much as the nine summed into one
        assert float(bands[name].abs().mean()) > 3 * float(summed[name].abs().mean())
    assert float((bands["x"] - bands["y"]).abs().mean()) > 0.5 * float(bands["x"].abs().mean())


def test_sigma_theta_readout_form_adds_an_image_linear_in_the_motion():
    """The "riesz-readout" form reads each level's bands into an image added to the decoded
    one: decoding twice it is still exactly the input at α = 0, and the image it adds for a
    shift is (to first order) the opposite of the one for the opposite shift."""
    torch.manual_seed(0)
    net = build_model("sigma_theta", decode_twice=True, manipulator="riesz-readout").eval()
    size = 64
    xx = torch.arange(size, dtype=torch.float32)

    def texture(dx: float) -> torch.Tensor:
        g = 0.3 * torch.sin(2 * torch.pi * (xx - dx) / 23) + 0.2 * torch.sin(
            2 * torch.pi * (xx - dx) / 9)
        return g.expand(1, 3, size, size).contiguous()

    with torch.no_grad():
        for block in (net.r_phase, net.r_mag):  # the linear magnification alone
            for prm in block.parameters():
                prm.zero_()
        for conv in net.read_bands:
            conv.weight.normal_(0, 0.1)
        ref = texture(0.0)
        assert (net(texture(-0.1), ref, 0.0) - ref).abs().max() < 1e-5
        image = {}
        for sign in (1, -1):
            moved = net.manipulate(texture(-0.05 * sign), ref, 10.0)[:, -3:]
            still = net.manipulate(texture(-0.05 * sign), ref, 0.0)[:, -3:]
            image[sign] = (moved - still)[..., 8:56, 8:56].flatten()
    assert float(image[1].abs().mean()) > 1e-3
    assert float(torch.corrcoef(torch.stack([image[1], image[-1]]))[0, 1]) < -0.9


def test_sigma_theta_riesz_form_trains_after_inference_at_the_same_size():
    """The Riesz multipliers are cached per frame size; one first made under
    torch.inference_mode (a magnifier run) must still serve a training step."""
    net = build_model("sigma_theta", manipulator="riesz")
    x = torch.rand(1, 3, 40, 40) * 2 - 1
    with torch.inference_mode():
        net(x, x.roll(1, -1), 4.0)
    net(x, x.roll(1, -1), 4.0).mean().backward()
    assert net.theta.grad is not None


def test_vmm_train_takes_the_linear_manipulator_for_hmn_and_sigma_theta():
    import argparse

    from napari_vmm.cli.train import add_parser
    from napari_vmm.training.config import config_from_args

    p = add_parser(argparse.ArgumentParser().add_subparsers())
    for name in ("hmn", "hmn_light", "sigma_theta"):
        cfg = config_from_args(p.parse_args([name, "--manipulator", "linear"]))
        assert cfg.arch == {"manipulator": "linear"}
    cfg = config_from_args(p.parse_args(["hmn_light", "--manipulator", "still-gated"]))
    assert cfg.arch == {"manipulator": "still-gated"}
    for form in ("riesz", "riesz-pyramid", "riesz-directions", "riesz-readout"):
        cfg = config_from_args(p.parse_args(["sigma_theta", "--manipulator", form]))
        assert cfg.arch == {"manipulator": form}
    with pytest.raises(VMMError, match="applies to sigma_theta, not hmn"):
        config_from_args(p.parse_args(["hmn", "--manipulator", "riesz"]))
    with pytest.raises(VMMError, match="not lnvmm"):
        config_from_args(p.parse_args(["lnvmm", "--manipulator", "linear"]))
    with pytest.raises(VMMError, match="applies to hmn, hmn_light, not sigma_theta"):
        config_from_args(p.parse_args(["sigma_theta", "--manipulator", "still-gated"]))


def test_motion_path_probe_reports_the_still_scene_change(tmp_path):
    """scripts/probe_motion_path.py on weights of the linear hmn_light: a still scene stays
    still; the same weights in the paper's form (``MODEL:paper``) move it."""
    import subprocess
    import sys
    from pathlib import Path

    torch.manual_seed(0)
    net = build_model("hmn_light", manipulator="linear")
    pt, _ = save_weights(net.state_dict(), {"steps": 1, "arch": {"manipulator": "linear"}},
                         "hmn_light", tmp_path)
    script = Path(__file__).resolve().parents[1] / "scripts" / "probe_motion_path.py"
    lines = {}
    for spec in ("hmn_light", "hmn_light:paper"):
        res = subprocess.run([sys.executable, str(script), spec, "--weights", str(pt),
                              "--samples", "2", "--size", "32"],
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        assert "change at k=1 over the output at k=0, by module: " in res.stdout
        assert "discs, gain / share of the displacement: 0.05 px x21 " in res.stdout
        assert "texture shift, gain: 0.05 px x21 " in res.stdout
        lines[spec] = res.stdout.splitlines()[0]
    assert "still-scene change 0.00e+00" in lines["hmn_light"]
    assert "still-scene change 0.00e+00" not in lines["hmn_light:paper"]


def test_sigma_theta_feature_probe_reads_the_bands_of_pyramid_weights(tmp_path):
    """scripts/probe_sigma_theta_features.py loads pyramid-form weights into the directions
    form and scores each channel group; other forms get one clear message."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "probe_sigma_theta_features.py"
    runs = {}
    for form in ("riesz-pyramid", "linear"):
        net = build_model("sigma_theta", manipulator=form)
        pt, _ = save_weights(net.state_dict(), {"steps": 1, "arch": {"manipulator": form}},
                             "sigma_theta", tmp_path / form)
        runs[form] = subprocess.run([sys.executable, str(script), "--weights", str(pt),
                                     "--scenes", "2", "--size", "64"],
                                    capture_output=True, text=True, timeout=300)
    assert runs["riesz-pyramid"].returncode == 0, runs["riesz-pyramid"].stderr
    assert "0.2 px x50.5: summed " in runs["riesz-pyramid"].stdout
    assert "summed + 648 noise columns" in runs["riesz-pyramid"].stdout
    assert runs["linear"].returncode != 0
    assert ("needs riesz-pyramid, riesz-directions or riesz-readout weights, not 'linear'"
            in runs["linear"].stderr)


@pytest.mark.parametrize(("name", "arch", "message"), [
    ("hmn", {"manipulator": "quadratic"},
     "manipulator must be 'paper', 'linear' or 'still-gated', got 'quadratic'"),
    ("sigma_theta", {"manipulator": "Linear"},
     "manipulator must be 'paper', 'linear', 'riesz', 'riesz-pyramid', 'riesz-directions' "
     "or 'riesz-readout'"),
    ("fd4mm", {"manipulator": ""}, "manipulator must be 'paper' or 'linear'"),
    ("fd4mm", {"attention": "sigmoid"}, "attention must be 'relu' or 'softmax'"),
    ("mdlmm", {"variant": "d3"}, "variant must be 'd1' or 'd2'"),
    ("lnvmm", {"variant": "heavy"}, "variant must be 'base' or 'light'"),
])
def test_an_unknown_architecture_switch_is_named(name, arch, message):
    with pytest.raises(ValueError, match=message):
        build_model(name, **arch)


def test_still_gated_msm_is_linear_in_the_edge_difference():
    """HMN's "still-gated" manipulator: with the frames fixed, W_4 scales exactly with E_d
    (its gates are the still scene's); the "linear" form's gates see E_d, so it does not."""
    from napari_vmm.core.learned.hmn import MSM

    torch.manual_seed(0)
    edges, frames = torch.randn(2, 6, 32, 32), torch.rand(2, 6, 32, 32)
    errors = {}
    for form in ("linear", "still-gated"):
        msm = MSM(8, 1, 1, form=form).eval()
        with torch.no_grad():
            w4 = [msm.features(torch.cat([k * edges, frames], 1)) for k in (0.05, 1.0)]
        errors[form] = float((w4[1] - 20 * w4[0]).abs().max() / w4[1].abs().max())
    assert errors["still-gated"] < 1e-5
    assert errors["linear"] > 1e-2
