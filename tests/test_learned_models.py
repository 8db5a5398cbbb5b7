"""Architectures: parameter counts and shapes."""

import pytest

torch = pytest.importorskip("torch")

from napari_vmm.core.learned.models import count_parameters  # noqa: E402
from napari_vmm.core.learned.table import build_model  # noqa: E402


def test_oh2018_parameter_count_within_5_percent_of_0_98M():
    n = count_parameters(build_model("oh2018"))
    assert abs(n - 0.98e6) / 0.98e6 <= 0.05, n


def test_realtime_parameter_count_near_0_73M():
    n = count_parameters(build_model("realtime"))
    assert abs(n - 0.731e6) / 0.731e6 <= 0.05, n


def test_realtime_is_several_times_cheaper_than_oh2018():
    # 36 ResBlocks of 32 channels make most of the real-time model's parameters
    rt = build_model("realtime")
    dec = sum(p.numel() for p in rt.dec.parameters())
    assert dec == 36 * 2 * 32 * 32 * 9


@pytest.mark.parametrize("name", ["oh2018", "realtime"])
def test_shapes_and_zero_amplification_is_stable(name):
    torch.manual_seed(0)
    net = build_model(name).eval()
    x = torch.rand(2, 3, 32, 48) * 2 - 1
    v, m = net.encode(x)
    assert m.shape[-2:] == (16, 24)
    assert v.shape[-2:] == (8, 12)
    with torch.inference_mode():
        out = net(x, x, torch.tensor([3.0, 10.0]))
        # identical frames: the manipulator adds h(a*g(0)) = 0 (no biases)
        m_out = net.manipulate(m, m, 50.0)
    assert out.shape == x.shape
    assert torch.equal(m_out, m)


def test_unknown_model_is_a_vmm_error():
    from napari_vmm.core.errors import VMMError

    with pytest.raises(VMMError):
        build_model("nope")
