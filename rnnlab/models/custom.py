"""Custom recurrent cells as architectures: the real models, not analysis copies.

CustomRecurrentModel has the shape of the fused models (input layer, a stack
of `layers` cells with dropout between, a linear read-out at every step) with
cells from cells.py. Speed, on the CPU: the input projections of all time
steps are one matmul per layer, (B, T, I) -> (B, T, G*H), before the loop,
the loop walks `gi.unbind(1)` (T slices gi[:, t] would each zero-fill a
(B, T, G*H) gradient in backward: quadratic in T), and the loop itself is a
TorchScript function, run without graph optimisation (see forward). When
scripting fails the same loop runs eagerly. torch.compile works here (gcc)
and ran the loop ~20% faster than eager, but took 20-85 s to compile per
input shape (train windows, eval windows, sampling at T = 1): more than a
two-minute run saves. benchmarks/custom_cells_speed.py measures it all.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import List, Tuple

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..options import opt
from . import ARCHS
from .base import RecurrentOptions, SequenceModel, State, TaskSpec, input_layer
from .cells import (
    ACTIVATION_CODES, CustomCell, ElmanCell, GatedResidualCell, GRUCell, LeakyCell, LSTMCell, MGUCell,
    PeepholeLSTMCell, ResidualCell, lstm_step,
)


def make_loop(step_fn):
    """The time loop around one step function, TorchScript-compatible (step_fn resolves from the closure)."""

    def loop(gi: Tensor, state: List[Tensor], params: List[Tensor], mode: int) -> Tuple[Tensor, List[Tensor]]:
        outputs: List[Tensor] = []
        # unbind, not gi[:, t]: the backward of T slices would zero-fill a (B, T, G*H) tensor per step
        for gi_t in gi.unbind(1):
            h, state, _ = step_fn(gi_t, state, params, mode)
            outputs.append(h)
        return torch.stack(outputs, 1), state  # (B, T, H)

    return loop


_LOOPS: dict = {}  # step_fn -> (eager loop, scripted loop or None)


def loops_for(step_fn):
    if step_fn not in _LOOPS:
        eager = make_loop(step_fn)
        try:
            scripted = torch.jit.script(make_loop(step_fn))
        except Exception as error:  # noqa: BLE001 - any scripting failure means: run eagerly
            warnings.warn(f"TorchScript unavailable for {step_fn.__name__}, running eagerly: {error}")
            scripted = None
        _LOOPS[step_fn] = (eager, scripted)
    return _LOOPS[step_fn]


def compile_path(step_fn=None) -> str:
    """'torchscript' or 'eager': what the time loop of `step_fn` (default: LSTM) runs on."""
    return "torchscript" if loops_for(step_fn or lstm_step)[1] is not None else "eager"


class CustomRecurrentModel(SequenceModel):
    cell_class: type[CustomCell]

    def __init__(self, options: RecurrentOptions, spec: TaskSpec):
        super().__init__()
        self.options, self.spec = options, spec
        self.embed, input_size = input_layer(options, spec)
        self.cells = nn.ModuleList(
            self.cell_class(input_size if layer == 0 else options.hidden, options.hidden, options)
            for layer in range(options.layers)
        )
        self.drop = nn.Dropout(options.dropout)
        self.head = nn.Linear(options.hidden, spec.output_size)
        if getattr(options, "init", "default") != "default":  # the recurrent-init keys every arch shares
            from .init import init_recurrent
            for cell in self.cells:
                init_recurrent(cell.weight_hh, max(1, len(cell.gates)), options.init, options.init_radius,
                               options.init_gain)
        self.compiled = True  # False forces the eager loop (tests compare the two)

    @property
    def paired(self) -> bool:
        return self.cell_class.paired

    def forward(self, x: Tensor, state: State | None = None):
        inputs = self.drop(self.embed(x) if self.embed is not None else x)  # (B, T, E)
        if state is None:
            state = self.init_state(inputs.shape[0], inputs.device)
        parts = state if self.paired else (state,)  # each (L, B, H)
        finals = []
        for layer, cell in enumerate(self.cells):
            eager, scripted = loops_for(cell.step_fn)
            loop = scripted if self.compiled and scripted is not None else eager
            gi = cell.project_inputs(inputs)  # (B, T, G*H): every step's input half in one matmul
            # No graph optimisation: TorchScript's own autodiff (DifferentiableGraph) was slower here and
            # mis-shaped gradients once one loop had run with several requires_grad patterns.
            with torch.jit.optimized_execution(False):
                hidden, final = loop(gi, [p[layer] for p in parts], cell.step_params(), cell.mode)  # (B, T, H)
            finals.append(final)
            inputs = self.drop(hidden)  # dropout between layers and before the head
        new = tuple(torch.stack([f[k] for f in finals]) for k in range(len(parts)))  # each (L, B, H)
        return self.head(inputs), (new if self.paired else new[0])  # (B, T, O)

    def init_state(self, batch: int, device=None) -> State:
        shape = (self.options.layers, batch, self.options.hidden)  # (L, B, H)
        zeros = torch.zeros(shape, device=device, dtype=self.head.weight.dtype)
        return (zeros, zeros.clone()) if self.paired else zeros

    def recurrent_matrices(self) -> dict[str, Tensor]:
        return {f"layer{i}": cell.weight_hh for i, cell in enumerate(self.cells)}

    def recurrent_blocks(self) -> dict[str, Tensor]:
        """Square (H, H) blocks per layer and gate, as the spectra probe names them."""
        return {
            f"layer{i}" + (f".{gate}" if gate else ""): block
            for i, cell in enumerate(self.cells) for gate, block in cell.recurrent_blocks().items()
        }


ARCH = "architecture (`rnnlab list archs`)"
ACTIVATION = opt("tanh", "activation f of the recurrence", choices=list(ACTIVATION_CODES))


@dataclass
class ElmanActOptions(RecurrentOptions):
    arch: str = opt("elman_act", ARCH)
    activation: str = ACTIVATION


@ARCHS.register("elman_act", "Elman RNN with a choice of activation, custom cell (TorchScript loop)")
class ElmanActModel(CustomRecurrentModel):
    Options, cell_class = ElmanActOptions, ElmanCell


@dataclass
class LSTMCellOptions(RecurrentOptions):
    arch: str = opt("lstm_cell", ARCH)
    forget_bias: float = opt(1.0, "initial forget-gate bias (1 keeps memory early in training)")


@ARCHS.register("lstm_cell", "LSTM as a custom cell: torch's equations and layout, to check the machinery")
class LSTMCellModel(CustomRecurrentModel):
    Options, cell_class = LSTMCellOptions, LSTMCell


@dataclass
class GRUCellOptions(RecurrentOptions):
    arch: str = opt("gru_cell", ARCH)


@ARCHS.register("gru_cell", "GRU as a custom cell: torch's equations and layout, to check the machinery")
class GRUCellModel(CustomRecurrentModel):
    Options, cell_class = GRUCellOptions, GRUCell


@dataclass
class PeepholeOptions(RecurrentOptions):
    arch: str = opt("lstm_peephole", ARCH)
    forget_bias: float = opt(1.0, "initial forget-gate bias (1 keeps memory early in training)")
    coupled: bool = opt(False, "tie the input gate to 1 - forget gate (CIFG)")


@ARCHS.register("lstm_peephole", "LSTM with diagonal peepholes from the cell (Gers & Schmidhuber)")
class PeepholeLSTMModel(CustomRecurrentModel):
    Options, cell_class = PeepholeOptions, PeepholeLSTMCell


@dataclass
class MGUOptions(RecurrentOptions):
    arch: str = opt("mgu", ARCH)


@ARCHS.register("mgu", "Minimal gated unit: h_t = u tanh(W x + U h + b) + (1 - u) h_{t-1}")
class MGUModel(CustomRecurrentModel):
    Options, cell_class = MGUOptions, MGUCell


@dataclass
class LeakyOptions(RecurrentOptions):
    arch: str = opt("leaky", ARCH)
    activation: str = ACTIVATION
    tau: float = opt(4.0, "time constant in steps; a = 1 - 1/tau is the share of h_{t-1} kept", min=1)
    tau_mode: str = opt("fixed", "fixed taus, one learned tau, or a learned tau per unit",
                        choices=["fixed", "learned", "per_unit"])
    timescales: list[float] = opt([], "taus to spread the units over evenly (multi-timescale); empty = all use tau", min=1)

    def check(self, section: str) -> None:
        if self.timescales and self.tau_mode == "learned":
            raise ConfigError(f"{section}.tau_mode", self.tau_mode, "one learned tau cannot hold several timescales",
                              "fixed or per_unit with timescales")


@ARCHS.register("leaky", "Leaky-integrator RNN, h_t = a h_{t-1} + (1 - a) f(W x + U h + b), a = 1 - 1/tau")
class LeakyModel(CustomRecurrentModel):
    Options, cell_class = LeakyOptions, LeakyCell


@dataclass
class ResidualOptions(RecurrentOptions):
    arch: str = opt("residual", ARCH)
    activation: str = ACTIVATION


@ARCHS.register("residual", "Residual RNN, h_t = h_{t-1} + f(W x + U h + b)")
class ResidualModel(CustomRecurrentModel):
    Options, cell_class = ResidualOptions, ResidualCell


@dataclass
class GatedResidualOptions(RecurrentOptions):
    arch: str = opt("gated_residual", ARCH)
    activation: str = ACTIVATION


@ARCHS.register("gated_residual", "Gated residual RNN, h_t = l h_{t-1} + (1 - l) f(W x + U h + b), l a sigmoid gate")
class GatedResidualModel(CustomRecurrentModel):
    Options, cell_class = GatedResidualOptions, GatedResidualCell
