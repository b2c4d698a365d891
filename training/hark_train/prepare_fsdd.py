"""Split the FSDD training takes into train (takes 5–44) and dev (45–49)
manifests with absolute paths. The FSDD test split is never used here.

    python -m hark_train.prepare_fsdd ../shared/data/fsdd training/data/fsdd
"""

import json
import sys
from pathlib import Path


def main():
    src, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    splits = {"train": [], "dev": []}
    for line in (src / "train.jsonl").read_text().splitlines():
        row = json.loads(line)
        take = int(Path(row["audio_filepath"]).stem.split("_")[2])
        row["audio_filepath"] = str(src / row["audio_filepath"])
        splits["dev" if take >= 45 else "train"].append(row)
    for name, rows in splits.items():
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(f"{out / name}.jsonl: {len(rows)} utterances")


if __name__ == "__main__":
    main()
