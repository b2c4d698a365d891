"""Checks `hark lm build` against KenLM's lmplz: the same n-grams, log10
probabilities and back-offs within 1e-4.

    python compare_lmplz.py --lmplz PATH/TO/lmplz [--order 3] [--lines 3000] [TEXT]

TEXT defaults to the default LM's training text (data/lm/train.txt, from
`python -m hark_train.lm_text`), of which the first --lines lines are used;
it is already normalized, so both tools see the same words.

lmplz comes from the kenlm source package on PyPI, built with Debian's Boost
and CMake (CI does not need it):

    apt-get install cmake libboost-program-options-dev libboost-system-dev \\
        libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev
    pip download --no-deps --no-build-isolation --no-binary kenlm kenlm==0.2.0
    tar xzf kenlm-0.2.0.tar.gz && cd kenlm-0.2.0 && mkdir build && cd build
    cmake .. -DCMAKE_BUILD_TYPE=Release && make lmplz      # → bin/lmplz
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-4


def read_arpa(path: Path) -> dict[int, dict[str, tuple[float, float]]]:
    grams: dict[int, dict[str, tuple[float, float]]] = {}
    order = 0
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("\\") and line.endswith("-grams:"):
            order = int(line[1:].split("-")[0])
            grams[order] = {}
        elif line == "\\end\\":
            break
        elif order and line:
            fields = line.split("\t")
            backoff = float(fields[2]) if len(fields) > 2 else 0.0
            grams[order][fields[1]] = (float(fields[0]), backoff)
    return grams


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lmplz", required=True)
    p.add_argument("--order", type=int, default=3)
    p.add_argument("--lines", type=int, default=3000)
    p.add_argument("text", nargs="?", default=str(ROOT / "training/data/lm/train.txt"))
    args = p.parse_args()
    hark = ROOT / "target/release/hark"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = tmp / "corpus.txt"
        lines = Path(args.text).read_text().splitlines()[: args.lines]
        corpus.write_text("".join(l + "\n" for l in lines))
        subprocess.run([args.lmplz, "-o", str(args.order), "--text", str(corpus), "--arpa", str(tmp / "kenlm.arpa"),
                        "-S", "1G", "--discount_fallback"], check=True, capture_output=True)
        subprocess.run([str(hark), "lm", "build", "--order", str(args.order), "-o", str(tmp / "hark.arpa"), str(corpus)],
                       check=True, capture_output=True)
        kenlm, ours = read_arpa(tmp / "kenlm.arpa"), read_arpa(tmp / "hark.arpa")
    ok = True
    for order in sorted(kenlm):
        k, h = kenlm[order], ours.get(order, {})
        missing, extra = k.keys() - h.keys(), h.keys() - k.keys()
        common = k.keys() & h.keys()
        d_prob = max((abs(k[g][0] - h[g][0]) for g in common), default=0.0)
        d_backoff = max((abs(k[g][1] - h[g][1]) for g in common), default=0.0)
        print(f"{order}-grams: lmplz {len(k)}, hark {len(h)}, only in lmplz {len(missing)}, only in hark {len(extra)}, "
              f"max |Δ log10 p| {d_prob:.2e}, max |Δ back-off| {d_backoff:.2e}")
        ok &= not missing and not extra and d_prob <= TOLERANCE and d_backoff <= TOLERANCE
    print(f"{len(lines)} sentences, order {args.order}: " + ("agree within 1e-4" if ok else "DISAGREE"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
