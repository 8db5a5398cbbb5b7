"""scripts/gpu_train.sh on CPU: train, export, pack, summary and resume from the parts."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not all(shutil.which(t) for t in ("bash", "tar", "split",
                                                                   "timeout")),
                                reason="needs bash, tar, split and timeout")


def _run(tmp_path, *extra):
    env = {**os.environ, "PYTHON": sys.executable}
    env.pop("OUT", None)
    cmd = ["bash", str(ROOT / "scripts" / "gpu_train.sh"), "--device", "cpu", "--max-steps",
           "1", "--batch", "2", "--crop", "32", "--minutes", "2", "--workers", "0",
           "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out"), *extra,
           "fd4mm", "fd4mm@contrastive", "--", "--val-n", "2", "--val-size", "32"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_gpu_train_script_smoke_and_resume(tmp_path):
    r = _run(tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path / "out"
    parts = sorted(out.glob("runs.tar.part-*"))
    assert parts and all(p.stat().st_size <= 15 * 2**20 for p in parts)
    summary = (out / "summary.txt").read_text()
    first = int(re.search(r"fd4mm: step (\d+),", summary).group(1))
    assert re.search(r"fd4mm-ablate-contrastive: step \d+,", summary), summary
    # resume from the packed parts into a fresh work folder: one more step
    shutil.rmtree(tmp_path / "work")
    r = _run(tmp_path, "--resume", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    second = int(re.search(r"fd4mm: step (\d+),", (out / "summary.txt").read_text()).group(1))
    assert second == first + 1


def test_gpu_train_script_renders_data_with_torch(tmp_path):
    """--renderer torch (the default on CUDA) on the CPU: recorded in the provenance."""
    import json

    env = {**os.environ, "PYTHON": sys.executable}
    env.pop("OUT", None)
    cmd = ["bash", str(ROOT / "scripts" / "gpu_train.sh"), "--device", "cpu", "--renderer",
           "torch", "--max-steps", "1", "--batch", "2", "--crop", "32", "--minutes", "2",
           "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "realtime",
           "--", "--val-n", "2", "--val-size", "32", "--init", "scratch"]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "data: torch renderer, 0 workers" in r.stdout
    prov = json.loads((tmp_path / "work" / "realtime" / "export" / "realtime.json").read_text())
    assert prov["data_recipe"]["renderer"] == "torch" and prov["data_echo"] == 1
    bad = subprocess.run(cmd[:2] + ["--renderer", "gpu"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--renderer must be torch or cpu" in bad.stderr


def test_gpu_train_script_gives_a_run_its_own_options(tmp_path):
    """MODEL:OPTION=VALUE reaches that run's vmm train only; malformed specs are refused."""
    import json

    env = {**os.environ, "PYTHON": sys.executable}
    env.pop("OUT", None)
    base = ["bash", str(ROOT / "scripts" / "gpu_train.sh"), "--device", "cpu", "--max-steps",
            "1", "--batch", "2", "--crop", "32", "--minutes", "2", "--workers", "0",
            "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")]
    shared = ["--", "--val-n", "2", "--val-size", "32", "--init", "scratch"]
    r = subprocess.run(base + ["fd4mm:manipulator=linear:lr=3e-5", "realtime", *shared],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    fd4mm = json.loads((tmp_path / "work/fd4mm/export/fd4mm.json").read_text())
    realtime = json.loads((tmp_path / "work/realtime/export/realtime.json").read_text())
    assert fd4mm["arch"].get("manipulator") == "linear"
    assert fd4mm["segments"][-1]["lr"] == pytest.approx(3e-5)
    assert "manipulator" not in (realtime.get("arch") or {})
    assert realtime["segments"][-1]["lr"] != pytest.approx(3e-5)
    for bad, message in (("fd4mm:manipulator", "is not OPTION=VALUE"),
                         ("fd4mm fd4mm:lr=1e-4", "two runs would share the folder fd4mm")):
        r = subprocess.run(base + bad.split() + shared, cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and message in r.stderr, r.stderr
