#!/usr/bin/env bash
# Creates training/.venv with the pinned training requirements.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
