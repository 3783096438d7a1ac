"""The recurrent cells, each written once (its equations, parameters and arch keys), and their table.

The contract a cell fulfils, and the base class that runs it one step, are in cell_base.py. A cell
is one class here (the LSTM and its peephole variant in lstm_cells.py): its `name` (model.cell), its
arch's `Options` and `summary` (custom.py registers one arch per row of CELLS), its `gates`, its
`recurrent` half, its `update` and, where it has one, its hand-derived backward step. Adding a cell
is adding one such class and its row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..options import opt
from .base import RecurrentOptions
from .cell_base import (ACTIVATION_CODES, ARCH, ActivationOptions, Cell, HandBackward, Knobs, activate,
                        activation_backward, sigmoid_backward, tanh_backward)
from .lstm_cells import LSTMCell, PeepholeLSTMCell

# Each cell: its update (and its recurrent half, where not cell_base.dense_half's U z), its backward step
# (cell_base.HandBackward) where it has one, then its class. An update returns third its gates, then
# what its backward step reads besides (kept: tensors it computed anyway, so keeping them costs nothing).


def elman_update(gi: Tensor, gh: Tensor, state: List[Tensor], params: List[Tensor],
                  knobs: Knobs) -> Tuple[Tensor, List[Tensor], List[Tensor]]:
    pre = gi + gh
    h = activate(pre, knobs.activation)  # (B, H)
    return h, [h], [pre, h]


def elman_step(dh: Tensor, carry: List[Tensor], kept: List[Tensor], params: List[Tensor],
               knobs: Knobs) -> Tuple[List[Tensor], Optional[Tensor], List[Tensor]]:
    return [activation_backward(dh, kept[0], kept[1], knobs.activation)], None, carry  # h_{t-1} acts through U alone


class ElmanCell(Cell):
    name, summary = "elman", "Elman RNN with a choice of activation, custom cell (TorchScript loop)"
    update = staticmethod(elman_update)
    hand_backward = HandBackward(elman_step)

    @dataclass
    class Options(ActivationOptions):
        arch: str = opt("elman_act", ARCH)


def biased_half(z: Tensor, params: List[Tensor]) -> Tensor:
    return F.linear(z, params[0], params[1])  # the GRU's b_hh stays here: the reset gate scales it


def gru_update(gi: Tensor, gh: Tensor, state: List[Tensor], params: List[Tensor],
                knobs: Knobs) -> Tuple[Tensor, List[Tensor], List[Tensor]]:
    # torch's nn.GRU: the reset gate scales the recurrent part of the candidate, b_hh included (gh).
    ri, zi, ni = gi.chunk(3, 1)
    rh, zh, nh = gh.chunk(3, 1)
    r, z = torch.sigmoid(ri + rh), torch.sigmoid(zi + zh)
    n = torch.tanh(ni + r * nh)
    h = (1.0 - z) * n + z * state[0]
    return h, [h], [r, z, n, nh]


def gru_step(dh: Tensor, carry: List[Tensor], kept: List[Tensor], params: List[Tensor],
             knobs: Knobs) -> Tuple[List[Tensor], Optional[Tensor], List[Tensor]]:
    r, z, n, nh, h_prev = kept[0], kept[1], kept[2], kept[3], kept[4]
    through = dh * z  # h = (1 - z) n + z h_{t-1}
    dz = sigmoid_backward(dh * (h_prev - n), z)
    dn = tanh_backward(dh - through, n)  # n = tanh(ni + r nh)
    dr = sigmoid_backward(dn * nh, r)
    return [dr, dz, dn, dr, dz, dn * r], through, carry  # the input half's, then the recurrent half's


def gru_finish(sums: List[Tensor], dgh: Tensor) -> List[Tensor]:
    return [dgh.sum((0, 1))]  # (3H,): b_hh, inside the recurrent half


class GRUCell(Cell):
    name, summary = "gru", "GRU as a custom cell: torch's equations and layout, to check the machinery"
    gates = ("reset", "update", "new")
    recurrent = staticmethod(biased_half)
    update = staticmethod(gru_update)
    hand_backward = HandBackward(gru_step, gru_finish, split=True)

    @dataclass
    class Options(RecurrentOptions):
        arch: str = opt("gru_cell", ARCH)

    def step_params(self) -> list[Tensor]:
        return [self.weight_hh, self.bias_hh]  # b_hh stays in the loop: the reset gate scales it

    def project_inputs(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih)  # (..., 3H)


def mgu_update(gi: Tensor, gh: Tensor, state: List[Tensor], params: List[Tensor],
                knobs: Knobs) -> Tuple[Tensor, List[Tensor], List[Tensor]]:
    gu, gn = (gi + gh).chunk(2, 1)
    u = torch.sigmoid(gu)
    new = torch.tanh(gn)
    h = u * new + (1.0 - u) * state[0]
    return h, [h], [u, new]


def mgu_step(dh: Tensor, carry: List[Tensor], kept: List[Tensor], params: List[Tensor],
             knobs: Knobs) -> Tuple[List[Tensor], Optional[Tensor], List[Tensor]]:
    u, new, h_prev = kept[0], kept[1], kept[2]
    du = dh * u
    grads = [sigmoid_backward(dh * (new - h_prev), u), tanh_backward(du, new)]
    return grads, dh - du, carry


class MGUCell(Cell):
    name, summary = "mgu", "Minimal gated unit: h_t = u tanh(W x + U h + b) + (1 - u) h_{t-1}"
    gates = ("update", "new")
    update = staticmethod(mgu_update)
    hand_backward = HandBackward(mgu_step)

    @dataclass
    class Options(RecurrentOptions):
        arch: str = opt("mgu", ARCH)


def inverse_softplus(value: float) -> float:
    return value + math.log(-math.expm1(-value))  # log(exp(v) - 1), stable for large v


def leaky_update(gi: Tensor, gh: Tensor, state: List[Tensor], params: List[Tensor],
                  knobs: Knobs) -> Tuple[Tensor, List[Tensor], List[Tensor]]:
    a = params[1]  # (H,) retention 1 - 1/tau, per unit
    pre = gi + gh
    value = activate(pre, knobs.activation)
    h = a * state[0] + (1.0 - a) * value
    return h, [h], [pre, value]


def leaky_step(dh: Tensor, carry: List[Tensor], kept: List[Tensor], params: List[Tensor],
               knobs: Knobs) -> Tuple[List[Tensor], Optional[Tensor], List[Tensor]]:
    pre, value, h_prev, a = kept[0], kept[1], kept[2], params[1]
    # dL/da sums dh (h_{t-1} - f(pre)) over time (and batch, in finish)
    total = torch.addcmul(carry[0], dh, h_prev - value) if len(carry) > 0 else dh * (h_prev - value)
    return [activation_backward(dh * (1.0 - a), pre, value, knobs.activation)], dh * a, [total]


def leaky_finish(sums: List[Tensor], dgh: Tensor) -> List[Tensor]:
    return [sums[0].sum(0)]  # (H,)


class LeakyCell(Cell):
    """h_t = a h_{t-1} + (1 - a) f(W x_t + U h_{t-1} + b), a = 1 - 1/tau per unit.

    Learned taus are 1 + softplus(raw), so tau >= 1 (0 <= a < 1) whatever the optimiser does.
    """

    name, summary = "leaky", "Leaky-integrator RNN, h_t = a h_{t-1} + (1 - a) f(W x + U h + b), a = 1 - 1/tau"
    update = staticmethod(leaky_update)
    hand_backward = HandBackward(leaky_step, leaky_finish)

    @dataclass
    class Options(ActivationOptions):
        arch: str = opt("leaky", ARCH)
        tau: float = opt(4.0, "time constant in steps; a = 1 - 1/tau is the share of h_{t-1} kept", min=1)
        tau_mode: str = opt("fixed", "fixed taus, one learned tau, or a learned tau per unit",
                            choices=["fixed", "learned", "per_unit"])
        timescales: list[float] = opt([], "taus to spread the units over evenly (multi-timescale); empty = all use tau",
                                      min=1)

        def check(self, section: str) -> None:
            if self.timescales and self.tau_mode == "learned":
                raise ConfigError(f"{section}.tau_mode", self.tau_mode, "one learned tau cannot hold several "
                                  "timescales", "fixed or per_unit with timescales")

    def __init__(self, input_size: int, hidden: int, options: Options):
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


def residual_update(gi: Tensor, gh: Tensor, state: List[Tensor], params: List[Tensor],
                     knobs: Knobs) -> Tuple[Tensor, List[Tensor], List[Tensor]]:
    pre = gi + gh
    value = activate(pre, knobs.activation)
    h = state[0] + value
    return h, [h], [pre, value]


def residual_step(dh: Tensor, carry: List[Tensor], kept: List[Tensor], params: List[Tensor],
                  knobs: Knobs) -> Tuple[List[Tensor], Optional[Tensor], List[Tensor]]:
    return [activation_backward(dh, kept[0], kept[1], knobs.activation)], dh, carry  # the identity passes dh whole


class ResidualCell(Cell):
    name, summary = "residual", "Residual RNN, h_t = h_{t-1} + f(W x + U h + b)"
    update = staticmethod(residual_update)
    hand_backward = HandBackward(residual_step)

    @dataclass
    class Options(ActivationOptions):
        arch: str = opt("residual", ARCH)


def gated_residual_update(gi: Tensor, gh: Tensor, state: List[Tensor], params: List[Tensor],
                           knobs: Knobs) -> Tuple[Tensor, List[Tensor], List[Tensor]]:
    gl, gn = (gi + gh).chunk(2, 1)  # (B, H) each
    keep = torch.sigmoid(gl)  # l_t: how much of h_{t-1} passes unchanged
    new = activate(gn, knobs.activation)
    h = keep * state[0] + (1.0 - keep) * new
    return h, [h], [keep, new, gn]


def gated_residual_step(dh: Tensor, carry: List[Tensor], kept: List[Tensor], params: List[Tensor],
                        knobs: Knobs) -> Tuple[List[Tensor], Optional[Tensor], List[Tensor]]:
    keep, new, gn, h_prev = kept[0], kept[1], kept[2], kept[3]
    through = dh * keep  # what of dh reaches h_{t-1} directly
    grads = [sigmoid_backward(dh * (h_prev - new), keep), activation_backward(dh - through, gn, new, knobs.activation)]
    return grads, through, carry


class GatedResidualCell(Cell):
    name = "gated_residual"
    summary = "Gated residual RNN, h_t = l h_{t-1} + (1 - l) f(W x + U h + b), l a sigmoid gate"
    gates = ("keep", "new")
    update = staticmethod(gated_residual_update)
    hand_backward = HandBackward(gated_residual_step)

    @dataclass
    class Options(ActivationOptions):
        arch: str = opt("gated_residual", ARCH)


def diagonal_half(z: Tensor, params: List[Tensor]) -> Tensor:
    return params[0] * z  # IndRNN: u (H,) elementwise, every unit its own recurrence


class IndRNNCell(Cell):
    """Li, Li, Cook, Zhu & Gao 2018, "Independently recurrent neural network": h_t = f(W x_t + u * h_{t-1} + b).

    u (H,) is a vector: each unit recurs only on itself, so dh_t/dh_{t-1} is diagonal, f'(.) u, and
    over T steps a unit's gradient scales by prod f' u_k. The paper keeps |u| <= recurrent_max
    (2^(1/T) for a relu over T steps keeps the gradient from exploding) by clipping after each
    update; here the step reads clamp(u, -max, max), the same forward, with no gradient pushing u
    further out. weight_hh holds u, (H,), so its recurrent matrix is diag(u).
    """

    name = "indrnn"
    summary = "Independently recurrent RNN (Li et al. 2018), h_t = f(W x + u * h_{t-1} + b), u a vector (the paper: f = relu)"
    recurrent = staticmethod(diagonal_half)
    update = staticmethod(elman_update)  # the update is Elman's: only the recurrent half differs

    @dataclass
    class Options(ActivationOptions):  # f = tanh by default, as every arch's; the paper's is relu
        arch: str = opt("indrnn", ARCH)
        recurrent_max: float = opt(0.0, "keep each |u| <= this (e.g. 2^(1/T) for relu over T steps); 0 = unbounded",
                                   min=0)

        def check(self, section: str) -> None:
            if self.init != "default":  # refused here, when the config loads, not when the model is built
                IndRNNCell.refuse_init(f"{section}.init", self.init)

    def __init__(self, input_size: int, hidden: int, options: Options):
        super().__init__(input_size, hidden, options)
        self.recurrent_max = options.recurrent_max
        bound = options.recurrent_max or 1.0  # u starts uniform in [0, max] ([0, 1] when unbounded)
        self.weight_hh = nn.Parameter(torch.empty(hidden).uniform_(0.0, bound))  # (H,): u

    def step_params(self) -> list[Tensor]:
        if self.recurrent_max > 0:
            return [self.weight_hh.clamp(-self.recurrent_max, self.recurrent_max)]
        return [self.weight_hh]

    @staticmethod
    def refuse_init(key: str, scheme: str) -> None:
        raise ConfigError(key, scheme, "an IndRNN's recurrent weight is a vector u, not a matrix for an init "
                          "scheme", "default (and model.recurrent_max to bound u)")

    def init_recurrent(self, options: RecurrentOptions) -> None:
        if options.init != "default":  # deep and birnn with cell = indrnn
            self.refuse_init("model.init", options.init)

    def recurrent_matrix(self) -> Tensor:
        return torch.diag(self.step_params()[0])  # (H, H)


# The one table of cells, in the order `model.cell` lists them; custom.py registers each one's arch.
CELLS: dict[str, type[Cell]] = {cell.name: cell for cell in (
    ElmanCell, LSTMCell, GRUCell, MGUCell, PeepholeLSTMCell, LeakyCell, ResidualCell, GatedResidualCell, IndRNNCell)}

__all__ = ["ACTIVATION_CODES", "CELLS", "Cell", "activate", "inverse_softplus"]
