#!/usr/bin/env bash
# Measures a model on the reporting sets with `hark eval` (greedy decoding)
# and prints a Markdown WER/CER table for its model card.
#
#   training/evaluate.sh models/hark-en
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?model directory}
hark=target/release/hark
[ -x "$hark" ] || cargo build --release
sets=(
    "synthetic test (held-out sentences, held-out speaker slt)|training/data/synth/test.jsonl"
    "FSDD test (real, 6 speakers)|../shared/data/fsdd/test.jsonl"
    "ljspeech-dev (real read speech)|../shared/data/ljspeech-dev/dev.jsonl"
    "librivox-dev (real read speech)|../shared/data/librivox-dev/dev.jsonl"
)
echo "| data | utterances | WER | CER |"
echo "|---|---|---|---|"
for entry in "${sets[@]}"; do
    name=${entry%%|*}
    manifest=${entry#*|}
    [ -f "$manifest" ] || { echo "| $name | (missing: $manifest) | | |"; continue; }
    out=$("$hark" eval --model "$model" "$manifest" 2>/dev/null)
    n=$(echo "$out" | sed -n 's/.*(\([0-9]*\) utterances.*/\1/p')
    wer=$(echo "$out" | sed -n 's/^WER: *//p')
    cer=$(echo "$out" | sed -n 's/^CER: *//p')
    echo "| $name | $n | $wer | $cer |"
done
