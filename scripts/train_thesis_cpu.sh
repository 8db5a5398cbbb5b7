#!/usr/bin/env bash
# CPU training of the thesis models and the KL-DNAS search, one after another on one core, each
# within a wall-clock budget (vmm train --max-hours), in the background under nice 19:
#   bash scripts/train_thesis_cpu.sh [SCALE]     # SCALE multiplies every budget (default 1)
# Runs go to runs/NAME/ (checkpoints resume on rerun); the log of the queue is runs/thesis_queue.out.
# Budgets are sized for one session on a 2-core machine (about 140 min at SCALE 1); the
# resulting weights are early-training weights and their provenance says so. The KL-DNAS
# search measures its latency table first: run it on a quiet machine (docs/thesis_models.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${1:-1}"
py=.venv/bin/python
h() { echo "scale=4; $1 * $scale / 60" | bc; }   # minutes -> hours
t() {  # t MINUTES RUN_DIR vmm-train-args...
    local m="$1" dir="$2"; shift 2
    echo "== $(date -u +%H:%M:%S) $dir: vmm train $* (${m} min)"
    nice -n 19 "$py" -m napari_vmm.cli.train "$@" --run-dir "runs/$dir" --max-hours "$(h "$m")" \
        > "runs/$dir.out" 2>&1 || echo "!! $dir failed (rc $?)"
    grep -h '"val"' "runs/$dir/log.jsonl" 2>/dev/null | tail -1 || true
}
mkdir -p runs
t 16 kldnas kldnas --search-size 256 --max-steps 1200 --batch 4 --crop 64  # steps, not time
t 45 kldnas-ft kldnas --init runs/kldnas/export/kldnas.pt
t 4 lnvmm_light-proxy lnvmm_light --stage proxy
t 9 lnvmm_light lnvmm_light --proxy runs/lnvmm_light-proxy/export/lnvmm_light.pt
t 9 mdlmm mdlmm
t 8 mdlmm_d2 mdlmm_d2
t 9 sigma_theta sigma_theta
t 8 hmn_light hmn_light
t 3 hmn_light-proxy hmn_light --stage proxy
t 4 hmn_light-cl hmn_light --stage contrastive --init runs/hmn_light/export/hmn_light.pt \
    --proxy runs/hmn_light-proxy/export/hmn_light.pt --epoch-steps 200
t 12 lnvmm lnvmm
t 12 hmn hmn
echo "== $(date -u +%H:%M:%S) done"
