#!/usr/bin/env bash
# hark's BiLSTM loop against PyTorch's (oneDNN) on the same model and 10 s
# of audio, in one run: first on a quiet machine, then with another process
# keeping one core busy. Uses training/.venv for PyTorch (training/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x training/.venv/bin/python ] || training/setup.sh
cargo bench --quiet --bench pipeline --no-run
both() {
    cargo bench --quiet --bench pipeline -- "bilstm 3x320 10 s, fused" 2>&1 \
        | sed -n 's/^ *time: *\[\(.*\)\]/hark loop, 10 s, 2 threads: \1 (criterion low, median, high)/p'
    training/.venv/bin/python benches/compare_pytorch.py "$@"
}
echo "quiet:"
both "$@"
echo "one core busy (another process spinning):"
python3 -c 'while True: pass' &
busy=$!
trap 'kill $busy' EXIT
both "$@"
