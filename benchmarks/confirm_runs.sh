#!/usr/bin/env bash
# The runs of BENCHMARKS.md §2P, two at a time (one thread each), from a frozen copy of the commit that fixed the
# protocol, so that later changes to benchmarks/ or hf_gradinit/ cannot touch them. A run whose results file is in
# benchmarks/results/confirm/ is skipped; a cut run continues from its saved state (--resumable, under runs/confirm/).
# Each finished run's results file is copied to benchmarks/results/confirm/ (commit it).
#
#   bash benchmarks/confirm_runs.sh        # seeds 1-3's warmups, then C and A on the new seeds, the search seeds
#   bash benchmarks/confirm_runs.sh 150    # once seeds 1-3 have chosen W (stability.py --report says which): B too
#   LANES=1 bash benchmarks/confirm_runs.sh 150   # one lane only (the other still running from an earlier start)
set -u
cd "$(dirname "$0")/.."
PROTOCOL_COMMIT=809a24e
W=${1:-}
FROZEN=runs/frozen-$PROTOCOL_COMMIT
if [ ! -d "$FROZEN" ]; then
  mkdir -p "$FROZEN" && git archive "$PROTOCOL_COMMIT" benchmarks hf_gradinit | tar -x -C "$FROZEN"
fi
mkdir -p runs/confirm benchmarks/results/confirm
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
P="--data_dir ../shared/data/ding-de-en --out runs/confirm --threads 1 --lrs 1e-3 --steps 1200 --eval_every 100 \
  --model transformer --init fairseq --layers 6 --d_model 128 --ffn 512 --heads 4 --max_tokens 1600 \
  --max_eval_samples 1000 --heldout_every 18 --gradinit_max_tokens 2000 --gradinit_iters 780 --gradinit_lr 2.5e-3 \
  --gradinit_beta2 0.98 --gradinit_eta 2e-3 --gradinit_gamma 1000 --gradinit_max_scale 100 --resumable"
PYTHON=${PYTHON:-python}

lane() {  # lines of "results file<TAB>flags"
  while IFS=$'\t' read -r result flags; do
    [ -f "benchmarks/results/confirm/$result" ] && continue
    echo "=== $(date +%T) $result: $flags"
    if $PYTHON "$FROZEN/benchmarks/stability.py" $P $flags > "runs/confirm/log_${result%.json}.txt" 2>&1; then
      cp "runs/confirm/$result" benchmarks/results/confirm/
    else
      echo "FAILED $result (runs/confirm/log_${result%.json}.txt)"
    fi
  done
}

lane1() {
  for seed in 1 2 3; do for w in 75 150 300; do
    printf 'results_Bw%s_seed%s.json\t--arms B --tag w%s --warmup_steps %s --seed %s\n' $w $seed $w $w $seed
  done; done
  if [ -n "$W" ]; then for seed in 101 102 103 104 105 106 107 108; do
    printf 'results_Bw%s_seed%s.json\t--arms B --tag w%s --warmup_steps %s --seed %s\n' "$W" $seed "$W" "$W" $seed
  done; fi
}

lane2() {
  for seed in 101 102 103 104 105 106 107 108; do printf 'results_C_seed%s.json\t--arms C --seed %s\n' $seed $seed; done
  for seed in 101 102 103 104; do printf 'results_A_seed%s.json\t--arms A --seed %s\n' $seed $seed; done
  for s in 1001 1002; do printf 'results_Cs%s_seed101.json\t--arms C --seed 101 --search_seed %s --tag s%s\n' $s $s $s; done
}

LANES=${LANES:-12}
[[ $LANES == *1* ]] && { lane1 | lane >> runs/confirm/lane1.log 2>&1 & }
[[ $LANES == *2* ]] && { lane2 | lane >> runs/confirm/lane2.log 2>&1 & }
wait
