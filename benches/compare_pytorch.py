"""The network's forward pass over 10 s of audio in PyTorch (oneDNN), for
side-by-side timing with hark's loop (run by compare_pytorch.sh).

Loads an exported model (default models/hark-en) with training's own
module, so both run the same weights over the same number of steps;
batch 1, no packing (PyTorch's fastest CPU path), median of 15 runs."""

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "training"))
from hark_train.export import load  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="models/hark-en")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=15)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model, config = load(args.model)
    model.eval()
    frames = int(args.seconds * 100) - 2  # Kaldi frames of 25 ms every 10 ms
    feats = torch.randn(1, frames, config["features"]["num_bins"], generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([frames])
    times = []
    with torch.inference_mode():
        for i in range(args.runs + 3):
            start = time.perf_counter()
            model(feats, lengths, pack=False)
            if i >= 3:
                times.append((time.perf_counter() - start) * 1e3)
    print(f"pytorch {torch.__version__} forward, {args.seconds:g} s, {args.threads} threads: median {statistics.median(times):.1f} ms, min {min(times):.1f}, max {max(times):.1f}")


if __name__ == "__main__":
    main()
