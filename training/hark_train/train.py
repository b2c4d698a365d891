"""Train hark's BiLSTM-CTC acoustic model.

    python -m hark_train.train --train a.jsonl [b.jsonl ...] --dev dev.jsonl \
        --out models/NAME --name NAME [--init models/NAME] [--minutes 60]

Runs on the CPU by default and on a GPU when one is present; with torchrun
it trains data-parallel (DistributedDataParallel; gloo on CPU, NCCL on GPU).
The best model on the dev set is exported to --out whenever it improves, so
a run can be stopped at any time and resumed with --init from the export.
"""

import argparse
import math
import os
import random
import time

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from . import export, text
from .augment import FeatureAugment, spec_augment
from .data import FeatureSet
from .features import DEFAULT_FEATURES
from .model import BiLstmCtc


@torch.no_grad()
def evaluate(model, data: FeatureSet, indices, device, max_frames: int):
    model.eval()
    refs, hyps = [], []
    for batch in data.batches(indices, max_frames, shuffle=False):
        x, lengths, _, _ = data.collate(batch)
        log_probs, steps = model(x.to(device), lengths.to(device))
        best = log_probs.argmax(-1).cpu()
        for k, i in enumerate(batch):
            hyps.append(text.decode_greedy(best[k, : steps[k]].tolist()))
            refs.append(data.rows[i]["text"])
    model.train()
    return text.wer(refs, hyps), list(zip(refs, hyps))


class Collate:
    """Pads and augments one batch, in a loader worker or in the training
    process alike; each batch draws its augmentation from its own seed, so a
    run does not depend on how many workers it has."""

    def __init__(self, data: FeatureSet, augment, seed: str):
        self.data, self.augment, self.seed = data, augment, seed

    def __call__(self, item):
        epoch, k, batch = item
        rng = random.Random(f"{self.seed}-{epoch}-{k}")
        x, lengths, targets, target_lengths = self.data.collate(batch, self.augment, rng)
        if self.augment:
            x = spec_augment(x, lengths, rng)
        return x, lengths, targets, target_lengths


def train_step(net, opt, ctc, batch, device, bf16: bool) -> torch.Tensor:
    """One optimizer step on a collated batch (padding run through, as
    `BiLstmCtc.forward` explains); returns the CTC loss. `step_time.py`
    times this same step."""
    x, lengths, targets, target_lengths = batch
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        log_probs, steps = net(x.to(device), lengths.to(device), pack=False)
    loss = ctc(log_probs.transpose(0, 1), targets.to(device), steps, target_lengths.to(device))
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(net.parameters(), 5.0)
    opt.step()
    return loss


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", nargs="+", required=True, help="training manifests (NeMo JSON lines)")
    p.add_argument("--dev", nargs="+", required=True, help="dev manifests, for choosing the checkpoint")
    p.add_argument("--out", required=True, help="model directory to export the best model to")
    p.add_argument("--name", required=True, help="model name written to config.json")
    p.add_argument("--init", help="start from this exported model directory (resume)")
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--hidden", type=int, default=320)
    p.add_argument("--stack", type=int, default=3)
    p.add_argument("--epochs", type=int, default=1000)
    p.add_argument("--minutes", type=float, default=float("inf"), help="stop after this much training time")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=300, help="linear warm-up steps (also after --init: fresh optimizer)")
    p.add_argument("--lr-decay", type=float, default=0.95, help="learning-rate factor per epoch")
    p.add_argument("--max-frames", type=int, default=20000, help="padded frames per batch (per process)")
    p.add_argument("--eval-every", type=int, default=500, help="steps between dev evaluations")
    p.add_argument("--keep-all", action="store_true",
                   help="also export every evaluated model to OUT/step-N, to measure them on sets the dev set does not cover")
    p.add_argument("--no-augment", action="store_true", help="no augmentation at all in training")
    p.add_argument("--no-warp", action="store_true", help="no VTLP or tempo perturbation")
    p.add_argument("--no-pad", action="store_true", help="no pause padding around the utterances")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast: GPUs, and CPUs with AMX or AVX-512 BF16 (elsewhere emulated and slower)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--cache-dir", default=os.path.join(os.path.dirname(__file__), "..", "data", "cache"))
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all cores)")
    p.add_argument("--workers", type=int, default=0, help="processes that collate and augment batches (0: the training process; a GPU needs several)")
    args = p.parse_args(argv)

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if torch.cuda.is_available() else torch.device("cpu")
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    if args.init:
        model, config = export.load(args.init)
        config["name"] = args.name
        feature_cfg = config["features"]
    else:
        feature_cfg = dict(DEFAULT_FEATURES)
        config = export.model_config(args.name, feature_cfg, args.stack, args.layers, args.hidden)
        model = BiLstmCtc(feature_cfg["num_bins"], args.stack, args.layers, args.hidden, config["vocab"])
    model.to(device)
    # Rank 0 extracts and caches the features; the others then read the cache.
    if distributed and rank != 0:
        dist.barrier()
    train = FeatureSet(args.train, feature_cfg, args.cache_dir)
    dev = FeatureSet(args.dev, feature_cfg, args.cache_dir)
    if distributed and rank == 0:
        dist.barrier()
    train_idx = train.usable(config["stack"])
    dev_idx = list(range(len(dev)))
    params = sum(p.numel() for p in model.parameters())
    if rank == 0:
        print(f"train: {len(train_idx)} of {len(train)} utterances, {train.hours():.1f} h; dev: {len(dev)}; "
              f"model {config['layers']}x{config['hidden']} stack {config['stack']}, {params / 1e6:.2f} M parameters, {device}", flush=True)

    switched_off = (dict(vtlp=(1.0, 1.0), tempo=(1.0, 1.0)) if args.no_warp else {}) | (dict(pad_frames=0) if args.no_pad else {})
    augment = None if args.no_augment else FeatureAugment(feature_cfg, config["stack"], **switched_off)
    ddp = nn.parallel.DistributedDataParallel(model) if distributed else model
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-2)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    best_wer, step, start = float("inf"), 0, time.time()
    if args.init and rank == 0:
        best_wer, _ = evaluate(model, dev, dev_idx, device, args.max_frames)
        print(f"init dev WER {best_wer:.4f}", flush=True)

    def checkpoint():
        nonlocal best_wer
        wer, pairs = evaluate(model, dev, dev_idx, device, args.max_frames)
        improved = wer < best_wer
        if improved:
            best_wer = wer
            export.export(model, config, args.out)
        if args.keep_all:
            export.export(model, config, os.path.join(args.out, f"step-{step}"))
        tqdm.write(f"step {step} dev WER {wer:.4f} (best {best_wer:.4f}){' exported' if improved else ''} "
                   f"e.g. '{pairs[0][1]}' for '{pairs[0][0]}'")

    done = False
    for epoch in range(args.epochs):
        # SortaGrad: a fresh model sees its first epoch shortest first, which
        # gets CTC past its blank-only plateau sooner.
        sortagrad = epoch == 0 and not args.init
        batches = train.batches(train_idx, args.max_frames, shuffle=not sortagrad, seed=args.seed * 1000 + epoch)
        batches = batches[rank::world][: len(batches) // world]
        loader = DataLoader([(epoch, k, b) for k, b in enumerate(batches)], batch_size=None, num_workers=args.workers,
                            collate_fn=Collate(train, augment, f"{args.seed}-{rank}"), pin_memory=device.type == "cuda")
        bar = tqdm(loader, desc=f"epoch {epoch}", disable=rank != 0, mininterval=5)
        for x, lengths, targets, target_lengths in bar:
            lr = args.lr * min(1.0, (step + 1) / args.warmup) * args.lr_decay**epoch
            for g in opt.param_groups:
                g["lr"] = lr
            loss = train_step(ddp, opt, ctc, (x, lengths, targets, target_lengths), device, args.bf16)
            step += 1
            bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.1e}", refresh=False)
            if rank == 0 and step % args.eval_every == 0:
                checkpoint()
            if (time.time() - start) / 60 > args.minutes:
                done = True
                break
        if rank == 0 and step % args.eval_every:  # not evaluated at this step already
            checkpoint()
        if done:
            break
    if rank == 0:
        print(f"trained {step} steps in {(time.time() - start) / 60:.1f} min; best dev WER {best_wer:.4f}", flush=True)
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
