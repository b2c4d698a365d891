"""The hotword test set: sentences with uncommon names, spoken by the Piper
voice (deterministic settings), for tests/hotwords.rs.

    python make_hotword_set.py ../tests/data/hotwords

Writes NN.wav (Piper's own output, 22.05 kHz mono PCM16: hark resamples it
as it would a client's) and manifest.jsonl with `text` and the
`hotword` each sentence contains. The sentences and names appear nowhere in
the training text; the voice is a training voice, so what is measured is
the boosting, not the model's reach to new voices.
"""

import json
import random
import sys
import wave
from pathlib import Path

from hark_train.synth import Voice, synthesize

CASES = [
    ("Nakamura", "please send the report to Nakamura before noon"),
    ("Okonkwo", "the new manager is called Okonkwo and he starts today"),
    ("Kowalski", "my neighbour Kowalski fixed the fence last week"),
    ("Tegucigalpa", "the flight to Tegucigalpa leaves at nine"),
    ("Abernathy", "ask Abernathy about the budget meeting"),
    ("Gutierrez", "doctor Gutierrez will see you in the morning"),
    ("Sorensen", "we met Sorensen at the station"),
    ("Mbeki", "the letter from Mbeki arrived on monday"),
    ("Fitzwilliam", "lord Fitzwilliam owned the house on the hill"),
    ("Oyelaran", "call Oyelaran and tell her the plan changed"),
    ("Szymanski", "the bakery belongs to Szymanski and his wife"),
    ("Quinlivan", "professor Quinlivan gave a long lecture"),
]


class Deterministic(random.Random):
    """Piper at its middle settings: length 1.0, noise 0.667, noise_w 0.8."""

    def uniform(self, a, b):
        return {(0.85, 1.25): 1.0, (0.4, 0.9): 0.667, (0.5, 1.0): 0.8}.get((a, b), (a + b) / 2)


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    voice = Voice("piper", "joe", "joe")
    rows = []
    for i, (hotword, sentence) in enumerate(CASES):
        path = out / f"{i:02d}.wav"
        synthesize(voice, sentence, Deterministic(i), path)
        with wave.open(str(path)) as w:
            duration = w.getnframes() / w.getframerate()
        rows.append({"audio_filepath": path.name, "duration": round(duration, 3), "text": sentence, "hotword": hotword})
    (out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"{len(rows)} utterances → {out}")


if __name__ == "__main__":
    main()
