"""Copy the best validated weights of local training runs into the package, then commit them.

    .venv/bin/python scripts/train_snapshot.py [--no-commit] [--prefer-motion | --force]
                                                   [MODEL[=RUN_DIR] ...]
                                                   (default: every model, from its usual runs)

For each learned model the candidates are the exports of its runs (``runs/MODEL-cl``: HMN's
contrastive stage, ``runs/MODEL-ft``: a fine-tuned KL-DNAS student, ``runs/MODEL`` and
``runs/gpu/MODEL``, each ``export/MODEL.{pt,json}``; proxy runs are never shipped), or just
``RUN_DIR`` when it is named (e.g. ``fd4mm=runs/fd4mm-ablate-contrastive``). The one with
the best validation SSIM replaces ``napari_vmm/weights/MODEL.*`` only if it beats the shipped
file; with ``--prefer-motion``, also if its validation ``motion_gain`` (the share of the
requested motion it delivers) is higher while its SSIM is within ``MOTION_SSIM_SLACK`` of the
shipped one (a network that magnifies more at the same image quality). ``--force`` ships the
export of each named ``MODEL=RUN_DIR`` whatever its validation: for a choice made on the
``vmm evaluate`` tables, which the commit message should give. A replaced ``kldnas``
also ships its search log (``weights/kldnas_search/``). Then every
shipped checksum is verified, ``weights/provenance.md`` is rewritten, and the training curves
are redrawn from the shipped provenance (which holds every resumed session):
``docs/images/learned_training.png`` (oh2018, realtime, fd4mm) and
``docs/images/thesis_training.png`` (the thesis models and kldnas).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from napari_vmm.core.learned import weights as W  # noqa: E402
from napari_vmm.core.learned.table import MODELS  # noqa: E402
from napari_vmm.io.atomic import atomic_output  # noqa: E402
from napari_vmm.training.export import provenance_markdown  # noqa: E402
from napari_vmm.training.figures import curves_figure  # noqa: E402

MAIN_MODELS = ("oh2018", "realtime", "fd4mm")
SEARCH_FILES = ("search.json", "search_log.jsonl", "latency_lut.json")


#: --prefer-motion: how much validation SSIM a run may lose against the shipped weights
MOTION_SSIM_SLACK = 0.01


def val_ssim(js: Path) -> float:
    return float(json.loads(js.read_text())["validation"]["ssim"])


def val_gain(js: Path) -> float:
    return float(json.loads(js.read_text())["validation"].get("motion_gain", 0.0))


def best_export(model: str, run: str | None = None) -> Path | None:
    runs = ROOT / "runs"
    dirs = [(ROOT / run).resolve()] if run else [
        runs / f"{model}-cl", runs / f"{model}-ft", runs / model, runs / "gpu" / model]
    found = [d / "export" for d in dirs if (d / "export" / f"{model}.json").exists()
             and (d / "export" / f"{model}.pt").exists()]
    return max(found, key=lambda d: val_ssim(d / f"{model}.json"), default=None)


def ship(model: str, run: str | None = None, prefer_motion: bool = False,
         force: bool = False) -> list[Path]:
    """Copy the best export of ``model`` (or of ``run``) into the package if it beats the
    shipped weights (see the module docstring for ``prefer_motion`` and ``force``)."""
    if force and run is None:
        raise SystemExit(f"--force ships a named run only: {model}=RUN_DIR")
    src = best_export(model, run)
    pt, js = W.weights_paths(model)
    if src is None:
        return []
    new = val_ssim(src / js.name)
    old = val_ssim(js) if js.exists() and pt.exists() else -1.0
    where = src.parent.relative_to(ROOT) if src.parent.is_relative_to(ROOT) else src.parent
    print(f"{model}: best run {where} val SSIM {new} (shipped {old})")
    more_motion = False
    if prefer_motion and new >= old - MOTION_SSIM_SLACK and js.exists():
        gain_new, gain_old = val_gain(src / js.name), val_gain(js)
        more_motion = gain_new > gain_old
        print(f"{model}: motion gain {gain_new} (shipped {gain_old})")
    if new <= old and not more_motion and not force:
        return []
    W.load_weights(model, src)  # verifies the run's own checksum before copying
    with atomic_output(pt) as tmp:
        shutil.copyfile(src / pt.name, tmp)
    prov = json.loads((src / js.name).read_text())
    prov["status"] = W.training_status(prov["validation"])  # derived; older runs wrote another
    with atomic_output(js) as tmp:
        Path(tmp).write_text(json.dumps(prov, indent=1) + "\n")
    changed = [pt, js]
    if model == "kldnas":
        search_dir = ROOT / "runs" / "kldnas"
        dest = W.WEIGHTS_DIR / "kldnas_search"
        dest.mkdir(exist_ok=True)
        for name in SEARCH_FILES:
            if (search_dir / name).exists():
                shutil.copyfile(search_dir / name, dest / name)
                changed.append(dest / name)
    return changed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="train_snapshot.py", description=__doc__.split("\n\n")[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("picks", nargs="*", metavar="MODEL[=RUN_DIR]",
                        help="models to consider (default: every one, from its usual runs)")
    parser.add_argument("--no-commit", action="store_true", help="leave the files uncommitted")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--prefer-motion", action="store_true",
                        help="also ship a run that magnifies more at nearly the same SSIM")
    choice.add_argument("--force", action="store_true",
                        help="ship each named MODEL=RUN_DIR whatever its validation")
    args = parser.parse_args(argv)
    commit, prefer_motion, force = not args.no_commit, args.prefer_motion, args.force
    picks = [a.partition("=") for a in args.picks]
    picks = [(m, run or None) for m, _, run in picks] or [(m, None) for m in MODELS]
    changed = [p for m, run in picks for p in ship(m, run, prefer_motion, force)]
    shipped = {p.stem: p for p in sorted(W.WEIGHTS_DIR.glob("*.json"))}
    for m in shipped:
        _, prov = W.load_weights(m)  # verifies the sha256
        print(f"{m}: step {prov['steps']}, val SSIM {prov['validation']['ssim']}, "
              f"{prov['status']}")
    summary = W.WEIGHTS_DIR / "provenance.md"
    summary.write_text(provenance_markdown())
    figures = []
    for out, names in (("learned_training.png", MAIN_MODELS),
                       ("thesis_training.png", [m for m in shipped if m not in MAIN_MODELS])):
        files = [str(shipped[m]) for m in names if m in shipped]
        if files:
            figures.append(ROOT / "docs" / "images" / out)
            curves_figure(str(figures[-1]), files)
    if commit and changed:
        paths = [str(p.relative_to(ROOT)) for p in [*changed, summary, *figures]]
        msg = "Learned weights snapshot: " + "; ".join(
            f"{p.stem} step {json.loads(p.read_text())['steps']} val SSIM "
            f"{val_ssim(p):.4f}" for p in changed if p.suffix == ".json"
            and p.parent == W.WEIGHTS_DIR)
        subprocess.run(["git", "add", *paths], cwd=ROOT, check=True)
        subprocess.run(["git", "commit", "-q", "-m", msg, "--", *paths], cwd=ROOT, check=True)
        print(msg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
