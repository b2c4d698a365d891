"""The acoustic model, exactly as hark runs it (crates/core/src/model/).

`stack` consecutive feature frames are concatenated without overlap, then
`layers` bidirectional LSTM layers, a linear layer and log-softmax. The
module names (`lstm`, `out`) give the tensor names hark loads.
"""

import torch
from torch import nn


class BiLstmCtc(nn.Module):
    def __init__(self, num_bins: int, stack: int, layers: int, hidden: int, vocab: int):
        super().__init__()
        self.stack = stack
        self.lstm = nn.LSTM(num_bins * stack, hidden, num_layers=layers, bidirectional=True, batch_first=True)
        self.out = nn.Linear(2 * hidden, vocab)

    def stack_frames(self, feats: torch.Tensor, lengths: torch.Tensor):
        """(B, F, bins) → (B, F // stack, stack·bins); leftover frames are dropped, as in hark."""
        b, f, d = feats.shape
        steps = f // self.stack
        x = feats[:, : steps * self.stack].reshape(b, steps, self.stack * d)
        return x, lengths // self.stack

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor, pack: bool = True):
        """Returns log-probabilities (B, T, vocab) and the step counts (B,).

        With `pack`, every sequence runs exactly its own length, as in hark.
        Without, padding runs through the LSTM too: on the CPU that is about
        twice as fast, and with length-sorted batches the padding is a few
        frames of zeros (the normalized mean), so training uses it. The
        log-softmax runs in float32 even under bf16 autocast: CTC's gradient
        is the difference of two distributions, which bf16 would blur."""
        x, steps = self.stack_frames(feats, lengths)
        if pack:
            packed = nn.utils.rnn.pack_padded_sequence(x, steps.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
            y, _ = self.lstm(packed)
            y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        else:
            y, _ = self.lstm(x)
        return self.out(y).float().log_softmax(-1), steps
