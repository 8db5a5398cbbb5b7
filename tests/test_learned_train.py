"""Training: a few steps run, checkpoint, resume; weights export with a verified checksum."""

import json
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from napari_vmm.core.errors import VMMError  # noqa: E402
from napari_vmm.core.learned import weights as W  # noqa: E402
from napari_vmm.training.config import MODEL_DEFAULTS, TrainConfig  # noqa: E402
from napari_vmm.training.export import save_weights  # noqa: E402
from napari_vmm.training.train import amp_mode_for, train  # noqa: E402


def _cfg(tmp_path, steps):
    return TrainConfig(model="realtime", run_dir=str(tmp_path / "run"), steps=steps, batch=2,
                       crop=32, val_every=2, val_n=2, val_size=32, log_every=1, init="scratch",
                       command="test")


@pytest.mark.parametrize("init", ["auto", "scratch"])
def test_train_checkpoints_and_resumes(tmp_path, init):
    assert train(_cfg(tmp_path, 2)) == 0
    run = tmp_path / "run"
    ck = torch.load(run / "ckpt.pt", weights_only=False)
    assert ck["step"] == 2
    cfg = _cfg(tmp_path, 3)
    # the same command again resumes, whatever its --init names for a new run (a rerun with
    # --init scratch or shipped used to start afresh and overwrite the checkpoint)
    cfg.init, cfg.lr, cfg.command = init, 5e-5, "test --lr 5e-5"  # resume, lower lr
    assert train(cfg) == 0
    assert torch.load(run / "ckpt.pt", weights_only=False)["step"] == 3
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert any("val" in x and "ssim" in x["val"] for x in lines)
    assert [x["step"] for x in lines if "loss" in x] == [1, 2, 3]
    prov = json.loads((run / "export" / "realtime.json").read_text())
    for key in ("command", "seed", "steps", "data_recipe", "wall_time_s", "hardware",
                "validation", "sha256", "status"):
        assert key in prov
    assert prov["status"] == W.training_status(prov["validation"]) != W.STATUS_FINISHED
    # each invocation is its own segment of the history, with its command and lr
    assert [(g["start_step"], g["end_step"], g["lr"], g["command"]) for g in prov["segments"]] \
        == [(0, 2, MODEL_DEFAULTS["realtime"]["lr"], "test"),
            (2, 3, 5e-5, "test --lr 5e-5")]
    sd, _ = W.load_weights("realtime", run / "export")
    assert all(v.dtype == torch.float32 for v in sd.values())


def test_validation_reports_each_subset_beside_the_copy_input_baseline():
    from napari_vmm.core.learned.table import build_model
    from napari_vmm.training.data import DataConfig, generate_batch
    from napari_vmm.training.train import evaluate_val

    torch.manual_seed(0)
    net = build_model("realtime")
    batches = [generate_batch(0, "val", [0, 1], DataConfig(size=32), subset=k) for k in (3, 4)]
    met = evaluate_val(net, batches, torch.device("cpu"))
    assert {k for k in met if k.startswith("ssim_")} == {
        "ssim_input", "ssim_s3", "ssim_input_s3", "ssim_s4", "ssim_input_s4"}
    assert met["ssim"] == pytest.approx((met["ssim_s3"] + met["ssim_s4"]) / 2)
    assert met["ssim_input_s4"] > 0.99  # a static scene: the input is the ground truth


def test_rerun_with_init_weights_resumes_its_own_checkpoint(tmp_path):
    assert train(_cfg(tmp_path, 2)) == 0
    init = str(tmp_path / "run" / "export" / "realtime.pt")
    ft = TrainConfig(**{**vars(_cfg(tmp_path, 4)), "run_dir": str(tmp_path / "ft"), "init": init})
    assert train(ft) == 0  # a new run starts from the weights, at their step
    ft.steps = 5
    assert train(ft) == 0  # the same command again resumes instead of starting over
    assert torch.load(tmp_path / "ft" / "ckpt.pt", weights_only=False)["step"] == 5
    steps = [json.loads(x)["step"] for x in (tmp_path / "ft" / "log.jsonl").read_text()
             .splitlines() if "loss" in json.loads(x)]
    assert steps == [3, 4, 5]


def test_checksum_mismatch_is_a_clear_error(tmp_path):
    from napari_vmm.core.learned.table import build_model

    net = build_model("realtime")
    pt, js = save_weights(net.state_dict(), {"steps": 0}, "realtime", tmp_path)
    W.load_weights("realtime", tmp_path)  # fine
    data = bytearray(pt.read_bytes())
    data[-100] ^= 0xFF
    pt.write_bytes(bytes(data))
    with pytest.raises(VMMError, match="checksum"):
        W.load_weights("realtime", tmp_path)


def test_missing_weights_say_how_to_train(tmp_path):
    with pytest.raises(VMMError, match="vmm train oh2018"):
        W.load_weights("oh2018", tmp_path)


def test_decode_twice_is_the_input_at_alpha_zero_and_validate_only_exports_the_flag(tmp_path):
    from napari_vmm.core.learned.magnifier import load_network
    from napari_vmm.core.learned.table import build_model

    torch.manual_seed(0)
    xa, xb = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    plain = build_model("realtime")
    twice = build_model("realtime", decode_twice=True)
    twice.load_state_dict(plain.state_dict())
    with torch.no_grad():
        assert torch.allclose(twice(xa, xb, 0.0), xb, atol=1e-6)
        assert not torch.allclose(plain(xa, xb, 0.0), xb, atol=1e-2)
        assert not torch.allclose(twice(xa, xb, 5.0), xb, atol=1e-3)  # still magnifies
    import dataclasses

    from napari_vmm.core.learned import table

    plain_spec = dataclasses.replace(table.MODELS["realtime"], decode_twice=False)
    with pytest.MonkeyPatch.context() as mp:  # a model that cannot decode twice refuses it
        mp.setitem(table.MODELS, "realtime", plain_spec)
        with pytest.raises(VMMError, match="decode_twice"):
            build_model("realtime", decode_twice=True)
    # scratch weights, then a flagged export of them without any optimiser step
    assert train(_cfg(tmp_path, 2)) == 0
    src = tmp_path / "run" / "export" / "realtime.pt"
    cfg = TrainConfig(**{**vars(_cfg(tmp_path, 2)), "run_dir": str(tmp_path / "dt"),
                         "init": str(src), "arch": {"decode_twice": True},
                         "validate_only": True})
    assert train(cfg) == 0
    sd0, _ = W.load_weights("realtime", src)
    sd1, prov = W.load_weights("realtime", tmp_path / "dt" / "export")
    assert prov["arch"] == {"decode_twice": True} and prov["steps"] == 2
    assert all(torch.equal(sd0[k], sd1[k]) for k in sd0)
    net = load_network("realtime", torch.device("cpu"), str(tmp_path / "dt" / "export" /
                                                            "realtime.pt"))
    assert net.decode_twice


def test_validation_measures_what_the_motion_path_delivers():
    """SSIM rewards copying the input; motion_gain says how much of the target's change
    (Y - B) the network's change for alpha (net(A, B, alpha) - net(A, B, 0)) delivers."""
    from napari_vmm.training.data import DataConfig, generate_batch
    from napari_vmm.training.train import evaluate_val, to_net

    batches = [generate_batch(0, "val", [0, 1, 2, 3], DataConfig(size=32), subset=3)]

    class Copy(torch.nn.Module):
        def forward(self, xa, xb, amp):
            return xb

    class Oracle(torch.nn.Module):  # delivers the share k of the target's change
        def __init__(self, k):
            super().__init__()
            self.k = k

        def forward(self, xa, xb, amp):
            target = to_net(batches[0]["Y"])
            return xb + self.k * (amp.reshape(-1, 1, 1, 1) > 0) * (target - xb)

    copy = evaluate_val(Copy(), batches, torch.device("cpu"))
    assert copy["motion_gain"] == 0.0 and copy["motion_corr"] == 0.0
    half = evaluate_val(Oracle(0.5), batches, torch.device("cpu"))
    assert half["motion_corr"] == pytest.approx(1.0, abs=1e-3)
    assert half["motion_gain"] == pytest.approx(0.5, abs=1e-3)


def test_motion_alignment_loss_rewards_aim_not_size():
    from napari_vmm.training.losses import motion_alignment_loss

    g = torch.Generator().manual_seed(0)
    base = torch.rand(3, 3, 16, 16, generator=g)
    target = base + 0.1 * torch.randn(3, 3, 16, 16, generator=g)
    target[2] = base[2]  # a static sample is left out
    aimed = motion_alignment_loss(base + 0.01 * (target - base), base, target)
    assert float(aimed) == pytest.approx(0.0, abs=1e-5)  # however small the change
    assert float(motion_alignment_loss(base - (target - base), base, target)) == \
        pytest.approx(2.0, abs=1e-5)
    assert float(motion_alignment_loss(base, base, base)) == 0.0  # nothing moves


def test_motion_gain_loss_asks_for_the_whole_change_along_the_target():
    from napari_vmm.training.losses import motion_gain_loss

    g = torch.Generator().manual_seed(0)
    base = torch.rand(3, 3, 16, 16, generator=g)
    target = base + 0.1 * torch.randn(3, 3, 16, 16, generator=g)
    change = target - base
    assert float(motion_gain_loss(target, base, target)) == pytest.approx(0.0, abs=1e-6)
    assert float(motion_gain_loss(base, base, target)) == pytest.approx(1.0)  # a copy
    assert float(motion_gain_loss(base + 0.5 * change, base, target)) == pytest.approx(0.25)
    # a change across the target's direction earns nothing
    across = torch.randn(3, 3, 16, 16, generator=g)
    across -= (across * change).sum() / (change * change).sum() * change
    assert float(motion_gain_loss(target + across, base, target)) == pytest.approx(0.0, abs=1e-6)
    assert float(motion_gain_loss(base, base, base)) == 0.0  # nothing moves


def test_per_sample_gain_counts_small_motions_like_large_ones():
    from napari_vmm.training.losses import motion_gain_loss

    g = torch.Generator().manual_seed(0)
    base = torch.rand(3, 3, 16, 16, generator=g)
    change = torch.randn(3, 3, 16, 16, generator=g)
    change[0] *= 1.0   # a large motion, delivered in full
    change[1] *= 0.01  # a small one, not delivered at all
    change[2] = 0      # a static sample: left out
    target = base + change
    out = base.clone()
    out[0] = target[0]
    pooled = float(motion_gain_loss(out, base, target))
    assert pooled < 0.001  # the pooled gain is set by the large motion
    assert float(motion_gain_loss(out, base, target, pooling="sample")) == pytest.approx(0.5)
    # weighted by |t_i|: the small motion's miss counts about 0.01 of the large one's
    large, small = float(change[0].norm()), float(change[1].norm())
    assert float(motion_gain_loss(out, base, target, pooling="sqrt-energy")) == \
        pytest.approx(small / (large + small), rel=1e-4)
    out[1] = target[1]
    out[0] = base[0]  # now the large motion is missed: it dominates
    assert float(motion_gain_loss(out, base, target, pooling="sqrt-energy")) == \
        pytest.approx(large / (large + small), rel=1e-4)
    with pytest.raises(ValueError, match="pooling"):
        motion_gain_loss(out, base, target, pooling="mean")


def test_gain_target_leaves_the_input_noise_out():
    """The input is noisy, the target clean: the change to deliver is Y − B_clean, so a
    network that delivers it exactly scores 0 only against the clean base."""
    from napari_vmm.training.losses import motion_gain_loss

    g = torch.Generator().manual_seed(1)
    clean = torch.rand(2, 3, 16, 16, generator=g)
    noisy = clean + 0.2 * torch.randn(2, 3, 16, 16, generator=g)
    target = clean + 0.05 * torch.randn(2, 3, 16, 16, generator=g)
    out = noisy + (target - clean)  # the input, noise and all, plus the whole change
    assert float(motion_gain_loss(out, noisy, target, target_base=clean)) == \
        pytest.approx(0.0, abs=1e-6)
    assert float(motion_gain_loss(out, noisy, target)) > 0.5  # noise counted as change


@pytest.mark.parametrize("flag", ["--motion-weight", "--gain-weight"])
def test_motion_terms_need_decode_twice(flag):
    import argparse

    from napari_vmm.cli.train import add_parser
    from napari_vmm.training.config import config_from_args

    parser = add_parser(argparse.ArgumentParser().add_subparsers())
    ns = parser.parse_args(["fd4mm", flag, "0.1"])
    with pytest.raises(VMMError, match="decode-twice"):
        config_from_args(ns)
    ns = parser.parse_args(["mdlmm", flag, "0.1", "--decode-twice"])
    if flag == "--motion-weight":
        with pytest.raises(VMMError, match="thesis"):
            config_from_args(ns)
    else:  # the thesis stages take the gain term
        assert config_from_args(ns).gain_weight == 0.1
    ns = parser.parse_args(["fd4mm", flag, "0.1", "--decode-twice"])
    cfg = config_from_args(ns)
    assert (cfg.motion_weight, cfg.gain_weight)[flag == "--gain-weight"] == 0.1


def test_kldnas_keeps_decode_twice_beside_its_searched_architecture():
    """kldnas takes its architecture from --init; a --decode-twice beside it must be kept,
    not dropped, and the student then gives back its input at α = 0."""
    import argparse

    from napari_vmm.cli.train import add_parser
    from napari_vmm.core.learned.table import build_model
    from napari_vmm.training.config import config_from_args

    shipped = Path(__file__).parents[1] / "napari_vmm" / "weights" / "kldnas.pt"
    parser = add_parser(argparse.ArgumentParser().add_subparsers())
    cfg = config_from_args(parser.parse_args(["kldnas", "--decode-twice", "--init",
                                              str(shipped)]))
    assert cfg.arch["decode_twice"] and "genotype" in cfg.arch
    net = build_model("kldnas", **cfg.arch).eval()
    xa, xb = torch.rand(2, 1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(net(xa, xb, 0.0), xb, atol=1e-6)
        assert not torch.allclose(net(xa, xb, 20.0), xb, atol=1e-4)


def test_auto_init_goes_on_with_the_shipped_architecture(tmp_path, monkeypatch):
    """Without a checkpoint, --init auto continues the shipped weights with their arch flags
    (decode twice), also when the command names those flags; a flag they lack starts afresh.
    --init shipped with no flags also takes the shipped network (it used to build the default
    one and fail to load the weights)."""
    from napari_vmm.core.learned.table import build_model

    net = build_model("realtime", decode_twice=True, blocks=2)
    save_weights(net.state_dict(), {"steps": 7, "arch": {"decode_twice": True, "blocks": 2}},
                 "realtime", tmp_path / "shipped")
    monkeypatch.setattr(W, "WEIGHTS_DIR", tmp_path / "shipped")

    def run(name: str, init: str = "auto", **arch) -> dict:
        cfg = _cfg(tmp_path / name, 8)
        cfg.init, cfg.arch = init, arch
        assert train(cfg) == 0
        return json.loads((tmp_path / name / "run" / "export" / "realtime.json").read_text())

    plain = run("plain")
    assert plain["init_from"] != "scratch"
    assert plain["arch"] == {"decode_twice": True, "blocks": 2}
    named = run("named", decode_twice=True)
    assert named["init_from"] != "scratch" and named["arch"]["decode_twice"] is True
    other = run("other", blocks=3)  # not what ships: a new network from scratch
    assert other["init_from"] == "scratch" and other["arch"] == {"blocks": 3}
    shipped = run("shipped", init="shipped")  # the shipped network, not the default one
    assert shipped["init_from"] != "scratch"
    assert shipped["arch"] == {"decode_twice": True, "blocks": 2}


def test_snapshot_force_ships_only_a_named_run(tmp_path, monkeypatch):
    """``train_snapshot.py --force`` ships a named run's export even when its validation
    SSIM is lower (a choice made on the test tables), and refuses without a named run."""
    import importlib.util

    from napari_vmm.core.learned.table import build_model

    spec = importlib.util.spec_from_file_location(
        "train_snapshot", Path(__file__).resolve().parents[1] / "scripts" / "train_snapshot.py")
    snap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(snap)
    net = build_model("realtime", blocks=2)
    save_weights(net.state_dict(), {"steps": 9, "arch": {"blocks": 2},
                                    "validation": {"ssim": 0.9, "ssim_input": 0.8}},
                 "realtime", tmp_path / "shipped")
    save_weights(net.state_dict(), {"steps": 11, "arch": {"blocks": 2},
                                    "validation": {"ssim": 0.85, "ssim_input": 0.8}},
                 "realtime", tmp_path / "run" / "export")
    monkeypatch.setattr(W, "WEIGHTS_DIR", tmp_path / "shipped")
    monkeypatch.setattr(snap, "ROOT", tmp_path)
    with pytest.raises(SystemExit, match="named run"):
        snap.ship("realtime", None, force=True)
    assert snap.ship("realtime", "run") == []  # lower SSIM: not shipped without --force
    assert snap.ship("realtime", "run", force=True)
    assert W.read_provenance("realtime")["steps"] == 11


def test_a_run_with_a_per_sample_gain_pooling_records_it(tmp_path):
    cfg = TrainConfig(**{**vars(_cfg(tmp_path, 2)), "arch": {"decode_twice": True},
                         "gain_weight": 0.3, "gain_pooling": "sqrt-energy"})
    assert train(cfg) == 0
    prov = json.loads((tmp_path / "run" / "export" / "realtime.json").read_text())
    assert prov["loss"]["motion_gain"] == 0.3
    assert prov["loss"]["motion_gain_pooling"] == "sqrt-energy"
    assert prov["loss"]["motion_gain_target"] == "clean input"
    logged = [json.loads(line) for line in
              (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any("gain" in r for r in logged if "loss" in r)


def test_data_overrides_change_the_training_recipe_only(tmp_path):
    ref = TrainConfig(**{**vars(_cfg(tmp_path, 1)), "run_dir": str(tmp_path / "ref")})
    cfg = TrainConfig(**{**vars(_cfg(tmp_path, 1)), "data": {"p_log_motion": 0.6}})
    assert train(ref) == 0 and train(cfg) == 0
    prov = json.loads((tmp_path / "run" / "export" / "realtime.json").read_text())
    base = json.loads((tmp_path / "ref" / "export" / "realtime.json").read_text())
    assert prov["data_recipe"]["p_log_motion"] == 0.6
    assert base["data_recipe"]["p_log_motion"] == 0.3
    assert prov["segments"][-1]["data"] == {"p_log_motion": 0.6}
    # the same validation set: the copy-the-input score does not depend on the training data
    assert prov["validation"]["ssim_input"] == base["validation"]["ssim_input"]
    for bad, match in (({"colour": 1.0}, "unknown --data"), ({"p_gray": 2.0}, "out of range")):
        with pytest.raises(VMMError, match=match):
            TrainConfig(model="realtime", data=bad).resolve()


def test_gain_pooling_flags_map_onto_the_config(tmp_path, capsys):
    from napari_vmm.cli import build_parser, main
    from napari_vmm.training.config import config_from_args

    def cfg(*flags):
        ns = build_parser().parse_args(["train", "realtime", "--run-dir", str(tmp_path), *flags])
        return config_from_args(ns)

    assert cfg("--decode-twice", "--gain-weight", "0.3").gain_pooling == "batch"
    assert cfg("--decode-twice", "--gain-weight", "0.3",
               "--gain-pooling", "sqrt-energy").gain_pooling == "sqrt-energy"
    assert cfg("--decode-twice", "--gain-weight", "0.3", "--gain-per-sample").gain_pooling \
        == "sample"
    # without the gain term the pooling means nothing: one message, non-zero exit
    assert main(["train", "realtime", "--run-dir", str(tmp_path / "r"),
                 "--gain-pooling", "sample"]) != 0
    assert "--gain-pooling needs --gain-weight" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_resumed_run_keeps_the_architecture_of_its_checkpoint(tmp_path):
    """A run started with an architecture flag (or from shipped weights that carry one)
    resumes with it when the rerun command leaves the flag out; a flag that contradicts the
    checkpoint is one message, not a state-dict error."""
    first = TrainConfig(**{**vars(_cfg(tmp_path, 1)), "arch": {"decode_twice": True}})
    assert train(first) == 0
    assert train(_cfg(tmp_path, 2)) == 0  # no flag: the checkpoint's network goes on
    ck = torch.load(tmp_path / "run" / "ckpt.pt", weights_only=False)
    assert ck["step"] == 2 and ck["config"]["arch"] == {"decode_twice": True}
    clash = TrainConfig(**{**vars(_cfg(tmp_path, 3)), "arch": {"decode_twice": False}})
    with pytest.raises(VMMError, match="new --run-dir"):
        train(clash)


def test_bf16_training_on_the_cpu(tmp_path):
    """--amp bf16 autocasts on a CPU too (auto stays float32 there), the loss stays finite and
    the provenance records it; fp16 is refused without CUDA."""
    cpu = torch.device("cpu")
    assert amp_mode_for(cpu, "auto") == "off" and amp_mode_for(cpu, "bf16") == "bf16"
    assert amp_mode_for(torch.device("cuda"), "auto") == "bf16"
    with pytest.raises(VMMError, match="fp16 needs CUDA"):
        amp_mode_for(cpu, "fp16")
    cfg = _cfg(tmp_path, 2)
    cfg.amp = "bf16"
    assert train(cfg) == 0
    prov = json.loads((tmp_path / "run" / "export" / "realtime.json").read_text())
    assert "amp bf16" in json.dumps(prov)
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["loss"]) for r in rows if "loss" in r)


def test_lr_scale_trains_a_named_layer_faster_and_is_recorded(tmp_path, capsys):
    """``--lr-scale PREFIX=FACTOR``: those parameters step at FACTOR times the lr (warm-up
    included); the provenance records it; a resume without it, a prefix naming nothing and a
    bad factor are one message each."""
    from napari_vmm.cli import build_parser, main
    from napari_vmm.core.learned.table import build_model
    from napari_vmm.training.config import config_from_args

    first = next(n for n, _ in build_model("realtime").named_parameters()).split(".")[0]
    cfg = TrainConfig(**{**vars(_cfg(tmp_path, 2)), "lr_scale": {first: 10.0}})
    assert train(cfg) == 0
    groups = torch.load(tmp_path / "run" / "ckpt.pt", weights_only=False)["opt"]["param_groups"]
    assert len(groups) == 2
    assert groups[0]["lr"] == pytest.approx(10 * groups[1]["lr"]) and groups[1]["lr"] > 0
    prov = json.loads((tmp_path / "run" / "export" / "realtime.json").read_text())
    assert prov["optimizer"]["lr_scale"] == {first: 10.0}
    assert prov["segments"][-1]["lr_scale"] == {first: 10.0}
    with pytest.raises(VMMError, match="other --lr-scale groups"):
        train(_cfg(tmp_path, 3))
    nothing = TrainConfig(**{**vars(_cfg(tmp_path, 1)), "run_dir": str(tmp_path / "x"),
                             "lr_scale": {"no_such_layer": 10.0}})
    with pytest.raises(VMMError, match="names no parameter of the network; its modules: "):
        train(nothing)
    ns = build_parser().parse_args(["train", "realtime", "--lr-scale", f"{first}=3",
                                    "--run-dir", str(tmp_path / "y")])
    assert config_from_args(ns).lr_scale == {first: 3.0}
    for flag, message in (("x=fast", "--lr-scale takes PREFIX=NUMBER"),
                          ("x=0", "a factor in (0, 1000]")):
        assert main(["train", "realtime", "--lr-scale", flag,
                     "--run-dir", str(tmp_path / "z")]) != 0
        assert message in capsys.readouterr().err
    assert not (tmp_path / "z").exists()
    assert main(["train", "kldnas", "--lr-scale", "cells=2", "--run-dir",
                 str(tmp_path / "k")]) != 0
    assert "--lr-scale applies to training, not the KL-DNAS search" in capsys.readouterr().err
