"""What every recurrent cell shares: the activation table, Knobs, the Cell base class.

A cell is two TorchScript-compatible functions and its parameters:

  recurrent(z (B, H), params) -> gh (B, G*H)      the recurrent half (U z; + b_hh for the GRU)
  update(gi (B, G*H), gh, state, params, knobs) -> (h (B, H), new state [h] or [h, c], kept)

kept holds the gates in `gates` order (what the probes read), then whatever else the cell's
hand-derived backward reads (tanh(c), a pre-activation): tensors the update computed anyway.

gi = x_t W_ih^T + b is the input half. It does not depend on the state, so the models compute it for
every time step in one matmul; except in the GRU, b_hh is folded into it (b_ih + b_hh: a bias add and
its gradient sum fewer per step). Everything that runs a cell calls these two and nothing else: the
custom models' time loop (custom.py), the deep and bidirectional wrappers (deep.py: a deep transition
feeds `recurrent` a transformed state), Cell.step for the probes, and the fused layers' unrolled form
(unrolled.py, through the elman/lstm/gru rows of cells.CELLS). TorchScript takes no callables as
arguments, so the loops find both halves in their closure (one scripted loop per cell class), and
what the update reads of the cell's settings comes as one typed argument, Knobs (the activation's
code, the peephole coupling). The cells themselves, and their table, are in cells.py. A cell may also
declare its backward through one step (HandBackward, beside its update in cells.py): training then
runs it as sequence_grad.CellSequence, with no autograd graph inside the sequence.

A cell is built with its own arch's options (its nested `Options` dataclass): typed, every setting it
reads declared there. The deep and bidirectional wrappers build that from their own keys
(Cell.options_from), so a cell's settings live in one place whichever arch runs it.

Every cell keeps torch's parameter names, weight_ih (G*H, I), weight_hh (G*H, H; IndRNN's u: (H,)),
bias_ih and bias_hh (G*H,), with G the number of blocks named in `gates` (one block when `gates` is
empty), so checkpoints of every arch load unchanged (tests/test_cell_checkpoints.py holds main's
state_dict keys).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Callable, List, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..options import opt
from .base import RecurrentOptions
from .init import init_recurrent

# The one activation table: name -> the int code activate() dispatches on (TorchScript takes no callables).
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


def activation_slope(pre: Tensor, h: Tensor, code: int) -> Tensor:
    """f'(pre) for activate's codes, as torch's own backward computes it (h = f(pre))."""
    if code == 0:
        return 1.0 - h * h  # tanh
    if code == 1:
        return (pre > 0).to(pre.dtype)  # relu
    if code == 2:
        return ((pre >= 0.0) & (pre <= 6.0)).to(pre.dtype)  # clamp(0, 6) passes the gradient at its ends
    if code == 3:
        return torch.where(pre > 0, torch.ones_like(h), h + 1.0)  # elu: exp(pre) = h + 1 below 0
    if code == 4:
        return torch.where(pre > 20.0, torch.ones_like(h), torch.sigmoid(pre))  # softplus is linear past 20
    if code == 5:
        return 1.0 / (1.0 + pre.abs()) ** 2  # softsign
    if code == 7:
        return h * (1.0 - h)  # sigmoid
    return torch.ones_like(h)


sigmoid_backward, tanh_backward = torch.ops.aten.sigmoid_backward, torch.ops.aten.tanh_backward  # (grad, output)


def activation_backward(grad: Tensor, pre: Tensor, value: Tensor, code: int) -> Tensor:
    """grad f'(pre), value = f(pre): torch's own fused backward kernels where f has one."""
    if code == 0:
        return torch.ops.aten.tanh_backward(grad, value)
    if code == 7:
        return torch.ops.aten.sigmoid_backward(grad, value)
    return grad * activation_slope(pre, value, code)


class Knobs(NamedTuple):
    """What an update reads of its cell's settings, typed for TorchScript."""

    activation: int  # ACTIVATION_CODES[settings.activation]
    coupled: bool  # the peephole LSTM's input gate is 1 - forget


class HandBackward(NamedTuple):
    """A cell's backward through one step, derived by hand; sequence_grad.CellSequence walks it back in time
    (for a recurrent half U z [+ b]: it adds dL/dgh_t U to dL/dh_{t-1} and forms dL/dU itself).

    step(dh (B, H), carry, kept, params, knobs) -> (dL/dpre_t as its G blocks [(B, H)], the part of dh
      that reaches h_{t-1} past U (B, H) or None, carry). TorchScript. pre_t = gi_t + gh_t; dh is the
      whole dL/dh_t; kept is what the cell's update returned third at step t (its gates, then what else
      the backward reads), then the state before the step (h_{t-1} [, c_{t-1}]). carry: dL/dc_t first
      for a paired cell, then sums over time (for the gradients of params[1:]), which the first step
      of the walk back (t = T - 1) finds absent and starts.
    finish(sums, dgh (B, T, G*H)) -> the gradients of params[1:] (peepholes, retention, the GRU's
      b_hh) from the sums and dL/dgh; None when params is [U] alone.
    split: the recurrent half's gradient is not the input half's (the GRU: r scales U_n h + b_n); step
      then returns 2 G blocks, dL/dgi_t's then dL/dgh_t's.
    """

    step: Callable
    finish: Optional[Callable] = None
    split: bool = False


# ---- recurrent halves: (z (B, H), params) -> gh (B, G*H); params[0] is always the recurrent weight

def dense_half(z: Tensor, params: List[Tensor]) -> Tensor:
    return F.linear(z, params[0])


ARCH = "architecture (`rnnlab list archs`)"
ACTIVATION = opt("tanh", "activation f of the recurrence", choices=list(ACTIVATION_CODES))
FORGET_BIAS = opt(1.0, "initial forget-gate bias (1 keeps memory early in training)")


@dataclass
class ActivationOptions(RecurrentOptions):
    """The keys of an arch whose cell's f is a choice (each subclass sets its own `arch`)."""

    activation: str = ACTIVATION


class Cell(nn.Module):
    """One recurrent layer: its parameters, its two halves, its square blocks. A subclass (cells.py)
    is one row of CELLS: its name (model.cell), its arch's Options and summary, gates, its two halves."""

    name: str  # the key of cells.CELLS, what model.cell names
    summary: str  # its own arch's line in `rnnlab list archs`
    Options: type  # its own arch's keys: a RecurrentOptions dataclass
    gates: tuple[str, ...] = ()  # names of the weight blocks (gate names for probes)
    paired = False  # the state is (h, c)
    recurrent = staticmethod(dense_half)
    update = None  # (gi, gh, state, params, knobs) -> (h, state, gates): see the module docstring
    hand_backward: HandBackward | None = None  # None: autograd through the time loop

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if ({"update", "recurrent"} & set(vars(cls))) and "hand_backward" not in vars(cls):
            cls.hand_backward = None  # a backward derived for the parent's equations would be wrong here

    def __init__(self, input_size: int, hidden: int, options):  # options: a type(self).Options
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
        reads = self.reads()  # a cell without the key runs as its default: tanh, uncoupled
        self.knobs = Knobs(ACTIVATION_CODES[options.activation] if "activation" in reads else 0,
                           bool(options.coupled) if "coupled" in reads else False)

    @classmethod
    def reads(cls) -> tuple[str, ...]:
        """The keys of this cell's own: those its arch's Options adds to every recurrent arch's."""
        shared = {f.name for f in fields(RecurrentOptions)}
        return tuple(f.name for f in fields(cls.Options) if f.name not in shared)

    @classmethod
    def options_from(cls, options) -> object:
        """This cell's Options, with every key it shares with `options` (a wrapper's: deep, birnn) taken
        from there; the rest (learned taus, a peephole coupling) keep their defaults."""
        given = {f.name for f in fields(options)}
        return cls.Options(**{f.name: getattr(options, f.name) for f in fields(cls.Options)
                              if f.name in given and f.name != "arch"})

    def step_params(self) -> list[Tensor]:
        """What the two halves need besides gi and the state; recomputed each forward (may be differentiable)."""
        return [self.weight_hh]

    def project_inputs(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih + self.bias_hh)  # (..., G*H)

    def zero_state(self, batch: int, like: Tensor):
        h = like.new_zeros(batch, self.hidden)  # (B, H)
        return (h, h.clone()) if self.paired else h

    def step(self, x: Tensor, state):
        """One step from the raw input x (B, I); state h or (h, c) as the probes keep it."""
        parts = list(state) if self.paired else [state]
        params = self.step_params()
        h, new, kept = self.update(self.project_inputs(x), self.recurrent(parts[0], params), parts, params,
                                   self.knobs)
        return h, (tuple(new) if self.paired else new[0]), dict(zip(self.gates, kept))  # kept: gates first

    def init_recurrent(self, options: RecurrentOptions) -> None:
        """The recurrent-init keys every arch shares (model.init ...), block by block."""
        if options.init != "default":
            init_recurrent(self.weight_hh, max(1, len(self.gates)), options.init, options.init_radius,
                           options.init_gain)

    def recurrent_matrix(self) -> Tensor:
        return self.weight_hh  # (G*H, H)

    def recurrent_blocks(self) -> dict[str, Tensor]:
        """Gate name -> (H, H) block of weight_hh ('' for a single block)."""
        if not self.gates:
            return {"": self.recurrent_matrix()}
        return dict(zip(self.gates, self.recurrent_matrix().chunk(len(self.gates), dim=0)))


