"""A manifest's audio as voice notes: Ogg Opus at 24 kb/s, as `opusenc`
writes it (opus-tools), with a manifest of its own. The decoder is tuned on
a dev set as WAV and as voice notes, since users send both.

    python3 voice_notes.py data/kokoro-readdev/train.jsonl data/readdev-ogg
"""

import json
import subprocess
import sys
from pathlib import Path


def main():
    manifest, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for line in manifest.read_text().splitlines():
        row = json.loads(line)
        source = (manifest.parent / row["audio_filepath"]).resolve()
        note = (out / source.name).with_suffix(".opus").resolve()
        subprocess.run(["opusenc", "--quiet", "--bitrate", "24", str(source), str(note)], check=True)
        rows.append({**row, "audio_filepath": str(note)})
    (out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"{len(rows)} voice notes → {out / 'manifest.jsonl'}")


if __name__ == "__main__":
    main()
