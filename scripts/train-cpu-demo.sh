#!/usr/bin/env bash
# Train the shipped demo model: the cpu-demo phases 1 -> 2 -> 3, then the whole-pose baseline's phases 2 -> 3
# from the same phase-1 model. Every phase resumes where an earlier, interrupted run of this script stopped
# (a phase that finished is skipped), so the script can simply be started again after a cut.
#   bash scripts/train-cpu-demo.sh [RUNS_DIR]            (default runs/cpu-demo; logs in RUNS_DIR/<phase>.log)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-runs/cpu-demo}"
PY="${PYTHON:-.venv/bin/python}"
mkdir -p "$RUNS"
for phase in phase1 phase2 phase3 whole-pose-phase2 whole-pose-phase3; do
  if [[ -f "$RUNS/$phase/final.pt" ]]; then
    echo "$phase: done ($RUNS/$phase/final.pt)"
    continue
  fi
  echo "$phase: training (log: $RUNS/$phase.log)"
  "$PY" -m training.train --config "configs/cpu-demo/$phase.yaml" --out "$RUNS/$phase" --resume --no-progress \
    >>"$RUNS/$phase.log" 2>&1
done
