#!/bin/bash
# Builds the ignored folder gpu/ that benchmarks/gpu_paper_runs.sh needs on a lent device (see its header), in one
# command, so that a session lent a device spends none of its device time preparing:
#   gpu/code    git archive COMMIT benchmarks hf_gradinit (the frozen code)
#   gpu/data    a copy of ../shared/data/ding-de-en
#   gpu/wheels  the packages the device image lacks, at this venv's versions, for the image's Python 3.12
#   gpu/run.sh  benchmarks/gpu_paper_runs.sh
# then smoke-tests it at --tiny on this CPU (SMOKE=1). Usage, from the repository's root:
#   PYTHON=.venv/bin/python bash benchmarks/gpu_prepare.sh e16b7e8
set -eu
cd "$(dirname "$0")/.."
COMMIT=${1:?the commit whose benchmarks/ and hf_gradinit/ the runs use, e.g. e16b7e8 (BENCHMARKS §2U)}
PYTHON=${PYTHON:-python}
PACKAGES="transformers huggingface_hub datasets dill httpx2 httpcore2 truststore multiprocess"
rm -rf gpu/code gpu/wheels gpu/run.sh && mkdir -p gpu/code gpu/wheels gpu/data
git archive "$COMMIT" benchmarks hf_gradinit | tar -x -C gpu/code
rm -rf gpu/data/ding-de-en && cp -r ../shared/data/ding-de-en gpu/data/
PINS=$($PYTHON -c "import importlib.metadata as m, sys; print(' '.join(f'{p}=={m.version(p)}' for p in sys.argv[1:]))" $PACKAGES)
$PYTHON -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
  --platform manylinux_2_17_x86_64 --platform any -d gpu/wheels $PINS
cp benchmarks/gpu_paper_runs.sh gpu/run.sh
du -sh gpu
SMOKE=1 SEED=301 OUT=/tmp/gpu_smoke PY=$PYTHON bash gpu/run.sh > /tmp/gpu_smoke.log 2>&1
grep -q "stability.py exit status 0" /tmp/gpu_smoke/paper_seed301.log \
  || { tail -20 /tmp/gpu_smoke/paper_seed301.log; echo "smoke test failed: /tmp/gpu_smoke/" >&2; exit 1; }
echo "gpu/ ready and smoke-tested (/tmp/gpu_smoke/): one device call per seed, carry [\"gpu\"], timeout_s 560:"
echo "  SEED=301 bash gpu/run.sh"
