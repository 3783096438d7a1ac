"""Deep RNNs (Pascanu, Gulcehre, Cho & Bengio 2014, "How to construct deep recurrent neural networks").

A stack of `layers` recurrent layers of any custom cell (cells.py), plus the paper's other places
to add depth, each off by default, so that `deep` with defaults is a plain stacked RNN:

  deep transition (DT-RNN, Sec. 3.2.1, Fig. 2b): `transition_depth` = d > 1 puts d - 1 tanh layers
      between h_{t-1} and the cell's recurrent input. The paper writes the transition as
          h_t = phi_h(W_L^T phi_{L-1}(W_{L-1}^T ... phi_1(W_1^T h_{t-1} + U^T x_t)))
      with x_t entering at the bottom. Here x_t enters the cell itself, beside the transformed state,
      so every cell keeps its gates and its carries (LSTM c, the h_{t-1} terms of GRU, MGU, leaky,
      residual), which read h_{t-1} itself:
          z^0 = h_{t-1},   z^k = tanh(V_k z^{k-1} + c_k)   for k = 1 .. d-1      (B, H) each
          a_t = W x_t + b + U z^{d-1}                                            (B, G*H)
      and h_t is the cell's own update from a_t (GRU: the reset gate scales U z^{d-1} + b_hh).
  DT(S)-RNN (Fig. 2b*: "shortcut connections ... skipping the intermediate layers"):
      `transition_shortcut` adds a second recurrent matrix S (G*H, H) on h_{t-1} itself,
          a_t = W x_t + b + U z^{d-1} + S h_{t-1},
      so a gradient going back in time has a one-matrix path as in a shallow RNN.
  deep output (DO-RNN, Fig. 2c): `output_depth` = d > 1: y_t = V_o tanh(V_{d-1} ... tanh(V_1 h^L_t + c_1)).
  input skip (Graves 2013): `input_skip`: every layer above the first reads [x_t, h^{l-1}_t].

Each cell runs its own two halves (cell_base.py): the transition only changes what its recurrent
half reads (z^{d-1} for h_{t-1}) and the shortcut adds to what it returns. Speed as in custom.py:
the input half of every step is one matmul per layer before a TorchScript loop, one per cell.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..options import opt
from .registry import ARCHS
from .base import RecurrentOptions, SequenceModel, State, TaskSpec, input_layer
from .cell_base import ACTIVATION_CODES, ARCH, Knobs
from .cells import CELLS, LSTMCell
from .init import init_recurrent


def cells_reading(key: str) -> list[str]:
    """The cells whose own arch declares `key`: those it changes."""
    return [name for name, cell in CELLS.items() if key in cell.reads()]


@dataclass
class CellChoiceOptions(RecurrentOptions):
    """Keys of architectures built from any cell of cells.py (deep, birnn)."""

    cell: str = opt("lstm", "recurrent cell of every layer", choices=list(CELLS))
    activation: str = opt("tanh", f"activation f (cells {', '.join(cells_reading('activation'))})",
                          choices=list(ACTIVATION_CODES))
    forget_bias: float = opt(1.0, f"initial forget-gate bias (cells {', '.join(cells_reading('forget_bias'))})")
    tau: float = opt(4.0, "cell leaky: fixed time constant in steps, a = 1 - 1/tau (learned taus: arch leaky)", min=1)

    def check(self, section: str) -> None:
        # A key the chosen cell ignores is a mistake worth a message, not a silent no-op.
        reads = CELLS[self.cell].reads()
        if self.activation != "tanh" and "activation" not in reads:
            raise ConfigError(f"{section}.activation", self.activation, f"cell {self.cell!r} has fixed activations",
                              "tanh, or a cell among " + ", ".join(cells_reading("activation")))
        if self.forget_bias != 1.0 and "forget_bias" not in reads:
            raise ConfigError(f"{section}.forget_bias", self.forget_bias, f"cell {self.cell!r} has no forget gate",
                              "1.0, or cell " + " or ".join(cells_reading("forget_bias")))
        if self.tau != 4.0 and "tau" not in reads:
            raise ConfigError(f"{section}.tau", self.tau, f"cell {self.cell!r} has no time constant",
                              "4.0, or cell " + " or ".join(cells_reading("tau")))


def make_deep_loop(recurrent, update):
    """One layer over time around one cell's two halves (both from the closure, TorchScript-compatible).
    gi (B, T, G*H); transition [V_1, c_1, V_2, c_2, ...]; shortcut [S] or []."""

    def deep_loop(gi: Tensor, state: List[Tensor], params: List[Tensor], transition: List[Tensor],
                  shortcut: List[Tensor], knobs: Knobs) -> Tuple[Tensor, List[Tensor]]:
        outputs: List[Tensor] = []
        for gi_t in gi.unbind(1):  # unbind, not gi[:, t]: see custom.py
            z = state[0]  # (B, H)
            for k in range(len(transition) // 2):
                z = torch.tanh(F.linear(z, transition[2 * k], transition[2 * k + 1]))  # (B, H)
            gh = recurrent(z, params)  # (B, G*H)
            if len(shortcut) > 0:
                gh = gh + F.linear(state[0], shortcut[0])
            h, state, _ = update(gi_t, gh, state, params, knobs)
            outputs.append(h)
        return torch.stack(outputs, 1), state  # (B, T, H)

    return deep_loop


@functools.cache
def deep_loops(recurrent, update):
    """(eager, scripted or None); scripted on first use, not when rnnlab is imported."""
    eager = make_deep_loop(recurrent, update)
    try:
        return eager, torch.jit.script(make_deep_loop(recurrent, update))
    except Exception as error:  # noqa: BLE001 - any scripting failure means: run eagerly
        warnings.warn(f"TorchScript unavailable for the deep RNN loop, running eagerly: {error}")
        return eager, None


def scripted_loop(cell_class=LSTMCell):
    """The scripted deep loop of a cell class (default: LSTM), or None when TorchScript fails."""
    return deep_loops(cell_class.recurrent, cell_class.update)[1]


@dataclass
class DeepOptions(CellChoiceOptions):
    arch: str = opt("deep", ARCH)
    transition_depth: int = opt(1, "layers per recurrent transition: d - 1 tanh layers between h_{t-1} and the "
                                   "cell (DT-RNN); 1 = a plain cell", min=1, max=8)
    transition_shortcut: bool = opt(False, "DT(S): h_{t-1} also reaches the cell through its own matrix, past "
                                           "the transition's intermediate layers")
    output_depth: int = opt(1, "layers from the top h_t to y_t: d - 1 tanh layers before the read-out "
                               "(DO-RNN); 1 = linear", min=1, max=8)
    input_skip: bool = opt(False, "every layer above the first also reads the input x_t")

    def check(self, section: str) -> None:
        super().check(section)
        if self.transition_shortcut and self.transition_depth == 1:
            raise ConfigError(f"{section}.transition_shortcut", True, "a shortcut skips the transition's "
                              "intermediate layers, and transition_depth = 1 has none", "transition_depth >= 2")


@ARCHS.register("deep", "Deep RNN (Pascanu et al. 2014) of any cell: stacked, deep transition (+shortcut), "
                        "deep output, input skips")
class DeepRNNModel(SequenceModel):
    Options = DeepOptions

    def __init__(self, options: DeepOptions, spec: TaskSpec):
        super().__init__()
        self.options, self.spec = options, spec
        self.embed, input_size = input_layer(options, spec)
        hidden, cell_class = options.hidden, CELLS[options.cell]
        above = hidden + (input_size if options.input_skip else 0)  # what layers 1.. read
        settings = cell_class.options_from(options)  # the cell's keys from ours: fixed taus, uncoupled
        # not `cells`: the probes would take this for a plain custom stack (models/unrolled.py)
        self.stack = nn.ModuleList(cell_class(input_size if layer == 0 else above, hidden, settings)
                                   for layer in range(options.layers))
        self.transitions = nn.ModuleList(
            nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(options.transition_depth - 1))
            for _ in range(options.layers))
        blocks = max(1, len(cell_class.gates))
        bound = hidden ** -0.5  # torch's RNN initialisation, as the cells' own U
        self.shortcuts = nn.ParameterList(
            nn.Parameter(torch.empty(blocks * hidden, hidden).uniform_(-bound, bound))
            for _ in range(options.layers if options.transition_shortcut else 0))
        self.drop = nn.Dropout(options.dropout)
        self.output_layers = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(options.output_depth - 1))
        self.head = nn.Linear(hidden, spec.output_size)
        for layer, cell in enumerate(self.stack):
            cell.init_recurrent(options)
            if options.init != "default":  # every square matrix on the recurrent path gets the scheme
                for linear in self.transitions[layer]:
                    init_recurrent(linear.weight, 1, options.init, options.init_radius, options.init_gain)
                if options.transition_shortcut:
                    init_recurrent(self.shortcuts[layer], blocks, options.init, options.init_radius,
                                   options.init_gain)
        self.paired = cell_class.paired
        self.compiled = True  # False forces the eager loop (tests compare the two)

    def forward(self, x: Tensor, state: State | None = None):
        inputs = self.drop(self.embed(x) if self.embed is not None else x)  # (B, T, E)
        if state is None:
            state = self.init_state(inputs.shape[0], inputs.device)
        parts = state if self.paired else (state,)  # each (L, B, H)
        below, finals = inputs, []
        for layer, cell in enumerate(self.stack):
            reads = torch.cat([inputs, below], -1) if layer and self.options.input_skip else below  # (B, T, E+H)
            gi = cell.project_inputs(reads)  # (B, T, G*H): every step's input half in one matmul
            transition = [p for linear in self.transitions[layer] for p in (linear.weight, linear.bias)]
            shortcut = [self.shortcuts[layer]] if self.options.transition_shortcut else []
            eager, scripted = deep_loops(cell.recurrent, cell.update)
            loop = scripted if self.compiled and scripted is not None else eager
            with torch.jit.optimized_execution(False):  # see custom.py: autodiff graphs were slower
                hidden, final = loop(gi, [p[layer] for p in parts], cell.step_params(), transition,
                                     shortcut, cell.knobs)  # (B, T, H)
            finals.append(final)
            below = self.drop(hidden)  # dropout between layers and before the output
        for linear in self.output_layers:
            below = torch.tanh(linear(below))  # (B, T, H)
        new = tuple(torch.stack([f[k] for f in finals]) for k in range(len(parts)))  # each (L, B, H)
        return self.head(below), (new if self.paired else new[0])  # (B, T, O)

    def init_state(self, batch: int, device=None) -> State:
        shape = (self.options.layers, batch, self.options.hidden)  # (L, B, H)
        zeros = torch.zeros(shape, device=device, dtype=self.head.weight.dtype)
        return (zeros, zeros.clone()) if self.paired else zeros

    def recurrent_matrices(self) -> dict[str, Tensor]:
        """Every square (H, H) matrix on the path h_{t-1} -> h_t: the cell's gate blocks of U, the
        transition's V_k, the shortcut's gate blocks of S."""
        blocks = {}
        for layer, cell in enumerate(self.stack):
            for gate, block in cell.recurrent_blocks().items():
                blocks[f"layer{layer}" + (f".{gate}" if gate else "")] = block
            for k, linear in enumerate(self.transitions[layer]):
                blocks[f"layer{layer}.transition{k + 1}"] = linear.weight
            if self.options.transition_shortcut:
                gates = cell.gates or ("",)
                for gate, block in zip(gates, self.shortcuts[layer].chunk(len(gates), dim=0)):
                    blocks[f"layer{layer}.shortcut" + (f".{gate}" if gate else "")] = block
        return blocks

    recurrent_blocks = recurrent_matrices
