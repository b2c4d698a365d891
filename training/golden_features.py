"""Writes tests/fixtures/fbank_golden.safetensors: kaldi-native-fbank's
features of the committed test audio, which hark's own filterbank must match
(max abs difference ≤ 1e-3; tests/features_golden.rs).

    training/.venv/bin/python training/golden_features.py
"""

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from hark_train.features import DEFAULT_FEATURES, compute, read_audio

ROOT = Path(__file__).resolve().parent.parent
AUDIO = ["hello-16k.wav", "chirp-noise-16k.wav"]
# A second configuration that exercises the other code paths.
VARIANT = dict(DEFAULT_FEATURES, snip_edges=False, window_type="hamming", num_bins=40,
               low_freq=64, high_freq=-400, remove_dc_offset=False, normalize="none")


def main():
    tensors = {}
    for name in AUDIO:
        samples = read_audio(ROOT / "tests" / "data" / name)
        tensors[f"{name}/default"] = compute(samples, DEFAULT_FEATURES)
        tensors[f"{name}/variant"] = compute(samples, VARIANT)
    out = ROOT / "tests" / "fixtures" / "fbank_golden.safetensors"
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, out,
              metadata={"default": json.dumps(DEFAULT_FEATURES), "variant": json.dumps(VARIANT)})
    print(f"wrote {out}: " + ", ".join(f"{k} {v.shape}" for k, v in tensors.items()))


if __name__ == "__main__":
    main()
