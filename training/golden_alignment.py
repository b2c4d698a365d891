"""Writes tests/fixtures/align_golden.safetensors: the English model's
log-probabilities for the shared dev sets (ljspeech-dev, librivox-dev; as
`hark eval --save-log-probs` writes them, stored as f16) and, on exactly
those values, torchaudio's `forced_align` path over each transcript (its
letters, `|` between words). hark's strict alignment must find the same
path, frame for frame (tests/align_reference.rs).

    target/release/hark eval --model models/hark-en --decoder greedy \\
        --save-log-probs /tmp/lp-lj ../shared/data/ljspeech-dev/dev.jsonl
    target/release/hark eval --model models/hark-en --decoder greedy \\
        --save-log-probs /tmp/lp-lv ../shared/data/librivox-dev/dev.jsonl
    python training/golden_alignment.py \\
        /tmp/lp-lj ../shared/data/ljspeech-dev/dev.jsonl /tmp/lp-lv ../shared/data/librivox-dev/dev.jsonl

Needs numpy, safetensors, torch and torchaudio's `forced_align` (torchaudio
2.11.1 is built on torch's stable ABI: `pip install --no-deps torchaudio==2.11.1`
beside the training environment's newer torch works).
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as F
from safetensors.numpy import save_file

ROOT = Path(__file__).resolve().parent.parent


def main():
    args = sys.argv[1:]
    if len(args) % 2:
        sys.exit(__doc__)
    tokens = (ROOT / "models" / "hark-en" / "tokens.txt").read_text().split("\n")
    ids = {t: i for i, t in enumerate(tokens) if t}
    tensors, texts = {}, {}
    for log_prob_dir, manifest in zip(args[::2], args[1::2]):
        for i, line in enumerate(Path(manifest).read_text().splitlines()):
            utterance = json.loads(line)
            name = Path(utterance["audio_filepath"]).stem
            # The values both sides see: rounded to f16, then read as f32.
            log_probs = np.load(Path(log_prob_dir) / f"{i:06d}.npy").astype(np.float16)
            targets = [ids["|"] if c == " " else ids[c] for c in utterance["text"]]
            path, _ = F.forced_align(torch.from_numpy(log_probs.astype(np.float32))[None],
                                     torch.tensor([targets], dtype=torch.int32), blank=0)
            tensors[f"{name}/log_probs"] = log_probs
            tensors[f"{name}/path"] = path[0].numpy().astype(np.int32)
            texts[name] = utterance["text"]
    out = ROOT / "tests" / "fixtures" / "align_golden.safetensors"
    save_file(tensors, out, metadata={"texts": json.dumps(texts)})
    frames = sum(len(v) for k, v in tensors.items() if k.endswith("/path"))
    print(f"wrote {out}: {len(texts)} utterances, {frames} frames")


if __name__ == "__main__":
    main()
