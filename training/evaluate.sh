#!/usr/bin/env bash
# Measures a model on the reporting sets with `hark eval` and prints a
# Markdown table for its model card: greedy decoding, beam search without a
# language model (as many beams as the default decoder), and the model's
# default decoder (decoder.json: beam search with its LM). The network runs
# once per set; the decoders share its output.
#
#   training/evaluate.sh models/hark-en
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?model directory}
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
hark=target/release/hark
[ -x "$hark" ] || cargo build --release
# The multi-digit strings of tests/data/digit-strings.jsonl (same seed), as audio.
strings=training/data/digit-strings-test
[ -f $strings/manifest.jsonl ] || training/.venv/bin/python training/digit_strings.py render ../shared/data/fsdd/test.jsonl $strings --count 200 --seed 7
sets=(
    "Kokoro test (held-out voices af_nicole and bm_fable, held-out sentences)|training/data/shared/kokoro-test.jsonl"
    "Kokoro read dev (am_adam and bf_alice, clean, sentences the LM never saw; the decoder is tuned on it)|training/data/kokoro-readdev/train.jsonl"
    "speechocean762 dev speakers (real, 21 speakers)|training/data/shared/speechocean-dev.jsonl"
    "Speech Commands dev speakers (real, 25 speakers)|training/data/shared/commands-dev.jsonl"
    "FSDD test (real, 6 speakers)|../shared/data/fsdd/test.jsonl"
    "FSDD digit strings (3–7 test takes of one speaker)|training/data/digit-strings-test/manifest.jsonl"
    "ljspeech-dev (real read speech)|../shared/data/ljspeech-dev/dev.jsonl"
    "librivox-dev (real read speech)|../shared/data/librivox-dev/dev.jsonl"
)
field() { sed -n "s/^$1: *//p"; }
echo "| data | utterances | greedy WER / CER | beam, no LM | default decoder (decoder.json) |"
echo "|---|---|---|---|---|"
for entry in "${sets[@]}"; do
    name=${entry%%|*}
    manifest=${entry#*|}
    [ -f "$manifest" ] || { echo "| $name | (missing: $manifest) | | | |"; continue; }
    dir="$cache/$(echo "$manifest" | tr / _)"
    greedy=$("$hark" eval --model "$model" --decoder greedy --save-log-probs "$dir" "$manifest" 2>/dev/null)
    beam=$("$hark" eval --model "$model" --decoder beam --lm-weight 0 --word-bonus 0 --blank-penalty 0 --oov-penalty 0 --load-log-probs "$dir" "$manifest" 2>/dev/null)
    default=$("$hark" eval --model "$model" --load-log-probs "$dir" "$manifest" 2>/dev/null)
    n=$(echo "$greedy" | sed -n 's/.*(\([0-9]*\) utterances.*/\1/p')
    cell() { echo "$(echo "$1" | field WER) / $(echo "$1" | field CER)"; }
    echo "| $name | $n | $(cell "$greedy") | $(cell "$beam") | $(cell "$default") |"
done
