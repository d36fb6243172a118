#!/usr/bin/env bash
# Install everything, then run the linter and the offline test suite (tiny random models, no network).
# Slow checks with real weights: scripts/test.sh -m slow
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests bench
exec .venv/bin/python -m pytest -q "$@"
