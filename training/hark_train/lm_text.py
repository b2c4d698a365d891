"""Text for the default language model, one normalized sentence per line.

    python -m hark_train.lm_text OUT.txt --corpus ../shared/data/lm-text/corpus.txt.xz \
        --manifests data/shared/speechocean-train.jsonl data/shared/commands-train.jsonl

The book corpus (public-domain English, already checked to share no 8-word
sequence with the measurement sets), the transcripts of the training
manifests (never a dev or test manifest), and everyday sentences the books
lack: digit strings, numbers, times, dates, amounts of money, percentages
and short commands and questions, generated from a seed.
"""

import argparse
import json
import lzma
import random
from pathlib import Path

from num2words import num2words

from .text import normalize

DIGITS = "zero one two three four five six seven eight nine".split()
MONTHS = "january february march april may june july august september october november december".split()
WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
UNITS = ["minutes", "hours", "seconds", "days", "weeks", "miles", "meters", "kilometers", "pounds", "dollars", "degrees", "percent"]
COMMANDS = [
    "turn {onoff} the {thing}", "switch {onoff} the {thing}", "set a timer for {n} {unit}",
    "remind me to {task} at {time}", "what time is it", "what's the weather like {when}", "call {name}",
    "play some music", "stop", "go", "yes", "no", "up", "down", "left", "right", "next", "go back",
    "cancel that", "open the {thing}", "close the {thing}", "how much is {money}", "add {n} {item} to the list",
    "what is {n} plus {m}", "send a message to {name}", "where is the nearest {place}", "is it going to rain {when}",
    "my number is {phone}", "the code is {digits}", "meet me at {time} on {weekday}", "my birthday is {date}",
    "it costs {money}", "the meeting is on {date} at {time}", "please say that again", "how do you spell {item}",
]
FILL = {
    "onoff": ["on", "off"],
    "thing": ["lights", "kitchen lights", "radio", "television", "heating", "fan", "door", "window", "oven", "alarm"],
    "unit": ["minutes", "seconds", "hours"],
    "task": ["buy milk", "call the doctor", "water the plants", "pay the rent", "pick up the kids", "take my medicine"],
    "when": ["today", "tomorrow", "tonight", "this weekend", "on monday", "next week"],
    "name": ["mom", "dad", "john", "sarah", "the office", "doctor smith", "michael", "emma", "david", "anna"],
    "item": ["apples", "eggs", "bread", "bananas", "coffee", "tickets", "boxes", "chairs"],
    "place": ["station", "hospital", "pharmacy", "bank", "restaurant", "gas station", "post office", "library"],
    "weekday": WEEKDAYS,
}


def _number(rng: random.Random) -> str:
    return num2words(rng.choice([rng.randint(0, 20), rng.randint(0, 100), rng.randint(100, 10000), rng.randint(0, 10**6)]))


def _time(rng: random.Random) -> str:
    h, m = rng.randint(1, 12), rng.choice([0, 5, 10, 15, 20, 30, 45, rng.randint(1, 59)])
    if m == 0:
        return f"{num2words(h)} {rng.choice(['o clock', 'a m', 'p m', ''])}".strip()
    minutes = f"oh {num2words(m)}" if m < 10 else num2words(m)
    return f"{num2words(h)} {minutes}" + rng.choice(["", " a m", " p m"])


def _date(rng: random.Random) -> str:
    month, day = rng.choice(MONTHS), num2words(rng.randint(1, 31), to="ordinal")
    year = num2words(rng.randint(1900, 2030), to="year")
    return rng.choice([f"{month} {day}", f"the {day} of {month}", f"{month} {day} {year}"])


def _money(rng: random.Random) -> str:
    dollars, cents = rng.randint(1, 999), rng.randint(0, 99)
    return f"{num2words(dollars)} dollars" + (f" and {num2words(cents)} cents" if cents and rng.random() < 0.4 else "")


def _digits(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(DIGITS) for _ in range(rng.randint(lo, hi)))


def everyday_sentences(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    makers = [
        lambda: _digits(rng, 1, 10),
        lambda: _number(rng),
        lambda: f"{_number(rng)} {rng.choice(UNITS)}",
        lambda: _time(rng),
        lambda: _date(rng),
        lambda: _money(rng),
        lambda: _digits(rng, 3, 3) + " " + _digits(rng, 3, 3) + " " + _digits(rng, 4, 4),
        lambda: rng.choice(COMMANDS),
    ]
    out = []
    for _ in range(count):
        s = rng.choice(makers)()
        while "{" in s:
            start, end = s.index("{"), s.index("}")
            key = s[start + 1 : end]
            value = {
                "n": lambda: _number(rng), "m": lambda: _number(rng), "time": lambda: _time(rng),
                "date": lambda: _date(rng), "money": lambda: _money(rng), "digits": lambda: _digits(rng, 4, 6),
                "phone": lambda: _digits(rng, 3, 3) + " " + _digits(rng, 3, 3) + " " + _digits(rng, 4, 4),
            }.get(key, lambda: rng.choice(FILL[key]))()
            s = s[:start] + value + s[end + 1 :]
        out.append(normalize(s))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--corpus", type=Path, required=True, help="lm-text/corpus.txt.xz")
    p.add_argument("--manifests", nargs="*", default=[], type=Path, help="training manifests whose transcripts to add")
    p.add_argument("--everyday", type=int, default=300_000, help="generated everyday sentences")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--exclude", nargs="*", default=[], type=Path,
                   help="manifests whose sentences are left out: a dev set read from the corpus stays unseen")
    args = p.parse_args()
    excluded = {normalize(json.loads(row)["text"]) for m in args.exclude for row in m.read_text().splitlines() if row.strip()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    lines = 0
    with open(args.out, "w") as out:
        with lzma.open(args.corpus, "rt") as corpus:
            for line in corpus:
                if line.rstrip("\n") not in excluded:
                    out.write(line)
                    lines += 1
        for manifest in args.manifests:
            for row in manifest.read_text().splitlines():
                if row.strip():
                    out.write(normalize(json.loads(row)["text"]) + "\n")
                    lines += 1
        for s in everyday_sentences(args.everyday, args.seed):
            if s not in excluded:
                out.write(s + "\n")
                lines += 1
    print(f"{lines} sentences → {args.out} ({len(excluded)} distinct sentences excluded)")


if __name__ == "__main__":
    main()
