#!/usr/bin/env bash
# hark vs PocketSphinx 5 on the same recordings, in one run (see
# compare_pocketsphinx.py). Installs PocketSphinx from PyPI into
# benches/.venv and builds hark's release binary first.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! benches/.venv/bin/python -c "import pocketsphinx, numpy" 2>/dev/null; then
    python3 -m venv benches/.venv
    benches/.venv/bin/pip install --quiet --disable-pip-version-check pocketsphinx==5.0.4 numpy
fi
cargo build --release --quiet
benches/.venv/bin/python benches/compare_pocketsphinx.py "$@"
