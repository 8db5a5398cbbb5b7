"""Learned magnifiers through magnify(): shapes, dtypes, modes, tiling, describe()."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_vmm.core.errors import VMMError  # noqa: E402
from napari_vmm.core.learned import weights as W  # noqa: E402
from napari_vmm.core.learned.table import build_model  # noqa: E402
from napari_vmm.training.export import save_weights  # noqa: E402


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Untrained (random) weights with provenance, so the tests need no shipped files."""
    d = tmp_path_factory.mktemp("w")
    out = {}
    for name in ("oh2018", "realtime"):
        torch.manual_seed(0)
        pt, _ = save_weights(build_model(name).state_dict(), {"steps": 0}, name, d)
        out[name] = str(pt)
    return out


def _magnify(frames, method, weights, **kw):
    from napari_vmm.core.engine import magnify

    kw.setdefault("mode", "static")
    kw.setdefault("temporal", "none")
    return magnify(frames, fps=30, method=method, alpha=5, band=(1, 5),
                   weights=weights[method], **kw)


@pytest.mark.parametrize("method", ["oh2018", "realtime"])
@pytest.mark.parametrize("shape,dtype", [((3, 21, 35, 3), np.uint8), ((3, 18, 30), np.float32),
                                         ((2, 17, 19, 3), np.uint16)])
def test_shape_and_dtype_preserved(weights, method, shape, dtype):
    rng = np.random.default_rng(0)
    if dtype == np.float32:
        frames = rng.random(shape).astype(dtype)
    else:
        frames = (rng.random(shape) * np.iinfo(dtype).max).astype(dtype)
    out = _magnify(frames, method, weights)
    assert out.shape == frames.shape and out.dtype == frames.dtype


@pytest.mark.parametrize("mode,temporal", [("dynamic", "none"), ("temporal", "butterworth"),
                                           ("temporal", "ideal")])
def test_modes_run(weights, mode, temporal):
    frames = (np.random.default_rng(1).random((5, 36, 40, 3)) * 255).astype(np.uint8)
    out = _magnify(frames, "realtime", weights, mode=mode, temporal=temporal)
    assert out.shape == frames.shape


def test_static_scene_static_mode_reproduces_input_closely_for_identical_frames(weights):
    # identical frames: filtered signal is 0, so the output is the network's reconstruction
    f = np.random.default_rng(2).random((1, 24, 24, 3)).astype(np.float32)
    frames = np.repeat(f, 3, axis=0)
    out = _magnify(frames, "realtime", weights)
    assert np.allclose(out[0], out[1]) and np.allclose(out[0], out[2])


def test_tiled_matches_untiled(weights):
    f = np.random.default_rng(3).random((2, 150, 290, 3)).astype(np.float32)
    a = _magnify(f, "realtime", weights)
    b = _magnify(f, "realtime", weights, net_tile=128)
    assert np.abs(a - b).mean() < 0.01


def test_missing_weights_is_a_vmm_error(tmp_path):
    from napari_vmm.core.engine import magnify

    frames = np.zeros((2, 16, 16), np.float32)
    with pytest.raises(VMMError, match="vmm train"):
        magnify(frames, fps=30, method="oh2018", alpha=5, mode="static", temporal="none",
                weights=str(tmp_path / "oh2018.pt"))


def test_negative_alpha_refused(weights):
    frames = np.zeros((2, 16, 16), np.float32)
    from napari_vmm.core.engine import magnify

    with pytest.raises(VMMError, match="alpha"):
        magnify(frames, fps=30, method="realtime", alpha=-0.5, mode="static", temporal="none",
                weights=weights["realtime"])


def test_available_methods_reports_weights():
    from napari_vmm.core.registry import available_methods

    info = available_methods()
    for name in ("oh2018", "realtime"):
        w = info[name]["weights"]
        assert isinstance(w["available"], bool) and "status" in w
        if w["available"]:
            assert w["status"] in (W.STATUS_FINISHED, W.STATUS_TRAINING, W.STATUS_NOT_USEFUL)
            assert "val_ssim" in w and "steps" in w


@pytest.fixture(scope="module")
def twice_weights(tmp_path_factory):
    """Untrained realtime weights that decode twice (exactly the input at alpha = 0)."""
    torch.manual_seed(1)
    net = build_model("realtime", decode_twice=True)
    pt, _ = save_weights(net.state_dict(), {"steps": 0, "arch": {"decode_twice": True}},
                         "realtime", tmp_path_factory.mktemp("w2"))
    return str(pt)


def test_scale_keeps_the_input_at_alpha_zero(twice_weights):
    from napari_vmm.core.engine import magnify

    f = np.random.default_rng(4).random((3, 26, 34, 3)).astype(np.float32)
    out = magnify(f, fps=30, method="realtime", alpha=0, mode="static", temporal="none",
                  weights=twice_weights, scale=2.0)
    assert out.shape == f.shape and np.abs(out - f).max() < 1e-5


def test_scale_adds_the_reduced_change_of_the_enlarged_clip(twice_weights):
    import torch.nn.functional as F

    from napari_vmm.core.engine import magnify

    f = np.random.default_rng(5).random((3, 24, 32, 3)).astype(np.float32)
    kw = dict(fps=30, method="realtime", alpha=4, mode="static", temporal="none",
              weights=twice_weights)
    out = magnify(f, scale=2.0, **kw)
    t = torch.from_numpy(f).permute(0, 3, 1, 2)
    big = F.interpolate(t, size=(48, 64), mode="bicubic", align_corners=False).clamp(0, 1)
    big_np = big.permute(0, 2, 3, 1).numpy().copy()
    change = torch.from_numpy(magnify(big_np, **kw) - big_np).permute(0, 3, 1, 2)
    small = F.interpolate(change, size=(24, 32), mode="bilinear", align_corners=False,
                          antialias=True)
    expect = (t + small).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    assert np.abs(out - f).mean() > 1e-3  # it magnifies
    np.testing.assert_allclose(out, expect, atol=2e-3)


def test_scale_out_of_range_is_a_vmm_error(weights):
    with pytest.raises(VMMError, match="scale"):
        _magnify(np.zeros((2, 16, 16), np.float32), "realtime", weights, scale=0.5)


def test_scale_with_tiles_matches_without(twice_weights):
    from napari_vmm.core.engine import magnify

    f = np.random.default_rng(6).random((2, 90, 150, 3)).astype(np.float32)
    kw = dict(fps=30, method="realtime", alpha=4, mode="static", temporal="none",
              weights=twice_weights, scale=2.0)
    a = magnify(f, **kw)
    b = magnify(f, net_tile=128, **kw)  # the enlarged 180 x 300 frame in tiles
    assert np.abs(a - f).mean() > 1e-3
    assert np.abs(a - b).mean() < 0.01


def _numpy_view(clip: np.ndarray, transpose: bool, flip_w: bool, flip_h: bool) -> np.ndarray:
    """A (T, H, W, C) clip transposed (H <-> W) and then flipped, as a copy."""
    out = np.swapaxes(clip, 1, 2) if transpose else clip
    out = out[:, :, ::-1] if flip_w else out
    return np.ascontiguousarray(out[:, ::-1] if flip_h else out)


def test_views_average_the_turned_back_outputs_of_each_view(twice_weights):
    from napari_vmm.core.engine import magnify

    f = np.random.default_rng(7).random((12, 20, 28, 3)).astype(np.float32)
    kw = dict(fps=30, method="realtime", alpha=6, band=(2.0, 6.0), temporal="ideal",
              weights=twice_weights)
    out = magnify(f, views=8, **kw)
    expect = np.zeros_like(f)
    for transpose in (False, True):
        for flip_h in (False, True):
            for flip_w in (False, True):
                y = magnify(_numpy_view(f, transpose, flip_w, flip_h), **kw)
                y = y[:, ::-1] if flip_h else y  # undo in reverse order
                y = y[:, :, ::-1] if flip_w else y
                expect += np.swapaxes(y, 1, 2) if transpose else y
    expect /= 8
    single = magnify(f, **kw)
    assert np.abs(single - expect).mean() > 1e-3  # the views really differ
    np.testing.assert_allclose(out, expect, atol=1e-4)


def test_views_keep_the_input_at_alpha_zero_and_grey_shapes(twice_weights):
    from napari_vmm.core.engine import magnify

    f = np.random.default_rng(8).random((3, 18, 30)).astype(np.float32)  # grey, not square
    kw = dict(fps=30, method="realtime", mode="static", temporal="none", weights=twice_weights)
    assert np.abs(magnify(f, alpha=0, views=8, **kw) - f).max() < 1e-5
    out = magnify(f, alpha=5, views=4, scale=1.5, **kw)
    assert out.shape == f.shape and out.dtype == f.dtype and np.abs(out - f).mean() > 1e-3


def test_views_must_be_a_power_of_two_up_to_eight(weights):
    with pytest.raises(VMMError, match="views"):
        _magnify(np.zeros((2, 16, 16), np.float32), "realtime", weights, views=3)


def test_magnify_pair_takes_views(twice_weights):
    from napari_vmm.core.learned.magnifier import magnify_pair

    g = torch.Generator().manual_seed(0)
    a = torch.rand(1, 3, 24, 24, generator=g)
    b = torch.roll(a, 1, dims=-1)
    one = magnify_pair("realtime", a, b, 4.0, weights=twice_weights)
    mirrored = magnify_pair("realtime", a.flip(-1), b.flip(-1), 4.0, weights=twice_weights)
    two = magnify_pair("realtime", a, b, 4.0, weights=twice_weights, views=2)
    assert (one - mirrored.flip(-1)).abs().mean() > 1e-3
    torch.testing.assert_close(two, (one + mirrored.flip(-1)) / 2, atol=1e-5, rtol=0)
