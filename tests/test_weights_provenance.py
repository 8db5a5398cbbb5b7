"""Every shipped weight file has its provenance beside it, and the summary is current."""

from __future__ import annotations

import json

from napari_vmm.core.learned import weights as W
from napari_vmm.training.export import provenance_markdown

REQUIRED = ("command", "seed", "steps", "data_recipe", "hardware", "validation", "sha256")


def test_every_weight_file_has_a_verified_provenance():
    shipped = sorted(W.WEIGHTS_DIR.glob("*.pt"))
    assert shipped
    for pt in shipped:
        prov = json.loads(pt.with_suffix(".json").read_text())
        assert all(key in prov for key in REQUIRED), pt.name
        assert prov["sha256"] == W.sha256_file(pt)


def test_provenance_summary_matches_the_json_files():
    assert (W.WEIGHTS_DIR / "provenance.md").read_text() == provenance_markdown()


def test_shipped_status_follows_the_validation_metrics():
    for js in W.WEIGHTS_DIR.glob("*.json"):
        prov = json.loads(js.read_text())
        assert prov["status"] == W.training_status(prov["validation"]), js.name


def test_training_status_levels():
    assert W.training_status({"ssim": 0.96, "ssim_input": 0.80}) == W.STATUS_FINISHED
    assert W.training_status({"ssim": 0.85, "ssim_input": 0.80}) == W.STATUS_TRAINING
    assert W.training_status({"ssim": 0.75, "ssim_input": 0.80}) == W.STATUS_NOT_USEFUL
    assert W.training_status({"ssim": 0.75}) == W.STATUS_TRAINING
    # above copy-input only because it copies: decoding twice with no working motion path
    copying = {"ssim": 0.796, "ssim_input": 0.795, "motion_gain": 0.01}
    assert W.training_status(copying) == W.STATUS_NO_MOTION
    assert W.training_status({**copying, "motion_gain": 0.5}) == W.STATUS_TRAINING


def test_provenance_summary_lists_subsets_and_training_segments(tmp_path):
    val = {"ssim": 0.8, "ssim_input": 0.79, "ssim_s4": 0.86, "ssim_input_s4": 0.998}
    segments = [{"start_step": 0, "end_step": 10, "lr": 2e-4, "command": "vmm train realtime"},
                {"start_step": 10, "end_step": 12, "lr": 5e-5,
                 "command": "vmm train realtime --lr 5e-5"}]
    (tmp_path / "realtime.json").write_text(json.dumps(
        {"model": "realtime", "validation": val, "segments": segments}))
    md = provenance_markdown(tmp_path)
    assert "- by scene subset (output / copy-input): 4 static scene 0.860 / 0.998" in md
    assert "  - steps 10-12: lr 5e-05, `vmm train realtime --lr 5e-5`" in md
