#!/usr/bin/env bash
# §2V's cell (§2P's model and schedule: d 128, 6+6 layers, lr 1e-3 constant, 1,200 updates of 1,600-token batches,
# no clipping, evaluation every 100 updates) trained by the authors' code (setup.sh), from the package's initial
# weights for each seed (export_cell.py), on the package's tokens (the paper's text preparation):
#   A  no warmup
#   B  linear warmup over 300 updates, then constant
#   C  the authors' search (their run script's flags; η 2e-3 = 2 × lr and 2,000-token batches as the package's
#      0.2 defaults in tokenizer_runs.sh), then no warmup
# Two lanes, one thread each, from a frozen copy of CODE_COMMIT's peer_train.py; each lane runs its ARM:SEED jobs in
# order. The same command continues cut runs (fairseq resumes from checkpoint_last.pt; a finished search is
# loaded, not run again).
#
#   CODE_COMMIT=<commit> LANE1="A:101 C:101" LANE2="B:101" bash benchmarks/peer/runs.sh
#
# Each run's log, update_trace.json (peer_train.py) and results.json (peer_results.py) go to $OUT/<arm>-<seed>/, the
# small files to
# benchmarks/results/peer/seed<seed>/<arm>/.
set -euo pipefail
: "${CODE_COMMIT:?set CODE_COMMIT to the commit to run}"
PEER=${PEER:-runs/peer}
OUT=${OUT:-$PEER/runs}
MAX_UPDATE=${MAX_UPDATE:-1200}  # smaller only for a smoke test, with SEARCH_ITERS and RESULTS elsewhere
SEARCH_ITERS=${SEARCH_ITERS:-780}
DROPOUT=${DROPOUT:-0.1}  # 0 for training_parity.py's runs (dropout off on both sides: updates comparable one by one)
RESULTS=${RESULTS:-benchmarks/results/peer}
PYTHON=${PYTHON:-python}
root=$PWD
frozen=$PEER/frozen-$CODE_COMMIT
if [ ! -d "$frozen" ]; then
  mkdir -p "$frozen" && git archive "$CODE_COMMIT" benchmarks/peer | tar -x -C "$frozen"
fi
source "$(dirname "${BASH_SOURCE[0]}")/fairseq_cell.sh"  # FAIRSEQ_CELL, FAIRSEQ_SEARCH (with DROPOUT, SEARCH_ITERS)
CELL=(
  "${FAIRSEQ_CELL[@]}"
  --max-update "$MAX_UPDATE" --validate-interval-updates 100 --validate-interval 1000
  --save-interval-updates 100 --keep-interval-updates 1 --no-epoch-checkpoints --log-format json --log-interval 50
)
SEARCH=("${FAIRSEQ_SEARCH[@]}")
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

run() {  # ARM SEED
  local arm=$1 seed=$2 dir
  dir=$(mkdir -p "$OUT/$arm-$seed" && cd "$OUT/$arm-$seed" && pwd)
  local flags=("${CELL[@]}" --seed "$seed" --save-dir "$dir")
  case $arm in
    A) ;;
    B) flags+=(--warmup-updates 300) ;;
    C) flags+=("${SEARCH[@]}")
       [ -f "$dir/gradinit_init.pth" ] && flags+=(--resume-init-chk "$dir/gradinit_init.pth") ;;
    *) echo "unknown arm $arm (A, B or C)" >&2; return 2 ;;
  esac
  (cd "$PEER/fairseq" && "$root/$PEER/venv/bin/python" "$root/$frozen/benchmarks/peer/peer_train.py" \
    "$root/$PEER/data-bin" --peer-init "$root/$PEER/cell/init/seed$seed.pt" --trace-updates "$dir/update_trace.json" \
    "${flags[@]}") >> "$dir/train.log" 2>&1
  "$PYTHON" "$frozen/benchmarks/peer/peer_results.py" "$dir" --arm "$arm" --seed "$seed" \
    --results "$RESULTS/seed$seed/$arm"
}
lane() { for job in $1; do run "${job%%:*}" "${job##*:}"; done; }
lane "${LANE1:-}" &
lane "${LANE2:-}" &
wait
