"""hark's beam search against pyctcdecode, the common Python CTC decoder, on
the same log-probabilities, the same ARPA language model, the same beam
width and weights: WER and decoding time.

    hark eval --model models/hark-en --save-log-probs data/logprobs/synth-dev data/synth/dev.jsonl
    hark lm build --order 3 -o data/lm/lm.arpa data/lm/train.txt     # the default LM, as ARPA
    .venv-compare/bin/python compare_pyctcdecode.py --log-probs data/logprobs/synth-dev \
        --manifest data/synth/dev.jsonl --arpa data/lm/lm.arpa

pyctcdecode needs numpy < 2, so it lives in its own environment:

    python3 -m venv .venv-compare
    .venv-compare/bin/pip install pyctcdecode==0.5.0 "numpy<2" num2words==0.5.14 setuptools wheel
    .venv-compare/bin/pip install --no-build-isolation kenlm==0.2.0   # builds from source (cmake, Boost not needed)

Both decoders run on one thread, one utterance at a time; times cover the
decoding call only. pyctcdecode's `unk_score_offset` is hark's OOV penalty
(negated): both charge a word that leaves the LM's vocabulary.
"""

import argparse
import json
import re
import subprocess
import time
from pathlib import Path

import numpy as np
from pyctcdecode import build_ctcdecoder

from hark_train.text import wer

ROOT = Path(__file__).resolve().parents[1]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "models/hark-en"))
    p.add_argument("--log-probs", required=True)
    p.add_argument("--manifest", required=True)
    p.add_argument("--arpa", required=True)
    p.add_argument("--beam-size", type=int, default=64)
    p.add_argument("--lm-weight", type=float, default=0.45)
    p.add_argument("--word-bonus", type=float, default=2.0)
    p.add_argument("--oov-penalty", type=float, default=20.0)
    args = p.parse_args()

    hark = subprocess.run(
        [str(ROOT / "target/release/hark"), "eval", "--model", args.model, "--lm", args.arpa, "--load-log-probs", args.log_probs,
         "--decoder", "beam", "--beam-size", str(args.beam_size), "--lm-weight", str(args.lm_weight),
         "--word-bonus", str(args.word_bonus), "--oov-penalty", str(args.oov_penalty), args.manifest],
        capture_output=True, text=True, check=True).stdout
    hark_wer = float(re.search(r"WER:\s+([\d.]+)%", hark).group(1))
    hark_rtf = float(re.search(r"RTF:\s+([\d.]+)", hark).group(1))
    audio_s = float(re.search(r"utterances, ([\d.]+) s of audio", hark).group(1))

    tokens = (Path(args.model) / "tokens.txt").read_text().split()
    labels = ["" if t == "<blank>" else " " if t == "|" else t for t in tokens]
    decoder = build_ctcdecoder(labels, kenlm_model_path=args.arpa, alpha=args.lm_weight, beta=args.word_bonus,
                               unk_score_offset=-args.oov_penalty)
    refs = [json.loads(l)["text"] for l in Path(args.manifest).read_text().splitlines() if l.strip()]
    hyps = []
    elapsed = 0.0
    for i in range(len(refs)):
        log_probs = np.load(Path(args.log_probs) / f"{i:06d}.npy")
        started = time.perf_counter()
        hyps.append(decoder.decode(log_probs, beam_width=args.beam_size))
        elapsed += time.perf_counter() - started
    py_wer = 100 * wer(refs, hyps)
    hark_s = hark_rtf * audio_s
    print(f"{len(refs)} utterances, {audio_s:.0f} s of audio, beam {args.beam_size}, "
          f"lm_weight {args.lm_weight}, word_bonus {args.word_bonus}, oov_penalty {args.oov_penalty}")
    print(f"pyctcdecode 0.5.0: WER {py_wer:.2f}%, {elapsed:.2f} s decoding")
    print(f"hark:              WER {hark_wer:.2f}%, {hark_s:.2f} s decoding")
    print(f"hark is {elapsed / max(hark_s, 1e-9):.0f}x faster; WER difference {hark_wer - py_wer:+.2f} points")


if __name__ == "__main__":
    main()
