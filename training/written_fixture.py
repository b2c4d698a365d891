"""Makes tests/fixtures/written/*.flac: sentences that a written transcript
shows with digits, a title and marks, read by a Kokoro voice (16 kHz mono).
The sentences are not in the training data; the voice and speed are ones
hark-en hears well enough that the test is about the writing (the held-out
voices af_nicole and bm_fable lose several words of this sentence).

    .venv/bin/python written_fixture.py

Needs the Kokoro tools of `hark_train.kokoro` (data/kokoro-tools).
"""

from pathlib import Path

import numpy as np
import onnxruntime as ort
import soundfile as sf
from kokoro_onnx import Kokoro
from scipy.signal import resample_poly

from hark_train.kokoro import model_path, voices_path

SENTENCES = {
    "may-fifth": ("on the fifth of may nineteen forty five mister smith paid twenty five dollars", "am_michael", 0.85),
}


def main():
    here = Path(__file__).resolve().parent
    tools = here / "data" / "kokoro-tools"
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model_path(tools)), options, providers=["CPUExecutionProvider"])
    kokoro = Kokoro.from_session(session, str(voices_path(tools)))
    out = here.parent / "tests" / "fixtures" / "written"
    out.mkdir(parents=True, exist_ok=True)
    for name, (text, voice, speed) in SENTENCES.items():
        audio, rate = kokoro.create(text, kokoro.voices[voice], speed=speed, lang="en-us")
        audio = resample_poly(np.asarray(audio, dtype=np.float64), 2, 3)  # 24 kHz → 16 kHz
        pad = np.zeros(3200)
        sf.write(out / f"{name}.flac", np.concatenate([pad, audio, pad]).astype(np.float32), 16000, subtype="PCM_16")
        print(name, f"{len(audio) / 16000:.2f} s")


if __name__ == "__main__":
    main()
