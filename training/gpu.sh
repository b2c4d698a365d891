#!/usr/bin/env bash
# Fine-tunes models/hark-en on a GPU machine from the parts `hark_train.pack`
# wrote to training/data/gpu (part-*.tar, and wheels/ for what the machine's
# Python lacks), exporting the best model on the packed dev set to
# $OUT/hark-en whenever it improves and the log to $OUT/train.log.
#
#   training/gpu.sh MINUTES [hark_train.train flags, which override these]
#
# The training minutes exclude unpacking and feature extraction (under a
# minute on 16 cores for 12 h of speech). PYTHON names the interpreter
# (default python3, the one that holds PyTorch there).
set -euo pipefail
cd "$(dirname "$0")"
minutes=${1:?training minutes}
shift
out=${OUT:?OUT: the folder the exports go to}
python=${PYTHON:-python3}
gpu=data/gpu

if ! "$python" -c 'import kaldi_native_fbank, soundfile' 2>/dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/hark-site "$gpu"/wheels/*.whl
    export PYTHONPATH=/tmp/hark-site
fi
for part in "$gpu"/part-*.tar; do
    tar -xf "$part" -C "$gpu"
done
missing=$(sed -n 's/.*"audio_filepath": "\([^"]*\)".*/\1/p' "$gpu"/train.jsonl "$gpu"/dev.jsonl | sort -u |
    while read -r f; do [ -f "$gpu/$f" ] || echo "$f"; done | wc -l)
[ "$missing" = 0 ] || { echo "$missing audio files missing: carry every part-*.tar" >&2; exit 1; }

mkdir -p "$out"
PYTHONUNBUFFERED=1 "$python" -m hark_train.train --train "$gpu"/train.jsonl --dev "$gpu"/dev.jsonl \
    --out "$out"/hark-en --name hark-en --init ../models/hark-en --cache-dir /tmp/hark-cache \
    --max-frames 96000 --lr 3e-4 --warmup 50 --lr-decay 0.9 --eval-every 100 --workers 12 \
    --minutes "$minutes" "$@" 2>&1 | tee "$out"/train.log
