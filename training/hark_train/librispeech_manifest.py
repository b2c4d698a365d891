"""Turns a LibriSpeech-layout folder into a NeMo-style manifest for
`hark_train.train`, for users with real data:

    python -m hark_train.librispeech_manifest /data/LibriSpeech/train-clean-100 train-clean-100.jsonl

The layout is SPEAKER/CHAPTER/SPEAKER-CHAPTER.trans.txt with one
"UTTERANCE-ID TRANSCRIPT" line per utterance beside UTTERANCE-ID.flac (or
.wav). FLAC is converted to 16 kHz 16-bit WAV next to it with sox, since
training reads WAV.
"""

import json
import subprocess
import sys
import wave
from pathlib import Path

from .text import normalize


def main():
    root, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    rows = []
    for trans in sorted(root.glob("*/*/*.trans.txt")):
        for line in trans.read_text().splitlines():
            utt, _, text = line.partition(" ")
            wav = trans.parent / f"{utt}.wav"
            if not wav.exists():
                flac = trans.parent / f"{utt}.flac"
                subprocess.run(["sox", str(flac), "-r", "16000", "-b", "16", "-c", "1", str(wav)], check=True)
            with wave.open(str(wav)) as w:
                duration = w.getnframes() / w.getframerate()
            rows.append({"audio_filepath": str(wav), "duration": round(duration, 3), "text": normalize(text)})
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"{out}: {len(rows)} utterances, {sum(r['duration'] for r in rows) / 3600:.1f} h")


if __name__ == "__main__":
    main()
