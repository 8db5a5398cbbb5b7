"""Calibration: pixel size, pinhole model, two points, napari scale; units in every output."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from napari_vmm.core import analysis as an
from napari_vmm.core.errors import VMMError
from napari_vmm.core.samples import translating_texture

FPS = 30.0


@pytest.mark.parametrize(("text", "value", "unit"), [
    ("0.12mm", 0.12, "mm"), ("12 um", 12.0, "um"), ("0.5µm", 0.5, "um"),
    ("1.5e-3 m", 1.5e-3, "m"), ("3 millimeters", 3.0, "mm"), ("2micrometer", 2.0, "um")])
def test_parse_length(text, value, unit):
    assert an.parse_length(text) == pytest.approx((value, unit))


@pytest.mark.parametrize("text", ["", "mm", "-1mm", "0mm", "1 parsec", "1..2mm", "inf mm"])
def test_parse_length_rejects(text):
    with pytest.raises(VMMError):
        an.parse_length(text)


def test_bare_number_needs_a_unit():
    with pytest.raises(VMMError, match="needs a unit"):
        an.parse_length("0.12")
    assert an.calibration_from_pixel_size("0.65", default_unit="um").unit == "um"
    with pytest.raises(VMMError, match="unit given"):
        an.calibration_from_pixel_size("0.1mm", "um")


def test_pinhole_model():
    cal = an.calibration_from_pinhole("2.5m", "50mm", "5.86um")
    assert cal.unit == "mm" and cal.size == pytest.approx(5.86e-6 * 2.5 / 0.05 * 1e3)
    assert cal.method == "pinhole" and cal.to_dict()["inputs"]["distance"] == "2.5m"
    with pytest.raises(VMMError, match="larger than the focal length"):
        an.calibration_from_pinhole("10mm", "50mm", "5um")
    with pytest.raises(VMMError, match="--sensor-pixel"):
        an.calibration_from_pinhole("2m", "50mm", "5")


def test_two_points():
    cal = an.calibration_from_points((10, 10), (40, 50), "10mm")
    assert cal.size == pytest.approx(0.2) and cal.unit == "mm"
    assert cal.to_dict()["inputs"]["distance_px"] == pytest.approx(50.0)
    with pytest.raises(VMMError, match="distinct"):
        an.calibration_from_points((1, 1), (1, 1), "1mm")


def test_napari_scale():
    cal = an.calibration_from_scale((1 / 30, 0.5, 0.5), ("s", "micrometer", "micrometer"))
    assert (cal.size, cal.unit, cal.method) == (0.5, "um", "layer-scale")
    assert not an.calibration_from_scale((1, 1, 1), ("s", "pixel", "pixel")).calibrated
    assert not an.calibration_from_scale((1, 0.5, 0.6), ("s", "um", "um")).calibrated
    assert not an.calibration_from_scale((1, 0.5, 0.5), ("s", "um", "mm")).calibrated


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    frames = translating_texture(120, (48, 48), FPS, 3.1, 0.4, (1.0, 0.0), seed=2)
    return np.clip(np.rint(frames * 255), 0, 255).astype(np.uint8)


def test_analysis_carries_units_and_provenance(clip, tmp_path):
    cal = an.calibration_from_pinhole("2m", "25mm", "4um")  # 0.32 mm per px
    res = an.analyze_motion(clip, "6,6,36,36", FPS, calibration=cal)
    d = res.to_dict()
    assert d["calibration"]["method"] == "pinhole" and d["calibration"]["unit"] == "mm"
    (r,) = d["rois"]
    assert r["unit"] == "mm" and r["amplitude_mm"] == pytest.approx(r["amplitude_px"] * 0.32)
    assert r["peaks"][0]["amplitude_mm"] == pytest.approx(r["peaks"][0]["amplitude_px"] * 0.32)
    assert r["noise_floor_mm"] == pytest.approx(r["noise_floor_px"] * 0.32)
    assert r["rms_displacement_mm"] == pytest.approx(r["rms_displacement_px"] * 0.32)
    an.write_spectra_csv(tmp_path / "s.csv", res)
    with open(tmp_path / "s.csv") as f:
        rows = list(csv.reader(f))
    head = rows[0]
    assert "roi1_disp_amp_mm" in head and "roi1_noise_floor_mm" in head
    k = int(np.argmax([float(r_[1]) for r_ in rows[1:]])) + 1
    assert float(rows[k][head.index("roi1_disp_amp_mm")]) == pytest.approx(
        float(rows[k][1]) * 0.32, rel=1e-4)
    assert "calibration: 1 px = 0.32 mm (pinhole)" in an.format_report(res)


def _cli(argv: list[str]) -> int:
    from napari_vmm.cli import main

    return main(argv)


def test_cli_pixel_size_with_unit_and_json_file(clip, tmp_path, capsys):
    np.save(tmp_path / "c.npy", clip)
    out = tmp_path / "r.json"
    rc = _cli(["analyze", str(tmp_path / "c.npy"), "--fps", "30", "--roi", "6,6,36,36",
               "--pixel-size", "0.12mm", "--json", str(out)])
    assert rc == 0 and "JSON written to" in capsys.readouterr().out
    d = json.loads(out.read_text())
    assert d["calibration"] == {"method": "pixel-size", "pixel_size": 0.12, "unit": "mm",
                                "inputs": {"pixel_size": "0.12mm"}}
    assert d["rois"][0]["amplitude_mm"] == pytest.approx(d["rois"][0]["amplitude_px"] * 0.12)


def test_cli_pinhole(clip, tmp_path, capsys):
    np.save(tmp_path / "c.npy", clip)
    rc = _cli(["analyze", str(tmp_path / "c.npy"), "--fps", "30", "--roi", "6,6,36,36",
               "--distance", "3m", "--focal-length", "35mm", "--sensor-pixel", "3.45um",
               "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["calibration"]["method"] == "pinhole"
    assert d["calibration"]["pixel_size"] == pytest.approx(3.45e-3 * 3000 / 35, rel=1e-6)


@pytest.mark.parametrize(("extra", "match"), [
    (["--distance", "3m"], "also needs --focal-length, --sensor-pixel"),
    (["--pixel-size", "1mm", "--distance", "3m", "--focal-length", "3mm",
      "--sensor-pixel", "2um"], "not both"),
    (["--pixel-size", "1mm", "--unit", "um"], "unit given"),
    (["--pixel-size", "fast"], "length"),
])
def test_cli_calibration_errors(clip, tmp_path, capsys, extra, match):
    np.save(tmp_path / "c.npy", clip)
    rc = _cli(["analyze", str(tmp_path / "c.npy"), "--fps", "30", "--roi", "6,6,36,36", *extra])
    err = capsys.readouterr().err
    assert rc != 0 and match in err and "Traceback" not in err
