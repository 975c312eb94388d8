#!/bin/bash
# BENCHMARKS §2U's GPU part: the paper's size and schedule, B and C side by side on one GPU, one seed per device call.
#   B: the paper's model, batches and optimizer (stability.py --preset paper), a 500-update linear warmup, then the
#      paper's linear decay towards 0 at update 100,000 (--lr_schedule_horizon), stopped at update 2,500
#   C: the same without warmup, after the package's default search (the paper's flags and θ′) on 6,000-token batches
# What travels, in the ignored folder gpu/ (`carry: ["gpu"]`; benchmarks/gpu_prepare.sh <commit> builds it):
#   gpu/code   git archive <commit> benchmarks hf_gradinit    (the frozen code; BENCHMARKS §2U names the commit)
#   gpu/data   a copy of ../shared/data/ding-de-en
#   gpu/wheels pip download --no-deps transformers huggingface_hub datasets ... at the CPU venv's versions, for
#              Python 3.12 (the device image has torch and no `datasets`; see BENCHMARKS §2d)
#   gpu/run.sh this file
# One call per seed, in the order lent (301, then 302, then 303):  SEED=301 bash gpu/run.sh   (timeout_s 560)
# SMOKE=1 SEED=301 OUT=/tmp/smoke bash gpu/run.sh  runs the same command at --tiny size on this CPU first.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
R=$PWD/gpu
SEED=${SEED:?SEED: 301, 302 or 303}
if [ -z "${SMOKE:-}" ]; then
  pip install -q --no-deps --target /tmp/site "$R"/wheels/*.whl > "$OUT/pip.log" 2>&1
  export PYTHONPATH=/tmp/site:$R/code
  PY=python3; SIZE="--device cuda --steps 2500 --eval_every 250"; T=${T:-470}
else
  export PYTHONPATH=$R/code
  PY=${PY:-/work/main/.venv/bin/python}; SIZE="--device cpu --tiny --steps 4 --eval_every 2"; T=600
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
$PY -c "import torch, transformers, datasets, accelerate, sacrebleu; print(torch.__version__, transformers.__version__, datasets.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())" 2>&1 | tee "$OUT/versions.txt"
# Both arms in one stability.py call (--parallel: a process each, on the one GPU); the search's flags are the
# package's defaults, so none is given.
timeout "$T" $PY "$R/code/benchmarks/stability.py" --preset paper --parallel --arms B C --warmup_steps 500 \
  --lr_schedule_horizon 100000 --data_dir "$R/data/ding-de-en" --out /tmp/paper --max_eval_samples 1000 \
  --heldout_every 18 --seed "$SEED" $SIZE > "$OUT/paper_seed$SEED.log" 2>&1
echo "stability.py exit status $?" | tee -a "$OUT/paper_seed$SEED.log"
nvidia-smi --query-gpu=name,memory.used --format=csv > "$OUT/gpu.txt" 2>&1
cd /tmp && tar -czf "$OUT/results_seed$SEED.tar.gz" --exclude='*.pt' --exclude='models' --exclude='state' paper
ls -la "$OUT"
