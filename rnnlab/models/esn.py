"""Echo state network: a fixed random reservoir and a trained linear readout (Jaeger 2001).

    h_t = (1 - a) h_{t-1} + a tanh(W_in x_t + W h_{t-1} + b),   y_t = head(h_t)

W (H, H) is uniform in [-1, 1] with a share `sparsity` of its entries set to
exactly zero, then rescaled so that its spectral radius (from its eigenvalues,
in float64, at build time) is `spectral_radius`; W_in is dense, uniform in
[-input_scaling, input_scaling]; b uniform in [-bias_scaling, bias_scaling].
Tokens enter one-hot (a fixed identity embedding: W_in's columns already are a
random embedding, so a second one would add nothing). Only `head` learns:
in closed form with train.algorithm = "ridge" (rnnlab/train/ridge.py), or by
gradient descent with "bptt". The first `washout` steps of a fresh sequence
(state None), while the reservoir still forgets its zero start, are left out
of the fit: ridge skips them, and in training their outputs carry no gradient.
Evaluation still judges every position the task judges, so the default is 0:
on Mackey-Glass windows of 100 steps (300 units), washout = 10 gives a readout 3x more
accurate from step 10 on (NRMSE 0.001) but wild in the first ten steps, and
the validation NRMSE over all steps goes from 0.015 to over 0.4.

The reservoir keeps the custom cells' layout (models/custom.py): frozen
`weight_ih`, `weight_hh`, `bias` in `cells[0]`, the leaky step of cells.py
(retention 1 - a) run by the same TorchScript loop, and the probe interface
(`step`, `zero_state`, `recurrent_blocks`), so the spectrum probe shows W's
radius and the gradient-flow probe how fast dL/dh_t fades through it. The
readout sees h_t only: the probes' unrolled pass feeds `head` the states alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..options import opt
from . import ARCHS
from .base import RecurrentOptions, SequenceModel, State, TaskSpec
from .cells import leaky_step
from .custom import loops_for


@dataclass
class ESNOptions(RecurrentOptions):
    arch: str = opt("esn", "architecture (`rnnlab list archs`)")
    hidden: int = opt(256, "reservoir units", min=1)
    layers: int = opt(1, "reservoirs (1: deep reservoirs are not implemented)", min=1)
    embed: int = opt(64, "unused: tokens enter the reservoir one-hot", min=1)
    init: str = opt("default", "must stay default: the reservoir is drawn by spectral_radius and sparsity",
                    choices=["default", "orthogonal", "identity", "radius", "gain"])
    spectral_radius: float = opt(0.9, "W is rescaled to exactly this spectral radius (eigenvalues at build time)",
                                 above=0)
    leak: float = opt(1.0, "leak rate a: h_t = (1 - a) h_{t-1} + a tanh(W_in x_t + W h_{t-1} + b)", above=0, max=1)
    input_scaling: float = opt(1.0, "W_in entries uniform in [-s, s]", above=0)
    bias_scaling: float = opt(0.2, "b entries uniform in [-s, s] (0: none; a bias gives tanh even-order terms)", min=0)
    sparsity: float = opt(0.9, "share of W's entries that are exactly zero", min=0, max=0.99)
    washout: int = opt(0, "first steps of a fresh sequence left out of the readout's fit (ridge) and gradient "
                       "(bptt); evaluation still judges them", min=0)

    def check(self, section: str) -> None:
        if self.layers != 1:
            raise ConfigError(f"{section}.layers", self.layers, "an echo state network has one reservoir "
                              "(deep reservoirs are not implemented)", "1")
        if self.dropout:
            raise ConfigError(f"{section}.dropout", self.dropout, "the reservoir is fixed and the readout linear: "
                              "regularise with train.ridge_alpha (ridge) or train.weight_decay (bptt)", "0")
        if self.init != "default":
            raise ConfigError(f"{section}.init", self.init, "the esn draws its own reservoir",
                              "default (set model.spectral_radius and model.sparsity instead)")


def frozen(tensor: Tensor) -> nn.Parameter:
    """A parameter that never learns: the probes and checkpoints see it like any weight."""
    return nn.Parameter(tensor, requires_grad=False)


def sparse_reservoir(hidden: int, sparsity: float, radius: float) -> Tensor:
    """(H, H): uniform in [-1, 1], exactly round(sparsity H^2) zeros, spectral radius `radius`."""
    weight = torch.rand(hidden, hidden, dtype=torch.float64) * 2 - 1
    zeros = round(sparsity * hidden * hidden)
    weight.view(-1)[torch.randperm(hidden * hidden)[:zeros]] = 0.0
    current = float(torch.linalg.eigvals(weight).abs().max())
    if current == 0.0:  # no cycle among the non-zero entries: W is nilpotent (LAPACK's balancing finds exact zeros)
        raise ConfigError("model.sparsity", sparsity, f"leaves a {hidden}-unit reservoir with spectral radius 0 "
                          "(nothing to rescale)", "a lower sparsity or a larger model.hidden")
    return weight * (radius / current)


class ReservoirCell(nn.Module):
    """The fixed recurrence, laid out like a custom cell (cells.CustomCell) for the loop and the probes."""

    gates: tuple[str, ...] = ()
    paired = False
    step_fn = staticmethod(leaky_step)
    mode = 0  # tanh in cells.activate

    def __init__(self, input_size: int, options: ESNOptions):
        super().__init__()
        hidden, dtype = options.hidden, torch.get_default_dtype()
        self.hidden, self.leak = hidden, options.leak
        w_in = (torch.rand(hidden, input_size, dtype=torch.float64) * 2 - 1) * options.input_scaling
        bias = (torch.rand(hidden, dtype=torch.float64) * 2 - 1) * options.bias_scaling
        self.weight_ih = frozen(w_in.to(dtype))  # (H, I)
        self.weight_hh = frozen(sparse_reservoir(hidden, options.sparsity, options.spectral_radius).to(dtype))  # (H, H)
        self.bias = frozen(bias.to(dtype))  # (H,)

    def step_params(self) -> list[Tensor]:
        retention = self.weight_hh.new_full((self.hidden,), 1.0 - self.leak)  # (H,): 1 - a
        return [self.weight_hh, retention]

    def project_inputs(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias)  # (..., H)

    def step(self, x: Tensor, state: Tensor):
        """One step from the raw input x (B, I), for the probes: (h, state, no gates)."""
        h, _, _ = self.step_fn(self.project_inputs(x), [state], self.step_params(), self.mode)
        return h, h, {}

    def zero_state(self, batch: int, like: Tensor) -> Tensor:
        # No weight before the head requires grad, so only a start that does ties h_t to the graph:
        # the gradient-flow probe can then differentiate the loss through the reservoir's dynamics.
        return like.new_zeros(batch, self.hidden).requires_grad_(torch.is_grad_enabled())

    def recurrent_blocks(self) -> dict[str, Tensor]:
        return {"": self.weight_hh}


@ARCHS.register("esn", "Echo state network: fixed random leaky reservoir (one layer, tokens one-hot), "
                "linear readout fitted by ridge or bptt")
class ESNModel(SequenceModel):
    Options = ESNOptions

    def __init__(self, options: ESNOptions, spec: TaskSpec):
        super().__init__()
        self.options, self.spec, self.washout = options, spec, options.washout
        if spec.vocab_size is not None:  # one-hot: row k of the identity is token k
            self.embed = nn.Embedding(spec.vocab_size, spec.vocab_size)
            self.embed.weight = frozen(torch.eye(spec.vocab_size))
            input_size = spec.vocab_size
        else:
            self.embed, input_size = None, spec.input_size
        self.cells = nn.ModuleList([ReservoirCell(input_size, options)])
        self.head = nn.Linear(options.hidden, spec.output_size)
        self.compiled = True  # False forces the eager loop (tests compare the two)

    def reservoir(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """States h_1..h_T (B, T, H) and the final state (1, B, H)."""
        inputs = self.embed(x) if self.embed is not None else x  # (B, T, I)
        if state is None:
            state = self.init_state(inputs.shape[0], inputs.device)
        cell = self.cells[0]
        eager, scripted = loops_for(cell.step_fn)
        loop = scripted if self.compiled and scripted is not None else eager
        # Nothing before the head learns: without an input or state that asks for a gradient, the
        # loop runs without a graph (the readout's gradient needs only the states' values).
        needs_graph = torch.is_grad_enabled() and (
            inputs.requires_grad or state.requires_grad or any(p.requires_grad for p in cell.parameters()))
        with torch.set_grad_enabled(needs_graph), torch.jit.optimized_execution(False):
            gi = cell.project_inputs(inputs)  # (B, T, H): every step's input half in one matmul
            hidden, final = loop(gi, [state[0]], cell.step_params(), cell.mode)  # (B, T, H)
        return hidden, final[0][None]

    def readout_features(self, x: Tensor) -> Tensor:
        """What the linear readout reads from a fresh start: (B, T, H), for the ridge fit."""
        with torch.no_grad():
            return self.reservoir(x)[0]

    def forward(self, x: Tensor, state: State | None = None):
        fresh = state is None
        hidden, final = self.reservoir(x, state)
        y = self.head(hidden)  # (B, T, O)
        w = min(self.washout, y.shape[1])
        if fresh and w and self.training and y.requires_grad:
            y = torch.cat([y[:, :w].detach(), y[:, w:]], dim=1)  # washout steps still predict, but teach nothing
        return y, final

    def init_state(self, batch: int, device=None) -> Tensor:
        return torch.zeros(1, batch, self.options.hidden, device=device, dtype=self.head.weight.dtype)  # (1, B, H)

    def recurrent_matrices(self) -> dict[str, Tensor]:
        return {"layer0": self.cells[0].weight_hh}

    def recurrent_blocks(self) -> dict[str, Tensor]:
        return {"layer0": self.cells[0].weight_hh}
