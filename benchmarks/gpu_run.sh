#!/bin/bash
# The device runs of BENCHMARKS §2S item 4 (d 512 search trace) and §2d (the paper's size, A/B/C side by side), as they
# ran on one H200 (2026-11-30). What travels, in the ignored folder gpu/ (`carry: ["gpu"]`):
#   gpu/code   git archive 2c43bef benchmarks hf_gradinit          (the frozen code of BENCHMARKS §2S)
#   gpu/data   a copy of ../shared/data/ding-de-en
#   gpu/wheels pip download --no-deps transformers==5.24.0 huggingface_hub==2.4.0 datasets==5.2.0 dill==0.4.1
#              httpx2==2.16.2 httpcore2==2.16.2 truststore==0.10.5, and multiprocess==0.70.19 for Python 3.12
#              (the machine's image has torch 2.11 and no `datasets`: these make its packages match the CPU venv's)
#   gpu/run.sh this file
# Calls:  T=420 STEPS=1500 bash gpu/run.sh                   (d 512 trace and the paper's size, seed 1)
#         SKIP_D512=1 SEED=2 T=370 STEPS=1500 bash gpu/run.sh (the paper's size, seed 2)
# SMOKE=1 OUT=/tmp/smoke bash gpu/run.sh runs the same commands at --tiny size on the CPU first.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
R=$PWD/gpu
if [ -z "${SMOKE:-}" ]; then
  pip install -q --no-deps --target /tmp/site $R/wheels/*.whl > $OUT/pip.log 2>&1
  export PYTHONPATH=/tmp/site:$R/code
  PY=python3; DEV="--device cuda"; D512_EXTRA=""; PAPER_EXTRA="--steps ${STEPS:-1500} --eval_every 100"; T=${T:-450}
else
  export PYTHONPATH=$R/code
  PY=/work/main/.venv/bin/python; DEV="--device cpu"; D512_EXTRA="--tiny --max_train_samples 400"; PAPER_EXTRA="--tiny --steps 2"; T=600
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
$PY -c "import torch, transformers, datasets, accelerate, sacrebleu; print(torch.__version__, transformers.__version__, datasets.__version__, accelerate.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())" 2>&1 | tee $OUT/versions.txt
D=$R/data/ding-de-en
MODEL="--model transformer --init fairseq --layers 6 --heads 4"
COMMON="--data_dir $D --threads 1 --max_eval_samples 1000 --heldout_every 18 --resumable \
  --gradinit_iters 780 --gradinit_lr 2.5e-3 --gradinit_beta2 0.98 --gradinit_gamma 1000 --gradinit_max_scale 100"
# (a) regime_runs.sh d512's flags exactly, on the GPU (skipped with SKIP_D512=1)
[ -n "${SKIP_D512:-}" ] || timeout $T $PY $R/code/benchmarks/stability.py $COMMON --out /tmp/d512 --arms C --tag d512 --lrs 5e-4 --gradinit_eta 1e-3 \
  $MODEL --d_model 512 --ffn 1024 --max_tokens 1600 --gradinit_max_tokens 2000 --steps 1 --eval_every 1 --seed 1 \
  $DEV $D512_EXTRA > $OUT/d512.log 2>&1 &
# (b) BENCHMARKS §2d's command
timeout $T $PY $R/code/benchmarks/stability.py --preset paper --parallel $DEV --data_dir $D --out /tmp/paper \
  --max_eval_samples 1000 --seed ${SEED:-1} $PAPER_EXTRA > $OUT/paper.log 2>&1 &
wait
nvidia-smi --query-gpu=name,memory.used --format=csv > $OUT/gpu.txt 2>&1
cd /tmp && tar -czf $OUT/results.tar.gz --exclude='*.pt' --exclude='models' --exclude='state' $(ls -d d512 paper 2>/dev/null)
ls -la $OUT; du -sh /tmp/d512 /tmp/paper
