"""Trains the punctuation and casing model: a small bidirectional LSTM over
words that says, for each word of a recognizer's lower-case output, how to
write it (lower, Capitalized, UPPER, or its mixed form from a lexicon:
"McDonald") and which mark follows it (none , . ? !).

    python -m hark_train.punctuate --out data/punct --minutes 60 --threads 1

Data: ../shared/data/lm-text/written.txt.xz (10 M words of books as
written), plus `--extra` text files (one sentence a line, as written:
questions, commands, dialogue; training/text/modern-train.txt), drawn for
`--extra-share` of the training examples. An example is what a recognizer
hands over: one to four consecutive sentences, all lower case, no marks.
The books run in order; the last `--test-sentences` sentences, after a
gap, are held out whole (whole books but for the first one's start), and
`--extra-test` files (training/text/modern-test.txt, sentences written
apart from the training ones) are measured one sentence at a time; both
against a baseline that capitalizes the first word and ends with a period.
The best model on the held-out text is exported to `--out`:
model.safetensors (f16, PyTorch's names), config.json, words.txt (the input
vocabulary) and mixed.txt (mixed forms), with report.json holding the
measurements. `--init DIR` continues from an export (its vocabulary kept).

    python -m hark_train.punctuate --out data/punct2 --init data/punct \
        --extra text/modern-train.txt --extra-test text/modern-test.txt \
        --minutes 20 --lr 1e-3 --threads 1
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
# Titles are written abbreviated but spoken whole; their period is not a mark.
SPOKEN_TITLES = {"Mr": "mister", "Mrs": "missus", "Ms": "miss", "Dr": "doctor"}


def tokens_of(sentence):
    """A written sentence → [(spoken word, case class, mark after, written form)]:
    words as a recognizer writes them (lower case, apostrophes kept, hyphens
    split) with how each was written. Sentences with digits are skipped:
    numbers are the inverse text normalization's to write."""
    if any(c.isdigit() for c in sentence):
        return []
    out = []
    for m in re.finditer(r"[A-Za-z][A-Za-z']*\.?|--|[,;:.?!—]", sentence):
        piece = m.group()
        if piece.endswith(".") and piece[:-1] in SPOKEN_TITLES:
            out.append([SPOKEN_TITLES[piece[:-1]], "capitalized", "", piece[:-1]])
            continue
        if piece.endswith(".") and len(piece) > 1:
            piece = piece[:-1]
            rest = "."
        else:
            rest = None
        if WORD.fullmatch(piece):
            word = piece.strip("'")
            if not word:
                continue
            case = ("upper" if word.isupper() and len(word) > 1 else "capitalized" if word[0].isupper() and word[1:].islower() or (len(word) == 1 and word.isupper())
                    else "lower" if word.islower() else "mixed")
            out.append([word.lower(), case, "", word])
        elif out and piece in MARK_OF and not out[-1][2]:
            out[-1][2] = MARK_OF[piece]
        if rest and out and not out[-1][2]:
            out[-1][2] = "."
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
        # Packed, so that each sequence's backward pass starts at its own last
        # word, as hark runs it: padding must not teach where a text ends.
        lengths = (ids != 0).sum(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(ids), lengths, batch_first=True, enforce_sorted=False)
        h, _ = self.lstm(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=ids.shape[1])
        return self.case(h), self.mark(h)


def windows(sentences, rng, most=4, longest=80):
    """Tokenized sentences grouped into examples of one to `most`
    consecutive sentences (as a recognizer hears them between pauses), cut
    at `longest` words."""
    out, i = [], 0
    sentences = [s for s in sentences if s]
    while i < len(sentences):
        n = rng.randint(1, most)
        group = [t for s in sentences[i:i + n] for t in s]
        out.extend(group[j:j + longest] for j in range(0, len(group), longest))
        i += n
    return out


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


def write_tests(out, tests):
    """Held-out examples for the Rust side's test: per example, three lines:
    the spoken words, each word as written, and the mark after each (`_`
    for none)."""
    out.mkdir(parents=True, exist_ok=True)
    for name, examples in tests.items():
        with open(out / f"{name}.txt", "w") as f:
            for ex in examples:
                f.write(" ".join(t[0] for t in ex) + "\n")
                f.write(" ".join(t[3] if t[1] == "mixed" else written_form(t[0], t[1]) for t in ex) + "\n")
                f.write(" ".join(t[2] or "_" for t in ex) + "\n")
        print(f"{out / name}.txt: {len(examples)} examples, {sum(map(len, examples))} words")


def written_form(word, case):
    return {"lower": word, "capitalized": word[:1].upper() + word[1:], "upper": word.upper()}[case]


def load_init(path):
    """An export's vocabulary and weights (as f32), to continue from."""
    from safetensors.torch import load_file
    words = Path(path, "words.txt").read_text().split("\n")[:-1]
    state = {k: v.float() for k, v in load_file(str(Path(path, "model.safetensors"))).items()}
    return words, state


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--written", default=str(Path(__file__).resolve().parents[2] / ".." / "shared/data/lm-text/written.txt.xz"))
    p.add_argument("--extra", nargs="*", default=[], help="more text as written, one sentence a line")
    p.add_argument("--extra-share", type=float, default=0.1, help="share of training examples drawn from --extra")
    p.add_argument("--extra-test", nargs="*", default=[], help="held-out text as written, measured one sentence at a time")
    p.add_argument("--init", help="an export to continue from")
    p.add_argument("--write-tests", type=Path, help="write the held-out examples (books: the first --fixture-examples) here and stop")
    p.add_argument("--fixture-examples", type=int, default=600)
    p.add_argument("--out", required=True)
    p.add_argument("--max-sentences", type=int, default=0, help="read at most this many book sentences (0: all)")
    p.add_argument("--test-sentences", type=int, default=15000)
    p.add_argument("--vocab", type=int, default=30000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--hidden", type=int, default=192)
    p.add_argument("--layers", type=int, default=2)
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

    rng = random.Random(args.seed)
    sentences = list(read_sentences(args.written, args.max_sentences))
    gap = max(1, args.test_sentences // 8)
    test_sentences = sentences[-args.test_sentences:]
    train_sentences = sentences[:-(args.test_sentences + gap)]
    extra = [l.strip() for f in args.extra for l in Path(f).read_text().splitlines() if l.strip()]
    extra_test = [l.strip() for f in args.extra_test for l in Path(f).read_text().splitlines() if l.strip()]
    train_tokens = [tokens_of(s) for s in train_sentences]
    train_windows = windows(train_tokens, rng)
    extra_windows = windows([tokens_of(s) for s in extra], rng)
    tests = {"books": windows([tokens_of(s) for s in test_sentences], random.Random(0))}
    if extra_test:
        tests["modern"] = windows([tokens_of(s) for s in extra_test], random.Random(0), most=1)
    train_stream = [t for s in train_tokens for t in s] + [t for w in extra_windows for t in w]
    if args.write_tests:
        write_tests(args.write_tests, {"books": tests["books"][:args.fixture_examples], **{k: v for k, v in tests.items() if k != "books"}})
        return

    if args.init:
        words, state = load_init(args.init)
    else:
        counts = Counter(t[0] for t in train_stream)
        words = [PAD, UNK] + [w for w, _ in counts.most_common(args.vocab - 2)]
        state = None
    index = {w: i for i, w in enumerate(words)}
    mixed = Counter((t[0], t[3]) for t in train_stream if t[1] == "mixed")
    lexicon = {}
    for (word, form), n in mixed.most_common():
        lexicon.setdefault(word, form)
    if extra_windows:
        # Drawn for about --extra-share of the examples.
        repeat = max(1, round(args.extra_share * len(train_windows) / ((1 - args.extra_share) * len(extra_windows))))
        train_windows += extra_windows * repeat
    print(f"train {len(train_stream)} words in {len(train_windows)} examples, test "
          + ", ".join(f"{k} {sum(map(len, v))} words" for k, v in tests.items())
          + f"; vocabulary {len(words)}, mixed forms {len(lexicon)}", flush=True)

    model = Punctuator(len(words), args.dim, args.hidden, args.layers)
    if state:
        model.load_state_dict(state)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss(ignore_index=-100)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    best, step, start = -1.0, 0, time.time()

    def checkpoint():
        nonlocal best
        report = {name: measure(model, w, index) for name, w in tests.items()}
        score = sum(sum(v["f1"] for v in r["model"]["marks"].values()) / len(MARKS[1:]) + r["model"]["case_accuracy"]
                    for r in report.values())
        print(f"step {step}: " + json.dumps({name: r["model"] for name, r in report.items()}), flush=True)
        if score > best:
            best = score
            save_file({k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}, out / "model.safetensors")
            (out / "config.json").write_text(json.dumps({"dim": args.dim, "hidden": args.hidden, "layers": args.layers,
                                                         "cases": CASES, "marks": MARKS}, indent=2) + "\n")
            (out / "words.txt").write_text("\n".join(words) + "\n")
            (out / "mixed.txt").write_text("".join(f"{w}\t{f}\n" for w, f in sorted(lexicon.items())))
            report["step"] = step
            report["test_words"] = {name: sum(map(len, w)) for name, w in tests.items()}
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
