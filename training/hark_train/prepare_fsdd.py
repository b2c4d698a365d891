"""Split the FSDD training takes into train (takes 5–44) and dev (45–49)
manifests. The FSDD test split is never used here.

The 8 kHz recordings are decoded to 16 kHz by hark itself (`hark decode`),
so the model trains on exactly the audio hark will hear: the bins above
4 kHz hold only what the resampler leaves there, and that differs between
resamplers enough to cost accuracy when training and serving disagree.

    python -m hark_train.prepare_fsdd ../shared/data/fsdd training/data/fsdd [--hark target/release/hark]
"""

import argparse
import json
import subprocess
from pathlib import Path


def main():
    p = argparse.ArgumentParser()
    p.add_argument("fsdd")
    p.add_argument("out")
    p.add_argument("--hark", default=str(Path(__file__).resolve().parents[2] / "target/release/hark"))
    args = p.parse_args()
    src, out = Path(args.fsdd).resolve(), Path(args.out).resolve()
    wav_dir = out / "wav16k"
    rows = [json.loads(line) for line in (src / "train.jsonl").read_text().splitlines() if line.strip()]
    inputs = [str(src / r["audio_filepath"]) for r in rows]
    for i in range(0, len(inputs), 500):
        subprocess.run([args.hark, "decode", "--out-dir", str(wav_dir), *inputs[i : i + 500]], check=True)
    splits = {"train": [], "dev": []}
    for row in rows:
        name = Path(row["audio_filepath"]).name
        take = int(Path(name).stem.split("_")[2])
        row["audio_filepath"] = str(wav_dir / name)
        splits["dev" if take >= 45 else "train"].append(row)
    for name, split_rows in splits.items():
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in split_rows))
        print(f"{out / name}.jsonl: {len(split_rows)} utterances")


if __name__ == "__main__":
    main()
