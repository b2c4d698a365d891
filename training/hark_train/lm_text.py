"""Text for the default language model, one normalized sentence per line.

    python -m hark_train.lm_text OUT.txt

The same Debian sources as the synthetic speech (WordNet glosses and
examples, the King James Bible, fortunes), minus the sentences held out for
the synthetic dev and test sets: the LM must not have read the test
transcripts.
"""

import sys
from pathlib import Path

from .synth import all_sentences, sentence_split


def main():
    out = Path(sys.argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    kept = [s for s in all_sentences(seed=1) if sentence_split(s) == "train"]
    out.write_text("".join(s + "\n" for s in kept))
    print(f"{len(kept)} sentences, {sum(len(s.split()) for s in kept)} words → {out}")


if __name__ == "__main__":
    main()
