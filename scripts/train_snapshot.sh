#!/usr/bin/env bash
# Copy the latest validated weights of the background training runs into the package
# (napari_vmm/weights/MODEL.pt + MODEL.json with provenance and sha256), redraw the training
# curves (docs/images/learned_training.png) and commit just those files.
#   bash scripts/train_snapshot.sh            # both models
#   bash scripts/train_snapshot.sh --no-commit
set -euo pipefail
cd "$(dirname "$0")/.."
commit=1
[ "${1:-}" = "--no-commit" ] && commit=0
files=()
for m in oh2018 realtime; do
    src="runs/$m/export"
    # only a better validation SSIM replaces the shipped weights (a resumed run with a fresh
    # optimiser can dip below them for a while)
    if [ -f "$src/$m.pt" ] && [ -f "$src/$m.json" ] && .venv/bin/python - "$src/$m.json" \
        "napari_vmm/weights/$m.json" <<'PY'
import json, os, sys
new = json.load(open(sys.argv[1]))["validation"]["ssim"]
old = json.load(open(sys.argv[2]))["validation"]["ssim"] if os.path.exists(sys.argv[2]) else -1
print(f"{sys.argv[1]}: val SSIM {new} (shipped {old})", file=sys.stderr)
sys.exit(0 if new > old else 1)
PY
    then
        # copy the pair atomically enough: json last, and verify the checksum after copying
        cp "$src/$m.pt" "napari_vmm/weights/$m.pt.tmp" && mv "napari_vmm/weights/$m.pt.tmp" "napari_vmm/weights/$m.pt"
        cp "$src/$m.json" "napari_vmm/weights/$m.json"
        files+=("napari_vmm/weights/$m.pt" "napari_vmm/weights/$m.json")
    fi
done
.venv/bin/python - <<'PY'
from napari_vmm.core.learned import weights as W
for m in ("oh2018", "realtime"):
    if W.read_provenance(m) is not None:
        _, p = W.load_weights(m)  # verifies the sha256
        print(f"{m}: step {p['steps']}, val SSIM {p['validation']['ssim']}, {p['status']}")
PY
# a readable summary of the provenance beside the weights
.venv/bin/python -c "from napari_vmm.core.learned.weights import provenance_markdown as m; print(m(), end='')" \
    > napari_vmm/weights/provenance.md
files+=(napari_vmm/weights/provenance.md)
# the curves come from the shipped provenance files, which hold every resumed session
nice -n 5 .venv/bin/python -m napari_vmm.core.learned.figures curves \
    docs/images/learned_training.png napari_vmm/weights/oh2018.json napari_vmm/weights/realtime.json
files+=(docs/images/learned_training.png)
if [ $commit = 1 ] && [ ${#files[@]} -gt 0 ]; then
    git add "${files[@]}"
    git commit -m "Learned weights snapshot: $(.venv/bin/python -c "
from napari_vmm.core.learned import weights as W
print('; '.join(f\"{m} step {p['steps']} val SSIM {p['validation']['ssim']:.4f} ({p['status']})\"
      for m in ('oh2018','realtime') if (p := W.read_provenance(m))))")" -- "${files[@]}"
fi
