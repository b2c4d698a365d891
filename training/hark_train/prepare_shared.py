"""Decode the shared Opus sets (speechocean762, Speech Commands, Kokoro) to
16 kHz WAV and split them into train / dev / test manifests by speaker.

    python -m hark_train.prepare_shared ../shared/data data/shared

Speakers never cross a split: the speechocean762 and Speech Commands dev
sets are the speakers whose name hashes to 0 mod 10; the Kokoro test set is
every utterance in which the voices `af_nicole` or `bm_fable` speak, alone or
blended (the held-out synthetic speakers). The Opus files are 16 kHz
originals, which libsndfile decodes at 16 kHz, so no resampler is involved.
"""

import argparse
import hashlib
import json
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import soundfile as sf

HELD_OUT_VOICES = ("af_nicole", "bm_fable")


def _is_dev_speaker(speaker: str) -> bool:
    return int(hashlib.sha1(speaker.encode()).hexdigest(), 16) % 10 == 0


def _decode(job):
    src, dst = job
    if not Path(dst).exists():
        x, rate = sf.read(src, dtype="float32", always_2d=True)
        if rate != 16000:
            raise ValueError(f"{src}: {rate} Hz, expected 16 kHz")
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        sf.write(dst, np.clip(x.mean(axis=1), -1, 1), 16000, subtype="PCM_16")
    return dst


def _rows(manifest: Path, wav_root: Path):
    for line in manifest.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            src = manifest.parent / row["audio_filepath"]
            row["source"] = str(src)
            row["audio_filepath"] = str(wav_root / Path(row["audio_filepath"]).with_suffix(".wav"))
            yield row


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("shared", help="../shared/data")
    p.add_argument("out")
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args()
    shared, out = Path(args.shared).resolve(), Path(args.out).resolve()

    splits: dict[str, list[dict]] = {}
    for part in ("train", "test"):
        for row in _rows(shared / "speechocean762" / f"{part}.jsonl", out / "speechocean762"):
            splits.setdefault("speechocean-dev" if _is_dev_speaker(row["speaker"]) else "speechocean-train", []).append(row)
    for row in _rows(shared / "speech-commands" / "manifest.jsonl", out / "speech-commands"):
        splits.setdefault("commands-dev" if _is_dev_speaker(row["speaker"]) else "commands-train", []).append(row)
    for row in _rows(shared / "kokoro-speech" / "manifest.jsonl", out / "kokoro"):
        held_out = any(v in row["voice"] for v in HELD_OUT_VOICES)
        splits.setdefault("kokoro-test" if held_out else "kokoro-train", []).append(row)

    jobs = [(r["source"], r["audio_filepath"]) for rows in splits.values() for r in rows]
    with Pool(args.workers) as pool:
        for n, _ in enumerate(pool.imap_unordered(_decode, jobs, chunksize=32), 1):
            if n % 2000 == 0:
                print(f"decoded {n} of {len(jobs)}", flush=True)
    for name, rows in sorted(splits.items()):
        for r in rows:
            del r["source"]
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        hours = sum(r["duration"] for r in rows) / 3600
        speakers = len({r.get("speaker", r.get("voice")) for r in rows})
        print(f"{name}: {len(rows)} utterances, {speakers} speakers, {hours:.2f} h")


if __name__ == "__main__":
    main()
