#!/usr/bin/env bash
# hark vs PocketSphinx 5 on the same recordings, in one run (see
# compare_pocketsphinx.py). Installs PocketSphinx from PyPI into
# benches/.venv and builds hark's release binary first.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! benches/.venv/bin/python -c "import pocketsphinx, numpy, num2words" 2>/dev/null; then
    python3 -m venv benches/.venv
    benches/.venv/bin/pip install --quiet --disable-pip-version-check pocketsphinx==5.0.4 numpy==2.4.6 num2words==0.5.14
fi
cargo build --release --quiet
benches/.venv/bin/python benches/compare_pocketsphinx.py "$@"
