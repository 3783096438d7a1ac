"""Hidden (and cell) activations of every unit over a text, for colouring text by a unit.

Computed on request from a checkpoint, not during training; saved in the run
directory as `activations/<name>.pt` (float16: compact, and plenty for
colours), with an `activations` event pointing at it.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from ..models.unrolled import unrolled_forward
from ..store import RunDir


@torch.no_grad()
def unit_activations(model, vocab, text: str) -> dict:
    """{'text', 'tokens': T pieces of text, 'hidden': (L, T, H) float16, 'cells': (L, T, H) or None,
    'surprisal': (T,) bits}.

    Position t holds the state after reading token t (tokens[t], a character
    for a character model); surprisal[t] is -log2 p(token t | tokens before it)
    (0 for the first, which has no context).
    """
    ids = vocab.encode(text)[None]  # (1, T)
    trace = unrolled_forward(model, ids.to(next(model.parameters()).device))
    hidden = torch.stack([torch.stack(layer, 1)[0] for layer in trace.hidden])  # (L, T, H)
    cells = torch.stack([torch.stack(layer, 1)[0] for layer in trace.cells]) if trace.cells[0] else None
    log_probs = torch.log_softmax(trace.output[0].float(), -1)  # (T, V)
    surprisal = torch.zeros(ids.shape[1])
    surprisal[1:] = -log_probs[:-1].gather(1, ids[0, 1:, None].to(log_probs.device))[:, 0].cpu() / torch.log(torch.tensor(2.0))
    return {
        "text": text, "tokens": vocab.split(text), "hidden": hidden.half().cpu(),
        "cells": cells.half().cpu() if cells is not None else None, "surprisal": surprisal,
    }


def save_activations(run: RunDir, name: str, record: dict) -> Path:
    """The record serialised here (torch), stored by the run directory (activations/<name>.pt)."""
    buffer = io.BytesIO()
    torch.save(record, buffer)
    return run.write_activations(name, buffer.getvalue())


def load_activations(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def most_variable_unit(record: dict, layer: int = -1) -> int:
    """The unit whose activation varies most over the text: a good first one to look at."""
    return int(record["hidden"][layer].float().var(0).argmax())
