"""Custom recurrent cells: one-step equations written out in plain torch.

Every cell keeps torch's parameter layout, weight_ih (G*H, I), weight_hh
(G*H, H), bias_ih and bias_hh (G*H,), with G the number of blocks named in
`gates` (one block when `gates` is empty). The input half, x_t W_ih^T + b_ih,
does not depend on the state, so CustomRecurrentModel computes it for every
time step in one matmul; a cell's `step_fn` gets that projection `gi` and does
only the recurrent half. Step functions are TorchScript-compatible (typed,
no Python callables) so the time loop around them can be scripted; extra
per-cell settings travel as one int `mode`. Each `step_fn` returns
(h (B, H), new state as a list, gate activations in the order of `gates`).
"""

from __future__ import annotations

import math
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Activation name -> the int code a step function dispatches on (TorchScript takes no callables).
ACTIVATION_CODES = {"tanh": 0, "relu": 1, "relu6": 2, "elu": 3, "softplus": 4, "softsign": 5, "linear": 6,
                    "sigmoid": 7}


def activate(v: Tensor, code: int) -> Tensor:
    if code == 0:
        return torch.tanh(v)
    if code == 1:
        return torch.relu(v)
    if code == 2:
        return torch.clamp(v, 0.0, 6.0)  # relu6
    if code == 3:
        return F.elu(v)
    if code == 4:
        return F.softplus(v)
    if code == 5:
        return v / (1.0 + v.abs())  # softsign
    if code == 7:
        return torch.sigmoid(v)
    return v


# ---- step functions: (gi (B, G*H), state [h] or [h, c], params, mode) -> (h, state, gates)
# params[0] is always weight_hh; further entries are cell-specific. Except in the GRU, bias_hh
# is folded into gi (b_ih + b_hh): a bias add and its gradient sum fewer per step.

def elman_step(gi: Tensor, state: List[Tensor], params: List[Tensor], mode: int) -> Tuple[Tensor, List[Tensor], List[Tensor]]:
    h = activate(gi + F.linear(state[0], params[0]), mode)  # (B, H)
    return h, [h], []


def leaky_step(gi: Tensor, state: List[Tensor], params: List[Tensor], mode: int) -> Tuple[Tensor, List[Tensor], List[Tensor]]:
    a = params[1]  # (H,) retention 1 - 1/tau, per unit
    h = a * state[0] + (1.0 - a) * activate(gi + F.linear(state[0], params[0]), mode)
    return h, [h], []


def residual_step(gi: Tensor, state: List[Tensor], params: List[Tensor], mode: int) -> Tuple[Tensor, List[Tensor], List[Tensor]]:
    h = state[0] + activate(gi + F.linear(state[0], params[0]), mode)
    return h, [h], []


def gated_residual_step(gi: Tensor, state: List[Tensor], params: List[Tensor], mode: int) -> Tuple[Tensor, List[Tensor], List[Tensor]]:
    gl, gn = (gi + F.linear(state[0], params[0])).chunk(2, 1)  # (B, H) each
    keep = torch.sigmoid(gl)  # l_t: how much of h_{t-1} passes unchanged
    new = activate(gn, mode)
    h = keep * state[0] + (1.0 - keep) * new
    return h, [h], [keep, new]


def mgu_step(gi: Tensor, state: List[Tensor], params: List[Tensor], mode: int) -> Tuple[Tensor, List[Tensor], List[Tensor]]:
    gu, gn = (gi + F.linear(state[0], params[0])).chunk(2, 1)
    u = torch.sigmoid(gu)
    new = torch.tanh(gn)
    h = u * new + (1.0 - u) * state[0]
    return h, [h], [u, new]


def lstm_step(gi: Tensor, state: List[Tensor], params: List[Tensor], mode: int) -> Tuple[Tensor, List[Tensor], List[Tensor]]:
    # torch's nn.LSTM: blocks (input, forget, cell, output), both biases added.
    i, f, g, o = (gi + F.linear(state[0], params[0])).chunk(4, 1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * state[1] + i * g
    h = o * torch.tanh(c)
    return h, [h, c], [i, f, g, o]


def gru_step(gi: Tensor, state: List[Tensor], params: List[Tensor], mode: int) -> Tuple[Tensor, List[Tensor], List[Tensor]]:
    # torch's nn.GRU: the reset gate scales the recurrent part of the candidate, bias included.
    ri, zi, ni = gi.chunk(3, 1)
    rh, zh, nh = F.linear(state[0], params[0], params[1]).chunk(3, 1)
    r, z = torch.sigmoid(ri + rh), torch.sigmoid(zi + zh)
    n = torch.tanh(ni + r * nh)
    h = (1.0 - z) * n + z * state[0]
    return h, [h], [r, z, n]


def peephole_step(gi: Tensor, state: List[Tensor], params: List[Tensor], mode: int) -> Tuple[Tensor, List[Tensor], List[Tensor]]:
    # Gers & Schmidhuber: c_{t-1} reaches the input and forget gates, c_t the output gate.
    # mode 1 couples the input gate to 1 - forget (its weight block then goes unused).
    peep = params[1]  # (3, H): diagonal peepholes for input, forget, output
    c_prev = state[1]
    i, f, g, o = (gi + F.linear(state[0], params[0])).chunk(4, 1)
    f = torch.sigmoid(f + peep[1] * c_prev)
    i = 1.0 - f if mode == 1 else torch.sigmoid(i + peep[0] * c_prev)
    g = torch.tanh(g)
    c = f * c_prev + i * g
    o = torch.sigmoid(o + peep[2] * c)
    h = o * torch.tanh(c)
    return h, [h, c], [i, f, g, o]


class CustomCell(nn.Module):
    """One recurrent layer: parameters, the one-step function, its square blocks."""

    gates: tuple[str, ...] = ()  # names of the weight blocks (gate names for probes)
    paired = False  # the state is (h, c)
    step_fn = staticmethod(elman_step)

    def __init__(self, input_size: int, hidden: int, options):
        super().__init__()
        blocks = max(1, len(self.gates))
        self.hidden = hidden
        self.weight_ih = nn.Parameter(torch.empty(blocks * hidden, input_size))
        self.weight_hh = nn.Parameter(torch.empty(blocks * hidden, hidden))
        self.bias_ih = nn.Parameter(torch.empty(blocks * hidden))
        self.bias_hh = nn.Parameter(torch.empty(blocks * hidden))
        bound = 1.0 / math.sqrt(hidden)  # torch's RNN initialisation
        for p in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh):
            nn.init.uniform_(p, -bound, bound)
        self.mode = ACTIVATION_CODES.get(getattr(options, "activation", "tanh"), 0)

    def step_params(self) -> list[Tensor]:
        """What step_fn needs besides gi and the state; recomputed each forward (may be differentiable)."""
        return [self.weight_hh]

    def project_inputs(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih + self.bias_hh)  # (..., G*H)

    def zero_state(self, batch: int, like: Tensor):
        h = like.new_zeros(batch, self.hidden)  # (B, H)
        return (h, h.clone()) if self.paired else h

    def step(self, x: Tensor, state):
        """One step from the raw input x (B, I); state h or (h, c) as the probes keep it."""
        parts = list(state) if self.paired else [state]
        h, new, gates = self.step_fn(self.project_inputs(x), parts, self.step_params(), self.mode)
        return h, (tuple(new) if self.paired else new[0]), dict(zip(self.gates, gates))

    def recurrent_blocks(self) -> dict[str, Tensor]:
        """Gate name -> (H, H) block of weight_hh ('' for a single block)."""
        if not self.gates:
            return {"": self.weight_hh}
        return dict(zip(self.gates, self.weight_hh.chunk(len(self.gates), dim=0)))


class ElmanCell(CustomCell):
    step_fn = staticmethod(elman_step)


class ResidualCell(CustomCell):
    step_fn = staticmethod(residual_step)


class GatedResidualCell(CustomCell):
    gates = ("keep", "new")
    step_fn = staticmethod(gated_residual_step)


class MGUCell(CustomCell):
    gates = ("update", "new")
    step_fn = staticmethod(mgu_step)


class GRUCell(CustomCell):
    gates = ("reset", "update", "new")
    step_fn = staticmethod(gru_step)

    def step_params(self) -> list[Tensor]:
        return [self.weight_hh, self.bias_hh]  # b_hh stays in the loop: the reset gate scales it

    def project_inputs(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih)  # (..., 3H)


class LSTMCell(CustomCell):
    gates = ("input", "forget", "cell", "output")
    paired = True
    step_fn = staticmethod(lstm_step)

    def __init__(self, input_size: int, hidden: int, options):
        super().__init__(input_size, hidden, options)
        with torch.no_grad():  # as the fused LSTM: the two biases add up to forget_bias
            self.bias_ih[hidden:2 * hidden].fill_(getattr(options, "forget_bias", 1.0))
            self.bias_hh[hidden:2 * hidden].zero_()


class PeepholeLSTMCell(LSTMCell):
    step_fn = staticmethod(peephole_step)

    def __init__(self, input_size: int, hidden: int, options):
        super().__init__(input_size, hidden, options)
        self.peephole = nn.Parameter(torch.zeros(3, hidden))  # (3, H): zero = a plain LSTM at start
        self.mode = 1 if options.coupled else 0

    def step_params(self) -> list[Tensor]:
        return [self.weight_hh, self.peephole]


def inverse_softplus(value: float) -> float:
    return value + math.log(-math.expm1(-value))  # log(exp(v) - 1), stable for large v


class LeakyCell(CustomCell):
    """h_t = a h_{t-1} + (1 - a) f(W x_t + U h_{t-1} + b), a = 1 - 1/tau per unit.

    Learned taus are 1 + softplus(raw), so tau >= 1 (0 <= a < 1) whatever the optimiser does.
    """

    step_fn = staticmethod(leaky_step)

    def __init__(self, input_size: int, hidden: int, options):
        super().__init__(input_size, hidden, options)
        taus = options.timescales or [options.tau]
        # units spread evenly over the timescales: unit k gets taus[k * len // H]
        per_unit = torch.tensor([float(taus[k * len(taus) // hidden]) for k in range(hidden)])  # (H,)
        self.tau_mode = options.tau_mode
        if self.tau_mode == "fixed":
            self.register_buffer("tau", per_unit)
        else:
            start = per_unit if self.tau_mode == "per_unit" else per_unit[:1]  # (H,) or (1,)
            # tau = 1 exactly sits at softplus(-inf); start a hair above it instead
            raw = [inverse_softplus(max(t - 1.0, 1e-3)) for t in start.tolist()]
            self.tau_raw = nn.Parameter(torch.tensor(raw))

    def taus(self) -> Tensor:
        if self.tau_mode == "fixed":
            return self.tau
        return (1.0 + F.softplus(self.tau_raw)).expand(self.hidden)  # (H,)

    def step_params(self) -> list[Tensor]:
        retention = 1.0 - 1.0 / self.taus()  # (H,)
        return [self.weight_hh, retention.to(self.weight_hh.dtype)]
