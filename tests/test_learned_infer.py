"""Fast CPU inference of ``realtime`` (napari_vmm.core.learned.infer): the fused float32 path is
the network's arithmetic, the bfloat16 decoder stays within a fraction of a grey level."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_vmm.core.errors import VMMError  # noqa: E402
from napari_vmm.core.learned import infer  # noqa: E402
from napari_vmm.core.learned import weights as W  # noqa: E402
from napari_vmm.core.learned.magnifier import RealtimeMagnifier  # noqa: E402
from napari_vmm.core.learned.table import build_model  # noqa: E402
from napari_vmm.training.export import save_weights  # noqa: E402

BABY = Path(__file__).resolve().parents[2] / "shared" / "videos" / "baby.mp4"
CPU = torch.device("cpu")
needs_fused = pytest.mark.skipif(
    infer.fused_decoder(build_model("realtime"), "realtime", CPU, torch.float32) is None,
    reason="this PyTorch has no oneDNN fused convolutions")
# a CPU without native bfloat16 may have the float32 fused variant but not this one
needs_fused_bf16 = pytest.mark.skipif(
    infer.fused_decoder(build_model("realtime"), "realtime", CPU, torch.bfloat16) is None,
    reason="this PyTorch or CPU has no oneDNN fused bfloat16 convolutions")


def _net(decode_twice: bool, blocks: int = 4):
    torch.manual_seed(0)
    net = build_model("realtime", decode_twice=decode_twice, blocks=blocks).eval()
    for p in net.parameters():  # random weights large enough that every layer matters
        p.data.normal_(0, 0.06)
    return net.to(memory_format=torch.channels_last)


def _inputs(net, n=2, h=40, w=56):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, 3, h, w, generator=g) * 2 - 1
    v, m = net.encode(x.contiguous(memory_format=torch.channels_last))
    d = torch.randn(m.shape, generator=g) * 0.05
    cl = torch.channels_last
    return (v.contiguous(memory_format=cl), m.contiguous(memory_format=cl),
            d.contiguous(memory_format=cl), x)


@needs_fused
@pytest.mark.parametrize("decode_twice", [False, True])
@pytest.mark.parametrize("images_per_pass", [1, 3, 100])  # 4 images when decoding twice
def test_fused_float32_is_the_networks_arithmetic(decode_twice, images_per_pass, monkeypatch):
    net = _net(decode_twice)
    monkeypatch.setattr(infer, "BLOCK_PIXELS", images_per_pass * (40 // 4) * (56 // 4))
    v, m, d, x = _inputs(net)
    fused = infer.fused_decoder(net, "realtime", CPU, torch.float32)
    assert fused is not None
    with torch.inference_mode():
        ref = net.magnified(v, m, d, 7.0, x)
        out = fused.magnified(v, m, d, 7.0, x if decode_twice else None)
        v0 = v.clone()
        fused.magnified(v, m, d, 7.0, x if decode_twice else None)
    assert out.shape == ref.shape and out.dtype == torch.float32
    err = (out - ref).abs().max() / ref.abs().max()
    assert err < 1e-5, err
    assert torch.equal(v, v0)  # the in-place residual adds never touch the caller's tensors


@needs_fused_bf16
def test_fused_decode_twice_gives_back_the_input_at_zero_motion():
    net = _net(True)
    v, m, _, x = _inputs(net)
    fused = infer.fused_decoder(net, "realtime", CPU, torch.bfloat16)
    with torch.inference_mode():
        out = fused.magnified(v, m, torch.zeros_like(m), 20.0, x)
    assert torch.equal(out, x)  # moved == still exactly, in bfloat16 too


def test_precision_resolution(monkeypatch):
    cuda = torch.device("cuda")
    assert infer.resolve_precision("float32", "realtime", CPU) == torch.float32
    assert infer.resolve_precision("bfloat16", "realtime", CPU) == torch.bfloat16
    with pytest.raises(VMMError, match="bfloat16 is available for realtime"):
        infer.resolve_precision("bfloat16", "oh2018", CPU)  # not checked for quality
    assert infer.resolve_precision("auto", "oh2018", CPU) == torch.float32
    assert infer.resolve_precision("auto", "realtime", cuda) == torch.float32
    monkeypatch.setattr(infer, "native_bf16", lambda: True)
    assert infer.resolve_precision("auto", "realtime", CPU) == torch.bfloat16
    monkeypatch.setattr(infer, "native_bf16", lambda: False)
    assert infer.resolve_precision("auto", "realtime", CPU) == torch.float32
    with pytest.raises(VMMError, match="precision"):
        infer.resolve_precision("half", "realtime", CPU)


def test_precision_option_is_checked():
    from napari_vmm.core.engine import magnify

    with pytest.raises(VMMError, match="precision"):
        magnify(np.zeros((2, 16, 16), np.float32), fps=30, method="realtime", alpha=5,
                mode="static", temporal="none", precision="fp8")


@needs_fused
def test_magnifier_uses_the_fused_path_on_cpu_only_for_realtime(tmp_path):
    pt, _ = save_weights(build_model("realtime").state_dict(), {"steps": 0}, "realtime",
                           tmp_path)
    mag = RealtimeMagnifier(5.0, CPU, weights=str(pt), precision="float32")
    assert mag._fused is not None and mag.dtype == torch.float32
    assert infer.fused_decoder(build_model("oh2018"), "oh2018", CPU, torch.float32) is None


def _real_frames(n=8):
    from napari_vmm.io import open_video

    if not BABY.is_file():
        pytest.skip(f"{BABY} is absent")
    frames = np.asarray(open_video(BABY)[:n])
    return np.ascontiguousarray(frames[:, 200:296, 400:528])  # the infant's chest, 96 x 128


@pytest.mark.skipif(W.read_provenance("realtime") is None, reason="no shipped realtime weights")
@pytest.mark.parametrize("decode_twice", [True, False])
def test_bfloat16_stays_within_a_grey_level_of_float32(tmp_path, decode_twice):
    """The shipped weights on a real clip in temporal mode: bfloat16 decoder vs float32."""
    from napari_vmm.core.engine import magnify

    frames = _real_frames()
    sd, prov = W.load_weights("realtime", None)
    pt, _ = save_weights(sd, {**prov, "arch": {"decode_twice": decode_twice}}, "realtime",
                           tmp_path)
    kw = dict(fps=30, method="realtime", alpha=20, band=(0.4, 3), temporal="butterworth",
              weights=str(pt))
    ref = magnify(frames, precision="float32", **kw).astype(float)
    out = magnify(frames, precision="bfloat16", **kw).astype(float)
    diff = np.abs(out - ref)
    assert diff.mean() < 0.5 and np.percentile(diff, 99) <= 3, (diff.mean(), diff.max())
    # the magnification itself survives: the change from the input keeps its size
    change_ref = np.abs(ref - frames).mean()
    assert abs(np.abs(out - frames).mean() - change_ref) < 0.15 * change_ref
