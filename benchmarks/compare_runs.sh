#!/usr/bin/env bash
# BENCHMARKS.md §2V: §2P's cell through `hf-gradinit compare`, seed 101, arms none, warmup (300 updates), gradinit,
# in two lanes (gradinit | none then warmup), one thread each, from a frozen copy of the commit that fixed the
# protocol. The same command continues cut runs: a finished arm is skipped, a cut one resumes from its checkpoint.
#
#   CODE_COMMIT=<commit> PYTHON=$PWD/.venv/bin/python bash benchmarks/compare_runs.sh
set -euo pipefail
: "${CODE_COMMIT:?set CODE_COMMIT to the commit that fixed the protocol}"
PYTHON=${PYTHON:-python}
OUT=${OUT:-runs/compare-2v}
frozen=runs/frozen-$CODE_COMMIT
if [ ! -d "$frozen" ]; then
  mkdir -p "$frozen" && git archive "$CODE_COMMIT" hf_gradinit benchmarks | tar -x -C "$frozen"
fi
data=runs/ding-heldout18
[ -f $data/train.jsonl ] || $PYTHON "$frozen/benchmarks/heldout_split.py" --data_dir ../shared/data/ding-de-en --out $data
FLAGS=(
  --model_type transformer --init fairseq --train_tokenizer --vocab_size 8000
  --config_overrides "d_model=128,encoder_layers=6,decoder_layers=6,encoder_ffn_dim=512,decoder_ffn_dim=512,encoder_attention_heads=4,decoder_attention_heads=4,dropout=0.1,attention_dropout=0.1,activation_dropout=0.1"
  --train_file $data/train.jsonl --validation_file $data/validation.jsonl --source_lang de --target_lang en
  --max_source_length 64 --max_target_length 64 --output_dir "$OUT" --seed 101
  --max_steps 1200 --eval_steps 100 --max_tokens 1600 --learning_rate 1e-3 --lr_scheduler_type constant_with_warmup
  --adam_beta2 0.98 --weight_decay 1e-4 --label_smoothing_factor 0.1 --max_grad_norm 0 --warmup_steps 300
  --per_device_eval_batch_size 64 --logging_steps 50 --use_cpu --report_to none --disable_tqdm true
  --gradinit_iters 780 --gradinit_max_tokens 2000 --gradinit_lr 2.5e-3 --gradinit_beta2 0.98 --gradinit_eta 2e-3
  --gradinit_gamma 1000 --gradinit_max_scale 100 --gradinit_step_moves_tied_output true
  --gradinit_freeze_zero_biases false
)
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
export PYTHONPATH=$PWD/$frozen
mkdir -p "$OUT"
lane() { $PYTHON -m hf_gradinit.cli compare "${FLAGS[@]}" --arms "$1" >> "$OUT/lane-$2.log" 2>&1; }
lane gradinit 1 &
lane none,warmup 2 &
wait
$PYTHON -m hf_gradinit.cli compare --report --output_dir "$OUT"
# The small files go to benchmarks/results/compare_2v/ (BENCHMARKS.md §2V says how to regenerate its table).
res=benchmarks/results/compare_2v
mkdir -p $res
cp "$OUT"/compare/{results.json,summary.md,curves.png} $res/
for arm in none warmup gradinit; do
  mkdir -p $res/$arm && cp "$OUT/compare/$arm/compare_arm.json" $res/$arm/
done
cp "$OUT/compare/gradinit/gradinit/scales.json" $res/gradinit/
