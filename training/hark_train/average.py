"""Average the weights of several exports of one run into one model.

Neighbouring exports of a run at a small learning rate sit in one basin of
the loss but move on each set by a few points from one to the next; their
mean weights usually generalize better than any one of them, at no cost
at serving time.

    python -m hark_train.average --out data/avg data/run/step-800 data/run/step-1000 data/run/step-1200
"""

import argparse

from . import export


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("models", nargs="+", help="model directories: exports of one run")
    args = p.parse_args()

    model, config = export.load(args.models[0])
    total = {k: v.clone() for k, v in model.state_dict().items()}
    for d in args.models[1:]:
        other, other_config = export.load(d)
        # Exports of one run share their config, features included.
        if other_config != config:
            raise SystemExit(f"{d}: another model than {args.models[0]} (config.json differs)")
        for k, v in other.state_dict().items():
            total[k] += v
    model.load_state_dict({k: v / len(args.models) for k, v in total.items()})
    export.export(model, config, args.out)
    print(f"{args.out}: the mean of {len(args.models)} models")


if __name__ == "__main__":
    main()
