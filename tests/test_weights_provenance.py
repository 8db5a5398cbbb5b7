"""Every shipped weight file has its provenance beside it, and the summary is current."""

from __future__ import annotations

import json

from napari_vmm.core.learned import weights as W

REQUIRED = ("command", "seed", "steps", "data_recipe", "hardware", "validation", "sha256")


def test_every_weight_file_has_a_verified_provenance():
    shipped = sorted(W.WEIGHTS_DIR.glob("*.pt"))
    assert shipped
    for pt in shipped:
        prov = json.loads(pt.with_suffix(".json").read_text())
        assert all(key in prov for key in REQUIRED), pt.name
        assert prov["sha256"] == W.sha256_file(pt)


def test_provenance_summary_matches_the_json_files():
    assert (W.WEIGHTS_DIR / "provenance.md").read_text() == W.provenance_markdown()
