#!/usr/bin/env bash
# Trains hark's English model on real and natural synthetic voices, resuming
# from models/hark-en, and builds its language model. Each step skips what
# is already done, so running it again continues where it stopped.
#
#   training/english.sh [TRAINING_MINUTES] [THREADS]
#
# Training data, mixed in every epoch (length-sorted batches, shuffled):
# speechocean762 and Speech Commands (real, minus the dev speakers), Kokoro
# (natural synthetic; its held-out voices are the synthetic test), FSDD
# training takes, strings of 3–7 FSDD training takes, and every set of
# Kokoro speech made here (data/kokoro-more*, by `hark_train.kokoro`),
# split by speaker. The export is chosen on that speech's held-out voices
# (native read speech, what the model is for) when there is any, else on
# the real dev speakers. The flags are those of a run resuming a trained
# model; the model card lists each run's.
set -euo pipefail
cd "$(dirname "$0")"
minutes=${1:-600}
threads=${2:-0}
shared=../../shared/data

[ -x .venv/bin/python ] || ./setup.sh
[ -x ../target/release/hark ] || (cd .. && cargo build --release)

[ -f data/fsdd/train.jsonl ] || .venv/bin/python -m hark_train.prepare_fsdd "$shared/fsdd" data/fsdd
[ -f data/shared/kokoro-train.jsonl ] || .venv/bin/python -m hark_train.prepare_shared "$shared" data/shared
[ -f data/digit-strings/manifest.jsonl ] || python3 digit_strings.py render data/fsdd/train.jsonl data/digit-strings --count 800 --seed 11

# The language model: the book corpus, the training transcripts and
# generated everyday sentences; a pruned 3-gram in hark's binary form
# (about 4 minutes and 8 GB of memory).
if [ ! -f data/lm/lm.bin ]; then
    .venv/bin/python -m hark_train.lm_text data/lm/train.txt --corpus "$shared/lm-text/corpus.txt.xz" \
        --manifests data/shared/speechocean-train.jsonl data/shared/commands-train.jsonl
    ../target/release/hark lm build --order 3 --prune 0,2,3 -o data/lm/lm.bin data/lm/train.txt
    cp data/lm/lm.bin ../models/hark-en/lm.bin
fi

made_train=() made_dev=()
for made in data/kokoro-more*/; do
    made=${made%/}
    [ -f "$made/train.jsonl" ] || continue
    [ "$made/train-split.jsonl" -nt "$made/train.jsonl" ] ||
        .venv/bin/python -m hark_train.kokoro --out "$made" --split-dev am_adam bf_alice zf_xiaoni
    made_train+=("$made/train-split.jsonl")
    made_dev+=("$made/dev.jsonl")
done
[ ${#made_dev[@]} -gt 0 ] || made_dev=(data/shared/speechocean-dev.jsonl data/shared/commands-dev.jsonl data/fsdd/dev.jsonl)

.venv/bin/python -m hark_train.train \
    --train data/shared/speechocean-train.jsonl data/shared/commands-train.jsonl data/shared/kokoro-train.jsonl \
        "${made_train[@]}" data/fsdd/train.jsonl data/digit-strings/manifest.jsonl \
    --dev "${made_dev[@]}" \
    --out ../models/hark-en --name hark-en --init ../models/hark-en \
    --lr 1e-4 --warmup 20 --lr-decay 0.9 \
    --max-frames 12000 --eval-every 250 --minutes "$minutes" --threads "$threads"
