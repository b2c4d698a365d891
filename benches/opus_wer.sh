#!/usr/bin/env bash
# The default model's WER on ljspeech-dev as WAV and as Opus at 24 kb/s, in
# Ogg (opusenc, a voice note) and WebM (ffmpeg's libopus, written to a pipe
# as a browser's MediaRecorder writes it): what lossy speech coding costs.
# The voice notes are also decoded by libopus (opusdec, to 16 kHz WAV), to
# tell what the codec costs from what hark's Opus decoder does.
#
#   benches/opus_wer.sh [MODEL_DIR]     (default models/hark-en; needs opus-tools, ffmpeg)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/hark-en}
manifest=../shared/data/ljspeech-dev/dev.jsonl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
hark=target/release/hark
[ -x "$hark" ] || cargo build --release
python3 - "$manifest" "$work" <<'PY'
import json, os, subprocess, sys
manifest, work = sys.argv[1], sys.argv[2]
base = os.path.dirname(os.path.abspath(manifest))
kinds = ("ogg", "ogg-opusdec", "webm")
out = {kind: open(f"{work}/{kind}.jsonl", "w") for kind in kinds}
for line in open(manifest):
    entry = json.loads(line)
    wav = os.path.join(base, entry["audio_filepath"])
    stem = os.path.splitext(os.path.basename(wav))[0]
    ogg, opusdec, webm = f"{work}/{stem}.opus", f"{work}/{stem}.opusdec.wav", f"{work}/{stem}.webm"
    subprocess.run(["opusenc", "--quiet", "--bitrate", "24", wav, ogg], check=True)
    subprocess.run(["opusdec", "--quiet", "--rate", "16000", ogg, opusdec], check=True)
    with open(webm, "wb") as f:
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", wav, "-c:a", "libopus", "-b:a", "24k", "-f", "webm", "pipe:1"], check=True, stdout=f)
    for kind, path in zip(kinds, (ogg, opusdec, webm)):
        out[kind].write(json.dumps({**entry, "audio_filepath": path}) + "\n")
PY
echo "| $model on ljspeech-dev | WER | CER |"
echo "|---|---|---|"
for kind in wav ogg ogg-opusdec webm; do
    m=$manifest
    [ $kind = wav ] || m=$work/$kind.jsonl
    result=$("$hark" eval --model "$model" "$m" 2>/dev/null)
    echo "| $kind | $(echo "$result" | sed -n 's/^WER: *//p') | $(echo "$result" | sed -n 's/^CER: *//p') |"
done
