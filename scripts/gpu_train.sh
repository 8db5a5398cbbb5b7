#!/usr/bin/env bash
# Train learned magnifiers on one CUDA GPU within a fixed wall-clock budget, in one command,
# and pack checkpoints + validated weights + provenance so that they come back from a leased
# machine ($OUT: at most 8 files of <= 16 MiB each).
#
#   bash scripts/gpu_train.sh                              # fd4mm oh2018 realtime, 7 min, cuda
#   bash scripts/gpu_train.sh --minutes 8 fd4mm            # one model, the whole budget
#   bash scripts/gpu_train.sh --resume shared/gpu_runs     # continue an earlier lease's runs
#   bash scripts/gpu_train.sh fd4mm fd4mm@contrastive oh2018   # + an ablation (vmm train
#                                                          # --ablate contrastive), run folder
#                                                          # fd4mm-ablate-contrastive
#   bash scripts/gpu_train.sh --device cpu --max-steps 2 --batch 2 --crop 32 --out /tmp/o fd4mm
#                                                          # CPU smoke test of the whole path
#   bash scripts/gpu_train.sh --renderer cpu               # data from CPU workers instead
#   bash scripts/gpu_train.sh hmn:manipulator=still-gated lnvmm -- --gain-weight 1.0
#                                                          # MODEL:OPTION=VALUE[:...] gives
#                                                          # one run its own vmm train options
#                                                          # (--manipulator still-gated here)
#
# On CUDA the training data is rendered on the GPU in whole batches (vmm train --renderer
# torch, napari_vmm/training/render_torch.py: same recipe, no data workers, --echo 1).
# With --renderer cpu (the default off CUDA) each model gets (cores - 1) / models CPU data
# workers and --echo 4 (each generated batch serves 4 steps, as 4 different flips/rotations).
# All models train at the same time (one process each), with bf16 autocast,
# and stop cleanly after --minutes (validate, export, checkpoint). Work files go to
# --work (default runs/gpu): WORK/RUN/{ckpt.pt,log.jsonl,train.out,export/MODEL.{pt,json}}, RUN
# being MODEL or MODEL-ablate-A-B for MODEL@A,B. Then all run folders are packed into one tar
# stream split into 15 MiB parts (OUT/runs.tar.part-aa, -ab, ...: a 21 MB fd4mm run, 13 MB
# oh2018, 10 MB realtime; 64 MiB in all may come back), and OUT/summary.txt lists each run's
# steps, validation SSIM and sha256.
#
# Unpack (on the session's machine):  cat runs.tar.part-* | tar -x -C runs/gpu
# then  `vmm evaluate --weights fd4mm=runs/gpu/fd4mm/export/fd4mm.pt`  or copy the export
# pair into napari_vmm/weights/ (scripts/train_snapshot.sh does that for runs/MODEL).
# --resume DIR accepts either unpacked folders (DIR/RUN/ckpt.pt) or the parts
# (DIR/runs.tar.part-*). Without a checkpoint, every model starts from its shipped
# weights (vmm train --init auto; an ablation run starts from scratch).
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=7
max_steps=0
device=cuda
out="${OUT:-}"
work=runs/gpu
resume=""
batch=16
crop=128
lr=""
workers=""
val_every=500
echo_k=""
renderer=""
extra=()
models=()
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) minutes="$2"; shift 2 ;;
        --max-steps) max_steps="$2"; shift 2 ;;
        --device) device="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --work) work="$2"; shift 2 ;;
        --resume) resume="$2"; shift 2 ;;
        --batch) batch="$2"; shift 2 ;;
        --crop) crop="$2"; shift 2 ;;
        --lr) lr="$2"; shift 2 ;;
        --workers) workers="$2"; shift 2 ;;
        --val-every) val_every="$2"; shift 2 ;;
        --echo) echo_k="$2"; shift 2 ;;
        --renderer) renderer="$2"; shift 2 ;;
        --) shift; extra=("$@"); break ;;   # passed to every `vmm train`
        -h|--help) sed -n 2,37p "$0"; exit 0 ;;
        -*) echo "gpu_train.sh: unknown option $1" >&2; exit 2 ;;
        *) models+=("$1"); shift ;;
    esac
done
[ ${#models[@]} -gt 0 ] || models=(fd4mm oh2018 realtime)
# MODEL[@ABLATIONS][:OPTION=VALUE...]: the run's own options go to its vmm train only
runs=()
own=()
for i in "${!models[@]}"; do
    spec="${models[$i]}"; m="${spec%%:*}"; models[$i]="$m"; opts=""
    if [[ "$spec" == *:* ]]; then
        IFS=':' read -ra pairs <<< "${spec#*:}"
        for kv in "${pairs[@]}"; do
            if [[ "$kv" != ?*=?* ]]; then
                echo "gpu_train.sh: run option '$kv' of '$spec' is not OPTION=VALUE" >&2; exit 2
            fi
            opts+=" --${kv%%=*} ${kv#*=}"
        done
    fi
    own+=("$opts")
    if [[ "$m" == *@* ]]; then abl="${m#*@}"; r="${m%@*}-ablate-${abl//,/-}"
    else r="$m"; fi
    for earlier in "${runs[@]}"; do
        if [ "$earlier" = "$r" ]; then
            echo "gpu_train.sh: two runs would share the folder $r" >&2; exit 2
        fi
    done
    runs+=("$r")
done
[ -n "$out" ] || out="$work/packed"
if [ -n "${PYTHON:-}" ]; then py="$PYTHON"
elif [ -x .venv/bin/python ]; then py=.venv/bin/python
else py=python3; fi
export PYTHONUNBUFFERED=1
mkdir -p "$work" "$out"

ncpu=$(nproc 2>/dev/null || echo 2)
n=${#models[@]}
if [ -z "$renderer" ]; then
    if [[ "$device" == cuda* ]]; then renderer=torch; else renderer=cpu; fi
fi
case "$renderer" in
    torch) [ -n "$echo_k" ] || echo_k=1; workers=0 ;;   # rendered on --device, in-process
    cpu) [ -n "$echo_k" ] || echo_k=4
         [ -n "$workers" ] || workers=$(( (ncpu - 1) / n ))
         [ "$workers" -ge 1 ] || workers=0 ;;
    *) echo "gpu_train.sh: --renderer must be torch or cpu, got $renderer" >&2; exit 2 ;;
esac
hours=$("$py" -c "print($minutes / 60)")

"$py" - "$device" <<'PY'
import sys, torch
from napari_vmm.training.data import texture_photographs
dev = sys.argv[1]
print(f"torch {torch.__version__}; cuda available: {torch.cuda.is_available()}"
      + (f" ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else ""))
print(f"scikit-image texture photographs available: {len(texture_photographs())} of 20")
if dev.startswith("cuda") and not torch.cuda.is_available():
    sys.exit("gpu_train.sh: --device cuda but torch sees no GPU")
PY

# resume: unpack earlier parts or copy earlier run folders into WORK
if [ -n "$resume" ]; then
    if compgen -G "$resume/runs.tar.part-*" > /dev/null; then
        cat "$resume/runs.tar.part-"* | tar -x -C "$work"
        echo "unpacked $resume/runs.tar.part-* into $work"
    fi
    for r in "${runs[@]}"; do
        if [ -f "$resume/$r/ckpt.pt" ] && [ "$resume/$r" != "$work/$r" ]; then
            mkdir -p "$work/$r" && cp -r "$resume/$r/." "$work/$r/"
        fi
        [ ! -f "$work/$r/ckpt.pt" ] || echo "$r: resuming from its checkpoint"
    done
fi

pids=()
for i in "${!models[@]}"; do
    m="${models[$i]}"; r="${runs[$i]}"
    args=("${m%@*}" --run-dir "$work/$r" --device "$device" --batch "$batch" --crop "$crop"
          --workers "$workers" --threads 2 --val-every "$val_every" --max-hours "$hours"
          --ckpt-every-s 60 --echo "$echo_k" --renderer "$renderer")
    [[ "$m" != *@* ]] || args+=(--ablate "${m#*@}")
    [ -z "$lr" ] || args+=(--lr "$lr")
    [ "$max_steps" = 0 ] || args+=(--max-steps "$max_steps")
    read -ra run_opts <<< "${own[$i]}"   # after the shared options: the run's own win
    # a hard stop 90 s after the budget: SIGTERM makes vmm train checkpoint and exit
    timeout --signal=TERM --kill-after=30 "$(( ${minutes%.*} * 60 + 90 ))" \
        "$py" -m napari_vmm.cli.train "${args[@]}" "${extra[@]}" "${run_opts[@]}" \
        > "$work/$r.out" 2>&1 &
    pids+=($!)
    echo "$r: training (pid $!, data: $renderer renderer, $workers workers,${own[$i]:- no} own options, log $work/$r.out)"
done
status=0
for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
        echo "${runs[$i]}: training failed; tail of $work/${runs[$i]}.out:" >&2
        tail -n 20 "$work/${runs[$i]}.out" >&2
        status=1
    fi
done

# pack all runs into one tar stream, split into parts below the 16 MiB per-file limit
present=()
for r in "${runs[@]}"; do
    [ -d "$work/$r" ] || continue
    cp "$work/$r.out" "$work/$r/train.out" 2>/dev/null || true
    present+=("$r")
done
rm -f "$out/runs.tar.part-"*
[ ${#present[@]} -eq 0 ] || tar -c -C "$work" "${present[@]}" | split -b 15M - "$out/runs.tar.part-"
"$py" - "$work" "${runs[@]}" > "$out/summary.txt" <<'PY'
import json, sys
from pathlib import Path
from napari_vmm.core.learned import weights as W
work = Path(sys.argv[1])
for r in sys.argv[2:]:
    m = r.split("-ablate-")[0]
    try:
        _, p = W.load_weights(m, work / r / "export")  # verifies the sha256
    except Exception as e:  # noqa: BLE001
        print(f"{r}: no exported weights ({e})")
        continue
    v = p["validation"]
    print(f"{r}: step {p['steps']}, samples {p['samples_seen']}, val SSIM {v['ssim']:.4f} "
          f"(copy-input {v['ssim_input']:.4f}), {p['status']}, wall {p['wall_time_s']} s, "
          f"arch {p.get('arch') or {}}, sha256 {p['sha256'][:16]}")
    print("  " + json.dumps(p["curve"][-5:]))
PY
cat "$out/summary.txt"
ls -l "$out"
exit $status
