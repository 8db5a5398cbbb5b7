"""ROI motion analysis: ROIs and masks, accuracy against exact Fourier-shift ground truth,
sources (dtypes, dask, video-like, bounded reads), outputs and the ``vmm analyze`` command."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from napari_vmm.core import analysis as an
from napari_vmm.core.errors import Cancelled, VMMError
from napari_vmm.core.samples import fourier_shift

FPS = 30.0
H, W, T = 64, 112, 120
BOX_A = (6, 12, 38, 40)  # x, y, w, h around object A (centre col 25, row 32)
BOX_B = (66, 12, 40, 40)  # around object B (centre col 86, row 32)


def textured_object(cy: float, cx: float, seed: int, radius: float = 12.0) -> np.ndarray:
    """Smooth random texture under a Gaussian window, zero far from (cy, cx)."""
    rng = np.random.default_rng(seed)
    tex = ndimage.gaussian_filter(rng.standard_normal((H, W)), 2.0) * 300.0
    yy, xx = np.mgrid[:H, :W]
    return tex * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (0.6 * radius) ** 2))


def render_clip(amp_a: float, f_a: float, amp_b: float = 0.0, f_b: float = 7.3,
                direction_a: tuple[float, float] = (0.6, 0.8), n: int = T,
                background: float = 1000.0) -> np.ndarray:
    """Two objects: A moves along ``direction_a`` (dy, dx) at f_a, B vertically at f_b."""
    obj_a, obj_b = textured_object(32, 25, 1), textured_object(32, 86, 2)
    t = np.arange(n) / FPS
    frames = np.empty((n, H, W), dtype=np.float64)
    for i, ti in enumerate(t):
        sa = amp_a * math.sin(2 * math.pi * f_a * ti)
        sb = amp_b * math.sin(2 * math.pi * f_b * ti)
        frames[i] = (background + fourier_shift(obj_a, direction_a[0] * sa, direction_a[1] * sa)
                     + fourier_shift(obj_b, sb, 0.0))
    return frames


@pytest.fixture(scope="module")
def two_objects() -> np.ndarray:
    return render_clip(0.5, 3.1, amp_b=1.0, f_b=7.3).astype(np.float32)


# ---------------------------------------------------------------------------------- ROIs, masks


def test_parse_roi_rectangle_covers_exact_pixels():
    roi = an.parse_roi("10, 5, 4, 3")
    assert roi.bbox((20, 30)) == (5, 8, 10, 14)
    mask = roi.mask((20, 30))
    assert mask.sum() == 12 and mask[5:8, 10:14].all()


@pytest.mark.parametrize("spec", ["1,2,3", "a,b,c,d", "1,2,0,4", "1,2,-3,4"])
def test_parse_roi_rejects_bad_specs(spec):
    with pytest.raises(VMMError, match="ROI"):
        an.parse_roi(spec)


def test_ellipse_and_polygon_masks():
    ell = an.ROI.ellipse(cx=20, cy=15, rx=8, ry=5)
    m = ell.mask((40, 40))
    assert abs(m.sum() - math.pi * 8 * 5) < 0.06 * math.pi * 8 * 5
    assert m[15, 20] and not m[15, 29] and not m[21, 20]
    tri = an.ROI("polygon", np.array([[0, 0], [0, 10], [10, 0]], dtype=float))
    mt = tri.mask((12, 12))
    assert mt[1, 1] and not mt[8, 8] and 40 < mt.sum() < 60


def test_rois_from_shapes_uses_last_two_coordinates():
    # A rectangle drawn at t=3 in a (T, Y, X) viewer has 3-D vertices.
    verts = np.array([[3, 5, 10], [3, 5, 20], [3, 15, 20], [3, 15, 10]], dtype=float)
    (roi,) = an.rois_from_shapes([verts], ["rectangle"])
    assert roi.kind == "rectangle" and roi.vertices.shape == (4, 2)
    assert roi.bbox((50, 50)) == (5, 16, 10, 21)
    with pytest.raises(VMMError, match="line"):
        an.rois_from_shapes([verts[:2]], ["line"])
    assert an.area_shape_indices(["line", "ellipse", "path", "polygon"]) == [1, 3]


def test_roi_json_round_trip_and_errors(tmp_path):
    rois = [an.parse_roi("1,2,3,4", name="a"), an.ROI.ellipse(10, 10, 3, 2, name="b")]
    path = tmp_path / "rois.json"
    an.save_rois(path, rois)
    back = an.load_rois(path)
    assert [r.name for r in back] == ["a", "b"] and back[1].kind == "ellipse"
    np.testing.assert_allclose(back[0].vertices, rois[0].vertices)
    (tmp_path / "cli.json").write_text(json.dumps([{"rect": [1, 2, 3, 4]}]))
    assert an.as_rois(str(tmp_path / "cli.json"))[0].bbox((10, 10)) == (2, 6, 1, 4)
    (tmp_path / "bad.json").write_text('{"rois": [{"x": 1}]}')
    with pytest.raises(VMMError, match="ROI 1"):
        an.load_rois(tmp_path / "bad.json")
    with pytest.raises(VMMError, match="not found"):
        an.load_rois(tmp_path / "missing.json")


def test_roi_mask_is_soft_union():
    m = an.roi_mask((60, 80), ["10,10,10,10", "50,30,10,10"], feather_px=6)
    assert m.dtype == np.float32 and m.shape == (60, 80)
    assert m.min() >= 0 and m.max() <= 1
    assert np.all(m[10:20, 10:20] == 1) and np.all(m[30:40, 50:60] == 1)
    assert m[55, 5] == 0 and m[0, 79] == 0
    row = m[15, 20:30]  # leaving the first ROI to the right: smooth and non-increasing
    assert np.all(np.diff(row) <= 0) and 0 < row[2] < 1 and row[-1] == 0
    hard = an.roi_mask((60, 80), an.parse_roi("10,10,10,10"), feather_px=0)
    assert set(np.unique(hard)) == {0.0, 1.0} and hard.sum() == 100
    with pytest.raises(VMMError, match="feather"):
        an.roi_mask((60, 80), "10,10,10,10", feather_px=-1)


def test_roi_outside_frame_is_an_error():
    with pytest.raises(VMMError, match="outside"):
        an.parse_roi("200,200,10,10").bbox((64, 64))


# ---------------------------------------------------------------------------------- accuracy


@pytest.mark.parametrize("amp", [0.05, 0.1, 0.3, 1.0, 2.0])
def test_displacement_amplitude_and_frequency_match_ground_truth(amp):
    f_a = 3.1  # between Welch bins (0.25 Hz apart for 120 frames)
    frames = render_clip(amp, f_a, amp_b=1.0, f_b=7.3)
    res = an.analyze_motion(frames, [an.parse_roi(",".join(map(str, BOX_A)))], FPS)
    (r,) = res.rois
    bin_hz = r.freqs[1] - r.freqs[0]
    assert abs(r.dominant_hz - f_a) <= bin_hz
    assert abs(r.amplitude_px - amp) <= max(0.1 * amp, 0.01)
    top = r.peaks[0]
    assert abs(top.amplitude_x - 0.8 * amp) <= max(0.1 * amp, 0.01)
    assert abs(top.amplitude_y - 0.6 * amp) <= max(0.1 * amp, 0.01)
    # The trace itself follows the truth sample by sample.
    truth = amp * np.sin(2 * np.pi * f_a * np.arange(T) / FPS)
    assert np.max(np.abs(r.dx - 0.8 * truth)) <= max(0.1 * amp, 0.01)
    lo, hi = r.band
    assert 0 < lo < f_a < hi < FPS / 2


def test_second_object_does_not_leak_into_first_roi(two_objects):
    res = an.analyze_motion(two_objects, [",".join(map(str, BOX_A)), ",".join(map(str, BOX_B))],
                            FPS)
    a, b = res.rois
    assert abs(a.dominant_hz - 3.1) <= a.freqs[1] and abs(b.dominant_hz - 7.3) <= b.freqs[1]
    assert abs(a.amplitude_px - 0.5) < 0.05 and abs(b.amplitude_px - 1.0) < 0.1
    # Nothing at B's frequency in A's ROI (and vice versa): < 2 % of the true peak.
    k_b = np.argmin(np.abs(a.freqs - 7.3))
    assert a.spectrum[k_b] < 0.02 * b.spectrum[k_b]
    assert all(abs(p.hz - 7.3) > a.freqs[1] or p.amplitude < 0.01 for p in a.peaks)
    assert b.peaks[0].amplitude_x < 0.01 and abs(b.peaks[0].amplitude_y - 1.0) < 0.1


def test_intensity_trace_finds_a_pulse():
    t = np.arange(T) / FPS
    frames = render_clip(0.0, 1.0)  # static texture
    frames *= 1 + 0.02 * np.sin(2 * np.pi * 1.7 * t)[:, None, None]  # 2 % brightness pulse
    (r,) = an.analyze_motion(frames, "6,12,38,40", FPS).rois
    assert abs(r.intensity_peaks[0].hz - 1.7) <= r.freqs[1]
    expect = 0.02 * frames[0, 12:52, 6:44].mean()
    assert abs(r.intensity_peaks[0].amplitude - expect) < 0.1 * expect
    assert r.intensity_band[0] < 1.7 < r.intensity_band[1]
    assert r.amplitude_px < 0.01  # brightness change is not motion


def test_uniform_roi_warns_instead_of_failing():
    frames = np.full((16, 32, 32), 7.0)
    (r,) = an.analyze_motion(frames, "4,4,10,10", FPS).rois
    assert r.warnings and "texture" in r.warnings[0]
    assert np.all(r.dx == 0) and not r.peaks


# ---------------------------------------------------------------------------------- sources


def _quantised(frames: np.ndarray, dtype, lo: float, hi: float) -> np.ndarray:
    info = np.iinfo(dtype)
    scaled = (frames - lo) / (hi - lo) * (info.max * 0.9) + info.max * 0.05
    return np.rint(scaled).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_integer_and_rgb_frames(dtype):
    frames = render_clip(0.3, 3.1)
    q = _quantised(frames, dtype, frames.min(), frames.max())
    (r,) = an.analyze_motion(q, ",".join(map(str, BOX_A)), FPS).rois
    tol = 0.03 if dtype is np.uint16 else 0.06
    assert abs(r.amplitude_px - 0.3) < tol and abs(r.dominant_hz - 3.1) <= r.freqs[1]
    rgb = np.repeat(q[..., None], 3, axis=-1)
    (r_rgb,) = an.analyze_motion(rgb, ",".join(map(str, BOX_A)), FPS).rois
    assert abs(r_rgb.amplitude_px - r.amplitude_px) < 1e-3


def test_dask_matches_numpy(two_objects):
    da = pytest.importorskip("dask.array")
    lazy = da.from_array(two_objects, chunks=(10, H, W))
    rois = [",".join(map(str, BOX_A)), ",".join(map(str, BOX_B))]
    eager = an.analyze_motion(two_objects, rois, FPS)
    res = an.analyze_motion(lazy, rois, FPS, chunk_frames=16)
    for r1, r2 in zip(eager.rois, res.rois, strict=True):
        np.testing.assert_allclose(r1.dx, r2.dx, atol=1e-9)
        np.testing.assert_allclose(r1.intensity, r2.intensity, rtol=1e-9)


class _CropOnly:
    """Array stand-in that records every read and refuses full-frame reads."""

    def __init__(self, data: np.ndarray, max_area: int) -> None:
        self.data, self.max_area, self.reads = data, max_area, []
        self.shape, self.dtype, self.ndim = data.shape, data.dtype, data.ndim

    def __getitem__(self, key):
        out = self.data[key]
        area = out.shape[-2] * out.shape[-1] if out.ndim >= 2 else out.size
        assert area <= self.max_area, f"read {out.shape}, more than the ROI box"
        self.reads.append(out.shape)
        return out


def test_reads_are_bounded_by_roi_size(two_objects):
    x, y, w, h = BOX_A
    margin = 4
    src = _CropOnly(two_objects, (w + 2 * margin) * (h + 2 * margin))
    res = an.analyze_motion(src, ",".join(map(str, BOX_A)), FPS, max_shift=margin,
                            chunk_frames=25)
    assert len(src.reads) == 1 + math.ceil(T / 25)  # the reference, then one read per chunk
    assert all(len(s) == 2 or s[0] <= 25 for s in src.reads)
    assert abs(res.rois[0].amplitude_px - 0.5) < 0.05


class _FakeVideo:
    """Mimics ``napari_vmm.io.VideoSource``: fps, lazy frames and chunked iteration."""

    def __init__(self, frames: np.ndarray, fps: float) -> None:
        self._frames, self.fps = frames, fps
        self.shape, self.dtype, self.n_frames = frames.shape, frames.dtype, len(frames)

    def __getitem__(self, t):
        return self._frames[t]

    def iter_chunks(self, n):
        for t0 in range(0, self.n_frames, n):
            yield self._frames[t0:t0 + n]


def test_video_source_gives_fps_and_same_result(two_objects):
    src = _FakeVideo(two_objects, FPS)
    res = an.analyze_motion(src, [an.parse_roi(",".join(map(str, BOX_B)))])
    assert res.fps == FPS and abs(res.rois[0].dominant_hz - 7.3) <= res.rois[0].freqs[1]


def test_physical_units(two_objects):
    res = an.analyze_motion(two_objects, ",".join(map(str, BOX_A)), FPS, pixel_size=0.25,
                            unit="um")
    d = res.to_dict()["rois"][0]
    assert d["unit"] == "um" and d["amplitude_um"] == pytest.approx(0.25 * d["amplitude_px"])
    assert d["peaks"][0]["amplitude_um"] == pytest.approx(0.25 * d["peaks"][0]["amplitude_px"])


def test_progress_and_cancel(two_objects):
    seen = []
    an.analyze_motion(two_objects, "6,12,38,40", FPS, chunk_frames=50,
                      progress=lambda d, n: seen.append((d, n)))
    assert seen == [(50, T), (100, T), (120, T)]
    with pytest.raises(Cancelled):
        an.analyze_motion(two_objects, "6,12,38,40", FPS, progress=lambda d, n: False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"fps": None}, "frame rate"), ({"fps": -1}, "frame rate"),
     ({"fps": 30, "reference": 500}, "reference"), ({"fps": 30, "pixel_size": 0}, "pixel size")],
)
def test_bad_parameters(two_objects, kwargs, match):
    with pytest.raises(VMMError, match=match):
        an.analyze_motion(two_objects, "6,12,38,40", **kwargs)


def test_bad_frames():
    with pytest.raises(VMMError, match="shape"):
        an.analyze_motion(np.zeros((10, 10)), "1,1,3,3", FPS)
    with pytest.raises(VMMError, match="at least 8 frames"):
        an.analyze_motion(np.zeros((4, 20, 20)), "1,1,3,3", FPS)
    with pytest.raises(VMMError, match="outside"):
        an.analyze_motion(np.zeros((10, 20, 20)), "30,30,3,3", FPS)


def test_suggest_band_stays_below_nyquist():
    freqs = np.linspace(0, 15, 61)
    amp = np.exp(-((freqs - 14.5) ** 2) / 0.1)
    lo, hi = an.suggest_band(freqs, amp, 14.5, 30.0, 120)
    assert 0 < lo < 14.5 < hi < 15.0


# ---------------------------------------------------------------------------------- outputs


def test_csv_and_plot(tmp_path, two_objects):
    res = an.analyze_motion(two_objects, [",".join(map(str, BOX_A)), ",".join(map(str, BOX_B))],
                            FPS, pixel_size=2.0, unit="um")
    an.write_traces_csv(tmp_path / "t.csv", res)
    an.write_spectra_csv(tmp_path / "s.csv", res)
    rows = list(csv.reader((tmp_path / "t.csv").read_text().splitlines()))
    assert rows[0][:4] == ["frame", "time_s", "roi1_dx_px", "roi1_dy_px"]
    assert "roi2_dx_um" in rows[0] and len(rows) == T + 1
    col = rows[0].index("roi2_dy_px")
    np.testing.assert_allclose([float(r[col]) for r in rows[1:]], res.rois[1].dy, atol=1e-5)
    spec = list(csv.reader((tmp_path / "s.csv").read_text().splitlines()))
    assert spec[0][0] == "freq_hz" and len(spec) == len(res.rois[0].freqs) + 1
    an.plot_analysis(res, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plot.png", "s.csv", "t.csv"]
    text = an.format_report(res)
    assert "ROI 2" in text and "um" in text and "suggested band" in text


# ---------------------------------------------------------------------------------- CLI


def _cli(argv: list[str]) -> int:
    from napari_vmm.cli import main

    return main(argv)


@pytest.fixture(scope="module")
def npy_clip(tmp_path_factory, two_objects) -> Path:
    pytest.importorskip("napari_vmm.io")
    path = tmp_path_factory.mktemp("clip") / "clip.npy"
    np.save(path, two_objects)
    return path


def test_cli_json(npy_clip, capsys):
    rc = _cli(["analyze", str(npy_clip), "--fps", "30", "--json",
               "--roi", ",".join(map(str, BOX_A)), "--roi", ",".join(map(str, BOX_B))])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    a, b = out["rois"]
    assert abs(a["dominant_hz"] - 3.1) < 0.25 and abs(a["amplitude_px"] - 0.5) < 0.05
    assert abs(b["dominant_hz"] - 7.3) < 0.25 and abs(b["amplitude_px"] - 1.0) < 0.1
    assert a["band"][0] < 3.1 < a["band"][1] and a["peaks"][0]["hz"] == a["dominant_hz"]


def test_cli_outputs_and_text(npy_clip, tmp_path, capsys):
    csv_path, png = tmp_path / "out.csv", tmp_path / "out.png"
    rc = _cli(["analyze", str(npy_clip), "--fps", "30", "--roi", ",".join(map(str, BOX_B)),
               "--pixel-size", "0.5", "--unit", "um", "--csv", str(csv_path),
               "--plot", str(png)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "dominant" in out and "um" in out and "suggested band" in out
    assert csv_path.exists() and png.read_bytes()[:4] == b"\x89PNG"


def test_cli_reads_a_16bit_tif_and_a_roi_file(tmp_path, capsys):
    tifffile = pytest.importorskip("tifffile")
    frames = render_clip(0.0, 3.1, amp_b=0.4, f_b=5.2)
    stack = _quantised(frames, np.uint16, frames.min(), frames.max())
    tifffile.imwrite(tmp_path / "stack.tif", stack)
    an.save_rois(tmp_path / "rois.json", [an.ROI.ellipse(86, 32, 16, 16, name="B")])
    rc = _cli(["analyze", str(tmp_path / "stack.tif"), "--fps", "30", "--rois",
               str(tmp_path / "rois.json"), "--json"])
    assert rc == 0
    (b,) = json.loads(capsys.readouterr().out)["rois"]
    assert b["name"] == "B" and abs(b["dominant_hz"] - 5.2) < 0.25
    assert abs(b["amplitude_px"] - 0.4) < 0.04


@pytest.mark.parametrize(
    ("extra", "match"),
    [([], "at least one ROI"), (["--roi", "1,2,3"], "x,y,w,h"),
     (["--roi", "1,1,5,5", "--unit", "um"], "--pixel-size"),
     (["--roi", "500,500,5,5"], "outside"),
     (["--roi", "6,12,38,40", "--csv", "/nonexistent-dir/t.csv"], "does not exist")],
)
def test_cli_errors_are_one_line(npy_clip, capsys, extra, match):
    rc = _cli(["analyze", str(npy_clip), "--fps", "30", *extra])
    err = capsys.readouterr().err
    assert rc != 0 and err.startswith("error: ") and match in err
    assert "Traceback" not in err


# ---------------------------------------------------------------------------------- real data


def test_cardiomyocyte_beat_is_found(shared_video):
    from napari_vmm.io import open_video

    src = open_video(str(shared_video("cardiomyocyte_zdisc.avi")))
    res = an.analyze_motion(src, "150,150,100,100", n_peaks=3)
    (r,) = res.rois
    assert 0.3 < r.dominant_hz < 3.0  # a beating cell, about one beat per second
    assert r.amplitude_px > 0.2 and r.band[0] < r.dominant_hz < r.band[1]


def test_periodic_texture_large_motion_does_not_jump_by_a_period():
    """Striated texture (period 6 px, like z-discs) moving 4 px: no jumps of one period."""
    n, size = 90, 64
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:size, :size]
    grating = np.cos(2 * np.pi * yy / 6.0) * (1 + 0.3 * np.cos(2 * np.pi * xx / 16.0))
    grating += ndimage.gaussian_filter(rng.standard_normal((size, size)), 1.5) * 0.3
    disp = 4.0 * np.sin(2 * np.pi * 1.5 * np.arange(n) / FPS)  # up to 1.26 px per frame
    frames = np.stack([fourier_shift(grating, d, 0.0) for d in disp])
    (r,) = an.analyze_motion(frames, "16,16,32,32", FPS).rois
    assert np.max(np.abs(r.dy - disp)) < 0.1
    assert abs(r.amplitude_px - 4.0) < 0.4


def test_band_spans_the_harmonics_of_a_non_sinusoidal_beat():
    t = np.arange(240) / FPS
    beat = 0.5 * np.sin(2 * np.pi * 1.2 * t) + 0.8 * np.sin(2 * np.pi * 2.4 * t + 1.0)
    freqs, spec, peaks = an.find_peaks(np.stack([beat, 0.3 * beat]), FPS)
    assert abs(peaks[0].hz - 2.4) < 0.05 and abs(peaks[1].hz - 1.2) < 0.05
    assert an.harmonic_series(peaks, freqs[1]) == pytest.approx((1.2, 2.4), abs=0.05)
    lo, hi = an.band_for_peaks(freqs, spec, peaks, FPS, len(t))
    assert lo < 1.2 and 2.4 < hi < FPS / 2
    # a lone sinusoid keeps a narrow band around its frequency
    freqs, spec, peaks = an.find_peaks(np.sin(2 * np.pi * 2.4 * t), FPS)
    assert an.harmonic_series(peaks, freqs[1]) is None
    lo, hi = an.band_for_peaks(freqs, spec, peaks, FPS, len(t))
    assert 1.8 < lo < 2.4 < hi < 3.0
