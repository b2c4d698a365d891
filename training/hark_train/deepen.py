"""Grow a trained model by one bidirectional LSTM layer on top.

A deeper network trained from scratch needs far more hours than a CPU
gives; grown from a trained one, it starts where that model is and only
has to learn what the extra layer adds. The new layer starts out passing
its input through: its input and output gates open, its forget gate shut,
no recurrence, and each cell reading one input unit at a small GAIN k, so
that h ≈ σ(6)²·tanh(tanh(k·x)) ≈ σ(6)²·k·x; the output layer's weights are
divided by that slope, so the grown model answers almost as the old one
(to about 1 % for the largest inputs).

    python -m hark_train.deepen models/hark-en data/deeper
    python -m hark_train.train ... --init data/deeper
"""

import argparse

import torch

from . import export
from .model import BiLstmCtc

GATE_BIAS = 6.0
GAIN = 0.2


def deepen(model: BiLstmCtc, config: dict) -> tuple[BiLstmCtc, dict]:
    layers, h = config["layers"], config["hidden"]
    config = {**config, "layers": layers + 1}
    grown = BiLstmCtc(config["features"]["num_bins"], config["stack"], layers + 1, h, config["vocab"])
    state = grown.state_dict()
    state.update({k: v for k, v in model.state_dict().items() if k.startswith("lstm.")})
    for suffix, offset in (("", 0), ("_reverse", h)):
        # PyTorch's gate order: input, forget, cell, output.
        w_ih = torch.zeros(4 * h, 2 * h)
        w_ih[2 * h : 3 * h, offset : offset + h] = GAIN * torch.eye(h)
        bias = torch.cat([torch.full((h,), GATE_BIAS), torch.full((h,), -GATE_BIAS), torch.zeros(h), torch.full((h,), GATE_BIAS)])
        state[f"lstm.weight_ih_l{layers}{suffix}"] = w_ih
        state[f"lstm.weight_hh_l{layers}{suffix}"] = torch.zeros(4 * h, h)
        state[f"lstm.bias_ih_l{layers}{suffix}"] = bias
        state[f"lstm.bias_hh_l{layers}{suffix}"] = torch.zeros(4 * h)
    slope = GAIN * torch.sigmoid(torch.tensor(GATE_BIAS)).item() ** 2
    state["out.weight"] = model.out.weight.detach() / slope
    state["out.bias"] = model.out.bias.detach().clone()
    grown.load_state_dict(state)
    return grown, config


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="trained model directory")
    p.add_argument("out", help="model directory to write, one layer deeper")
    args = p.parse_args()
    model, config = export.load(args.model)
    grown, config = deepen(model, config)
    # How closely the grown model answers as the old one, on random features.
    feats, lengths = torch.randn(2, 300, config["features"]["num_bins"]), torch.tensor([300, 240])
    with torch.no_grad():
        before, _ = model(feats, lengths)
        after, _ = grown(feats, lengths)
    diff = (before.exp() - after.exp()).abs().max().item()
    export.export(grown, config, args.out)
    print(f"{args.out}: {config['layers']} layers; largest change of a posterior {diff:.4f}")


if __name__ == "__main__":
    main()
