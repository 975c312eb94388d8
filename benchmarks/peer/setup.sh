#!/usr/bin/env bash
# The GradInit authors' code (github.com/zhuchen03/gradinit, commit 777c407, its fairseq fork) set up beside the
# package, on CPU, with §2V's cell in fairseq's form. Not part of the test suite.
#
#   git clone https://github.com/zhuchen03/gradinit /path/to/gradinit
#   bash benchmarks/peer/setup.sh /path/to/gradinit
#
# Makes, under $PEER (runs/peer):
#   fairseq/   the fork's fairseq/ folder at 777c407 with patches/fairseq-fork.patch applied:
#              Python 3.11 refuses dataclass instances as field defaults (default_factory instead); the search's
#              end saved to `args.expname`, which is never defined (saved to --save-dir now, with the scales α and
#              a per-iteration trace of the branch taken, ‖g‖₁ and the batch's sentence ids)
#   venv/      Python 3.11, torch 2.13.0 (CPU), the fork's pins (hydra-core 1.0.7 with patches/hydra-core-1.0.7.patch,
#              the same default_factory change; omegaconf 2.0.6; numpy < 2), torchaudio left out; the fork installed
#              in place (builds its Cython/C++ parts, a few minutes)
#   cell/      export_cell.py's output (the package's tokens and initial weights, run with $PYTHON, the package's)
#   data-bin/  cell/'s text binarized by fairseq-preprocess with cell/dict.txt, so fairseq reads the package's ids
# Each step is skipped when its output is there; delete the folder to redo it.
set -euo pipefail
CLONE=${1:?give the path of a clone of github.com/zhuchen03/gradinit}
COMMIT=777c407
PEER=${PEER:-runs/peer}
PYTHON=${PYTHON:-python}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$PEER"
PEER=$(cd "$PEER" && pwd)

if [ ! -d "$PEER/fairseq" ]; then
  git -C "$CLONE" archive "$COMMIT" fairseq | tar -x -C "$PEER"
  patch -d "$PEER/fairseq" -p1 < "$here/patches/fairseq-fork.patch"
fi
if [ ! -x "$PEER/venv/bin/fairseq-preprocess" ]; then
  python3.11 -m venv "$PEER/venv"
  "$PEER/venv/bin/pip" install -q torch==2.13.0 "numpy<2" hydra-core==1.0.7 omegaconf==2.0.6 \
    cffi cython regex sacrebleu tqdm bitarray
  patch -d "$PEER/venv/lib/python3.11/site-packages" -p1 < "$here/patches/hydra-core-1.0.7.patch"
  "$PEER/venv/bin/pip" install -q --no-deps --no-build-isolation -e "$PEER/fairseq"
fi
if [ ! -f "$PEER/cell/init/fingerprints.json" ]; then
  OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 "$PYTHON" "$here/export_cell.py" --out "$PEER/cell" --seeds 101 102 103 104
fi
if [ ! -f "$PEER/data-bin/valid.de-en.en.bin" ]; then
  "$PEER/venv/bin/fairseq-preprocess" --source-lang de --target-lang en \
    --trainpref "$PEER/cell/text/train" --validpref "$PEER/cell/text/valid" \
    --srcdict "$PEER/cell/dict.txt" --tgtdict "$PEER/cell/dict.txt" --destdir "$PEER/data-bin" --workers 1
fi
echo "The authors' code: $PEER/fairseq (python: $PEER/venv/bin/python); the cell: $PEER/data-bin"
