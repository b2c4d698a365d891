"""Text normalization to the model's alphabet and the token inventory."""

import re

from num2words import num2words

# tokens.txt: blank first, `|` between words, then the letters.
TOKENS = ["<blank>", "|", "'"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
TOKEN_ID = {t: i for i, t in enumerate(TOKENS)}


def _spell_number(match: re.Match) -> str:
    text = match.group(0).replace(",", "")
    try:
        if re.fullmatch(r"(1[1-9]|20)\d\d", text):
            return num2words(int(text), to="year")
        return num2words(int(text))
    except (ValueError, OverflowError):
        return " ".join(num2words(int(d)) for d in text if d.isdigit())


def normalize(text: str) -> str:
    """Lowercase a–z, apostrophe and single spaces; numbers spelled out."""
    text = text.replace("’", "'").replace("‘", "'")
    text = re.sub(r"\d+(,\d{3})*", _spell_number, text)
    text = text.lower().replace("&", " and ").replace("-", " ")
    text = re.sub(r"[^a-z' ]+", " ", text)
    text = re.sub(r"(^|\s)'+|'+(\s|$)", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def encode(text: str) -> list[int]:
    return [TOKEN_ID["|" if c == " " else c] for c in text]


def decode_greedy(ids) -> str:
    """Collapses repeats and drops blanks; `|` becomes a space."""
    out, prev = [], 0
    for i in ids:
        if i != prev and i != 0:
            out.append(" " if TOKENS[i] == "|" else TOKENS[i])
        prev = i
    return re.sub(r"\s+", " ", "".join(out)).strip()


def edit_distance(a, b) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def wer(refs, hyps) -> float:
    errors = sum(edit_distance(r.split(), h.split()) for r, h in zip(refs, hyps))
    return errors / max(1, sum(len(r.split()) for r in refs))
