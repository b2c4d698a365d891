"""Trains the punctuation and casing model: a small bidirectional LSTM over
words that says, for each word of a recognizer's lower-case output, how to
write it (lower, Capitalized, UPPER, or its mixed form from a lexicon:
"McDonald") and which mark follows it (none , . ? !).

    python -m hark_train.punctuate --out data/punct --minutes 60 --threads 1

Data: ../shared/data/lm-text/written.txt.xz (10 M words of books as
written), plus any `--extra` text files (one sentence a line, as written:
questions, commands, dialogue). The books run in order; the last
`--test-sentences` sentences, after a gap, are held out whole (whole books
but for the first one's start) and measured against a baseline that
capitalizes the first word and ends with a period. The best model on the
held-out text is exported to `--out`: model.safetensors (f16, PyTorch's
names), config.json, words.txt (the input vocabulary) and mixed.txt (mixed
forms), with report.json holding the measurements.
"""

import argparse
import json
import lzma
import random
import re
import time
from collections import Counter
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

CASES = ["lower", "capitalized", "upper", "mixed"]
MARKS = ["", ",", ".", "?", "!"]
# Marks as written → the class they are learned as (a recognizer cannot
# hear a semicolon from a comma).
MARK_OF = {",": ",", ";": ",", ":": ",", "--": ",", "—": ",", ".": ".", "?": "?", "!": "!"}
UNK, PAD = "<unk>", "<pad>"
WORD = re.compile(r"[A-Za-z][A-Za-z']*")


def tokens_of(sentence):
    """A written sentence → [(spoken word, case class, mark after, written form)]:
    words as a recognizer writes them (lower case, apostrophes kept, hyphens
    split) with how each was written. Sentences with digits are skipped:
    numbers are the inverse text normalization's to write."""
    if any(c.isdigit() for c in sentence):
        return []
    out = []
    for m in re.finditer(r"[A-Za-z][A-Za-z']*|--|[,;:.?!—]", sentence):
        piece = m.group()
        if WORD.fullmatch(piece):
            word = piece.strip("'")
            if not word:
                continue
            case = ("upper" if word.isupper() and len(word) > 1 else "capitalized" if word[0].isupper() and word[1:].islower() or (len(word) == 1 and word.isupper())
                    else "lower" if word.islower() else "mixed")
            out.append([word.lower(), case, "", word])
        elif out and piece in MARK_OF and not out[-1][2]:
            out[-1][2] = MARK_OF[piece]
    return out


def read_sentences(path, limit):
    with lzma.open(path, "rt") as f:
        for i, line in enumerate(f):
            if limit and i >= limit:
                break
            yield line.strip()


class Punctuator(nn.Module):
    def __init__(self, vocab, dim, hidden, layers):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.lstm = nn.LSTM(dim, hidden, num_layers=layers, bidirectional=True, batch_first=True)
        self.case = nn.Linear(2 * hidden, len(CASES))
        self.mark = nn.Linear(2 * hidden, len(MARKS))

    def forward(self, ids):
        h, _ = self.lstm(self.embed(ids))
        return self.case(h), self.mark(h)


def windows(stream, length):
    """The token stream cut into windows of `length` words (the last one shorter)."""
    return [stream[i:i + length] for i in range(0, len(stream), length)]


def encode(window, index):
    ids = [index.get(w[0], 1) for w in window]
    cases = [CASES.index(w[1]) for w in window]
    marks = [MARKS.index(w[2]) for w in window]
    return ids, cases, marks


def batches(windows_, index, size, shuffle):
    order = list(range(len(windows_)))
    if shuffle:
        random.shuffle(order)
    for b in range(0, len(order), size):
        chunk = [encode(windows_[i], index) for i in order[b:b + size]]
        n = max(len(c[0]) for c in chunk)
        pad = lambda seqs, v: torch.tensor([s + [v] * (n - len(s)) for s in seqs])
        yield pad([c[0] for c in chunk], 0), pad([c[1] for c in chunk], -100), pad([c[2] for c in chunk], -100)


def measure(model, windows_, index):
    """Per-mark precision/recall/F1 and case accuracy of the model, and of
    the baseline (first word of each window capitalized, a period after its
    last)."""
    model.eval()
    counts = {m: Counter() for m in MARKS[1:]}
    base = {m: Counter() for m in MARKS[1:]}
    case_right = case_all = base_case_right = 0
    with torch.no_grad():
        for ids, cases, marks in batches(windows_, index, 64, False):
            case_logits, mark_logits = model(ids)
            case_pred, mark_pred = case_logits.argmax(-1), mark_logits.argmax(-1)
            valid = marks != -100
            lengths = valid.sum(1)
            for b in range(ids.shape[0]):
                n = int(lengths[b])
                base_marks = [0] * (n - 1) + [MARKS.index(".")]
                base_cases = [CASES.index("capitalized")] + [0] * (n - 1)
                for t in range(n):
                    truth, guess = int(marks[b, t]), int(mark_pred[b, t])
                    for table, g in ((counts, guess), (base, base_marks[t])):
                        if g == truth and g:
                            table[MARKS[g]]["tp"] += 1
                        else:
                            if g:
                                table[MARKS[g]]["fp"] += 1
                            if truth:
                                table[MARKS[truth]]["fn"] += 1
                    case_all += 1
                    case_right += int(case_pred[b, t]) == int(cases[b, t])
                    base_case_right += base_cases[t] == int(cases[b, t])
    model.train()

    def f1(table):
        out = {}
        for m, c in table.items():
            p = c["tp"] / max(1, c["tp"] + c["fp"])
            r = c["tp"] / max(1, c["tp"] + c["fn"])
            out[m] = {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / max(1e-9, p + r), 4)}
        return out

    return {"model": {"marks": f1(counts), "case_accuracy": round(case_right / max(1, case_all), 4)},
            "baseline": {"marks": f1(base), "case_accuracy": round(base_case_right / max(1, case_all), 4)}}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--written", default=str(Path(__file__).resolve().parents[2] / ".." / "shared/data/lm-text/written.txt.xz"))
    p.add_argument("--extra", nargs="*", default=[], help="more text as written, one sentence a line")
    p.add_argument("--out", required=True)
    p.add_argument("--max-sentences", type=int, default=0, help="read at most this many book sentences (0: all)")
    p.add_argument("--test-sentences", type=int, default=15000)
    p.add_argument("--vocab", type=int, default=30000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--hidden", type=int, default=192)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--window", type=int, default=48, help="words a training example")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--minutes", type=float, default=60)
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)

    sentences = list(read_sentences(args.written, args.max_sentences))
    gap = max(1, args.test_sentences // 8)
    test_sentences = sentences[-args.test_sentences:]
    train_sentences = sentences[:-(args.test_sentences + gap)]
    for extra in args.extra:
        lines = [l.strip() for l in Path(extra).read_text().splitlines() if l.strip()]
        random.shuffle(lines)
        held = max(1, len(lines) // 10)
        test_sentences += lines[:held]
        train_sentences += lines[held:]
    train_stream = [t for s in train_sentences for t in tokens_of(s)]
    test_stream = [t for s in test_sentences for t in tokens_of(s)]

    counts = Counter(t[0] for t in train_stream)
    words = [PAD, UNK] + [w for w, _ in counts.most_common(args.vocab - 2)]
    index = {w: i for i, w in enumerate(words)}
    mixed = Counter((t[0], t[3]) for t in train_stream if t[1] == "mixed")
    lexicon = {}
    for (word, form), n in mixed.most_common():
        lexicon.setdefault(word, form)
    print(f"train {len(train_stream)} words, test {len(test_stream)}; vocabulary {len(words)}, mixed forms {len(lexicon)}", flush=True)

    train_windows = windows(train_stream, args.window)
    test_windows = windows(test_stream, args.window)
    model = Punctuator(len(words), args.dim, args.hidden, args.layers)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss(ignore_index=-100)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    best, step, start = -1.0, 0, time.time()

    def checkpoint():
        nonlocal best
        report = measure(model, test_windows, index)
        score = sum(v["f1"] for v in report["model"]["marks"].values()) / len(MARKS[1:]) + report["model"]["case_accuracy"]
        print(f"step {step}: " + json.dumps(report["model"]), flush=True)
        if score > best:
            best = score
            save_file({k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}, out / "model.safetensors")
            (out / "config.json").write_text(json.dumps({"dim": args.dim, "hidden": args.hidden, "layers": args.layers,
                                                         "cases": CASES, "marks": MARKS}, indent=2) + "\n")
            (out / "words.txt").write_text("\n".join(words) + "\n")
            (out / "mixed.txt").write_text("".join(f"{w}\t{f}\n" for w, f in sorted(lexicon.items())))
            report["step"] = step
            report["test_words"] = len(test_stream)
            (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")

    while time.time() - start < args.minutes * 60:
        for ids, cases, marks in batches(train_windows, index, args.batch, True):
            case_logits, mark_logits = model(ids)
            loss = loss_fn(case_logits.flatten(0, 1), cases.flatten()) + loss_fn(mark_logits.flatten(0, 1), marks.flatten())
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            if step % 100 == 0:
                print(f"step {step} loss {loss.item():.3f} ({(time.time() - start) / 60:.1f} min)", flush=True)
            if step % args.eval_every == 0:
                checkpoint()
            if time.time() - start >= args.minutes * 60:
                break
    checkpoint()


if __name__ == "__main__":
    main()
