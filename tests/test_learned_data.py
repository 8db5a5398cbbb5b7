"""Synthetic training data: determinism, splits, subset semantics."""

import pytest

torch = pytest.importorskip("torch")

from napari_vmm.training.data import (  # noqa: E402
    DataConfig,
    add_poisson_noise,
    generate_batch,
    generate_sample,
)

CFG = DataConfig(size=48)


def test_deterministic_from_seed_split_index():
    a = generate_sample(3, "train", 7, CFG)
    b = generate_sample(3, "train", 7, CFG)
    for k in "ABCY":
        assert torch.equal(a[k], b[k])
    assert a["alpha"] == b["alpha"] and a["subset"] == b["subset"]


def test_validation_split_differs_from_training():
    a = generate_sample(0, "train", 0, CFG)
    b = generate_sample(0, "val", 0, CFG)
    assert not torch.equal(a["A"], b["A"])


def test_sample_shapes_ranges_and_quantisation():
    s = generate_sample(0, "train", 1, CFG)
    for k in "ABCY":
        t = s[k]
        assert t.shape == (3, 48, 48) and t.dtype == torch.float32
        assert float(t.min()) >= 0 and float(t.max()) <= 1
        assert torch.allclose(t * 255, torch.round(t * 255), atol=1e-3)  # 8-bit levels
    assert 0 < s["alpha"] <= 100


@pytest.mark.parametrize("index", range(4))
def test_motion_bounds(index):
    s = generate_sample(1, "train", index, CFG)
    a = s["alpha"]
    for d in [s["motion"]["background"], *s["motion"]["objects"]]:
        mag = (d[0] ** 2 + d[1] ** 2) ** 0.5
        assert mag <= 10 + 1e-9
        assert (1 + a) * mag <= 30 + 1e-6


def test_static_scene_has_no_motion():
    s = generate_sample(0, "train", 2, CFG, subset=4)
    assert s["motion"]["background"] == [0.0, 0.0]
    assert all(d == [0.0, 0.0] for d in s["motion"]["objects"])
    # A, C and the (unperturbed) magnified frame differ by quantisation dither only
    assert float((s["A"] - s["C"]).abs().max()) <= 1.5 / 255


def test_subset_semantics():
    bg_only = generate_sample(0, "train", 3, CFG, subset=3)
    assert bg_only["motion"]["objects"] == []
    assert bg_only["motion"]["background"] != [0.0, 0.0]
    fg_only = generate_sample(0, "train", 3, CFG, subset=5)
    assert fg_only["motion"]["background"] == [0.0, 0.0]
    assert len(fg_only["motion"]["objects"]) >= 1


def test_batch_and_poisson_noise():
    b = generate_batch(0, "train", range(3), CFG)
    assert b["A"].shape == (3, 3, 48, 48) and b["alpha"].shape == (3,)
    x = b["A"] * 2 - 1
    g = torch.Generator().manual_seed(0)
    y = add_poisson_noise(x, g)
    assert y.shape == x.shape
    assert 0 < float((y - x).std()) < 0.05
