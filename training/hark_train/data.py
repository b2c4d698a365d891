"""Manifests, cached features and length-bucketed batches."""

import hashlib
import json
import os
import random
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import features, text


def read_manifest(path) -> list[dict]:
    """NeMo-style JSON lines; audio paths are resolved against the manifest's folder."""
    path = Path(path)
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            audio = Path(row["audio_filepath"])
            row["audio_filepath"] = str(audio if audio.is_absolute() else path.parent / audio)
            row["text"] = text.normalize(row["text"])
            rows.append(row)
    return rows


def _features_of(args):
    audio_path, cfg = args
    return features.compute(features.read_audio(audio_path), cfg).astype(np.float16)


class FeatureSet:
    """Every utterance of some manifests as f16 features in one array, cached
    on disk under `cache_dir` so later runs skip the feature extraction."""

    def __init__(self, manifests, cfg: dict, cache_dir, workers: int = os.cpu_count() or 1):
        self.rows, self.feats = [], []
        for manifest in manifests:
            rows = read_manifest(manifest)
            key = hashlib.sha1(
                json.dumps([str(Path(manifest).resolve()), os.path.getmtime(manifest), cfg], sort_keys=True).encode()
            ).hexdigest()[:16]
            cache = Path(cache_dir) / f"{Path(manifest).stem}-{key}.npz"
            if cache.exists():
                z = np.load(cache)
                data, offsets = z["data"], z["offsets"]
                feats = [data[offsets[i] : offsets[i + 1]] for i in range(len(rows))]
            else:
                jobs = [(r["audio_filepath"], cfg) for r in rows]
                with Pool(workers) as pool:
                    feats = list(tqdm(pool.imap(_features_of, jobs, chunksize=16), total=len(jobs), desc=f"features {Path(manifest).name}"))
                offsets = np.cumsum([0] + [len(f) for f in feats])
                cache.parent.mkdir(parents=True, exist_ok=True)
                np.savez(cache, data=np.concatenate(feats) if feats else np.zeros((0, cfg["num_bins"]), np.float16), offsets=offsets)
            self.rows += rows
            self.feats += feats
        self.tokens = [text.encode(r["text"]) for r in self.rows]

    def __len__(self):
        return len(self.rows)

    def hours(self) -> float:
        return sum(len(f) for f in self.feats) / 100 / 3600

    def min_steps(self, i: int) -> int:
        """Model steps CTC needs to align utterance i: its tokens plus a blank between repeats."""
        t = self.tokens[i]
        return len(t) + sum(1 for a, b in zip(t, t[1:]) if a == b)

    def usable(self, stack: int) -> list[int]:
        """Utterances CTC can align."""
        return [i for i, f in enumerate(self.feats) if self.tokens[i] and len(f) // stack >= self.min_steps(i)]

    def batches(self, indices, max_frames: int, shuffle: bool, seed: int = 0):
        """Length-sorted batches of at most `max_frames` padded frames, so little is padding."""
        order = sorted(indices, key=lambda i: len(self.feats[i]))
        batches, cur, longest = [], [], 0
        for i in order:
            n = len(self.feats[i])
            if cur and max(longest, n) * (len(cur) + 1) > max_frames:
                batches.append(cur)
                cur, longest = [], 0
            cur.append(i)
            longest = max(longest, n)
        if cur:
            batches.append(cur)
        if shuffle:
            random.Random(seed).shuffle(batches)
        return batches

    def collate(self, batch, augment=None, rng=None):
        """Pads a batch; `augment(feats, min_steps, rng)` transforms each utterance first."""
        feats = [torch.from_numpy(self.feats[i].astype(np.float32)) for i in batch]
        if augment:
            feats = [augment(f, self.min_steps(i), rng) for f, i in zip(feats, batch)]
        lengths = torch.tensor([len(f) for f in feats])
        x = torch.zeros(len(batch), int(lengths.max()), feats[0].shape[1])
        for k, f in enumerate(feats):
            x[k, : len(f)] = f
        targets = torch.tensor([t for i in batch for t in self.tokens[i]], dtype=torch.long)
        target_lengths = torch.tensor([len(self.tokens[i]) for i in batch])
        return x, lengths, targets, target_lengths
