"""The denoised pass-through of decode-twice networks (napari_vmm.core.learned.passthrough and
the learned magnifiers' ``denoise`` option)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_vmm.core.errors import VMMError  # noqa: E402
from napari_vmm.core.learned.passthrough import noise_sigma, wiener_pass_through  # noqa: E402
from napari_vmm.core.learned.table import build_model  # noqa: E402
from napari_vmm.training.export import save_weights  # noqa: E402


def _texture(h=96, w=96, seed=0) -> torch.Tensor:
    """A clean frame with edges, gradients and fine texture: (1, 3, h, w) in [−1, 1]."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = 0.6 * torch.sin(9 * xx + 4 * yy) * (xx > 0.4) + 0.3 * yy
    blobs = torch.rand(1, 1, h, w, generator=g)
    for _ in range(3):  # smooth blobs of a few pixels, not pixel noise
        blobs = torch.nn.functional.avg_pool2d(blobs, 7, 1, 3, count_include_pad=False)
    img = (base + (blobs - 0.5) * 8.0).clamp(-1, 1)
    return img.expand(1, 3, h, w).contiguous()


@pytest.mark.parametrize("sigma", [0.02, 0.05, 0.1])
def test_noise_sigma_reads_the_added_noise_not_the_texture(sigma):
    clean = _texture()
    noisy = clean + sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    est = float(noise_sigma(noisy))
    assert est == pytest.approx(sigma, rel=0.15)
    assert float(noise_sigma(clean)) < 0.2 * 0.02  # texture and edges are not noise


def test_wiener_pass_through_keeps_a_clean_frame_and_cleans_a_noisy_one():
    clean = _texture()
    blurred = torch.nn.functional.avg_pool2d(clean, 3, 1, 1)  # a reconstruction that lost detail
    # noise-free: the frame itself, whatever the reconstruction
    assert torch.allclose(wiener_pass_through(clean, blurred, torch.zeros(1, 1, 1, 1)), clean,
                          atol=1e-5)
    noisy = clean + 0.05 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(2))
    out = wiener_pass_through(noisy, blurred, noise_sigma(noisy))
    err_in, err_out = (noisy - clean).pow(2).mean(), (out - clean).pow(2).mean()
    assert err_out < 0.5 * err_in
    assert (blurred - clean).pow(2).mean() > 0  # ... and it beats the reconstruction alone:
    assert err_out < (blurred - clean).pow(2).mean() + err_in * 0.5


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    d = tmp_path_factory.mktemp("w")
    out = {}
    for name, twice in (("plain", False), ("twice", True)):
        torch.manual_seed(0)
        net = build_model("realtime", decode_twice=twice)
        prov = {"steps": 0, "arch": {"decode_twice": True} if twice else {}}
        pt, _ = save_weights(net.state_dict(), prov, "realtime", d / name)
        out[name] = str(pt)
    return out


def _magnify(frames, weights, **kw):
    from napari_vmm.core.engine import magnify

    return magnify(frames, fps=30, method="realtime", alpha=5, mode="static",
                   temporal="none", weights=weights, **kw)


def test_denoise_needs_weights_that_decode_twice(weights):
    frames = np.zeros((2, 32, 32), np.float32)
    with pytest.raises(VMMError, match="decode twice"):
        _magnify(frames, weights["plain"], denoise=True)


def test_denoise_with_a_useless_reconstruction_leaves_the_frame(weights):
    """Untrained weights reconstruct nothing like the frame: the residual is all structure,
    so the Wiener filter keeps it and the output stays the decode-twice one."""
    rng = np.random.default_rng(0)
    clean = (_texture(64, 64)[0, 0].numpy() + 1) / 2
    frames = np.clip(clean + rng.normal(0, 0.01, (3, 64, 64)), 0, 1).astype(np.float32)
    a = _magnify(frames, weights["twice"])
    b = _magnify(frames, weights["twice"], denoise=True)
    assert np.abs(a - b).mean() < 0.003


def test_denoise_cleans_noisy_frames_with_the_shipped_weights():
    from napari_vmm.core.learned import weights as W

    try:
        _, prov = W.load_weights("realtime", None)
    except VMMError:
        pytest.skip("no shipped realtime weights")
    if not (prov.get("arch") or {}).get("decode_twice"):
        pytest.skip("the shipped realtime weights decode once")
    rng = np.random.default_rng(1)
    clean = np.repeat(((_texture(96, 96)[0, 0].numpy() + 1) / 2)[None], 4, axis=0)
    noisy = np.clip(clean + rng.normal(0, 0.05, clean.shape), 0, 1).astype(np.float32)
    off = _magnify(noisy, "", net_tile=2048)
    on = _magnify(noisy, "", denoise=True)
    tiled = _magnify(noisy, "", denoise=True, net_tile=128)

    def err(x):
        return float(np.mean((x[1:] - clean[1:]) ** 2))

    # the pass-through noise goes; the noise of the frame differences, magnified ×5 in the
    # change, stays (measured 0.57)
    assert err(on) < 0.7 * err(off)
    assert np.abs(tiled - on).mean() < 0.01  # one noise level per frame across tiles
