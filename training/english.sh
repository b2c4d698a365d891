#!/usr/bin/env bash
# Builds hark's default English model from nothing but Debian and PyPI
# packages: synthesizes the training speech, then trains, resuming from
# models/hark-en when it exists. Each step skips what is already done, so
# running it again continues where it stopped.
#
#   training/english.sh [HOURS_OF_SPEECH] [TRAINING_MINUTES]
set -euo pipefail
cd "$(dirname "$0")"
hours=${1:-8}
minutes=${2:-600}

need=(espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox libsox-fmt-all wordnet-base bible-kjv fortunes)
missing=$(for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
fi
[ -x .venv/bin/python ] || ./setup.sh
[ -x ../target/release/hark ] || (cd .. && cargo build --release)

.venv/bin/python -m hark_train.prepare_fsdd ../../shared/data/fsdd data/fsdd
.venv/bin/python -m hark_train.synth --out data/synth --hours "$hours"

# The default language model: the same Debian text minus the synthetic dev
# and test sentences, as a 3-gram in hark's binary form.
.venv/bin/python -m hark_train.lm_text data/lm/train.txt
[ -f ../models/hark-en/lm.bin ] || ../target/release/hark lm build --order 3 -o ../models/hark-en/lm.bin data/lm/train.txt

init=()
[ -f ../models/hark-en/model.safetensors ] && init=(--init ../models/hark-en)
.venv/bin/python -m hark_train.train \
    --train data/synth/train.jsonl data/fsdd/train.jsonl \
    --dev data/synth/dev.jsonl data/fsdd/dev.jsonl \
    --out ../models/hark-en --name hark-en "${init[@]}" \
    --layers 3 --hidden 320 --stack 3 --lr 1.5e-3 --warmup 300 --lr-decay 0.97 \
    --max-frames 12000 --eval-every 150 --minutes "$minutes"
