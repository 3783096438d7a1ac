"""Elman, LSTM and GRU on torch's fused kernels (cuDNN on GPU).

The three share one body: an input layer (embedding for tokens), the fused
multi-layer recurrence, dropout, and a linear read-out applied at every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..options import opt
from .registry import ARCHS
from .base import RecurrentOptions, SequenceModel, State, TaskSpec, input_layer
from .init import init_recurrent


class FusedRecurrentModel(SequenceModel):
    rnn_class: type[nn.RNNBase]

    def __init__(self, options: RecurrentOptions, spec: TaskSpec):
        super().__init__()
        self.options, self.spec = options, spec
        self.embed, input_size = input_layer(options, spec)
        self.rnn = self.rnn_class(
            input_size, options.hidden, num_layers=options.layers, batch_first=True,
            dropout=options.dropout if options.layers > 1 else 0.0, **self.rnn_kwargs(options),
        )
        self.drop = nn.Dropout(options.dropout)
        self.head = nn.Linear(options.hidden, spec.output_size)
        gates = getattr(self.rnn, "weight_hh_l0").shape[0] // options.hidden  # 1, 3 (GRU) or 4 (LSTM)
        for layer in range(options.layers):
            init_recurrent(getattr(self.rnn, f"weight_hh_l{layer}"), gates, options.init,
                           options.init_radius, options.init_gain)

    def rnn_kwargs(self, options) -> dict:
        return {}

    def forward(self, x: torch.Tensor, state: State | None = None):
        inputs = self.embed(x) if self.embed is not None else x  # (B, T, E)
        hidden, state = self.rnn(self.drop(inputs), state)  # (B, T, H)
        return self.head(self.drop(hidden)), state  # (B, T, O)

    def init_state(self, batch: int, device=None) -> State:
        shape = (self.options.layers, batch, self.options.hidden)  # (L, B, H)
        return torch.zeros(shape, device=device)

    def recurrent_matrices(self) -> dict[str, torch.Tensor]:
        return {f"layer{i}": getattr(self.rnn, f"weight_hh_l{i}") for i in range(self.options.layers)}


@dataclass
class ElmanOptions(RecurrentOptions):
    arch: str = opt("elman", "architecture (`rnnlab list archs`)")
    nonlinearity: str = opt("tanh", "activation of the recurrence", choices=["tanh", "relu"])


@ARCHS.register("elman", "Elman RNN, h_t = f(W x_t + U h_{t-1} + b), fused kernel")
class ElmanModel(FusedRecurrentModel):
    Options = ElmanOptions
    rnn_class = nn.RNN

    def rnn_kwargs(self, options) -> dict:
        return {"nonlinearity": options.nonlinearity}


@dataclass
class LSTMOptions(RecurrentOptions):
    arch: str = opt("lstm", "architecture (`rnnlab list archs`)")
    forget_bias: float = opt(1.0, "initial forget-gate bias (1 keeps memory early in training)")


@ARCHS.register("lstm", "Long short-term memory (Hochreiter & Schmidhuber), fused kernel")
class LSTMModel(FusedRecurrentModel):
    Options = LSTMOptions
    rnn_class = nn.LSTM

    def __init__(self, options: LSTMOptions, spec: TaskSpec):
        super().__init__(options, spec)
        hidden = options.hidden
        with torch.no_grad():
            for layer in range(options.layers):
                # torch orders gate blocks (input, forget, cell, output); two biases add up.
                getattr(self.rnn, f"bias_ih_l{layer}")[hidden:2 * hidden].fill_(options.forget_bias)
                getattr(self.rnn, f"bias_hh_l{layer}")[hidden:2 * hidden].zero_()

    def init_state(self, batch: int, device=None) -> State:
        zeros = super().init_state(batch, device)
        return (zeros, zeros.clone())  # (h, c), each (L, B, H)


@dataclass
class GRUOptions(RecurrentOptions):
    arch: str = opt("gru", "architecture (`rnnlab list archs`)")


@ARCHS.register("gru", "Gated recurrent unit (Cho et al. 2014), fused kernel")
class GRUModel(FusedRecurrentModel):
    Options = GRUOptions
    rnn_class = nn.GRU
