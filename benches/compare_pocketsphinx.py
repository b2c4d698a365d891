"""hark and PocketSphinx 5 (stock US-English model) on the same recordings,
in one run: WER and real-time factor side by side.

    benches/compare_pocketsphinx.sh [--model models/hark-en] [MANIFEST ...]

hark is run through `hark eval` (greedy, then the model's default decoder);
its RTF covers WAV decoding, features, the network and CTC decoding on one
stream. PocketSphinx gets the same audio as 16 kHz 16-bit PCM (resampled by
`hark decode`) and is timed on decoding alone. Both WERs use the same
normalization (training/hark_train/text.py, which hark's own mirrors).
"""
import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pocketsphinx import Decoder

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training"))
from hark_train.text import edit_distance, normalize  # noqa: E402  (the training side's normalization)

HARK = ROOT / "target/release/hark"
SHARED = ROOT.parent / "shared/data"
DEFAULT_MANIFESTS = [SHARED / "fsdd/test.jsonl", SHARED / "ljspeech-dev/dev.jsonl", SHARED / "librivox-dev/dev.jsonl"]


def words(text: str) -> list[str]:
    return normalize(text).split()


def hark_eval(model: str, manifest: Path, extra: list[str]) -> tuple[float, float]:
    out = subprocess.run([str(HARK), "eval", "--model", model, *extra, str(manifest)], check=True, capture_output=True, text=True).stdout
    wer = float(re.search(r"WER:\s+([\d.]+)%", out).group(1))
    rtf = float(re.search(r"RTF:\s+([\d.]+)", out).group(1))
    return wer, rtf


def pocketsphinx_eval(manifest: Path) -> tuple[float, float]:
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    paths = [manifest.parent / r["audio_filepath"] for r in rows]
    decoder = Decoder(samprate=16000, loglevel="FATAL")
    errors = n_words = 0
    busy_s = audio_s = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([str(HARK), "decode", "--out-dir", tmp, *map(str, paths)], check=True)
        for row, path in zip(rows, paths):
            samples = read_float_wav(Path(tmp) / (path.stem + ".wav"))
            pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
            started = time.perf_counter()
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            hyp = decoder.hyp().hypstr if decoder.hyp() else ""
            busy_s += time.perf_counter() - started
            audio_s += len(samples) / 16000
            ref = words(row["text"])
            errors += edit_distance(ref, words(hyp))
            n_words += len(ref)
    return 100 * errors / n_words, busy_s / audio_s


def read_float_wav(path: Path) -> np.ndarray:
    """`hark decode` writes 32-bit float WAV, which the wave module cannot read."""
    data = path.read_bytes()
    i = 12
    while i < len(data):
        chunk, size = data[i:i + 4], int.from_bytes(data[i + 4:i + 8], "little")
        if chunk == b"data":
            return np.frombuffer(data[i + 8:i + 8 + size], dtype="<f4")
        i += 8 + size + (size & 1)
    raise ValueError(f"{path}: no data chunk")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "models/hark-en"))
    p.add_argument("manifests", nargs="*", type=Path, default=DEFAULT_MANIFESTS)
    args = p.parse_args()
    print(f"| data | hark greedy WER | hark default decoder WER | hark RTF (greedy) | PocketSphinx 5 WER | PocketSphinx RTF |")
    print("|---|---|---|---|---|---|")
    for manifest in args.manifests:
        greedy_wer, greedy_rtf = hark_eval(args.model, manifest, ["--decoder", "greedy"])
        default_wer, _ = hark_eval(args.model, manifest, [])
        ps_wer, ps_rtf = pocketsphinx_eval(manifest)
        name = manifest.parent.name + "/" + manifest.name
        print(f"| {name} | {greedy_wer:.2f} % | {default_wer:.2f} % | {greedy_rtf:.4f} | {ps_wer:.2f} % | {ps_rtf:.3f} |", flush=True)


if __name__ == "__main__":
    main()
