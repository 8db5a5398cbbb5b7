"""The model table is the one list of learned models, and the engine's learned package runs
without the training package."""

import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from napari_vmm.core.learned import magnifier as M  # noqa: E402
from napari_vmm.core.learned.table import MODELS, build_model  # noqa: E402
from napari_vmm.core.registry import method_names  # noqa: E402
from napari_vmm.training.config import MODEL_DEFAULTS, TrainConfig  # noqa: E402


def test_every_table_entry_is_a_registered_method_with_its_magnifier_and_training_defaults():
    assert method_names("learned") == list(MODELS)
    for name, spec in MODELS.items():
        cls = M.MAGNIFIERS[name]
        assert cls.name == name and cls.__name__ == spec.magnifier
        assert getattr(M, spec.magnifier) is cls  # what the registry loads by name
        assert cls.options["net_tile"].default == spec.net_tile
        assert set(MODEL_DEFAULTS[name]) == {"crop", "batch", "lr", "ssim_weight", "val_every"}
        assert MODEL_DEFAULTS[name]["crop"] % spec.stride == 0
    assert M.MAGNIFIERS["mdlmm"].options["net_tile"].default == 4096


@pytest.mark.parametrize("name", list(MODELS))
def test_table_builds_a_network_that_takes_frames_of_its_stride(name):
    s = 2 * MODELS[name].stride * 4
    x = torch.rand(1, 3, s, s) * 2 - 1
    with torch.inference_mode():
        out = build_model(name).eval()(x, x, 2.0)
    assert out.shape == x.shape


def test_crop_that_is_not_a_multiple_of_the_stride_is_refused():
    from napari_vmm.core.errors import VMMError

    with pytest.raises(VMMError, match="multiple of 8"):
        TrainConfig(model="fd4mm", crop=100).resolve()
    with pytest.raises(VMMError, match="multiple of 2"):
        TrainConfig(model="lnvmm", crop=97).resolve()


def test_the_engine_runs_a_learned_model_without_importing_training():
    code = ("import sys, numpy as np\n"
            "from napari_vmm.core.engine import magnify\n"
            "from napari_vmm.core.learned.table import MODELS, build_model\n"
            "for n in MODELS:\n"
            "    build_model(n)\n"
            "clip = (np.random.default_rng(0).random((6, 24, 24)) * 255).astype(np.uint8)\n"
            "magnify(clip, fps=30, method='realtime', alpha=5, band=(1, 3))\n"
            "print(sorted(m for m in sys.modules if m.startswith('napari_vmm.training')))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[]"
