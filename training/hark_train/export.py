"""Export to hark's model format: models/<name>/{config.json, model.safetensors, tokens.txt}.

Weights are stored as f16 (half the size; hark computes in f32). Training
resumes from these files with `--init`."""

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .model import BiLstmCtc
from .text import TOKENS


def model_config(name: str, feature_cfg: dict, stack: int, layers: int, hidden: int) -> dict:
    return {"name": name, "features": feature_cfg, "stack": stack, "layers": layers, "hidden": hidden, "vocab": len(TOKENS)}


def export(model: BiLstmCtc, config: dict, out_dir) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(weights, out / "model.safetensors")
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "tokens.txt").write_text("\n".join(TOKENS) + "\n")


def load(model_dir) -> tuple[BiLstmCtc, dict]:
    """A model directory → the PyTorch module (f32) and its config."""
    d = Path(model_dir)
    config = json.loads((d / "config.json").read_text())
    model = BiLstmCtc(config["features"]["num_bins"], config["stack"], config["layers"], config["hidden"], config["vocab"])
    state = {k: v.float() for k, v in load_file(d / "model.safetensors").items()}
    model.load_state_dict(state)
    return model, config
