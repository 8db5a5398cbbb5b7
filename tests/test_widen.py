"""Function-preserving growth of trained weights (training/widen.py): a light thesis model
widened into its base variant, new layer inputs started at zero."""

import json

import pytest

torch = pytest.importorskip("torch")

from napari_vmm.core.learned.table import build_model  # noqa: E402
from napari_vmm.training.export import save_weights  # noqa: E402
from napari_vmm.training.widen import LIGHT_OF, grow_inputs, widen_state_dict  # noqa: E402

ARCH = {"lnvmm": {"decode_twice": True},
        "hmn": {"decode_twice": True, "manipulator": "still-gated"}}


def _trained_like(light: str, arch: dict) -> torch.nn.Module:
    """A light model with random weights and norm statistics away from their defaults."""
    torch.manual_seed(1)
    net = build_model(light, **arch)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
        for name, b in net.named_buffers():
            if name.endswith("running_mean"):
                b.normal_(0, 0.1)
            elif name.endswith("running_var"):
                b.uniform_(0.5, 2.0)
    return net.eval()


@pytest.mark.parametrize("base", sorted(LIGHT_OF))
def test_widening_keeps_the_function_and_noise_breaks_the_copies(base):
    light = _trained_like(LIGHT_OF[base], ARCH[base])
    wide = build_model(base, **ARCH[base]).eval()
    xa = torch.rand(2, 3, 32, 32)
    xb = xa.roll(1, -1)
    with torch.no_grad():
        ref = light(xa, xb, 8.0)
        wide.load_state_dict(widen_state_dict(base, light.state_dict(), wide.state_dict(),
                                              noise=0.0))
        assert (wide(xa, xb, 8.0) - ref).abs().max() < 1e-4
        sd = widen_state_dict(base, light.state_dict(), wide.state_dict(), noise=0.01)
        wide.load_state_dict(sd)
        near = (wide(xa, xb, 8.0) - ref).abs().mean()
    assert 0 < near < 0.01
    # the three copies of a narrow channel differ once noise is added
    narrow = light.state_dict()
    name = next(k for k, v in sd.items() if v.ndim == 4 and v.shape[0] > narrow[k].shape[0])
    c = narrow[name].shape[0]
    assert not torch.allclose(sd[name][0], sd[name][c])


def test_vmm_train_starts_lnvmm_from_widened_lnvmm_light(tmp_path):
    from napari_vmm.training.config import TrainConfig
    from napari_vmm.training.train import train

    light = _trained_like("lnvmm_light", ARCH["lnvmm"])
    pt, _ = save_weights(light.state_dict(), {"steps": 40, "arch": ARCH["lnvmm"]},
                         "lnvmm_light", tmp_path / "light")
    cfg = TrainConfig(model="lnvmm", run_dir=str(tmp_path / "wide"), steps=41, batch=1,
                      crop=32, val_every=41, val_n=1, val_size=32, log_every=1,
                      command="test", init=str(pt), arch=dict(ARCH["lnvmm"]))
    assert train(cfg) == 0
    prov = json.loads((tmp_path / "wide" / "export" / "lnvmm.json").read_text())
    assert prov["steps"] == 41 and prov["model"] == "lnvmm"
    assert "lnvmm_light" in prov["init_from"] and "widened" in prov["init_from"]


RIESZ = {"decode_twice": True, "manipulator": "riesz"}


#: each larger σ-θ form, the form it grows from, and the layers it adds at zero
GROWN_FROM = {"riesz-pyramid": ("riesz", []),
              "riesz-directions": ("riesz-pyramid", ["fuse_bands.weight"]),
              "riesz-readout": ("riesz-directions",
                                [f"read_bands.{i}.weight" for i in range(4)])}


@pytest.mark.parametrize("after", list(GROWN_FROM))
def test_riesz_weights_keep_their_function_in_a_larger_sigma_theta_form(after):
    """Riesz weights (two resolutions) in the pyramid form (four: the fusion conv grows by
    zero inputs), pyramid weights in the directions form (the bands' own conv starts at
    zero), and directions weights in the readout form (the bands' image convs start at
    zero): the same function until the new weights train."""
    before, added = GROWN_FROM[after]
    old = _trained_like("sigma_theta", {"decode_twice": True, "manipulator": before})
    new = build_model("sigma_theta", decode_twice=True, manipulator=after).eval()
    xa = torch.rand(2, 3, 64, 64)
    xb = xa.roll(1, -1)
    sd = grow_inputs(old.state_dict(), new.state_dict())
    n_old = old.fuse.weight.shape[1]
    assert torch.equal(sd["fuse.weight"][:, :n_old], old.state_dict()["fuse.weight"])
    assert not sd["fuse.weight"][:, n_old:].any()
    missing = new.load_state_dict(sd, strict=False).missing_keys
    assert missing == added
    new_weights = ([new.get_parameter(k) for k in missing] if missing
                   else [new.fuse.weight[:, n_old:]])
    with torch.no_grad():
        assert (new(xa, xb, 8.0) - old(xa, xb, 8.0)).abs().max() < 1e-4
        m_old = old.manipulate(xa, xb, 8.0)
        c = m_old.shape[1]
        assert (new.manipulate(xa, xb, 8.0)[:, :c] - m_old).abs().max() < 1e-5
        # the new inputs reach the features (the readout's: its image) once trained
        for w in new_weights:
            w.normal_(0, 0.1)
        m_new = new.manipulate(xa, xb, 8.0)
        changed = m_new[:, c:] if after == "riesz-readout" else m_new - m_old
        assert changed.abs().max() > 1e-2


def test_vmm_train_warm_starts_the_pyramid_form_from_riesz_weights(tmp_path):
    from napari_vmm.training.config import TrainConfig
    from napari_vmm.training.train import train

    two = _trained_like("sigma_theta", RIESZ)
    pt, _ = save_weights(two.state_dict(), {"steps": 40, "arch": RIESZ}, "sigma_theta",
                         tmp_path / "two")
    arch = {"decode_twice": True, "manipulator": "riesz-pyramid"}
    cfg = TrainConfig(model="sigma_theta", run_dir=str(tmp_path / "four"), steps=41, batch=1,
                      crop=32, val_every=41, val_n=1, val_size=32, log_every=1,
                      command="test", init=str(pt), arch=dict(arch))
    assert train(cfg) == 0
    prov = json.loads((tmp_path / "four" / "export" / "sigma_theta.json").read_text())
    assert prov["steps"] == 41 and prov["arch"] == arch
