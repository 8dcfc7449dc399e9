#!/usr/bin/env bash
# Train the shipped demo model: the cpu-demo phase 1 (4 epochs, then two warm restarts of 2 and 12 epochs, each
# with a new warm-up and learning-rate decay: validation PA-MPJPE kept improving at every decay), phases 2 -> 3
# from it, then the whole-pose baseline's phases 2 -> 3 from the same phase-1 model. Every run resumes where an
# earlier, interrupted run of this script stopped (a run that finished is skipped), so the script can simply be
# started again after a cut.
#   bash scripts/train-cpu-demo.sh [RUNS_DIR]            (default runs/cpu-demo; logs in RUNS_DIR/<run>.log)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-runs/cpu-demo}"
PY="${PYTHON:-.venv/bin/python}"
mkdir -p "$RUNS"

# train RUN CONFIG [ARGS...]: one phase into RUNS/RUN unless RUNS/RUN/final.pt exists.
train() {
  local run="$1" config="$2"
  shift 2
  if [[ -f "$RUNS/$run/final.pt" ]]; then
    echo "$run: done ($RUNS/$run/final.pt)"
    return
  fi
  echo "$run: training (log: $RUNS/$run.log)"
  "$PY" -m cli.train --config "configs/cpu-demo/$config.yaml" --out "$RUNS/$run" --resume --no-progress "$@" \
    >>"$RUNS/$run.log" 2>&1
}

train phase1 phase1
train phase1-restart1 phase1 --init "$RUNS/phase1/final.pt" --set train.epochs=2 --set optim.warmup_steps=100
train phase1-restart2 phase1 --init "$RUNS/phase1-restart1/final.pt" --set train.epochs=12 --set optim.warmup_steps=100
IMAGE="$RUNS/phase1-restart2/final.pt"
train phase2 phase2 --init "$IMAGE"
train phase3 phase3
train whole-pose-phase2 whole-pose-phase2 --init "$IMAGE"
train whole-pose-phase3 whole-pose-phase3
