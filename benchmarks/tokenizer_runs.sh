#!/usr/bin/env bash
# Does the tokenizer decide whether the Post-LN Transformer trains without warmup? §2V's cell (§2P's model, data
# and schedule) through `hf-gradinit compare`, arms none and warmup (300 updates), with the GradInit paper's text
# preparation (`--tokenizer_preprocessing paper`, joint BPE of 10,000 as fairseq's prepare-iwslt14.sh), in two lanes
# (none | warmup), one thread each, from a frozen copy of CODE_COMMIT. The same command continues cut runs.
#
#   CODE_COMMIT=<commit> SEED=101 PYTHON=$PWD/.venv/bin/python bash benchmarks/tokenizer_runs.sh
#
# POSITIONS=fairseq runs the package's model with fairseq's position tables instead (benchmarks/peer/
# compare_fairseq_positions.py; §8), into runs/positions-fairseq-$SEED and benchmarks/results/positions_fairseq/.
# ARMS_LANE2= (empty) runs lane 1 alone (e.g. two seeds' gradinit arms side by side, one command each).
# NAME=<name> names the run folder (runs/<name>-$SEED) and the results folder (benchmarks/results/<name>/) instead.
# DROPOUT_SEED=<seed> keeps SEED's initial weights and batches and draws the dropout masks from DROPOUT_SEED
# (benchmarks/compare_dropout_seed.py), into runs/dropout-seed-$SEED and benchmarks/results/dropout_seed/ unless NAME.
set -euo pipefail
: "${CODE_COMMIT:?set CODE_COMMIT to the commit to run}"
SEED=${SEED:-101}
ARMS_LANE1=${ARMS_LANE1:-none}
ARMS_LANE2=${ARMS_LANE2-warmup}  # unset: warmup; set empty: no second lane
PYTHON=${PYTHON:-python}
POSITIONS=${POSITIONS:-package}
DROPOUT_SEED=${DROPOUT_SEED:-}
if [ "$POSITIONS" = fairseq ]; then name=positions_fairseq; else name=tokenizer_paper; fi
[ -n "$DROPOUT_SEED" ] && name=dropout_seed
[ -n "$DROPOUT_SEED" ] && [ "$POSITIONS" = fairseq ] && { echo "DROPOUT_SEED with POSITIONS=fairseq: not built" >&2; exit 2; }
name=${NAME:-$name}  # e.g. NAME=fairseq_batches: §8's runs at a commit whose token-budget batches are fairseq's
OUT=${OUT:-runs/${name/_/-}-$SEED}
frozen=runs/frozen-$CODE_COMMIT
if [ ! -d "$frozen" ]; then
  mkdir -p "$frozen" && git archive "$CODE_COMMIT" hf_gradinit benchmarks | tar -x -C "$frozen"
fi
data=runs/ding-heldout18
[ -f $data/train.jsonl ] || $PYTHON "$frozen/benchmarks/heldout_split.py" --data_dir ../shared/data/ding-de-en --out $data
FLAGS=(
  --model_type transformer --init fairseq --train_tokenizer --vocab_size 10000 --tokenizer_preprocessing paper
  --config_overrides "d_model=128,encoder_layers=6,decoder_layers=6,encoder_ffn_dim=512,decoder_ffn_dim=512,encoder_attention_heads=4,decoder_attention_heads=4,dropout=0.1,attention_dropout=0.1,activation_dropout=0.1"
  --train_file $data/train.jsonl --validation_file $data/validation.jsonl --source_lang de --target_lang en
  --max_source_length 64 --max_target_length 64 --output_dir "$OUT"
  --max_steps 1200 --eval_steps 100 --max_tokens 1600 --learning_rate 1e-3 --lr_scheduler_type constant_with_warmup
  --adam_beta2 0.98 --weight_decay 1e-4 --label_smoothing_factor 0.1 --max_grad_norm 0 --warmup_steps 300
  --per_device_eval_batch_size 64 --logging_steps 50 --use_cpu --report_to none --disable_tqdm true
  --gradinit_iters 780 --gradinit_max_tokens 2000
)
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
export PYTHONPATH=$PWD/$frozen
mkdir -p "$OUT"
compare=(-m hf_gradinit.cli compare)
[ "$POSITIONS" = fairseq ] && compare=("$frozen/benchmarks/peer/compare_fairseq_positions.py")
if [ -n "$DROPOUT_SEED" ]; then
  compare=("$frozen/benchmarks/compare_dropout_seed.py" --weights_seed "$SEED" --data_seed "$SEED")
  FLAGS+=(--seed "$DROPOUT_SEED")
else
  FLAGS+=(--seed "$SEED")
fi
lane() { $PYTHON "${compare[@]}" "${FLAGS[@]}" --arms "$1" >> "$OUT/lane-$2.log" 2>&1; }
lane "$ARMS_LANE1" 1 &
if [ -n "$ARMS_LANE2" ]; then lane "$ARMS_LANE2" 2 & fi  # ARMS_LANE2= (empty): one lane
wait
$PYTHON -m hf_gradinit.cli compare --report --output_dir "$OUT"
# The small files go to benchmarks/results/$name/seed$SEED/.
res=benchmarks/results/$name/seed$SEED
mkdir -p $res
cp "$OUT"/compare/{results.json,summary.md,curves.png} $res/
for arm in "$OUT"/compare/*/; do
  arm=$(basename "$arm")
  mkdir -p $res/$arm && cp "$OUT/compare/$arm/"{compare_arm.json,compare_settings.json} $res/$arm/
done
