#!/usr/bin/env bash
# The runs of BENCHMARKS.md §2P, two at a time (one thread each), from a frozen copy of the commit that fixed the
# protocol, so that later changes to benchmarks/ or hf_gradinit/ cannot touch them. A run whose results file is in
# benchmarks/results/confirm/ is skipped; a cut run continues from its saved state (--resumable, under runs/confirm/).
# Each finished run's results file (and a C search's scales.json) is copied to benchmarks/results/confirm/ (commit it).
#
# Both lanes take runs from one queue, in the order below (each claims a run by creating runs/confirm/claims/<run>),
# so that they stay busy until the queue is empty: the seeds 1-3 warmups, then B and C of the new seeds side by
# side (the decision needs both), then A, then the search seeds.
#
#   bash benchmarks/confirm_runs.sh        # without W: every run but B on the new seeds
#   bash benchmarks/confirm_runs.sh 300    # once seeds 1-3 have chosen W (stability.py --report says which): B too
#   LANES=1 bash benchmarks/confirm_runs.sh 300   # one lane only (another still running from an earlier start)
set -u
cd "$(dirname "$0")/.."
source benchmarks/keep_results.sh
PROTOCOL_COMMIT=809a24e
W=${1:-}
FROZEN=runs/frozen-$PROTOCOL_COMMIT
if [ ! -d "$FROZEN" ]; then
  mkdir -p "$FROZEN" && git archive "$PROTOCOL_COMMIT" benchmarks hf_gradinit | tar -x -C "$FROZEN"
fi
RESULTS=benchmarks/results/confirm
CLAIMS=runs/confirm/claims
mkdir -p runs/confirm "$RESULTS" "$CLAIMS"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
P="--data_dir ../shared/data/ding-de-en --out runs/confirm --threads 1 --lrs 1e-3 --steps 1200 --eval_every 100 \
  --model transformer --init fairseq --layers 6 --d_model 128 --ffn 512 --heads 4 --max_tokens 1600 \
  --max_eval_samples 1000 --heldout_every 18 --gradinit_max_tokens 2000 --gradinit_iters 780 --gradinit_lr 2.5e-3 \
  --gradinit_beta2 0.98 --gradinit_eta 2e-3 --gradinit_gamma 1000 --gradinit_max_scale 100 --resumable"
PYTHON=${PYTHON:-python}

queue() {  # lines of "results file<TAB>flags", in the order the lanes take them
  for seed in 1 2 3; do for w in 75 150 300; do
    printf 'results_Bw%s_seed%s.json\t--arms B --tag w%s --warmup_steps %s --seed %s\n' $w $seed $w $w $seed
  done; done
  for seed in 101 102 103 104 105 106 107 108; do
    printf 'results_C_seed%s.json\t--arms C --seed %s\n' $seed $seed
    [ -n "$W" ] && printf 'results_Bw%s_seed%s.json\t--arms B --tag w%s --warmup_steps %s --seed %s\n' "$W" $seed "$W" "$W" $seed
  done
  for seed in 101 102 103 104; do printf 'results_A_seed%s.json\t--arms A --seed %s\n' $seed $seed; done
  for s in 1001 1002; do printf 'results_Cs%s_seed101.json\t--arms C --seed 101 --search_seed %s --tag s%s\n' $s $s $s; done
}

lane() {
  while IFS=$'\t' read -r result flags; do
    [ -f "$RESULTS/$result" ] && continue
    mkdir "$CLAIMS/$result" 2> /dev/null || continue  # the other lane has it
    echo "=== $(date +%T) $result: $flags"
    if $PYTHON "$FROZEN/benchmarks/stability.py" $P $flags > "runs/confirm/log_${result%.json}.txt" 2>&1; then
      keep_results runs/confirm "$RESULTS" "$result"
    else
      echo "FAILED $result (runs/confirm/log_${result%.json}.txt)"
    fi
  done < <(queue)
}

LANES=${LANES:-12}
[ "$LANES" = 12 ] && rm -rf "$CLAIMS" && mkdir -p "$CLAIMS"  # no lane is running: claims of cut runs are void
for n in 1 2; do
  [[ $LANES == *$n* ]] && { lane >> runs/confirm/lane$n.log 2>&1 & }
done
