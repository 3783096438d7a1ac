"""The fused Elman/LSTM/GRU layers unrolled one step at a time, in plain torch.

Training never runs this: it uses the fused kernels. The probes do, because
they need what a fused kernel hides: every h_t as its own tensor (so autograd
gives the *total* dL/dh_t, through the recurrence as well as upwards), the
gate activations, and a one-step function for the Jacobian dh_t/dh_{t-1}.
A fused layer's step is its cell's (cells.py, the rows elman, lstm, gru: torch's
own equations, see nn.RNN/nn.LSTM/nn.GRU), and a test checks the unrolled
outputs against the fused ones in float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .cell_base import ACTIVATION_CODES, Knobs
from .cells import CELLS

FUSED_KINDS = ("elman", "lstm", "gru")  # the cells torch has fused kernels of (fused.py)
GATE_NAMES = {kind: CELLS[kind].gates for kind in FUSED_KINDS}


def is_custom(model) -> bool:
    """Custom-cell models (models/custom.py) carry their own one-step functions."""
    return hasattr(model, "cells")


def cell_kind(model) -> str:
    if is_custom(model):
        return "custom"
    rnn = model.rnn
    return "lstm" if isinstance(rnn, nn.LSTM) else "gru" if isinstance(rnn, nn.GRU) else "elman"


def layer_weights(model, layer: int) -> dict[str, torch.Tensor]:
    rnn = model.rnn
    return {name: getattr(rnn, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}


def layer_parameters(model, layer: int) -> dict[str, torch.Tensor]:
    """Every parameter of one layer: the four of a fused layer, or a custom cell's own."""
    if is_custom(model):
        return dict(model.cells[layer].named_parameters())
    return layer_weights(model, layer)


def gate_names(model, layer: int) -> tuple[str, ...]:
    """Names of the G blocks of weight_ih / weight_hh (empty: one block)."""
    return model.cells[layer].gates if is_custom(model) else GATE_NAMES[cell_kind(model)]


def layer_step(model, layer: int, detach: bool = False):
    """One layer's step(x (B, I), state) -> (h, state, gates) and zero_state(batch, like).

    detach: use detached weights (the Jacobian probe needs no graph to them).
    """
    if is_custom(model):
        cell = model.cells[layer]
        if not detach:
            return cell.step, cell.zero_state

        def step(x, state):
            with torch.no_grad():  # the parameters stay out of the graph; forward-mode AD still sees x, state
                return cell.step(x, state)

        return step, cell.zero_state
    kind = cell_kind(model)
    w = layer_weights(model, layer)
    if detach:
        w = {k: v.detach() for k, v in w.items()}
    nonlinearity = getattr(model.options, "nonlinearity", "tanh")
    hidden = model.options.hidden
    return (lambda x, state: cell_step(kind, w, x, state, nonlinearity)), (
        lambda batch, like: zero_state(kind, batch, hidden, like))


def cell_step(kind: str, w: dict, x: torch.Tensor, state, nonlinearity: str = "tanh"):
    """One step of one fused layer, by its cell's equations. x (B, I); state h (B, H), or (h, c) for LSTM.

    Returns (h_new (B, H), new state, gates: name -> activation (B, H)). nonlinearity: Elman's f (any of
    cells.ACTIVATION_CODES; "linear" serves analysis).
    """
    cell = CELLS[kind]
    parts = list(state) if cell.paired else [state]
    gi = F.linear(x, w["weight_ih"], w["bias_ih"])  # (B, G*H)
    gh = F.linear(parts[0], w["weight_hh"], w["bias_hh"])  # (B, G*H): b_hh here serves all three cells
    knobs = Knobs(ACTIVATION_CODES[nonlinearity], False)
    h_new, new, gates = cell.update(gi, gh, parts, [w["weight_hh"]], knobs)
    return h_new, (tuple(new) if cell.paired else new[0]), dict(zip(cell.gates, gates))


def zero_state(kind: str, batch: int, hidden: int, like: torch.Tensor):
    h = like.new_zeros(batch, hidden)
    return (h, h.clone()) if CELLS[kind].paired else h


@dataclass
class Trace:
    """What an unrolled forward pass records, per layer and per time step."""

    output: torch.Tensor  # (B, T, O)
    inputs: torch.Tensor  # (B, T, I): what the first layer reads (embedded tokens)
    hidden: list[list[torch.Tensor]] = field(default_factory=list)  # [layer][t] -> (B, H)
    cells: list[list[torch.Tensor]] = field(default_factory=list)  # LSTM only: [layer][t] -> (B, H)
    gates: list[dict[str, torch.Tensor]] = field(default_factory=list)  # [layer][name] -> (B, T, H)
    # [layer] -> (B, T, I_l): what each layer's step read, where that is not the layer below (echo state
    # networks: parallel reservoirs, a fed-back output); empty: layer 0 reads `inputs`, layer l the states of l-1
    layer_inputs: list[torch.Tensor] = field(default_factory=list)


def unrolled_forward(model, x: torch.Tensor) -> Trace:
    """The model's forward pass from a zero state, in eval mode semantics (no dropout)."""
    own = getattr(model, "unrolled_trace", None)  # a model whose layers are not a plain stack traces itself
    if own is not None:
        return own(x)
    options = model.options
    inputs = model.embed(x) if model.embed is not None else x  # (B, T, E)
    batch, steps = inputs.shape[:2]
    trace = Trace(output=None, inputs=inputs)
    for layer in range(options.layers):
        step, zeros = layer_step(model, layer)
        state = zeros(batch, inputs)
        hs, cs, gates = [], [], {name: [] for name in gate_names(model, layer)}
        for t in range(steps):
            h, state, g = step(inputs[:, t], state)
            hs.append(h)
            if isinstance(state, tuple):  # (h, c): LSTM-like
                cs.append(state[1])
            for name, value in g.items():
                gates[name].append(value)
        trace.hidden.append(hs)
        trace.cells.append(cs)
        trace.gates.append({name: torch.stack(values, 1) for name, values in gates.items()})  # (B, T, H)
        inputs = torch.stack(hs, 1)  # (B, T, H): the next layer's input
    trace.output = model.head(inputs)  # (B, T, O)
    return trace
