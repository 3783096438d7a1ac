"""The LSTM cells, each written once: torch's LSTM, and Gers & Schmidhuber's with peepholes.

As every cell of cells.py (which holds their table, CELLS): its update, its backward step beside it
(cell_base.HandBackward), then its class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from ..options import opt
from .base import RecurrentOptions
from .cell_base import ARCH, FORGET_BIAS, Cell, HandBackward, Knobs, sigmoid_backward, tanh_backward


def lstm_update(gi: Tensor, gh: Tensor, state: List[Tensor], params: List[Tensor],
                 knobs: Knobs) -> Tuple[Tensor, List[Tensor], List[Tensor]]:
    # torch's nn.LSTM: blocks (input, forget, cell, output), both biases added.
    i, f, g, o = (gi + gh).chunk(4, 1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * state[1] + i * g
    tc = torch.tanh(c)
    h = o * tc
    return h, [h, c], [i, f, g, o, tc]


def lstm_step(dh: Tensor, carry: List[Tensor], kept: List[Tensor], params: List[Tensor],
              knobs: Knobs) -> Tuple[List[Tensor], Optional[Tensor], List[Tensor]]:
    i, f, g, o, tc, c_prev = kept[0], kept[1], kept[2], kept[3], kept[4], kept[6]  # (B, H) each
    dc = carry[0] + tanh_backward(dh * o, tc)  # dL/dc_t: through h = o tanh(c), and from c_{t+1}
    grads = [sigmoid_backward(dc * g, i), sigmoid_backward(dc * c_prev, f), tanh_backward(dc * i, g),
             sigmoid_backward(dh * tc, o)]  # c = f c_{t-1} + i g
    return grads, None, [dc * f]


class LSTMCell(Cell):
    name, summary = "lstm", "LSTM as a custom cell: torch's equations and layout, to check the machinery"
    gates = ("input", "forget", "cell", "output")
    paired = True
    update = staticmethod(lstm_update)
    hand_backward = HandBackward(lstm_step)

    @dataclass
    class Options(RecurrentOptions):
        arch: str = opt("lstm_cell", ARCH)
        forget_bias: float = FORGET_BIAS

    def __init__(self, input_size: int, hidden: int, options: Options):
        super().__init__(input_size, hidden, options)
        with torch.no_grad():  # as the fused LSTM: the two biases add up to forget_bias
            self.bias_ih[hidden:2 * hidden].fill_(options.forget_bias)
            self.bias_hh[hidden:2 * hidden].zero_()


def peephole_update(gi: Tensor, gh: Tensor, state: List[Tensor], params: List[Tensor],
                     knobs: Knobs) -> Tuple[Tensor, List[Tensor], List[Tensor]]:
    # Gers & Schmidhuber: c_{t-1} reaches the input and forget gates, c_t the output gate. Coupled
    # (CIFG): the input gate is 1 - forget (its weight block then goes unused).
    peep = params[1]  # (3, H): diagonal peepholes for input, forget, output
    c_prev = state[1]
    i, f, g, o = (gi + gh).chunk(4, 1)
    f = torch.sigmoid(f + peep[1] * c_prev)
    i = 1.0 - f if knobs.coupled else torch.sigmoid(i + peep[0] * c_prev)
    g = torch.tanh(g)
    c = f * c_prev + i * g
    o = torch.sigmoid(o + peep[2] * c)
    tc = torch.tanh(c)
    h = o * tc
    return h, [h, c], [i, f, g, o, tc, c]


def peephole_step(dh: Tensor, carry: List[Tensor], kept: List[Tensor], params: List[Tensor],
                  knobs: Knobs) -> Tuple[List[Tensor], Optional[Tensor], List[Tensor]]:
    # The LSTM's, and: o's pre-activation reads c_t (p_o), i's and f's read c_{t-1} (p_i, p_f).
    # Coupled, i = 1 - f: the input block gets no gradient and f's scales by c_{t-1} - g.
    i, f, g, o, tc, c, c_prev = kept[0], kept[1], kept[2], kept[3], kept[4], kept[5], kept[7]  # (B, H) each
    peep = params[1]  # (3, H)
    do = sigmoid_backward(dh * tc, o)
    dc = torch.addcmul(carry[0] + tanh_backward(dh * o, tc), do, peep[2])  # dL/dc_t
    if knobs.coupled:
        di, df = torch.zeros_like(dc), sigmoid_backward(dc * (c_prev - g), f)
    else:
        di, df = sigmoid_backward(dc * g, i), sigmoid_backward(dc * c_prev, f)
    dc_prev = torch.addcmul(torch.addcmul(dc * f, di, peep[0]), df, peep[1])
    sums = [torch.addcmul(carry[1], di, c_prev), torch.addcmul(carry[2], df, c_prev),
            torch.addcmul(carry[3], do, c)] if len(carry) > 1 else [di * c_prev, df * c_prev, do * c]
    return [di, df, tanh_backward(dc * i, g), do], None, [dc_prev] + sums


def peephole_finish(sums: List[Tensor], dgh: Tensor) -> List[Tensor]:
    return [torch.stack([s.sum(0) for s in sums])]  # (3, H): dL/dp_i, dL/dp_f, dL/dp_o


class PeepholeLSTMCell(LSTMCell):
    name, summary = "lstm_peephole", "LSTM with diagonal peepholes from the cell (Gers & Schmidhuber)"
    update = staticmethod(peephole_update)
    hand_backward = HandBackward(peephole_step, peephole_finish)

    @dataclass
    class Options(RecurrentOptions):
        arch: str = opt("lstm_peephole", ARCH)
        forget_bias: float = FORGET_BIAS
        coupled: bool = opt(False, "tie the input gate to 1 - forget gate (CIFG)")

    def __init__(self, input_size: int, hidden: int, options: Options):
        super().__init__(input_size, hidden, options)
        self.peephole = nn.Parameter(torch.zeros(3, hidden))  # (3, H): zero = a plain LSTM at start

    def step_params(self) -> list[Tensor]:
        return [self.weight_hh, self.peephole]
