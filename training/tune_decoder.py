"""Grid search of the beam decoder's weights on a dev set, decoding saved
acoustic-model output only (fast: no network runs).

    hark eval --model models/hark-en --save-log-probs data/logprobs/synth-dev data/synth/dev.jsonl
    python tune_decoder.py --model ../models/hark-en --lm ../models/hark-en/lm.bin \
        --log-probs data/logprobs/synth-dev --manifest data/synth/dev.jsonl

Prints WER for every combination, best last. Tune on the training side's
dev split only: the shared dev sets are for reporting.
"""

import argparse
import itertools
import re
import subprocess
from pathlib import Path

HARK = Path(__file__).resolve().parents[1] / "target" / "release" / "hark"


def wer(args, extra) -> float:
    out = subprocess.run([str(HARK), "eval", "--model", args.model, "--lm", args.lm, "--load-log-probs", args.log_probs,
                          "--beam-size", str(args.beam_size), *extra, args.manifest], capture_output=True, text=True, check=True).stdout
    return float(re.search(r"WER:\s+([\d.]+)%", out).group(1))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--lm", required=True)
    p.add_argument("--log-probs", required=True)
    p.add_argument("--manifest", required=True)
    p.add_argument("--beam-size", type=int, default=16)
    p.add_argument("--lm-weights", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.45, 0.6])
    p.add_argument("--word-bonuses", type=float, nargs="+", default=[0.0, 1.0, 2.0, 3.0])
    p.add_argument("--blank-penalties", type=float, nargs="+", default=[0.0])
    p.add_argument("--oov-penalties", type=float, nargs="+", default=[2.0, 4.0, 7.0, 10.0])
    args = p.parse_args()
    results = []
    for a, b, k, o in itertools.product(args.lm_weights, args.word_bonuses, args.blank_penalties, args.oov_penalties):
        # `--flag=value`: a negative bonus is not taken for a flag.
        w = wer(args, [f"--lm-weight={a}", f"--word-bonus={b}", f"--blank-penalty={k}", f"--oov-penalty={o}"])
        results.append((w, a, b, k, o))
        print(f"lm_weight {a:<5} word_bonus {b:<5} blank_penalty {k:<5} oov_penalty {o:<5} WER {w:.2f}%", flush=True)
    w, a, b, k, o = min(results)
    print(f"best: lm_weight {a} word_bonus {b} blank_penalty {k} oov_penalty {o} → WER {w:.2f}%")


if __name__ == "__main__":
    main()
