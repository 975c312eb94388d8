#!/usr/bin/env bash
# BENCHMARKS.md §2S's runs: a second cell where no warmup fails (is η "2 × lr" or "2e-3"?), the paper's θ′ details at
# η = 2 × lr, Admin (arm D) beside GradInit and warmup, and a d 512 search trace. Two at a time (one thread each),
# from a frozen copy of the commit whose benchmarks/ and hf_gradinit/ they use, so that later changes cannot touch
# them. A run whose results file is in benchmarks/results/regime/<stage>/ is skipped; a cut run continues from its
# saved state (--resumable, under runs/regime/<stage>/); each finished run's results file is copied there (commit it).
# Several stages make one queue, taken in order by both lanes, so that neither idles while the other has runs left:
#
#   bash benchmarks/regime_runs.sh probe256 details admin
#   LANES=1 bash benchmarks/regime_runs.sh admin     # one lane (one core left free)
#
#   bash benchmarks/regime_runs.sh probe             # A and B, 400 updates, seed 1: lr 5e-4 β2 0.999 and lr 2e-3 β2 0.98
#   bash benchmarks/regime_runs.sh probe256          # if neither fails: A and B at d 256 (ffn 1024), lr 1e-3, β2 0.98
#   bash benchmarks/regime_runs.sh probe1200         # the probes still on the plateau at 400 (lr 2e-3; d 256), to 1,200
#   bash benchmarks/regime_runs.sh warmup2e-3        # B at lr 2e-3 with W = 300 and 600: a warmup that trains there
#   bash benchmarks/regime_runs.sh cell LR BETA2 W   # the failing cell: A, B (W warmup updates), C at η = 2 × LR and
#                                                    #   at η = 2e-3; seeds 1-3, 1,200 updates
#   bash benchmarks/regime_runs.sh details           # C with the paper's θ′ details and exact HVPs, seeds 101-103
#   bash benchmarks/regime_runs.sh hvpdetails        # the details' search with finite-difference HVPs, seeds 101-102
#   bash benchmarks/regime_runs.sh admin             # D (Admin), seeds 101-103
#   bash benchmarks/regime_runs.sh celladmin         # D (Admin) in the lr 2e-3 cell, seeds 1-3, 1,200 updates
#   bash benchmarks/regime_runs.sh d512              # the search alone at the paper's width (780 iterations)
#   CODE_COMMIT=<sha> bash benchmarks/regime_runs.sh long   # BENCHMARKS §2U: the d 128 cell to 4,800 updates,
#                                                    #   seeds 201-204, with the 0.2 defaults (C) and 0.1's (Cold)
#
# `details` and `admin` use §2P's regime and seeds 101-103, so they stand beside the confirmatory B and C runs of the
# same seeds (benchmarks/results/confirm/) without rerunning them.
set -u
cd "$(dirname "$0")/.."
source benchmarks/keep_results.sh
CODE_COMMIT=${CODE_COMMIT:-2c43bef}  # the long stage runs the 0.2 code: CODE_COMMIT=<its commit>
[ $# -gt 0 ] || { echo "stages: probe, probe256, probe1200, warmup2e-3, cell LR BETA2 W, details, hvpdetails, admin, celladmin, d512 or long" >&2; exit 2; }
FROZEN=runs/frozen-$CODE_COMMIT
if [ ! -d "$FROZEN" ]; then
  mkdir -p "$FROZEN" && git archive "$CODE_COMMIT" benchmarks hf_gradinit | tar -x -C "$FROZEN"
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1 PYTHONPATH="$FROZEN"
MODEL="--model transformer --init fairseq --layers 6 --heads 4"
COMMON="--data_dir ../shared/data/ding-de-en --threads 1 --max_eval_samples 1000 --heldout_every 18 --resumable \
  --gradinit_iters 780 --gradinit_lr 2.5e-3 --gradinit_beta2 0.98 --gradinit_gamma 1000 --gradinit_max_scale 100"
MAIN="$MODEL --d_model 128 --ffn 512 --max_tokens 1600 --gradinit_max_tokens 2000 --steps 1200 --eval_every 100"
PYTHON=${PYTHON:-python}
LANES=${LANES:-2}  # processes side by side, one thread each
CLAIMS=runs/regime/claims

jobs_of() {  # a stage's runs, as lines of "stage<TAB>results file<TAB>flags", in the order the lanes take them
  local stage=$1; shift
  job() { local result=$1; shift; printf '%s\t%s\t%s\n' "$stage" "$result" "$*"; }
  case $stage in
    probe)
      P="$MAIN --steps 400"
      job results_A_lr5e-4_b0.999_seed1.json --arms A --tag _lr5e-4_b0.999 --lrs 5e-4 --adam_beta2 0.999 $P --seed 1
      job results_A_lr2e-3_b0.98_seed1.json --arms A --tag _lr2e-3_b0.98 --lrs 2e-3 --adam_beta2 0.98 $P --seed 1
      job results_B_lr5e-4_b0.999_seed1.json --arms B --tag _lr5e-4_b0.999 --lrs 5e-4 --adam_beta2 0.999 --warmup_steps 150 $P --seed 1
      job results_B_lr2e-3_b0.98_seed1.json --arms B --tag _lr2e-3_b0.98 --lrs 2e-3 --adam_beta2 0.98 --warmup_steps 150 $P --seed 1 ;;
    probe256)
      P="--model transformer --init fairseq --layers 6 --heads 4 --d_model 256 --ffn 1024 --max_tokens 1600 \
        --gradinit_max_tokens 2000 --steps 400 --eval_every 100 --lrs 1e-3 --adam_beta2 0.98 --seed 1"
      job results_A_d256_seed1.json --arms A --tag _d256 $P
      job results_B_d256_seed1.json --arms B --tag _d256 --warmup_steps 150 $P ;;
    probe1200)
      # Continued from the 400-update probes' saved states (copied in by continue_probes), same flags but --steps.
      P="--model transformer --init fairseq --layers 6 --heads 4 --max_tokens 1600 --gradinit_max_tokens 2000 \
        --steps 1200 --eval_every 100 --seed 1"
      job results_A_lr2e-3_b0.98_seed1.json --arms A --tag _lr2e-3_b0.98 --lrs 2e-3 --adam_beta2 0.98 --d_model 128 --ffn 512 $P
      job results_B_lr2e-3_b0.98_seed1.json --arms B --tag _lr2e-3_b0.98 --lrs 2e-3 --adam_beta2 0.98 --warmup_steps 150 \
        --d_model 128 --ffn 512 $P
      job results_A_d256_seed1.json --arms A --tag _d256 --lrs 1e-3 --adam_beta2 0.98 --d_model 256 --ffn 1024 $P
      job results_B_d256_seed1.json --arms B --tag _d256 --lrs 1e-3 --adam_beta2 0.98 --warmup_steps 150 --d_model 256 \
        --ffn 1024 $P ;;
    warmup2e-3)
      for w in 300 600; do
        job results_Bw${w}_lr2e-3_seed1.json --arms B --tag w${w}_lr2e-3 --warmup_steps $w --lrs 2e-3 --adam_beta2 0.98 \
          $MAIN --seed 1
      done ;;
    cell)
      local LR=${1:?LR} BETA2=${2:?BETA2} W=${3:?W}
      C="--lrs $LR --adam_beta2 $BETA2 $MAIN"
      # At lr 2e-3, β2 0.98 seed 1's A and B ran before, with these flags: probe1200's A and warmup2e-3's B of this W
      # (regime_report.py takes them from there).
      local earlier=benchmarks/results/regime A1=no B1=no
      if [ "$LR $BETA2" = "2e-3 0.98" ]; then
        [ -f $earlier/probe1200/results_A_lr2e-3_b0.98_seed1.json ] && A1=yes
        [ -f $earlier/warmup2e-3/results_Bw${W}_lr2e-3_seed1.json ] && B1=yes
      fi
      for seed in 1 2 3; do  # A first: it does not depend on W
        [ $seed = 1 ] && [ $A1 = yes ] && continue
        job results_A_seed$seed.json --arms A $C --seed $seed
      done
      for seed in 1 2 3; do
        [ $seed = 1 ] && [ $B1 = yes ] || \
          job results_Bw${W}_seed$seed.json --arms B --tag w$W --warmup_steps $W $C --seed $seed
        job results_Cratio_seed$seed.json --arms C --tag ratio $C --seed $seed
        job results_Cvalue_seed$seed.json --arms C --tag value --gradinit_eta 2e-3 $C --seed $seed
      done ;;
    details)
      for seed in 101 102 103; do
        job results_Cdetails_seed$seed.json --arms C --tag details --lrs 1e-3 --gradinit_eta 2e-3 --gradinit_reference_step \
          --gradinit_freeze_zero_biases --gradinit_hvp exact $MAIN --seed $seed
      done ;;
    hvpdetails)
      # The search alone (one update after it), finite-difference HVPs with the paper's θ′ details: beside the
      # `details` stage's exact searches of the same seeds (same frozen code, flags and batches).
      for seed in 101 102; do
        job results_Cdetailsfd_seed$seed.json --arms C --tag detailsfd --lrs 1e-3 --gradinit_eta 2e-3 \
          --gradinit_reference_step --gradinit_freeze_zero_biases --gradinit_hvp finite_difference $MAIN --seed $seed \
          --steps 1 --eval_every 1
      done ;;
    admin)
      for seed in 101 102 103; do
        job results_D_seed$seed.json --arms D --lrs 1e-3 $MAIN --seed $seed
      done ;;
    celladmin)
      for seed in 1 2 3; do
        job results_D_seed$seed.json --arms D --lrs 2e-3 --adam_beta2 0.98 $MAIN --seed $seed
      done ;;
    long)
      [ "$CODE_COMMIT" != 2c43bef ] || { echo "long: set CODE_COMMIT to the commit of the 0.2 code" >&2; return 2; }
      # §2U's protocol: §2P's cell (lr 1e-3 constant, β2 0.98, 1,600-token batches, search on 2,000-token batches,
      # B = 300-update warmup) to 4,800 updates. C: the package's defaults (0.2, the paper's θ′); Cold: §2P's C, the
      # same explicit search flags with 0.1's θ′ (--gradinit_defaults 0.1). The rule's runs first.
      L="--lrs 1e-3 --adam_beta2 0.98 $MODEL --d_model 128 --ffn 512 --max_tokens 1600 --gradinit_max_tokens 2000 \
        --steps 4800 --eval_every 100"
      for seed in 201 202; do
        job results_Bw300_seed$seed.json --arms B --tag w300 --warmup_steps 300 $L --seed $seed
        job results_C_seed$seed.json --arms C $L --seed $seed
      done
      for seed in 201 202; do job results_A_seed$seed.json --arms A $L --seed $seed; done
      for seed in 203 204; do
        job results_Bw300_seed$seed.json --arms B --tag w300 --warmup_steps 300 $L --seed $seed
        job results_C_seed$seed.json --arms C $L --seed $seed
      done
      for seed in 201 202; do job results_Cold_seed$seed.json --arms C --tag old --gradinit_defaults 0.1 $L --seed $seed; done ;;
    d512)
      # One training update after the search: the search's trace (scales.json) is the result.
      job results_Cd512_seed1.json --arms C --tag d512 --lrs 5e-4 --gradinit_eta 1e-3 $MODEL --d_model 512 --ffn 1024 \
        --max_tokens 1600 --gradinit_max_tokens 2000 --steps 1 --eval_every 1 --seed 1 ;;
    *) echo "unknown stage $stage: probe, probe256, probe1200, warmup2e-3, cell LR BETA2 W, details, hvpdetails, admin, celladmin, d512 or long" >&2; return 2 ;;
  esac
}

queue() {  # every named stage's runs, one stage after the other ("cell" takes its three arguments)
  set -- "${STAGES[@]}"
  while [ $# -gt 0 ]; do
    if [ "$1" = cell ]; then jobs_of cell "$2" "$3" "$4" || return; shift 4
    else jobs_of "$1" || return; shift; fi
  done
}

lane() {  # takes runs from the queue until it is empty; a run is claimed by creating $CLAIMS/<stage>_<results file>
  while IFS=$'\t' read -r stage result flags; do
    local results=benchmarks/results/regime/$stage out=runs/regime/$stage
    [ -f "$results/$result" ] && continue
    mkdir "$CLAIMS/${stage}_$result" 2> /dev/null || continue  # the other lane has it
    mkdir -p "$results" "$out"
    echo "=== $(date +%T) $stage/$result: $flags"
    if $PYTHON "$FROZEN/benchmarks/stability.py" $COMMON --out "$out" $flags > "$out/log_${result%.json}.txt" 2>&1; then
      keep_results "$out" "$results" "$result"
    else
      echo "FAILED $stage/$result ($out/log_${result%.json}.txt)"
    fi
  done < <(queue)
}

continue_probes() {  # probe1200 starts from the 400-update probes' saved states (their own files stay as they are)
  mkdir -p runs/regime/probe1200/state
  for f in runs/regime/probe/state/*_lr2e-3_b0.98-* runs/regime/probe256/state/*_d256-*; do
    [ -f "$f" ] && cp -n "$f" runs/regime/probe1200/state/
  done
}

STAGES=("$@")
[[ " ${STAGES[*]} " == *" probe1200 "* ]] && continue_probes
queue > /dev/null || exit 2  # an unknown stage fails here, before any run starts
rm -rf "$CLAIMS" && mkdir -p "$CLAIMS"  # no lane is running: claims of cut runs are void
STARTED=$(date +%m%d-%H%M%S)
for ((n = 1; n <= LANES; n++)); do lane > "runs/regime/lane$n-$STARTED.log" 2>&1 & done
wait
