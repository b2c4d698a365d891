"""Times one training step (`hark_train.train.train_step`: forward, CTC
loss, backward, clipping, AdamW) of the English recipe's batch, 12,000
padded frames, for the given architectures, in float32 and under bf16
autocast (`hark_train.train --bf16`), on random features: the cost of a
step depends on the shapes alone.

    OMP_NUM_THREADS=1 taskset -c 1 .venv/bin/python step_time.py 3x320 4x384

On CPUs with AMX or AVX-512 BF16 the bf16 step is the faster one; without
them bf16 is emulated and slower, which this shows before a run is planned.
"""

import argparse
import time

import torch
from torch import nn

from hark_train.features import DEFAULT_FEATURES
from hark_train.model import BiLstmCtc
from hark_train.text import TOKENS
from hark_train.train import train_step


def step_seconds(model, batch, bf16: bool, repeats: int) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-2)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    cpu = torch.device("cpu")
    train_step(model, opt, ctc, batch, cpu, bf16)  # the first step allocates and picks kernels
    start = time.perf_counter()
    for _ in range(repeats):
        train_step(model, opt, ctc, batch, cpu, bf16)
    return (time.perf_counter() - start) / repeats


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("shapes", nargs="+", help="LAYERSxHIDDEN, e.g. 3x320")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    # 20 utterances of 6 s: 12,000 frames of 10 ms, 200 steps of 30 ms each, 60 letters.
    bins = DEFAULT_FEATURES["num_bins"]
    batch = (torch.randn(20, 600, bins), torch.full((20,), 600),
             torch.randint(1, len(TOKENS), (20, 60)), torch.full((20,), 60))
    for shape in args.shapes:
        layers, hidden = (int(v) for v in shape.split("x"))
        model = BiLstmCtc(bins, 3, layers, hidden, len(TOKENS))
        fp32 = step_seconds(model, batch, False, args.repeats)
        bf16 = step_seconds(model, batch, True, args.repeats)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"{shape} ({params:.2f} M parameters): float32 {fp32:.2f} s, bf16 {bf16:.2f} s a step "
              f"({fp32 / bf16:.2f}x), {args.threads} thread(s)", flush=True)


if __name__ == "__main__":
    main()
