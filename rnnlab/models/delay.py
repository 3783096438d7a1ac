"""Recurrent nets with delayed arcs: h_t = f(W x_t + sum_{d in D} U_d h_{t-d} + b).

An arc from d steps back is a shortcut through time: a gradient reaches s
steps into the past in about s / max(D) matrix products instead of s, the
idea of NARX networks (Lin, Horne, Tino & Giles 1996) and of hierarchical
delays (El Hihi & Bengio 1996). `delays` lists D; left empty it is the
exponential back-off 1, 2, 4, ... up to `max_delay`. D = [1] is the Elman net.

The state between calls (truncated BPTT, sampling) is the last max(D) hidden
states of every layer, (L, B, Dmax, H), oldest first: state[:, :, -d] = h_{t-d}.

Speed, as in custom.py: each layer's input projections for all steps are one
matmul before the loop, and the loop is a TorchScript function (eager when
scripting fails). Each step is one matmul, [h_{t-d1} | h_{t-d2} | ...] (B, nD*H)
against [U_d1 | U_d2 | ...] (H, nD*H): one product per step, whatever nD.
The backward is written by hand (DelayRecurrence): the gradient of U is then
one product over all steps instead of T small ones.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from ..errors import ConfigError
from ..options import opt
from .registry import ARCHS
from .base import RecurrentOptions, SequenceModel, State, TaskSpec, input_layer
from .cell_base import activation_slope
from .cells import ACTIVATION_CODES, activate
from .init import init_recurrent_block

MAX_DELAY = 1024  # the state holds max(D) hidden states per layer: bound its memory


@functools.cache
def scripted(loop):
    """The TorchScript version of a time loop, compiled on first use (not at import: it takes ~0.5 s)."""
    try:
        return torch.jit.script(loop)
    except Exception as error:  # noqa: BLE001 - any scripting failure means: run eagerly
        warnings.warn(f"TorchScript unavailable for {loop.__name__}, running eagerly: {error}")
        return loop


def run_loop(loop, compiled: bool, *args):
    # No graph optimisation, as in custom.py: TorchScript's autodiff graphs were slower on these loops.
    with torch.jit.optimized_execution(False):
        return (scripted(loop) if compiled else loop)(*args)


class StackedRecurrentModel(SequenceModel):
    """Input layer, `layers` recurrent layers (self.stack) with dropout between, a read-out at every step.

    Subclasses build self.stack and define recurrence(inputs, state) -> (top layer's h (B, T, H), state).
    There is no `rnn` or `cells` attribute on purpose: the probes read those as one-step functions of
    h_{t-1} alone, which these recurrences are not (they read h_{t-d} or a clock), so probes skip them.
    """

    def __init__(self, options: RecurrentOptions, spec: TaskSpec):
        super().__init__()
        self.options, self.spec = options, spec
        self.embed, self.input_size = input_layer(options, spec)
        self.drop = nn.Dropout(options.dropout)
        self.head = nn.Linear(options.hidden, spec.output_size)
        self.compiled = True  # False runs the eager loop (tests compare the two)

    def hidden_sequence(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """The top layer's hidden states (B, T, H), before the read-out, and the new state."""
        inputs = self.drop(self.embed(x) if self.embed is not None else x)  # (B, T, E)
        if state is None:
            state = self.init_state(inputs.shape[0], inputs.device)
        return self.recurrence(inputs, state)

    def forward(self, x: Tensor, state: State | None = None):
        hidden, state = self.hidden_sequence(x, state)
        return self.head(self.drop(hidden)), state  # (B, T, O)


def backoff_delays(max_delay: int) -> list[int]:
    """1, 2, 4, ... up to max_delay."""
    return [2 ** k for k in range(max_delay.bit_length())]


@dataclass
class DelayOptions(RecurrentOptions):
    arch: str = opt("delay", "architecture (`rnnlab list archs`)")
    activation: str = opt("tanh", "activation f of the recurrence", choices=list(ACTIVATION_CODES))
    delays: list[int] = opt([], "steps back of the recurrent arcs, e.g. [1, 3]; empty: exponential back-off "
                            "1, 2, 4, ... up to max_delay", min=1, max=MAX_DELAY)
    max_delay: int = opt(8, "longest back-off delay when delays is empty (8: arcs from 1, 2, 4, 8 steps back)",
                         min=1, max=MAX_DELAY)

    def check(self, section: str) -> None:
        if len(set(self.delays)) != len(self.delays):
            raise ConfigError(f"{section}.delays", self.delays, "a delay is listed twice", "distinct integers >= 1")

    def resolved_delays(self) -> list[int]:
        return sorted(self.delays) if self.delays else backoff_delays(self.max_delay)


def delay_loop(gi: Tensor, history: List[Tensor], weight_hh: Tensor, delays: List[int],
               code: int) -> Tuple[Tensor, Tensor]:
    """gi (B, T, H): input projections; history: the last max(D) states, oldest first, each (B, H).

    Returns h (B, T, H) and the pre-activations (B, T, H) (the hand-written backward needs them).
    """
    past = list(history)  # grows by one h per step; past[-d] is h_{t-d}
    outputs: List[Tensor] = []
    pres: List[Tensor] = []
    # unbind, not gi[:, t]: the backward of T slices would zero-fill a (B, T, H) tensor per step
    for gi_t in gi.unbind(1):
        n = len(past)
        delayed = torch.cat([past[n - d] for d in delays], 1)  # (B, nD*H)
        pre = gi_t + F.linear(delayed, weight_hh)  # (B, H)
        h = activate(pre, code)
        past.append(h)
        outputs.append(h)
        pres.append(pre)
    return torch.stack(outputs, 1), torch.stack(pres, 1)


def delay_backward_loop(grad_hidden: Tensor, pre: Tensor, hidden: Tensor, weight_hh: Tensor, delays: List[int],
                        dmax: int, code: int) -> Tuple[Tensor, Tensor]:
    """BPTT by hand, time-major: all (T, B, H). Returns dL/dpre (T, B, H) and dL/dhistory (Dmax, B, H)."""
    steps, hidden_size = grad_hidden.shape[0], grad_hidden.shape[2]
    # dL/dh for the history slots then every step: what reaches h_t from above, plus (added below)
    # what flows back from the steps t + d that read it
    grad_h = torch.cat([grad_hidden.new_zeros(dmax, grad_hidden.shape[1], hidden_size), grad_hidden], 0)
    grad_pre = torch.empty_like(pre)
    for t in range(steps - 1, -1, -1):  # every reader t + d of h_t comes before t here
        g = grad_h[dmax + t] * activation_slope(pre[t], hidden[t], code)  # (B, H)
        grad_pre[t] = g
        grad_delayed = g.mm(weight_hh)  # (B, nD*H)
        for k in range(len(delays)):
            grad_h[dmax + t - delays[k]].add_(grad_delayed[:, k * hidden_size:(k + 1) * hidden_size])
    return grad_pre, grad_h[:dmax]


class DelayRecurrence(torch.autograd.Function):
    """The recurrence with a hand-written backward.

    Autograd through the loop computes dL/dU as T small products (H, B) x (B, nD*H) and adds them up;
    here it is one product per delay over all steps, (H, T*B) x (T*B, H), as fused RNN kernels do,
    and the loop runs without autograd's bookkeeping: ~1.5x the training speed with four delays (H = 256).
    """

    @staticmethod
    def forward(ctx, gi, history, weight_hh, delays, code, compiled):
        dtype = gi.dtype  # bf16 under autocast: everything runs in the dtype of the input projections
        weight, past = weight_hh.to(dtype), history.to(dtype)
        hidden, pre = run_loop(delay_loop, compiled, gi, list(past.unbind(1)), weight, delays, code)
        ctx.save_for_backward(hidden, pre, past, weight)
        ctx.delays, ctx.code, ctx.compiled = delays, code, compiled
        ctx.dtypes = (history.dtype, weight_hh.dtype)
        return hidden  # (B, T, H)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_hidden):
        hidden, pre, past, weight = ctx.saved_tensors
        dmax, steps, batch, size = past.shape[1], hidden.shape[1], hidden.shape[0], hidden.shape[2]
        time_major = [t.transpose(0, 1).contiguous() for t in (grad_hidden.to(pre.dtype), pre, hidden)]
        grad_pre, grad_past = run_loop(delay_backward_loop, ctx.compiled, *time_major, weight, ctx.delays, dmax,
                                       ctx.code)  # (T, B, H), (Dmax, B, H)
        padded = torch.cat([past.transpose(0, 1), time_major[2]], 0)  # (Dmax + T, B, H): h_{-Dmax} ... h_{T-1}
        flat = grad_pre.reshape(steps * batch, size)  # (T*B, H)
        grad_weight = torch.cat([flat.t().mm(padded[dmax - d:dmax - d + steps].reshape(steps * batch, size))
                                 for d in ctx.delays], 1)  # [dL/dU_d1 | dL/dU_d2 | ...] (H, nD*H)
        return (grad_pre.transpose(0, 1), grad_past.transpose(0, 1).to(ctx.dtypes[0]),
                grad_weight.to(ctx.dtypes[1]), None, None, None)


class DelayLayer(nn.Module):
    """One layer: weight_ih (H, I), weight_hh (H, nD*H) = [U_d1 | U_d2 | ...] in ascending d, two biases."""

    def __init__(self, input_size: int, options: DelayOptions, delays: list[int]):
        super().__init__()
        hidden, self.delays = options.hidden, delays
        self.code = ACTIVATION_CODES[options.activation]
        self.weight_ih = nn.Parameter(torch.empty(hidden, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden, len(delays) * hidden))
        self.bias_ih = nn.Parameter(torch.empty(hidden))
        self.bias_hh = nn.Parameter(torch.empty(hidden))
        bound = 1.0 / math.sqrt(hidden)  # torch's RNN initialisation...
        for p in (self.weight_ih, self.bias_ih, self.bias_hh):
            nn.init.uniform_(p, -bound, bound)
        # ...with the fan-in of all nD arcs: h_{t-d} of similar size then give the pre-activation
        # the variance one Elman arc gives, instead of nD times it (saturating tanh from the start)
        nn.init.uniform_(self.weight_hh, -bound / math.sqrt(len(delays)), bound / math.sqrt(len(delays)))
        if options.init != "default":
            for block in self.blocks():
                init_recurrent_block(block.data, options.init, options.init_radius, options.init_gain)
                # divided by nD, the blocks sum to the scheme's matrix: what a constant state sees
                # (identity: a constant state persists, as in an IRNN)
                block.data.div_(len(delays))

    def blocks(self) -> list[Tensor]:
        return list(self.weight_hh.chunk(len(self.delays), dim=1))  # each U_d (H, H)

    def forward(self, inputs: Tensor, history: Tensor, compiled: bool, manual_backward: bool):
        """inputs (B, T, I), history (B, Dmax, H) -> h (B, T, H), new history (B, Dmax, H)."""
        gi = F.linear(inputs, self.weight_ih, self.bias_ih + self.bias_hh)  # (B, T, H): all steps at once
        if manual_backward:
            hidden = DelayRecurrence.apply(gi, history, self.weight_hh, self.delays, self.code, compiled)
        else:  # autograd through the loop: the reference the hand-written backward is tested against
            hidden = run_loop(delay_loop, compiled, gi, list(history.unbind(1)), self.weight_hh, self.delays,
                              self.code)[0]
        window = torch.cat([history, hidden], 1)  # (B, Dmax + T, H)
        return hidden, window[:, window.shape[1] - history.shape[1]:]  # the last Dmax states, oldest first


@ARCHS.register("delay", "RNN with arcs from several steps back, h_t = f(W x + sum_d U_d h_{t-d} + b)")
class DelayModel(StackedRecurrentModel):
    Options = DelayOptions

    def __init__(self, options: DelayOptions, spec: TaskSpec):
        super().__init__(options, spec)
        self.delays = options.resolved_delays()
        self.stack = nn.ModuleList(
            DelayLayer(self.input_size if layer == 0 else options.hidden, options, self.delays)
            for layer in range(options.layers))
        self.manual_backward = True  # False: autograd through the loop (tests compare the two)

    def recurrence(self, inputs: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        finals = []
        for layer, module in enumerate(self.stack):
            if layer > 0:
                inputs = self.drop(inputs)  # dropout between layers
            inputs, last = module(inputs, state[layer], self.compiled, self.manual_backward)  # (B, T, H), (B, D, H)
            finals.append(last)
        return inputs, torch.stack(finals)  # (B, T, H), (L, B, Dmax, H)

    def init_state(self, batch: int, device=None) -> Tensor:
        shape = (self.options.layers, batch, max(self.delays), self.options.hidden)  # (L, B, Dmax, H)
        return torch.zeros(shape, device=device, dtype=self.head.weight.dtype)

    def recurrent_matrices(self) -> dict[str, Tensor]:
        return {f"layer{i}.d{d}": block for i, module in enumerate(self.stack)
                for d, block in zip(self.delays, module.blocks())}
