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

The cell equations are those of cells.py taking the recurrent half `gh` as an argument (a step
function there computes U h_{t-1} itself); a test holds the two equal for every cell. Speed as in
custom.py: the input half of every step is one matmul per layer before a TorchScript loop.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from types import SimpleNamespace
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..options import opt
from . import ARCHS
from .base import RecurrentOptions, SequenceModel, State, TaskSpec, input_layer
from .cells import (
    ACTIVATION_CODES, ElmanCell, GatedResidualCell, GRUCell, LeakyCell, LSTMCell, MGUCell, PeepholeLSTMCell,
    ResidualCell, activate,
)
from .init import init_recurrent

CELLS = {"elman": ElmanCell, "lstm": LSTMCell, "gru": GRUCell, "mgu": MGUCell, "lstm_peephole": PeepholeLSTMCell,
         "leaky": LeakyCell, "residual": ResidualCell, "gated_residual": GatedResidualCell}
CELL_CODES = {name: code for code, name in enumerate(CELLS)}  # what cell_update dispatches on
WITH_ACTIVATION = ("elman", "leaky", "residual", "gated_residual")  # the cells whose f is a choice
ARCH = "architecture (`rnnlab list archs`)"


@dataclass
class CellChoiceOptions(RecurrentOptions):
    """Keys of architectures built from any cell of cells.py (deep, birnn)."""

    cell: str = opt("lstm", "recurrent cell of every layer", choices=list(CELLS))
    activation: str = opt("tanh", "activation f (cells elman, leaky, residual, gated_residual)",
                          choices=list(ACTIVATION_CODES))
    forget_bias: float = opt(1.0, "initial forget-gate bias (cells lstm, lstm_peephole)")
    tau: float = opt(4.0, "cell leaky: fixed time constant in steps, a = 1 - 1/tau (learned taus: arch leaky)", min=1)

    def check(self, section: str) -> None:
        # A key the chosen cell ignores is a mistake worth a message, not a silent no-op.
        if self.activation != "tanh" and self.cell not in WITH_ACTIVATION:
            raise ConfigError(f"{section}.activation", self.activation, f"cell {self.cell!r} has fixed activations",
                              "tanh, or a cell among " + ", ".join(WITH_ACTIVATION))
        if self.forget_bias != 1.0 and self.cell not in ("lstm", "lstm_peephole"):
            raise ConfigError(f"{section}.forget_bias", self.forget_bias, f"cell {self.cell!r} has no forget gate",
                              "1.0, or cell lstm or lstm_peephole")
        if self.tau != 4.0 and self.cell != "leaky":
            raise ConfigError(f"{section}.tau", self.tau, f"cell {self.cell!r} has no time constant",
                              "4.0, or cell leaky")


def cell_settings(options: CellChoiceOptions) -> SimpleNamespace:
    """What the cell classes read from their own archs' options (fixed taus, uncoupled peepholes)."""
    return SimpleNamespace(activation=options.activation, forget_bias=options.forget_bias, tau=options.tau,
                           tau_mode="fixed", timescales=[], coupled=False)


def init_cell(cell, options: RecurrentOptions) -> None:
    if options.init != "default":
        init_recurrent(cell.weight_hh, max(1, len(cell.gates)), options.init, options.init_radius, options.init_gain)


def cell_update(kind: int, gi: Tensor, gh: Tensor, state: List[Tensor], params: List[Tensor],
                mode: int) -> List[Tensor]:
    """The new state [h] or [h, c] of cell `kind` (CELL_CODES) from its input half gi (B, G*H), biases
    folded in as project_inputs makes them, and its recurrent half gh (B, G*H); params as step_params."""
    h = state[0]  # (B, H)
    if kind == 0:  # elman
        return [activate(gi + gh, mode)]
    if kind == 1 or kind == 4:  # lstm, lstm_peephole (mode 0: uncoupled)
        i, f, g, o = (gi + gh).chunk(4, 1)
        if kind == 4:
            peep = params[1]  # (3, H)
            i, f = i + peep[0] * state[1], f + peep[1] * state[1]
        i, f, g = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g)
        c = f * state[1] + i * g
        if kind == 4:
            o = o + params[1][2] * c
        return [torch.sigmoid(o) * torch.tanh(c), c]
    if kind == 2:  # gru: b_hh (params[1]) sits in the recurrent half, which the reset gate scales
        ri, zi, ni = gi.chunk(3, 1)
        rh, zh, nh = (gh + params[1]).chunk(3, 1)
        r, z = torch.sigmoid(ri + rh), torch.sigmoid(zi + zh)
        return [(1.0 - z) * torch.tanh(ni + r * nh) + z * h]
    if kind == 3:  # mgu
        gu, gn = (gi + gh).chunk(2, 1)
        u = torch.sigmoid(gu)
        return [u * torch.tanh(gn) + (1.0 - u) * h]
    if kind == 5:  # leaky: params[1] is the retention a (H,)
        return [params[1] * h + (1.0 - params[1]) * activate(gi + gh, mode)]
    if kind == 6:  # residual
        return [h + activate(gi + gh, mode)]
    gl, gn = (gi + gh).chunk(2, 1)  # gated_residual
    keep = torch.sigmoid(gl)
    return [keep * h + (1.0 - keep) * activate(gn, mode)]


def deep_loop(gi: Tensor, state: List[Tensor], params: List[Tensor], transition: List[Tensor],
              shortcut: List[Tensor], kind: int, mode: int) -> Tuple[Tensor, List[Tensor]]:
    """One layer over time. gi (B, T, G*H); transition [V_1, c_1, V_2, c_2, ...]; shortcut [S] or []."""
    outputs: List[Tensor] = []
    for gi_t in gi.unbind(1):  # unbind, not gi[:, t]: see custom.py
        z = state[0]  # (B, H)
        for k in range(len(transition) // 2):
            z = torch.tanh(F.linear(z, transition[2 * k], transition[2 * k + 1]))  # (B, H)
        gh = F.linear(z, params[0])  # (B, G*H)
        if len(shortcut) > 0:
            gh = gh + F.linear(state[0], shortcut[0])
        state = cell_update(kind, gi_t, gh, state, params, mode)
        outputs.append(state[0])
    return torch.stack(outputs, 1), state  # (B, T, H)


@functools.cache
def scripted_loop():
    """deep_loop through TorchScript, or None; scripted on first use, not when rnnlab is imported."""
    try:
        return torch.jit.script(deep_loop)
    except Exception as error:  # noqa: BLE001 - any scripting failure means: run eagerly
        warnings.warn(f"TorchScript unavailable for the deep RNN loop, running eagerly: {error}")
        return None


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
        settings = cell_settings(options)
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
            init_cell(cell, options)
            if options.init != "default":  # every square matrix on the recurrent path gets the scheme
                for linear in self.transitions[layer]:
                    init_recurrent(linear.weight, 1, options.init, options.init_radius, options.init_gain)
                if options.transition_shortcut:
                    init_recurrent(self.shortcuts[layer], blocks, options.init, options.init_radius,
                                   options.init_gain)
        self.kind = CELL_CODES[options.cell]
        self.paired = cell_class.paired
        self.compiled = True  # False forces the eager loop (tests compare the two)

    def forward(self, x: Tensor, state: State | None = None):
        inputs = self.drop(self.embed(x) if self.embed is not None else x)  # (B, T, E)
        if state is None:
            state = self.init_state(inputs.shape[0], inputs.device)
        parts = state if self.paired else (state,)  # each (L, B, H)
        scripted = scripted_loop() if self.compiled else None
        loop = scripted if scripted is not None else deep_loop
        below, finals = inputs, []
        for layer, cell in enumerate(self.stack):
            reads = torch.cat([inputs, below], -1) if layer and self.options.input_skip else below  # (B, T, E+H)
            gi = cell.project_inputs(reads)  # (B, T, G*H): every step's input half in one matmul
            transition = [p for linear in self.transitions[layer] for p in (linear.weight, linear.bias)]
            shortcut = [self.shortcuts[layer]] if self.options.transition_shortcut else []
            with torch.jit.optimized_execution(False):  # see custom.py: autodiff graphs were slower
                hidden, final = loop(gi, [p[layer] for p in parts], cell.step_params(), transition, shortcut,
                                     self.kind, cell.mode)  # (B, T, H)
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
