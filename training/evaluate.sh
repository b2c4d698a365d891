#!/usr/bin/env bash
# Measures a model on the reporting sets with `hark eval` and prints a
# Markdown table for its model card: greedy decoding, beam search without a
# language model, and the model's default decoder (decoder.json: beam search
# with its LM). The network runs once per set; the decoders share its output.
#
#   training/evaluate.sh models/hark-en
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?model directory}
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
hark=target/release/hark
[ -x "$hark" ] || cargo build --release
sets=(
    "synthetic test (held-out sentences, held-out speaker slt)|training/data/synth/test.jsonl"
    "FSDD test (real, 6 speakers)|../shared/data/fsdd/test.jsonl"
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
    beam=$("$hark" eval --model "$model" --decoder beam --beam-size 64 --lm-weight 0 --word-bonus 0 --oov-penalty 0 --load-log-probs "$dir" "$manifest" 2>/dev/null)
    default=$("$hark" eval --model "$model" --load-log-probs "$dir" "$manifest" 2>/dev/null)
    n=$(echo "$greedy" | sed -n 's/.*(\([0-9]*\) utterances.*/\1/p')
    cell() { echo "$(echo "$1" | field WER) / $(echo "$1" | field CER)"; }
    echo "| $name | $n | $(cell "$greedy") | $(cell "$beam") | $(cell "$default") |"
done
