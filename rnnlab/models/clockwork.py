"""The clockwork RNN (Koutnik, Greff, Gomez & Schmidhuber, "A Clockwork RNN", ICML 2014).

The H hidden units are split into G groups (the paper's modules) with clock
periods T_1 < T_2 < ... < T_G (default 1, 2, 4, ...). At step t, group g
ticks when t mod T_g == 0: h_t[g] = f(W[g] x_t + U[g] h_{t-1} + b[g]);
otherwise it keeps h_{t-1}[g]. A slow group changes rarely, so it carries
information (and gradient) across many steps through few nonlinear updates.
Every group reads the input. Recurrent arcs (paper, section 3): "the recurrent
connections from module j to module i exist only if the period T_i is smaller
than period T_j", i.e. from slower (or the same) groups to faster ones. With
groups sorted fast to slow, U is block-upper-triangular: the rows of group g
(destination) have weights only in the columns of groups g, g+1, ..., G
(sources). Only those blocks are parameters, so the parameter count is the
paper's; recurrent_matrix() assembles the masked (H, H) U.

Time t counts from 0 at the first step of a fresh state (every group ticks
then) and carries across calls: the state is (h (L, B, H), t () int64, the
steps run so far), so truncated BPTT and sampling keep the clock. Every
sequence of a batch shares the clock (they are processed in step).

Speed: input projections for all steps in one matmul before the loop, a
TorchScript loop, and at step t only the ticking groups' rows of U are
multiplied. With periods that divide each other (1, 2, 4, ...) the ticking
groups are always the leading ones, a contiguous slice; otherwise the step
computes every row and keeps the ticking ones (torch.where).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..options import opt
from .registry import ARCHS
from .base import RecurrentOptions, TaskSpec
from .cells import ACTIVATION_CODES, activate
from .delay import StackedRecurrentModel, run_loop
from .init import init_recurrent_block


@dataclass
class ClockworkOptions(RecurrentOptions):
    arch: str = opt("clockwork", "architecture (`rnnlab list archs`)")
    activation: str = opt("tanh", "activation f of the recurrence", choices=list(ACTIVATION_CODES))
    groups: int = opt(4, "groups of hidden units (clock modules), periods 1, 2, 4, ..., 2^(groups-1)", min=1, max=62)
    periods: list[int] = opt([], "explicit clock periods, one per group, strictly increasing (overrides groups)",
                             min=1)

    def check(self, section: str) -> None:
        if any(b <= a for a, b in zip(self.periods, self.periods[1:])):
            raise ConfigError(f"{section}.periods", self.periods, "periods must increase (group 1 is the fastest)",
                              "strictly increasing integers >= 1")
        periods = self.resolved_periods()
        if len(periods) > self.hidden:
            key = "periods" if self.periods else "groups"
            raise ConfigError(f"{section}.{key}", getattr(self, key), f"{len(periods)} groups for {self.hidden} "
                              "hidden units leave a group empty", f"at most {self.hidden} groups (model.hidden)")

    def resolved_periods(self) -> list[int]:
        return list(self.periods) if self.periods else [2 ** g for g in range(self.groups)]


def clockwork_loop(gi: Tensor, h: Tensor, weight_hh: Tensor, t0: int, periods: List[int], bounds: List[int],
                   unit_period: Tensor, code: int) -> Tensor:
    """gi (B, T, H) input projections, h (B, H) the state before step t0; bounds[g]: group g's first unit."""
    leading_rows = [weight_hh[:bounds[g + 1]] for g in range(len(periods))]  # sliced once, not per step
    outputs: List[Tensor] = []
    t = t0
    for gi_t in gi.unbind(1):  # (B, H)
        leading = 0  # groups 0..leading-1 tick at t
        others = False  # a later group ticks too (only with periods that do not divide each other)
        for g in range(len(periods)):
            if t % periods[g] == 0:
                if leading == g:
                    leading = g + 1
                else:
                    others = True
        if others:
            new = activate(gi_t + F.linear(h, weight_hh), code)  # (B, H)
            h = torch.where(torch.remainder(t, unit_period) == 0, new, h)
        elif leading == len(periods):
            h = activate(gi_t + F.linear(h, weight_hh), code)
        elif leading > 0:
            rows = bounds[leading]
            new = activate(gi_t[:, :rows] + F.linear(h, leading_rows[leading - 1]), code)  # (B, rows)
            h = torch.cat([new, h[:, rows:]], 1)  # the slower groups keep their values
        outputs.append(h)
        t += 1
    return torch.stack(outputs, 1)  # (B, T, H)


class ClockworkLayer(nn.Module):
    """One layer: weight_ih (H, I), biases (H,), and weight_hh[g] (rows of group g, H - first unit of g)."""

    def __init__(self, input_size: int, options: ClockworkOptions, periods: list[int]):
        super().__init__()
        hidden, groups = options.hidden, len(periods)
        self.hidden, self.periods = hidden, periods
        self.bounds = [g * hidden // groups for g in range(groups + 1)]  # groups as even as H allows
        self.code = ACTIVATION_CODES[options.activation]
        unit_period = [periods[g] for g in range(groups) for _ in range(self.bounds[g], self.bounds[g + 1])]
        self.register_buffer("unit_period", torch.tensor(unit_period), persistent=False)  # (H,)
        self.weight_ih = nn.Parameter(torch.empty(hidden, input_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden))
        self.bias_hh = nn.Parameter(torch.empty(hidden))
        bound = 1.0 / hidden ** 0.5  # torch's RNN initialisation
        for p in (self.weight_ih, self.bias_ih, self.bias_hh):
            nn.init.uniform_(p, -bound, bound)
        full = torch.empty(hidden, hidden).uniform_(-bound, bound) * self.mask()
        # the scheme sees the masked matrix (init = radius then scales its true spectrum: the diagonal blocks')
        init_recurrent_block(full, options.init, options.init_radius, options.init_gain)
        self.weight_hh = nn.ParameterList(
            nn.Parameter(full[self.bounds[g]:self.bounds[g + 1], self.bounds[g]:].clone()) for g in range(groups))

    def mask(self) -> Tensor:
        """(H, H): 1 where unit j (column) may feed unit i (row): T_j >= T_i, j's group is i's or a slower one."""
        return (self.unit_period[None, :] >= self.unit_period[:, None]).float()

    def recurrent_matrix(self) -> Tensor:
        """U (H, H), zero left of each group's diagonal block (block-upper-triangular)."""
        return torch.cat([F.pad(block, (self.hidden - block.shape[1], 0)) for block in self.weight_hh], 0)

    def forward(self, inputs: Tensor, h: Tensor, t0: int, compiled: bool) -> Tensor:
        """inputs (B, T, I), h (B, H) before step t0 -> h (B, T, H)."""
        gi = F.linear(inputs, self.weight_ih, self.bias_ih + self.bias_hh)  # (B, T, H): all steps at once
        return run_loop(clockwork_loop, compiled, gi, h, self.recurrent_matrix(), t0, self.periods, self.bounds,
                        self.unit_period, self.code)


@ARCHS.register("clockwork", "Clockwork RNN (Koutnik 2014): unit groups updating every 1, 2, 4, ... steps")
class ClockworkModel(StackedRecurrentModel):
    Options = ClockworkOptions

    def __init__(self, options: ClockworkOptions, spec: TaskSpec):
        super().__init__(options, spec)
        self.periods = options.resolved_periods()
        self.stack = nn.ModuleList(
            ClockworkLayer(self.input_size if layer == 0 else options.hidden, options, self.periods)
            for layer in range(options.layers))

    def recurrence(self, inputs: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h, steps = state  # (L, B, H), () steps already run
        t0 = int(steps)
        finals = []
        for layer, module in enumerate(self.stack):
            if layer > 0:
                inputs = self.drop(inputs)  # dropout between layers
            inputs = module(inputs, h[layer], t0, self.compiled)  # (B, T, H)
            finals.append(inputs[:, -1])
        return inputs, (torch.stack(finals), steps + inputs.shape[1])  # (B, T, H), ((L, B, H), ())

    def init_state(self, batch: int, device=None) -> tuple[Tensor, Tensor]:
        h = torch.zeros(self.options.layers, batch, self.options.hidden, device=device, dtype=self.head.weight.dtype)
        return h, torch.zeros((), dtype=torch.long, device=device)  # (L, B, H), t = 0

    def recurrent_matrices(self) -> dict[str, Tensor]:
        return {f"layer{i}": module.recurrent_matrix() for i, module in enumerate(self.stack)}
