"""Measures forced alignment against word times a speech synthesizer
reports: espeak-ng (through its C library) reads sentences and says, for
each word, where in its audio the word begins; `hark align` places the
same words in that audio. Prints the mean absolute error of the word starts
and the share within 50 and 100 ms.

    python training/tts_word_times.py [--model models/hark-en] [--count 40]

Needs espeak-ng's library (Debian: libespeak-ng1) and a built
`target/release/hark`. The sentences are the held-out Kokoro test
sentences (training/data/shared/kokoro-test.jsonl).
"""

import argparse
import ctypes
import json
import subprocess
import tempfile
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

AUDIO_OUTPUT_SYNCHRONOUS = 2
EVENT_WORD = 1
POS_CHARACTER = 1


class Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(Event))


class Espeak:
    def __init__(self, voice):
        self.lib = ctypes.CDLL("libespeak-ng.so.1")
        self.rate = self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 0)
        if self.rate <= 0:
            raise SystemExit("espeak-ng did not start")
        self.lib.espeak_SetVoiceByName(voice.encode())
        self.callback = CALLBACK(self._collect)
        self.lib.espeak_SetSynthCallback(self.callback)

    def _collect(self, wav, count, events):
        if count > 0:
            self.samples.extend(wav[:count])
        i = 0
        while events[i].type != 0:
            if events[i].type == EVENT_WORD:
                self.word_starts.append(events[i].audio_position / 1000.0)
            i += 1
        return 0

    def say(self, text):
        """The audio (16-bit samples at self.rate) and each word's start in seconds."""
        self.samples, self.word_starts = [], []
        data = text.encode()
        self.lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, 0, None, None)
        self.lib.espeak_Synchronize()
        return self.samples, self.word_starts


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "models" / "hark-en"))
    p.add_argument("--count", type=int, default=40)
    p.add_argument("--voice", default="en-us")
    args = p.parse_args()
    sentences = [json.loads(l)["text"] for l in (ROOT / "training/data/shared/kokoro-test.jsonl").read_text().splitlines()]
    espeak = Espeak(args.voice)
    errors, unaligned, words = [], 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for n, sentence in enumerate(sentences[: args.count]):
            samples, starts = espeak.say(sentence)
            if len(starts) != len(sentence.split()):
                continue  # espeak read a word as two (or two as one): no one-to-one reference
            audio, text = Path(tmp) / f"{n}.wav", Path(tmp) / f"{n}.txt"
            with wave.open(str(audio), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(espeak.rate)
                w.writeframes((ctypes.c_short * len(samples))(*samples))
            text.write_text(sentence)
            out = subprocess.run([str(ROOT / "target/release/hark"), "align", "--model", args.model, str(audio), str(text)],
                                 capture_output=True, text=True, check=True)
            for word, start in zip(json.loads(out.stdout)["words"], starts):
                words += 1
                if word["start"] is None:
                    unaligned += 1
                else:
                    errors.append(abs(word["start"] - start))
    within = lambda s: 100.0 * sum(e <= s for e in errors) / len(errors)
    print(f"{words} words of espeak-ng ({args.voice}): {unaligned} unaligned; word starts: mean error "
          f"{1000 * sum(errors) / len(errors):.0f} ms, {within(0.05):.0f} % within 50 ms, {within(0.1):.0f} % within 100 ms")


if __name__ == "__main__":
    main()
