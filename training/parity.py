"""Writes tests/fixtures/parity.safetensors: the PyTorch log-probabilities of
the committed FSDD model on committed features, which hark's forward pass
must reproduce (max abs difference ≤ 1e-4; tests/model_parity.rs).

    training/.venv/bin/python training/parity.py
"""

from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file

from hark_train import export
from hark_train.features import compute, read_audio

ROOT = Path(__file__).resolve().parent.parent


def main():
    model, config = export.load(ROOT / "tests" / "fixtures" / "fsdd-digits")
    model.eval()
    tensors = {}
    for name in ("hello-16k.wav", "chirp-noise-16k.wav"):
        feats = compute(read_audio(ROOT / "tests" / "data" / name), config["features"])
        with torch.no_grad():
            log_probs, steps = model(torch.from_numpy(feats)[None], torch.tensor([len(feats)]))
        tensors[f"{name}/features"] = np.ascontiguousarray(feats)
        tensors[f"{name}/log_probs"] = np.ascontiguousarray(log_probs[0, : steps[0]].numpy())
    out = ROOT / "tests" / "fixtures" / "parity.safetensors"
    save_file(tensors, out)
    print(f"wrote {out}: " + ", ".join(f"{k} {v.shape}" for k, v in tensors.items()))


if __name__ == "__main__":
    main()
