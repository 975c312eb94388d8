#!/usr/bin/env bash
# Throughput of the authors' code against the package's, side by side in one run, one thread each, on §2V's model
# and budgets (d 128, 6+6 layers, 1,600-token training batches, 2,000-token search batches, the same tokens):
#   lane 1  the authors' code (runs.sh's arm C): a search of $ITERS iterations, then $UPDATES updates
#   lane 2  the package (examples/translation/run_translation.py, --do_train): the same
# The first iterations of both searches are constraint steps (‖g‖₁ starts near 6,000, above γ = 1000), so the
# search figure is a constraint iteration's. Prints seconds an update and an iteration, and the ratios, and writes
# them to $RESULTS (benchmarks/results/peer/throughput.json) with the machine's load before the run.
#
#   bash benchmarks/peer/throughput.sh      (after setup.sh, on an otherwise quiet machine; about 10 minutes)
set -euo pipefail
PEER=${PEER:-runs/peer}
PYTHON=${PYTHON:-python}
ITERS=${ITERS:-60}
UPDATES=${UPDATES:-200}
OUT=${OUT:-runs/peer/throughput}
RESULTS=${RESULTS:-benchmarks/results/peer/throughput.json}
root=$PWD
rm -rf "$OUT" && mkdir -p "$OUT/authors" "$OUT/package"
load=$(cut -d" " -f1 /proc/loadavg)  # the 1-minute load average before the two lanes start
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
SEARCH_ITERS=$ITERS source "$(dirname "${BASH_SOURCE[0]}")/fairseq_cell.sh"  # runs.sh's model, optimizer and search

authors() {
  (cd "$PEER/fairseq" && "$root/$PEER/venv/bin/python" "$root/benchmarks/peer/peer_train.py" "$root/$PEER/data-bin" \
    --peer-init "$root/$PEER/cell/init/seed101.pt" --save-dir "$root/$OUT/authors" --no-save \
    "${FAIRSEQ_CELL[@]}" "${FAIRSEQ_SEARCH[@]}" --seed 101 --max-update "$UPDATES" --disable-validation \
    --log-format json --log-interval 50) > "$OUT/authors/train.log" 2>&1
}
package() {
  "$PYTHON" examples/translation/run_translation.py \
    --model_type transformer --init fairseq --train_tokenizer --vocab_size 10000 --tokenizer_preprocessing paper \
    --config_overrides "d_model=128,encoder_layers=6,decoder_layers=6,encoder_ffn_dim=512,decoder_ffn_dim=512,encoder_attention_heads=4,decoder_attention_heads=4,dropout=0.1,attention_dropout=0.1,activation_dropout=0.1" \
    --train_file runs/ding-heldout18/train.jsonl --source_lang de --target_lang en \
    --max_source_length 64 --max_target_length 64 --output_dir "$OUT/package" --seed 101 --do_train \
    --max_steps "$UPDATES" --max_tokens 1600 --learning_rate 1e-3 --lr_scheduler_type constant --adam_beta2 0.98 \
    --weight_decay 1e-4 --label_smoothing_factor 0.1 --max_grad_norm 0 --logging_steps 50 --save_strategy no \
    --use_cpu --report_to none --disable_tqdm true --gradinit_iters "$ITERS" --gradinit_max_tokens 2000 \
    > "$OUT/package/train.log" 2>&1
}
authors &
package &
wait
"$PYTHON" - "$OUT" "$ITERS" "$UPDATES" "$RESULTS" "$load" <<'EOF'
import json, os, re, sys
out, iters, updates, results, load = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
log = open(f"{out}/authors/train.log").read()
a_search = float(re.findall(r"search took ([0-9.]+) s", log)[-1]) / iters
# train_wall: seconds in training steps over each logging interval (whole seconds)
inner = re.findall(r"\| train_inner \| (\{.*\})", log)  # one record every 50 updates
if len(inner) != updates // 50 or updates % 50:
    sys.exit(f"UPDATES={updates}: give a multiple of 50 (fairseq logs its training time every 50 updates)")
a_train = sum(float(json.loads(m)["train_wall"]) for m in inner) / updates
state = json.load(open(f"{out}/package/trainer_state.json"))
p_search = next(r["gradinit_runtime"] for r in state["log_history"] if "gradinit_runtime" in r) / iters
p_train = json.load(open(f"{out}/package/train_results.json"))["train_runtime"] / updates
print(f"| | authors' code | package | package / authors |\n|---|---:|---:|---:|")
print(f"| training, s an update ({updates}) | {a_train:.3f} | {p_train:.3f} | {p_train / a_train:.2f}× |")
print(f"| search, s a constraint iteration ({iters}) | {a_search:.3f} | {p_search:.3f} | {p_search / a_search:.2f}× |")
os.makedirs(os.path.dirname(results) or ".", exist_ok=True)
with open(results, "w") as f:
    json.dump({"command": f"ITERS={iters} UPDATES={updates} bash benchmarks/peer/throughput.sh",
               "load_average_before": load, "cpus": os.cpu_count(), "threads_per_lane": 1,
               "seconds_per_update": {"authors": a_train, "package": p_train},
               "seconds_per_constraint_iteration": {"authors": a_search, "package": p_search},
               "package_over_authors": {"update": p_train / a_train, "constraint_iteration": p_search / a_search}},
              f, indent=2)
EOF
