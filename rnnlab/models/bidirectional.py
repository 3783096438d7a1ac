"""Bidirectional RNNs (Schuster & Paliwal 1997) of any cell.

At every step the output reads a forward pass (x_1 .. x_t) and a backward pass (x_T .. x_t), so it
sees the whole sequence: right for labelling and classifying given sequences, wrong wherever a later
input is the answer (language models), which is why a causal task is refused when the model is built.
Layers are stacked as in torch: layer l + 1 reads both directions of layer l, (B, T, 2H).

Each direction of each layer is one one-way recurrence: torch's fused kernel for Elman (tanh or relu),
LSTM and GRU, the custom cells' TorchScript loop (custom.py) for every other cell. The backward one
runs on the time-reversed sequence. Padding: on a task whose TaskSpec names a `pad` token (filling each
sequence after its end), each sequence is reversed in place, its padding kept at the end, so the
backward pass starts at the sequence's own last step and padding changes nothing at the real steps;
padded steps output zeros before the read-out. (torch's bidirectional kernel on packed sequences does
the same, and a test holds the two equal, but packing ran 2-3x slower on the CPU than this.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..options import opt
from .registry import ARCHS
from .base import SequenceModel, TaskSpec, input_layer
from .cell_base import ARCH
from .cells import CELLS
from .custom import run_loop
from .deep import CellChoiceOptions
from .init import init_recurrent

FUSED = {"elman": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def fusable(options: CellChoiceOptions) -> bool:
    return options.cell in ("lstm", "gru") or (options.cell == "elman" and options.activation in ("tanh", "relu"))


@dataclass
class BidirectionalOptions(CellChoiceOptions):
    arch: str = opt("birnn", ARCH)


@ARCHS.register("birnn", "Bidirectional RNN of any cell: a forward and a backward pass, outputs concatenated "
                         "(non-causal tasks only)")
class BidirectionalModel(SequenceModel):
    Options = BidirectionalOptions
    # Each forward reads whole sequences both ways: there is no state to carry into the next chunk,
    # so truncated BPTT (train.algorithm = "tbptt") cannot train it.
    carries_state = False

    def __init__(self, options: BidirectionalOptions, spec: TaskSpec, fused: bool | None = None):
        if spec.causal:
            raise ConfigError("model.arch", options.arch, "a bidirectional model looks ahead, and on a causal "
                              "task the input at t + 1 is the target at t: it would read the answers",
                              "a non-causal task, or a one-way arch (e.g. deep with the same cell)")
        super().__init__()
        self.options, self.spec = options, spec
        self.embed, input_size = input_layer(options, spec)
        self.pad = spec.pad  # token id after each sequence's end, if the task pads
        self.fused = fusable(options) if fused is None else fused
        make = self.fused_layer if self.fused else self.cell_layer
        sizes = [input_size] + [2 * options.hidden] * (options.layers - 1)
        self.forward_layers = nn.ModuleList(make(size) for size in sizes)
        self.backward_layers = nn.ModuleList(make(size) for size in sizes)
        self.drop = nn.Dropout(options.dropout)
        self.head = nn.Linear(2 * options.hidden, spec.output_size)

    def fused_layer(self, size: int) -> nn.RNNBase:
        o = self.options
        kwargs = {"nonlinearity": o.activation} if o.cell == "elman" else {}
        layer = FUSED[o.cell](size, o.hidden, batch_first=True, **kwargs)
        init_recurrent(layer.weight_hh_l0, max(1, len(CELLS[o.cell].gates)), o.init, o.init_radius, o.init_gain)
        if o.cell == "lstm":
            with torch.no_grad():  # as the one-way LSTM: the two biases add up to forget_bias
                layer.bias_ih_l0[o.hidden:2 * o.hidden].fill_(o.forget_bias)
                layer.bias_hh_l0[o.hidden:2 * o.hidden].zero_()
        return layer

    def cell_layer(self, size: int):
        cell_class = CELLS[self.options.cell]
        cell = cell_class(size, self.options.hidden, cell_class.options_from(self.options))
        cell.init_recurrent(self.options)
        return cell

    def forward(self, x: Tensor, state=None):
        if state is not None:
            raise ValueError("birnn reads each sequence whole, both ways: it has no state to carry from one "
                             "chunk to the next (train it with train.algorithm = 'bptt')")
        inputs = self.drop(self.embed(x) if self.embed is not None else x)  # (B, T, E)
        order, real = self.reversal(x, inputs.device)

        def reverse(seq: Tensor) -> Tensor:  # its own inverse
            if order is None:
                return seq.flip(1)
            return seq.gather(1, order[..., None].expand(-1, -1, seq.shape[-1]))

        below = inputs
        for layer, (ahead, behind) in enumerate(zip(self.forward_layers, self.backward_layers)):
            if layer:
                below = self.drop(below)  # dropout between layers, as torch's stacked kernels do
            below = torch.cat([run_one_way(ahead, below), reverse(run_one_way(behind, reverse(below)))], -1)
            if real is not None:
                below = below * real[..., None]  # (B, T, 2H): padded steps output zeros
        return self.head(self.drop(below)), None  # (B, T, O)

    def reversal(self, x: Tensor, device) -> tuple[Tensor | None, Tensor | None]:
        """(order (B, T): t -> L_b - 1 - t inside each sequence, t in its padding; real (B, T) bool),
        or (None, None) when nothing is padded and a plain flip reverses every sequence."""
        if self.pad is None or x.dim() != 2:
            return None, None
        lengths = (x != self.pad).sum(1, keepdim=True)  # (B, 1): the pad token only ever trails
        if bool((lengths == x.shape[1]).all()):
            return None, None
        t = torch.arange(x.shape[1], device=x.device)[None]  # (1, T)
        real = t < lengths  # (B, T)
        return torch.where(real, lengths - 1 - t, t).to(device), real.to(device)

    def init_state(self, batch: int, device=None):
        return None  # nothing to carry: every forward starts both passes afresh

    def recurrent_matrices(self) -> dict[str, Tensor]:
        """Square (H, H) blocks per layer, direction and gate."""
        blocks = {}
        for direction, layers in (("forward", self.forward_layers), ("backward", self.backward_layers)):
            for number, layer in enumerate(layers):
                if self.fused:
                    gates = CELLS[self.options.cell].gates or ("",)
                    parts = dict(zip(gates, layer.weight_hh_l0.chunk(len(gates), dim=0)))  # (H, H) each
                else:
                    parts = layer.recurrent_blocks()
                for gate, block in parts.items():
                    blocks[f"layer{number}.{direction}" + (f".{gate}" if gate else "")] = block
        return blocks

    recurrent_blocks = recurrent_matrices


def run_one_way(layer, seq: Tensor) -> Tensor:
    """One direction of one layer from a zero state: (B, T, I) -> (B, T, H)."""
    if isinstance(layer, nn.RNNBase):
        return layer(seq)[0]
    zero = layer.zero_state(seq.shape[0], seq)
    state = list(zero) if layer.paired else [zero]
    return run_loop(layer, layer.project_inputs(seq), state)[0]  # (B, T, H)
