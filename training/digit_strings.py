"""Strings of several spoken digits made from single-digit takes of one
speaker, with pauses of 0–0.6 s between them.

    python3 training/digit_strings.py recipe ../shared/data/fsdd/test.jsonl tests/data/digit-strings.jsonl
    python3 training/digit_strings.py render data/fsdd/train.jsonl data/digit-strings [--count 1500]

`recipe` writes what a string is made of (takes relative to the source
manifest's folder, pauses, text): 200 strings of 3–7 FSDD test takes are
the multi-digit test set that `tests/accuracy.rs` assembles through the real
server. `render` writes the audio too (16-bit WAV at the takes' rate,
silence in the pauses) with a NeMo manifest, for training from the training
takes; it needs numpy and soundfile (training/.venv).
"""

import argparse
import json
import random
from pathlib import Path


def recipes(manifest: Path, count: int, seed: int) -> list[dict]:
    by_speaker: dict[str, list[dict]] = {}
    for line in manifest.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            speaker = row.get("speaker") or Path(row["audio_filepath"]).stem.split("_")[1]
            by_speaker.setdefault(speaker, []).append(row)
    speakers = sorted(by_speaker)
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        takes = rng.sample(by_speaker[rng.choice(speakers)], rng.randint(3, 7))
        out.append({
            "takes": [t["audio_filepath"] for t in takes],
            "pauses_s": [round(rng.uniform(0.0, 0.6), 2) for _ in takes[1:]],
            "text": " ".join(t["text"] for t in takes),
        })
    return out


def render(recipe: dict, root: Path, path: Path) -> float:
    import numpy as np
    import soundfile as sf

    pieces, rate = [], None
    for k, take in enumerate(recipe["takes"]):
        x, take_rate = sf.read(str(root / take), dtype="float32")
        if rate not in (None, take_rate):
            raise ValueError(f"{take}: every take of a string must have the same rate")
        rate = take_rate
        if k:
            pieces.append(np.zeros(int(recipe["pauses_s"][k - 1] * rate), np.float32))
        pieces.append(x)
    samples = np.concatenate(pieces)
    sf.write(str(path), samples, rate, subtype="PCM_16")
    return len(samples) / rate


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["recipe", "render"])
    p.add_argument("takes", type=Path, help="manifest of single-digit takes (NeMo JSON lines, one speaker each)")
    p.add_argument("out", type=Path, help="recipe file (recipe) or output folder (render)")
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    made = recipes(args.takes, args.count, args.seed)
    if args.mode == "recipe":
        args.out.write_text("".join(json.dumps(r) + "\n" for r in made))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, r in enumerate(made):
        path = args.out / f"string-{i:05d}.wav"
        duration = render(r, args.takes.parent, path)
        rows.append({"audio_filepath": path.name, "duration": round(duration, 3), "text": r["text"]})
    (args.out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"{args.out / 'manifest.jsonl'}: {len(rows)} strings")


if __name__ == "__main__":
    main()
