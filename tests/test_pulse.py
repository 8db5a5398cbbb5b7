"""The pulse recipe (issue 24 item 3): Wu et al.'s colour magnification, read back as BPM.

A synthetic face with a known pulse: a textured skin ellipse on a grey wall whose colour
varies by 0.4 grey level (green strongest, as in rPPG) at 72 BPM under sensor noise of one grey
level, invisible in the input.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_vmm.cli import main
from napari_vmm.core.params import RECIPES, MagnifyParams, apply_recipe
from napari_vmm.io import open_input

FPS, BPM = 30.0, 72.0
FACE_ROI = (54, 38, 20, 20)  # x, y, w, h at the middle of the face


def pulse_face(n: int = 240, h: int = 96, w: int = 128, amp: float = 0.4,
               noise: float = 1.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(frames uint8 (n, h, w, 3), face mask): the face's colour pulses at ``BPM``."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    face = ((x - w / 2) / (0.3 * w)) ** 2 + ((y - h / 2) / (0.4 * h)) ** 2 <= 1
    base = np.empty((h, w, 3), np.float32)
    base[:] = (120, 118, 112)
    base[face] = (200, 150, 125)
    base += gaussian_filter(rng.normal(0, 6, (h, w)), 1.5)[..., None]
    pulse = np.sin(2 * np.pi * BPM / 60 * np.arange(n) / FPS)
    colour = np.array([0.35, 1.0, 0.3], np.float32) * amp
    frames = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        f = base.copy()
        f[face] -= pulse[i] * colour
        f += rng.normal(0, noise, f.shape)
        frames[i] = np.clip(np.rint(f), 0, 255)
    return frames, face


def band_amplitude(trace: np.ndarray, hz: float) -> float:
    """Amplitude of the sinusoid at ``hz`` in ``trace`` (least squares, mean removed)."""
    t = np.arange(len(trace)) / FPS
    basis = np.stack([np.sin(2 * np.pi * hz * t), np.cos(2 * np.pi * hz * t),
                      np.ones_like(t)], axis=1)
    coef = np.linalg.lstsq(basis, trace, rcond=None)[0]
    return float(np.hypot(coef[0], coef[1]))


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory):
    frames, face = pulse_face()
    path = tmp_path_factory.mktemp("face") / "face.npy"
    np.save(path, frames)
    return path, frames


def test_recipe_is_one_parameter_set_for_every_front_end():
    params = MagnifyParams.from_recipe("pulse", fps=FPS)
    assert params.method == "color" and params.temporal == "ideal"
    assert params.options == RECIPES["pulse"]["options"]
    # a user's choice wins over the recipe's
    mixed = apply_recipe("pulse", {"band": (1.1, 1.3), "alpha": 10.0}, keep={"band"})
    assert mixed["band"] == (1.1, 1.3) and mixed["alpha"] == RECIPES["pulse"]["alpha"]


def test_pulse_recipe_amplifies_the_heartbeat_by_one_plus_alpha(face_clip, tmp_path, capsys):
    src, frames = face_clip
    out = tmp_path / "out.npy"
    assert main(["magnify", str(src), str(out), "--recipe", "pulse", "--fps", str(FPS),
                 "-q"]) == 0
    result = np.asarray(open_input(out)).astype(np.float64)
    x, y, w, h = FACE_ROI
    g_in = frames[:, y:y + h, x:x + w, 1].mean(axis=(1, 2))
    g_out = result[:, y:y + h, x:x + w, 1].mean(axis=(1, 2))
    gain = band_amplitude(g_out, BPM / 60) / band_amplitude(g_in, BPM / 60)
    alpha = RECIPES["pulse"]["alpha"]
    assert 0.85 * (1 + alpha) < gain < 1.1 * (1 + alpha)
    # the wall outside the face is not turned into noise
    wall_in = frames[:, :, :8].astype(np.float64).std(axis=0).mean()
    wall_out = result[:, :, :8].std(axis=0).mean()
    assert wall_out < 2 * wall_in

    # vmm analyze reads the pulse back in BPM from the magnified clip
    capsys.readouterr()
    assert main(["analyze", str(out), "--fps", str(FPS), "--roi", ",".join(map(str, FACE_ROI)),
                 "--fmin", "0.5", "--fmax", "4"]) == 0
    report = capsys.readouterr().out
    line = next(ln for ln in report.splitlines() if ln.strip().startswith("intensity"))
    bpm = float(line.split("(")[1].split("BPM")[0])
    assert abs(bpm - BPM) < 3, line


def test_explicit_flags_refine_the_recipe(face_clip, tmp_path):
    src, _ = face_clip
    out = tmp_path / "out.npy"
    # a band above the recipe's: nothing at 72 BPM is amplified
    assert main(["magnify", str(src), str(out), "--recipe", "pulse", "--fps", str(FPS),
                 "--band", "3", "4", "-q"]) == 0
    result = np.asarray(open_input(out)).astype(np.float64)
    x, y, w, h = FACE_ROI
    g_out = result[:, y:y + h, x:x + w, 1].mean(axis=(1, 2))
    assert band_amplitude(g_out, BPM / 60) < 2.0  # ~0.4 in, 20 with the recipe's band


def test_baby_breathing_rate_is_read_back(shared_video, tmp_path, capsys):
    """The breathing of the MIT baby clip: its rate in BPM from `vmm analyze` (input)."""
    path = shared_video("baby.mp4")
    assert main(["analyze", str(path), "--roi", "400,250,200,150", "--fmin", "0.2",
                 "--fmax", "3"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines()
                if ln.strip().startswith("intensity"))
    bpm = float(line.split("(")[1].split("BPM")[0])
    assert 25 < bpm < 40, line  # about 0.54 Hz
