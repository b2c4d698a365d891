"""Packs training and dev manifests into Ogg Opus parts small enough to
travel to a GPU machine, where `training/gpu.sh` unpacks them and trains.

    python -m hark_train.pack data/gpu --train a.jsonl [b.jsonl ...] --dev d.jsonl [...] \
        [--bitrate 16] [--part-mib 42]

Such a machine takes a few tens of MiB per call: the English set, 16.7 h
of 16 kHz speech, is 1.9 GB as WAV and 155 MB as 16 kb/s Opus (the
training mix already holds Opus-coded speech down to 8 kb/s). Every
audio file is encoded once, even when a manifest lists it twice to weight
it, and kept under OUT/audio, so packing again after adding a manifest
encodes only the new files. `train.jsonl` and `dev.jsonl` (paths relative to OUT) open the first
part; the audio fills parts of at most --part-mib MiB, `part-01.tar`,
`part-02.tar`, … Needs opus-tools' `opusenc`.
"""

import argparse
import hashlib
import json
import os
import subprocess
import tarfile
from multiprocessing import Pool
from pathlib import Path

from tqdm import tqdm

from .data import read_manifest


def _encode(job):
    source, target, bitrate = job
    if not target.exists():
        tmp = target.with_suffix(".tmp")
        subprocess.run(["opusenc", "--quiet", "--bitrate", str(bitrate), source, str(tmp)], check=True)
        tmp.rename(target)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="folder for the encoded audio, the manifests and the parts")
    p.add_argument("--train", nargs="+", required=True, help="training manifests (NeMo JSON lines)")
    p.add_argument("--dev", nargs="+", required=True, help="dev manifests")
    p.add_argument("--bitrate", type=int, default=16, help="Opus bitrate, kb/s")
    p.add_argument("--part-mib", type=float, default=42, help="largest part, MiB")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = p.parse_args(argv)

    (args.out / "audio").mkdir(parents=True, exist_ok=True)
    names = {}
    for split, manifests in (("train", args.train), ("dev", args.dev)):
        lines = []
        for manifest in manifests:
            for row in read_manifest(manifest):
                source = row["audio_filepath"]
                name = names.setdefault(source, f"audio/{hashlib.sha1(source.encode()).hexdigest()[:16]}.opus")
                lines.append(json.dumps({"audio_filepath": name, "duration": row["duration"], "text": row["text"]}))
        (args.out / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
        print(f"{split}: {len(lines)} utterances from {len(manifests)} manifests")

    jobs = [(source, args.out / name, args.bitrate) for source, name in names.items()]
    with Pool(args.workers) as pool:
        list(tqdm(pool.imap_unordered(_encode, jobs, chunksize=8), total=len(jobs), desc="opusenc"))

    for old in args.out.glob("part-*.tar"):
        old.unlink()
    limit = args.part_mib * 2**20
    members = ["train.jsonl", "dev.jsonl"] + sorted(set(names.values()))
    parts, size = [[]], 0
    for member in members:
        n = 512 + -(-(args.out / member).stat().st_size // 512) * 512  # a tar header, the data in 512-byte blocks
        if parts[-1] and size + n > limit:
            parts.append([])
            size = 0
        parts[-1].append(member)
        size += n
    for k, part in enumerate(parts, 1):
        path = args.out / f"part-{k:02d}.tar"
        with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
            for member in part:
                tar.add(args.out / member, arcname=member)
        print(f"{path}: {len(part)} files, {path.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
