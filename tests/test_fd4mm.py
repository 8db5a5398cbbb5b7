"""FD4MM: architecture, identities the architecture guarantees, losses, magnifier, training."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_vmm.core.errors import VMMError  # noqa: E402
from napari_vmm.core.learned import weights as W  # noqa: E402
from napari_vmm.core.learned.fd4mm import FreqSplit  # noqa: E402
from napari_vmm.core.learned.models import count_parameters  # noqa: E402
from napari_vmm.core.learned.table import build_model  # noqa: E402
from napari_vmm.training.export import save_weights  # noqa: E402
from napari_vmm.training.losses import (  # noqa: E402
    charbonnier,
    contrastive_loss,
    edge_loss,
    fd4mm_loss,
    log_edges,
    log_kernel,
)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return build_model("fd4mm").eval()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Untrained (random) fd4mm weights with provenance (no weights ship)."""
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("w")
    pt, _ = save_weights(build_model("fd4mm").state_dict(), {"steps": 0}, "fd4mm", d)
    return str(pt)


def test_parameter_count_within_5_percent_of_1_47M(net):
    n = count_parameters(net)
    assert abs(n - 1.47e6) / 1.47e6 <= 0.05, n


def test_ablation_parameter_counts_match_paper_table4():
    # Table 4: B0 (no filters, no mixer) 0.30 M, B2 (+F_L, +F_H, no mixer) 1.09 M
    b0 = count_parameters(build_model("fd4mm", filters=False, mixer=False))
    b2 = count_parameters(build_model("fd4mm", mixer=False))
    assert abs(b0 - 0.30e6) / 0.30e6 <= 0.05, b0
    assert abs(b2 - 1.09e6) / 1.09e6 <= 0.05, b2
    with pytest.raises(VMMError):
        build_model("fd4mm", attention="tanh")


def test_level_shapes(net):
    x = torch.rand(2, 3, 40, 56) * 2 - 1
    with torch.inference_mode():
        (hs, hm, hd), ld = net.encode(x)
        out = net.decode((hs, hm, hd), net.manipulate(ld, ld, 5.0))
    assert hs.shape == (2, 24, 20, 28) and hm.shape == (2, 48, 10, 14)
    assert hd.shape == (2, 96, 5, 7) and ld.shape == (2, 96, 5, 7)
    assert out.shape == x.shape


def test_zero_motion_and_zero_alpha_are_fixed_points(net):
    # guaranteed by the architecture: F_L, W_1, W_2 without biases, GELU(0) = 0
    torch.manual_seed(1)
    xa, xb = torch.rand(2, 1, 3, 32, 32) * 2 - 1
    with torch.inference_mode():
        _, la = net.encode(xa)
        vb, lb = net.encode(xb)
        assert torch.equal(net.manipulate(lb, lb, 50.0), lb)            # δ = 0
        assert torch.equal(net.manipulate(la, lb, 0.0), lb)             # α = 0
        assert torch.equal(net.manipulate(None, lb, 7.0, delta=torch.zeros_like(lb)), lb)
        assert not torch.equal(net.manipulate(la, lb, 7.0), lb)         # motion is magnified
        # hence: α = 0 on a pair = equal frames = the net's reconstruction of the query
        assert torch.allclose(net(xa, xb, 0.0), net(xb, xb, 20.0))


@pytest.mark.parametrize("shape,other_mode", [((3, 21, 35, 3), ("temporal", "butterworth")),
                                              ((2, 17, 19), ("dynamic", "none"))])
def test_magnifier_odd_sizes_and_modes(weights, shape, other_mode):
    from napari_vmm.core.engine import magnify

    frames = np.random.default_rng(0).random(shape).astype(np.float32)
    for mode, temporal in (("static", "none"), other_mode):
        out = magnify(frames, fps=30, method="fd4mm", alpha=5, band=(1, 5), mode=mode,
                      temporal=temporal, weights=weights)
        assert out.shape == frames.shape and out.dtype == frames.dtype
        assert np.isfinite(out).all()


def test_static_identical_frames_give_identical_outputs(weights):
    from napari_vmm.core.engine import magnify

    f = np.random.default_rng(2).random((1, 24, 24, 3)).astype(np.float32)
    out = magnify(np.repeat(f, 3, axis=0), fps=30, method="fd4mm", alpha=10, mode="static",
                  temporal="none", weights=weights)
    assert np.allclose(out[0], out[1]) and np.allclose(out[0], out[2])


def test_tiled_close_to_untiled(weights):
    from napari_vmm.core.engine import magnify

    f = np.random.default_rng(3).random((1, 136, 144, 3)).astype(np.float32)
    kw = dict(fps=30, method="fd4mm", alpha=5, mode="static", temporal="none", weights=weights)
    a = magnify(f, **kw)
    b = magnify(f, net_tile=128, **kw)
    # channel attention is global over a tile, so tiles are close but not identical
    assert a.shape == b.shape and np.abs(a - b).mean() < 0.05


def test_no_weights_is_reported_and_magnify_says_how_to_train(tmp_path):
    from napari_vmm.core.engine import magnify
    from napari_vmm.core.registry import available_methods

    info = available_methods()["fd4mm"]
    assert info["kind"] == "learned"
    w = info["weights"]
    if not w["available"]:
        assert "no trained weights" in w["status"] and "vmm train fd4mm" in w["status"]
    with pytest.raises(VMMError, match="vmm train fd4mm"):
        magnify(np.zeros((2, 16, 16), np.float32), fps=30, method="fd4mm", alpha=5,
                mode="static", temporal="none", weights=str(tmp_path / "fd4mm.pt"))


# -- losses ------------------------------------------------------------------------------------

def test_log_kernel_is_zero_mean_and_detects_edges():
    k = log_kernel(1.0)
    assert k.shape == (7, 7) and abs(float(k.sum())) < 1e-6
    flat = torch.full((1, 3, 16, 16), 0.3)
    assert float(log_edges(flat).abs().max()) < 1e-5
    step = flat.clone()
    step[..., 8:] = 0.8
    assert float(log_edges(step).abs().max()) > 0.05


def test_charbonnier_and_edge_loss():
    x = torch.rand(2, 3, 16, 16)
    assert float(charbonnier(x, x)) == pytest.approx(1e-3, rel=1e-4)
    assert float(charbonnier(x, x + 0.5)) == pytest.approx(0.5, rel=1e-3)
    assert charbonnier(x, x, reduction="none").shape == (2,)
    assert float(edge_loss(x, x)) == pytest.approx(1e-3, rel=1e-3)
    assert float(edge_loss(x, x.flip(-1))) > float(edge_loss(x, x))


def test_contrastive_term_prefers_the_positive():
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(3, 3, 32, 32, generator=g) * 2 - 1
    neg = gt.roll(2, dims=-1)  # the unmagnified frame: displaced content
    at_pos = contrastive_loss(gt, gt, neg)
    at_neg = contrastive_loss(neg, gt, neg)
    between = contrastive_loss(0.5 * (gt + neg), gt, neg)
    assert float(at_pos) < 0.1 < float(between) < float(at_neg)
    # why local spectra: the global |FFT| (authors' code) is blind to a cyclic translation
    glob = [float(contrastive_loss(o, gt, neg, window=0)) for o in (gt, neg)]
    assert glob[0] == pytest.approx(glob[1], rel=1e-3)


def test_fd4mm_loss_gradients_are_finite_and_cr_can_be_turned_off():
    g = torch.Generator().manual_seed(0)
    y = torch.rand(2, 3, 24, 24, generator=g) * 2 - 1
    neg = y.roll(1, dims=-2)
    for out0 in (y.clone(), neg.clone(), torch.zeros_like(y)):  # incl. out == target exactly
        out = out0.requires_grad_(True)
        loss, parts = fd4mm_loss(out, y, neg, cr_weight=0.1)
        loss.backward()
        assert torch.isfinite(out.grad).all() and np.isfinite(parts["loss"])
        assert set(parts) == {"charbonnier", "edge", "cr", "loss"}
    loss0, parts0 = fd4mm_loss(neg, y, neg, cr_weight=0.0)
    assert "cr" not in parts0
    assert parts0["loss"] == pytest.approx(parts0["charbonnier"] + parts0["edge"], rel=1e-5)


def test_fd4mm_loss_structure_term_adds_one_minus_ssim_and_vanishes_at_the_target():
    g = torch.Generator().manual_seed(1)
    y = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    neg = y.roll(2, dims=-1)
    plain, p_plain = fd4mm_loss(neg, y, neg, cr_weight=0.0)
    with_s, p_s = fd4mm_loss(neg, y, neg, cr_weight=0.0, ssim_weight=0.3)
    assert "ssim" not in p_plain and p_s["ssim"] < 0.9  # unrelated noise: SSIM near 0
    assert float(with_s) == pytest.approx(float(plain) + 0.3 * (1 - p_s["ssim"]), rel=1e-5)
    at_target, p_t = fd4mm_loss(y.clone(), y, neg, cr_weight=0.0, ssim_weight=0.3)
    assert p_t["ssim"] == pytest.approx(1.0, abs=1e-5)
    assert float(at_target) == pytest.approx(p_t["charbonnier"] + p_t["edge"], abs=1e-5)


# -- training ----------------------------------------------------------------------------------

def test_train_smoke_resume_and_ablation(tmp_path):
    from napari_vmm.training.config import TrainConfig
    from napari_vmm.training.train import train

    def cfg(steps, run, **kw):
        return TrainConfig(model="fd4mm", run_dir=str(tmp_path / run), steps=steps, batch=2,
                           crop=32, val_every=2, val_n=2, val_size=32, log_every=1,
                           command="test", **kw)

    assert train(cfg(2, "run", init="scratch")) == 0
    assert train(cfg(3, "run", init="auto")) == 0  # resumes
    run = tmp_path / "run"
    assert torch.load(run / "ckpt.pt", weights_only=False)["step"] == 3
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    losses = [x for x in lines if "loss" in x]
    assert [x["step"] for x in losses] == [1, 2, 3]
    assert all(np.isfinite(x["loss"]) and "cr" in x and "edge" in x for x in losses)
    prov = json.loads((run / "export" / "fd4mm.json").read_text())
    assert prov["steps"] == 3 and prov["status"] in (W.STATUS_TRAINING, W.STATUS_NOT_USEFUL,
                                                     W.STATUS_NO_MOTION)
    assert prov["loss"]["contrastive_fft"] == 0.1 and prov["arch"] == {}
    W.load_weights("fd4mm", run / "export")

    # ablation: no mixer, no contrastive term; its weights rebuild the ablated net
    assert train(cfg(1, "abl", init="scratch", arch={"mixer": False}, cr_weight=0.0)) == 0
    pt = tmp_path / "abl" / "export" / "fd4mm.pt"
    prov = json.loads(pt.with_suffix(".json").read_text())
    assert prov["arch"] == {"mixer": False} and prov["loss"]["contrastive_fft"] == 0.0
    from napari_vmm.core.learned.magnifier import load_network

    assert count_parameters(load_network("fd4mm", torch.device("cpu"), str(pt))) == \
        count_parameters(build_model("fd4mm", mixer=False))


def test_cli_ablate_flags():
    import argparse

    from napari_vmm.cli.train import add_parser
    from napari_vmm.training.config import config_from_args

    sub = argparse.ArgumentParser().add_subparsers()
    p = add_parser(sub)
    c = config_from_args(p.parse_args(["fd4mm", "--ablate", "contrastive,filters"]))
    assert c.cr_weight == 0.0 and c.arch == {"filters": False}
    assert c.ablation == ("contrastive", "filters")
    with pytest.raises(VMMError):
        config_from_args(p.parse_args(["fd4mm", "--ablate", "nonsense"]))
    with pytest.raises(VMMError):
        config_from_args(p.parse_args(["oh2018", "--ablate", "mixer"]))


def test_evaluate_includes_fd4mm_and_a_labelled_variant(weights, tmp_path):
    from napari_vmm.training.eval_config import EvalConfig
    from napari_vmm.training.eval_tables import markdown_tables
    from napari_vmm.training.evaluate import run_evaluation

    torch.manual_seed(0)
    pt, _ = save_weights(build_model("fd4mm", mixer=False).state_dict(),
                           {"steps": 0, "arch": {"mixer": False}}, "fd4mm", tmp_path)
    cfg = EvalConfig(methods=("fd4mm", "fd4mm:nomixer"), size=32, scenes=1, frames=6,
                     weights={"fd4mm": weights, "fd4mm:nomixer": str(pt)},
                     tests=("subpixel",), subpixel_amplitudes=(0.5,))
    res = run_evaluation(cfg, log=lambda s: None)
    row = res["rows"][0]
    assert -1 <= row["fd4mm"] <= 1 and -1 <= row["fd4mm:nomixer"] <= 1
    assert res["weights"]["fd4mm:nomixer"]["arch"] == {"mixer": False}
    assert "fd4mm:nomixer" in markdown_tables(res)
    with pytest.raises(VMMError, match="vmm train fd4mm"):
        run_evaluation(EvalConfig(methods=("fd4mm",), weights={"fd4mm": str(tmp_path / "x.pt")},
                                  tests=("subpixel",)), log=lambda s: None)


def test_data_echo_gives_dihedral_views_and_resumes_exactly():
    from napari_vmm.training.config import TrainConfig
    from napari_vmm.training.data import DataConfig
    from napari_vmm.training.train import _batches, dihedral

    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    views = [dihedral(x, k) for k in range(8)]
    assert len({tuple(v.flatten().tolist()) for v in views}) == 8
    cfg = TrainConfig(model="fd4mm", batch=1, crop=32, echo=2, steps=10).resolve()
    dc = DataConfig(size=32)
    it = _batches(cfg, dc, 0)
    b = [next(it) for _ in range(4)]
    for key in ("A", "B", "C", "Y", "B_clean"):
        assert torch.equal(b[1][key], dihedral(b[0][key], 1))
    assert torch.equal(b[1]["alpha"], b[0]["alpha"])
    assert not torch.equal(b[2]["A"], b[0]["A"])  # a new batch every `echo` steps
    assert torch.equal(next(_batches(cfg, dc, 3))["Y"], b[3]["Y"])  # resumed mid-echo


def test_the_linear_manipulator_scales_with_the_motion_and_the_paper_one_does_not():
    """The paper's layer norms make the manipulator's change independent of the size of δ
    (so fd4mm learned to return its input); the project's linear variant scales with δ and
    is (nearly) odd in it."""
    torch.manual_seed(0)
    m = torch.randn(1, 96, 8, 8)
    d = 1e-3 * torch.randn(1, 96, 8, 8)

    def change(net, delta):
        with torch.no_grad():
            return net.manipulate(None, m, 10.0, delta=delta) - m

    for manipulator, doubling in (("paper", 1.0), ("linear", 2.0)):
        net = build_model("fd4mm", manipulator=manipulator).eval()
        c1, c2 = change(net, d), change(net, 2 * d)
        assert float(c2.norm() / c1.norm()) == pytest.approx(doubling, rel=0.05)
    assert float((c1 + change(net, -d)).norm() / c1.norm()) < 0.3  # odd: −δ gives −change
    assert torch.equal(change(net, torch.zeros_like(d)), torch.zeros_like(m))


def test_calibrating_the_linear_manipulator_gives_its_weights_a_gradient():
    """δ is ~1e-5 (docs/training_log.md), so W_1 and W_2 got gradients of ~1e-5; the input gain
    set from the data once (and kept in the state dict) raises them by orders of magnitude
    and keeps the change linear in δ."""
    torch.manual_seed(0)
    m = torch.randn(2, 96, 8, 8)
    d = 1.4e-5 * torch.randn(2, 96, 8, 8)

    target = torch.randn(2, 96, 8, 8)

    def w2_grad(net):
        net.zero_grad()
        ((net.manipulate(None, m, 10.0, delta=d) - m) * target).sum().backward()
        return float(net.w2.weight.grad.norm())

    net = build_model("fd4mm", manipulator="linear")
    before = w2_grad(net)
    assert net.calibrate(d) and not net.calibrate(10 * d)  # once only
    after = w2_grad(net)
    assert after > 1e3 * before, (before, after)
    with torch.no_grad():
        c1 = net.manipulate(None, m, 10.0, delta=d) - m
        c2 = net.manipulate(None, m, 10.0, delta=2 * d) - m
    assert float(c2.norm() / c1.norm()) == pytest.approx(2.0, rel=0.05)
    again = build_model("fd4mm", manipulator="linear")
    again.load_state_dict(net.state_dict())
    assert not again.calibrate(d) and torch.equal(again.delta_gain, net.delta_gain)
    fresh = build_model("fd4mm", manipulator="linear")
    fresh.calibrate(d, m)  # the decoder reads L_d at unit scale
    assert float((m * fresh.shape_gain).abs().mean()) == pytest.approx(1.0, rel=1e-3)


def test_vmm_train_records_the_linear_manipulator(tmp_path):
    import argparse

    from napari_vmm.cli.train import add_parser
    from napari_vmm.training.config import config_from_args

    p = add_parser(argparse.ArgumentParser().add_subparsers())
    cfg = config_from_args(p.parse_args(["fd4mm", "--manipulator", "linear", "--decode-twice"]))
    assert cfg.arch == {"decode_twice": True, "manipulator": "linear"}
    with pytest.raises(VMMError, match="sigma_theta, not oh2018"):
        config_from_args(p.parse_args(["oh2018", "--manipulator", "linear"]))


def test_fresh_motion_representation_follows_the_image():
    """With PyTorch's default init L_d was the same for any image (two different frames
    2e-5 apart against |L_d| 0.076), so no motion could reach the manipulator; the
    encoder's variance-preserving init makes it follow the content and the motion."""
    torch.manual_seed(0)
    net = build_model("fd4mm").eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    shifted = torch.roll(x, 1, dims=-1)
    with torch.no_grad():
        _, ld = net.encode(torch.cat([x, shifted]))
    size = float(ld.abs().mean())
    assert float((ld[0] - ld[1]).abs().mean()) > 0.1 * size  # two different images
    assert float((ld[2:] - ld[:2]).abs().mean()) > 0.05 * size  # a 1 px motion


def test_fd4mm_dilated_lowpass_runs_in_float32_under_cpu_bf16():
    """The AFDE unit's dilated depthwise low-pass conv leaves CPU bf16 autocast (its bf16
    backward gave non-finite weight gradients in 3 of 3 short fd4mm runs); the rest of the
    network stays in bf16 and the gradients are finite."""
    unit = FreqSplit(8)
    dtypes = {}
    for name in ("lowpass", "feature"):
        getattr(unit, name).register_forward_hook(
            lambda mod, i, o, name=name: dtypes.__setitem__(name, o.dtype))
    x = torch.randn(2, 8, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        high, low = unit(x)
    assert dtypes == {"lowpass": torch.float32, "feature": torch.bfloat16}
    (high.float().sum() + low.float().sum()).backward()
    assert all(torch.isfinite(p.grad).all() for p in unit.parameters())
