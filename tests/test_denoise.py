"""The ``denoise`` option of every method (napari_vmm.core.denoise and the pipeline)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_vmm.core.denoise import denoise_frames, noise_sigma  # noqa: E402
from napari_vmm.core.errors import VMMError  # noqa: E402


def _texture(h=96, w=96, seed=0) -> torch.Tensor:
    """A clean frame with edges, gradients and smooth blobs: (1, 3, h, w) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = 0.3 * torch.sin(9 * xx + 4 * yy) * (xx > 0.4) + 0.15 * yy
    blobs = torch.rand(1, 1, h, w, generator=g)
    for _ in range(3):  # smooth blobs of a few pixels, not pixel noise
        blobs = torch.nn.functional.avg_pool2d(blobs, 7, 1, 3, count_include_pad=False)
    img = (0.5 + base + (blobs - 0.5) * 4.0).clamp(0, 1)
    return img.expand(1, 3, h, w).contiguous()


def _noisy(clean: torch.Tensor, sigma: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return clean + sigma * torch.randn(clean.shape, generator=g)


@pytest.mark.parametrize("sigma", [0.01, 0.025, 0.05])
def test_noise_sigma_reads_the_added_noise_not_the_texture(sigma):
    clean = _texture()
    est = noise_sigma(_noisy(clean, sigma))
    assert est.shape == (1, 3, 1, 1)
    assert est.flatten().tolist() == pytest.approx([sigma] * 3, rel=0.15)
    assert float(noise_sigma(clean).max()) < 0.002  # texture and edges are not noise


def test_denoise_frames_keeps_clean_frames_and_cleans_noisy_ones():
    clean = _texture()
    assert float((denoise_frames(clean) - clean).abs().mean()) < 0.002
    for sigma in (0.025, 0.05):
        noisy = _noisy(clean, sigma)
        err_in = float((noisy - clean).pow(2).mean())
        err_out = float((denoise_frames(noisy) - clean).pow(2).mean())
        assert err_out < 0.35 * err_in, (sigma, err_out / err_in)
    tiny = torch.rand(1, 1, 2, 2)
    assert torch.equal(denoise_frames(tiny), tiny)  # too small to filter: as it is


def _clip(sigma: float, t: int = 12, size: int = 64, seed: int = 0) -> tuple[np.ndarray, ...]:
    """A textured frame whose right half moves by a 0.3 px sinusoid, clean and noisy."""
    clean0 = _texture(size, size + 8)[0, 0].numpy()
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(t):
        shift = 0.3 * np.sin(2 * np.pi * k / 6)
        f = clean0[:, 4:-4].copy()
        cols = np.arange(size // 2, size)
        f[:, size // 2:] = np.array([np.interp(cols + 4 - shift, np.arange(size + 8), row)
                                     for row in clean0])
        frames.append(f)
    clean = np.stack(frames).astype(np.float32)
    noisy = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 1).astype(np.float32)
    return clean, noisy


def _magnify(frames, **kw):
    from napari_vmm.core.engine import magnify

    kw.setdefault("method", "phase")
    return magnify(frames, fps=30, alpha=4, band=(3, 7), temporal="ideal", **kw)


@pytest.mark.parametrize("method", ["phase", "linear", "riesz"])
def test_denoise_option_keeps_the_motion_and_removes_the_frame_noise(method):
    clean, noisy = _clip(0.04)
    off = _magnify(noisy, method=method)
    on = _magnify(noisy, method=method, denoise=True)
    ref = _magnify(clean, method=method)
    # the change is the same: only the pass-through frame differs
    assert np.abs((on - off) - (denoise_frames(torch.from_numpy(noisy)[:, None])[:, 0].numpy()
                                - noisy)).mean() < 0.02
    # what remains is the noise of the change (phase amplifies it most: measured 0.72)
    err_off, err_on = (float(np.mean((o - ref) ** 2)) for o in (off, on))
    assert err_on < 0.8 * err_off, (err_on, err_off)


def test_denoise_on_clean_frames_changes_little_and_tiles_agree():
    clean, _ = _clip(0.0)
    off = _magnify(clean)
    on = _magnify(clean, denoise=True)
    assert np.abs(on - off).mean() < 0.003
    _, noisy = _clip(0.03, size=96)
    whole = _magnify(noisy, denoise=True)
    tiled = _magnify(noisy, denoise=True, tile_size=48)
    assert np.abs(whole - tiled).mean() < 0.01


def test_denoise_is_a_checked_option_of_every_method():
    from napari_vmm.core.registry import available_methods, resolve_options

    methods = available_methods()
    assert all(info["options"]["denoise"]["default"] is False for info in methods.values())
    assert resolve_options("linear", {"denoise": "yes"})["denoise"] is True
    with pytest.raises(VMMError, match="denoise"):
        resolve_options("phase", {"denoise": "maybe"})


def test_denoise_with_uint8_colour_keeps_dtype_and_shape():
    rng = np.random.default_rng(0)
    frames = (rng.random((6, 40, 48, 3)) * 255).astype(np.uint8)
    out = _magnify(frames, method="linear", denoise=True)
    assert out.shape == frames.shape and out.dtype == np.uint8
