"""The `heads` probe: where a memory model's read and write heads look, step by step (docs/run-directory.md).

For a model that records its addressing (the NTM: `model.last_addressing` after an eval-mode forward,
{"read": (B, T, R, N), "write": (B, T, W, N)}), the first probe example is run once and its weightings
written as one small event, so a user can watch the heads learn (the copy task's textbook program:
the write head walks one slot a step while the symbols arrive, the read head walks the same slots
after the delimiter). The event is bounded to a few KB whatever the model's size: each weight
is a whole percent (what a heatmap shows; "0," is 2 bytes of JSON where "0.0," is 4), at most
MAX_HEADS heads of each kind and MAX_SLOTS slots, and as many leading steps as fit MAX_CELLS
numbers (all of them for the ntm-copy preset: 2 heads x 64 slots x <= 30 steps).

Payload:
  steps, slots      the example's length T and the memory's N (before any bound)
  read, write       [head][step][slot] weights in whole percent (0-100), (R', T', N') nested lists,
                    T' <= T, N' <= N
  input             the example's input tokens (T'), for token tasks; else absent
  target, output    the targets and the model's argmax outputs (T'), for token targets; else absent
"""

from __future__ import annotations

import torch

MAX_HEADS = 4  # of each kind
MAX_SLOTS = 128
MAX_CELLS = 4096  # numbers per event, both kinds together: ~8-12 KB of JSON at most


def records_heads(model) -> bool:
    return hasattr(model, "last_addressing")


def heads_event(model, x: torch.Tensor, y: torch.Tensor) -> dict | None:
    """Run the first example of the probe batch x (B, T[, I]) in eval mode; None if no addressing was recorded."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output, _ = model(x[:1])  # (1, T, O)
        addressing = model.last_addressing
    finally:
        model.train(was_training)
    if not addressing:
        return None
    read, write = addressing["read"][0], addressing["write"][0]  # (T, R, N), (T, W, N)
    steps, slots = read.shape[0], read.shape[-1]
    read, write = read[:, :MAX_HEADS, :MAX_SLOTS], write[:, :MAX_HEADS, :MAX_SLOTS]
    per_step = (read.shape[1] + write.shape[1]) * read.shape[-1]
    kept = max(1, min(steps, MAX_CELLS // per_step))  # T'

    def nested(weights: torch.Tensor) -> list:  # (T', H, N) -> [head][step][slot]
        percent = (weights[:kept].transpose(0, 1) * 100).round().int()  # (heads, T', N')
        return percent.tolist()

    payload = {"steps": steps, "slots": slots, "read": nested(read), "write": nested(write)}
    if x.dim() == 2:  # token inputs
        payload["input"] = [int(t) for t in x[0, :kept]]
    if y.dim() == 2 and not y.is_floating_point():  # token targets: what it should say and what it says
        payload["target"] = [int(t) for t in y[0, :kept]]
        payload["output"] = [int(t) for t in output[0, :kept].argmax(-1)]
    return payload
