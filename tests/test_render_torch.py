"""The batched torch renderer against the per-sample CPU generator (the reference).

Both draw the same recipe from different random streams, so they are compared in
distribution: scene parameters (subset mix, alpha, motion), image statistics, and the motion
that the frames really show (phase correlation).
"""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
stats = pytest.importorskip("scipy.stats")

from napari_vmm.core.errors import VMMError  # noqa: E402
from napari_vmm.training.data import DataConfig, generate_batch, generate_sample  # noqa: E402
from napari_vmm.training.render_torch import (  # noqa: E402
    render_batch,
    sample_scene_params,
    scene_draw,
)

# no photographs: fast (the photo bank is covered by the default-recipe test below)
FAST = DataConfig(size=48, texture_weights={"fractal": 0.3, "shapes": 0.3, "stripes": 0.2,
                                            "gradient": 0.2})


def _cpu_params(n: int, size: int = 16):
    """alpha, subset and moving-layer motion magnitudes of n CPU samples (tiny crops)."""
    cfg = DataConfig(size=size, texture_weights={"gradient": 1.0})
    alpha, subset, mags = [], [], []
    for i in range(n):
        s = generate_sample(11, "train", i, cfg)
        alpha.append(s["alpha"])
        subset.append(s["subset"])
        for d in [s["motion"]["background"], *s["motion"]["objects"]]:
            if d != [0.0, 0.0]:
                mags.append(math.hypot(*d))
    return np.array(alpha), np.array(subset), np.array(mags)


def test_batch_keys_shapes_levels_and_determinism():
    a = render_batch(3, "train", 7, 3, FAST)
    b = render_batch(3, "train", 7, 3, FAST)
    c = render_batch(3, "train", 8, 3, FAST)
    ref = generate_batch(3, "train", range(1), FAST)
    assert set(ref) <= set(a)
    for k in "ABCY":
        assert a[k].shape == (3, 3, 48, 48) and a[k].dtype == torch.float32
        assert torch.equal(a[k], b[k])
        assert float(a[k].min()) >= 0 and float(a[k].max()) <= 1
        assert torch.allclose(a[k] * 255, torch.round(a[k] * 255), atol=1e-3)  # 8-bit levels
    assert not torch.equal(a["A"], c["A"])
    assert a["alpha"].shape == (3,) and a["subset"].shape == (3,)


def test_scene_parameters_agree_with_the_cpu_generator():
    n = 20000
    p = sample_scene_params(scene_draw(0, "train", 0), n, DataConfig())
    w = np.bincount(p["subset"].numpy(), minlength=6)[1:]
    assert stats.chisquare(w, np.full(5, n / 5)).pvalue > 1e-3
    al = p["alpha"].numpy()
    assert al.min() >= 0.05 and al.max() <= 100
    assert abs((al < 1).mean() - 0.1) < 0.015
    mot = [p["motion_bg"], *p["motion_obj"].unbind(1)]
    for d in mot:  # the bounds of the recipe
        mag = d.norm(dim=-1)
        assert float(mag.max()) <= 10 + 1e-5
        assert float(((1 + p["alpha"]) * mag).max()) <= 30 + 1e-4
    # static layers: subset 4 moves nothing, 3 has no objects, 5 has a static background
    sub = p["subset"]
    assert float(p["motion_bg"][sub >= 4].abs().max()) == 0
    assert float(p["motion_obj"][sub == 4].abs().max()) == 0
    assert int(p["n_objects"][sub == 3].max()) == 0 and int(p["n_objects"][sub != 3].min()) >= 2
    # the same distributions as the per-sample generator (two-sample KS tests)
    ca, cs, cm = _cpu_params(80)
    assert stats.ks_2samp(al, ca).pvalue > 1e-3
    mags = torch.cat([d.norm(dim=-1)[m] for d, m in
                      [(p["motion_bg"], sub <= 3)]
                      + [(p["motion_obj"][:, j], p["obj_valid"][:, j] & ((sub <= 2) | (sub == 5)))
                         for j in range(p["obj_valid"].shape[1])]]).numpy()
    assert stats.ks_2samp(mags, cm).pvalue > 1e-3
    assert set(cs.tolist()) <= {1, 2, 3, 4, 5}
    # a skewed subset mix is followed
    q = sample_scene_params(scene_draw(0, "train", 1), 2000,
                            DataConfig(subset_weights=(1, 0, 0, 0, 3)))
    assert set(q["subset"].tolist()) == {1, 5} and abs((q["subset"] == 5).float().mean()
                                                      - 0.75) < 0.04


def test_image_statistics_agree_with_the_cpu_generator():
    cfg = DataConfig(size=48)  # the default recipe, photographs included
    t = render_batch(1, "train", 0, 16, cfg)
    c = generate_batch(1, "train", range(16), cfg)

    def st(x):
        a, b, cc, y = (x[k] for k in "ABCY")
        return np.array([float(a.mean()), float(a.std()),
                         float((a - a.mean(1, keepdim=True)).abs().mean()),  # colour
                         float((a[..., 1:] - a[..., :-1]).abs().mean()),  # texture
                         float((b - cc).abs().mean()),   # colour perturbation C -> B'
                         float((y - b).abs().mean() > 0)])   # Y' differs from B'
    ts, cs = st(t), st(c)  # (the motion statistics are checked on the parameters above)
    assert abs(ts[0] - cs[0]) < 0.06 and abs(ts[1] - cs[1]) < 0.06, (ts, cs)
    assert np.all(ts[2:] > 0.5 * cs[2:]) and np.all(ts[2:] < 2 * cs[2:]), (ts, cs)


def test_batched_compositing_matches_the_per_object_slices(monkeypatch):
    import napari_vmm.training.render_torch as rt

    a = render_batch(4, "train", 0, 4, FAST, subset=1)
    monkeypatch.setattr(rt, "SLICE_DEVICES", ())  # the CUDA path, on the CPU
    b = render_batch(4, "train", 0, 4, FAST, subset=1)
    assert int(a["n_objects"].sum()) >= 4
    for k in "ABCY":  # equal up to float rounding before the 8-bit quantisation
        assert float((a[k] - b[k]).abs().max()) <= 1 / 255 + 1e-6
        assert float((a[k] != b[k]).float().mean()) < 0.01


def test_static_scene_differs_by_dither_only():
    b = render_batch(0, "train", 2, 3, FAST, subset=4)
    assert int(b["n_objects"].min()) >= 1
    assert float((b["A"] - b["C"]).abs().max()) <= 1.5 / 255
    assert float(b["motion_bg"].abs().max()) == 0 and float(b["motion_obj"].abs().max()) == 0


def test_y_shows_the_motion_magnified_by_one_plus_alpha():
    reg = pytest.importorskip("skimage.registration")
    cfg = DataConfig(size=64, texture_weights={"fractal": 1.0}, p_gray=0.0)
    b = render_batch(5, "train", 0, 12, cfg, subset=3)  # one moving layer: the background

    def shift(x, y):  # displacement of y relative to x, (dy, dx)
        s, _, _ = reg.phase_cross_correlation(x.mean(0).numpy(), y.mean(0).numpy(),
                                              upsample_factor=20)
        return -np.asarray(s)

    checked = 0
    for i in range(12):
        d, a = b["motion_bg"][i].numpy(), float(b["alpha"][i])
        if not 0.5 <= np.hypot(*d) <= 12 / (1 + a):  # measurable in a 64² window
            continue
        assert np.abs(shift(b["A"][i], b["C"][i]) - d).max() < 0.2
        assert np.abs(shift(b["A"][i], b["Y"][i]) - (1 + a) * d).max() < 0.2 + 0.05 * (1 + a)
        checked += 1
    assert checked >= 3


def test_train_stream_renders_on_the_device_and_records_it(tmp_path):
    import json

    from napari_vmm.training.config import TrainConfig
    from napari_vmm.training.train import train

    with pytest.raises(VMMError, match="renderer"):
        TrainConfig(model="realtime", renderer="gpu").resolve()
    cfg = TrainConfig(model="realtime", run_dir=str(tmp_path / "run"), steps=1, batch=2,
                      crop=32, val_every=1, val_n=2, val_size=32, log_every=1, init="scratch",
                      command="test", renderer="torch", device="cpu")
    assert train(cfg) == 0
    prov = json.loads((tmp_path / "run" / "export" / "realtime.json").read_text())
    assert prov["data_recipe"]["renderer"] == "torch"
    assert prov["data_recipe"]["generator"].endswith("render_torch.render_batch")
    assert prov["segments"][-1]["renderer"] == "torch"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_renders_on_cuda():
    a = render_batch(0, "train", 0, 8, DataConfig(size=64), "cuda")
    b = render_batch(0, "train", 0, 8, DataConfig(size=64), "cuda")
    assert a["A"].device.type == "cuda" and torch.equal(a["Y"], b["Y"])
