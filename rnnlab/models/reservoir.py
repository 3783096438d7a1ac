"""Drawing one reservoir, and the fixed recurrence it runs (the echo state network's models/esn.py).

    h_t = (1 - a) * h_{t-1} + a * f(W_in u_t + W h_{t-1} + b)        a (H,): each unit's leak rate

u_t is what the reservoir reads: the task's input x_t (one-hot for tokens), or in a deep ESN the previous
reservoir's state, with the fed-back output y_{t-1} appended when feedback is on (W_in's last columns are
then W_fb). Every matrix is drawn in float64 from one distribution (uniform in [-1, 1], standard normal,
or bernoulli +-1), a share of its entries set to exactly zero (round((1 - connectivity) * entries) of
them, at random places), and scaled: W to an exact spectral radius (its eigenvalues, at build time),
W_in and W_fb by their scaling factor, b uniform in [-bias_scaling, bias_scaling]. With the defaults
(uniform, W_in dense, one leak) the draws are the ones rnnlab made before these knobs existed, in the
same order, so a preset's reservoir did not change.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from .cell_base import ACTIVATION_CODES, Knobs, dense_half
from .cells import leaky_update

DISTRIBUTIONS = ["uniform", "normal", "bernoulli"]


def draw(shape: tuple[int, ...], distribution: str) -> Tensor:
    """float64 values of `distribution`: uniform in [-1, 1], standard normal, or +-1 with probability 1/2."""
    if distribution == "uniform":
        return torch.rand(shape, dtype=torch.float64) * 2 - 1
    if distribution == "normal":
        return torch.randn(shape, dtype=torch.float64)
    return torch.randint(0, 2, shape).double() * 2 - 1


def thin(weight: Tensor, connectivity: float) -> Tensor:
    """`weight` with exactly round((1 - connectivity) * numel) entries set to zero, at random places."""
    zeros = round((1.0 - connectivity) * weight.numel())
    if zeros:
        weight.view(-1)[torch.randperm(weight.numel())[:zeros]] = 0.0
    return weight


def recurrent_matrix(hidden: int, connectivity: float, radius: float, distribution: str) -> Tensor:
    """(H, H): drawn, thinned to `connectivity`, rescaled to spectral radius `radius`."""
    weight = thin(draw((hidden, hidden), distribution), connectivity)
    current = float(torch.linalg.eigvals(weight).abs().max())
    if current == 0.0:  # no cycle among the non-zero entries: W is nilpotent (LAPACK's balancing finds exact zeros)
        raise ConfigError("model.rc_connectivity", connectivity, f"leaves a {hidden}-unit reservoir with spectral "
                          "radius 0 (W is nilpotent: nothing to rescale)",
                          "a higher model.rc_connectivity or a larger model.hidden")
    return weight * (radius / current)


def input_matrix(hidden: int, inputs: int, connectivity: float, scaling: float, distribution: str,
                 values: Tensor | None = None) -> Tensor:
    """(H, I): drawn (or the given `values`), thinned to `connectivity`, times `scaling`."""
    weight = draw((hidden, inputs), distribution) if values is None else values
    weight = thin(weight, connectivity)
    if not weight.any():
        raise ConfigError("model.input_connectivity", connectivity, f"leaves W_in ({hidden} x {inputs}) without "
                          "a single non-zero entry: the reservoir would never see its input",
                          f"a number above {1 / (2 * hidden * inputs):.3g}")
    return weight * scaling


def leak_rates(hidden: int, leak: float, spread: float) -> Tensor:
    """(H,) float64: every unit's leak rate, uniform in [leak - spread, leak + spread] (all `leak` at 0)."""
    if not spread:
        return torch.full((hidden,), leak, dtype=torch.float64)
    return leak + spread * (torch.rand(hidden, dtype=torch.float64) * 2 - 1)


def frozen(tensor: Tensor) -> nn.Parameter:
    """A parameter that never learns: the probes and checkpoints see it like any weight."""
    return nn.Parameter(tensor, requires_grad=False)


class ReservoirCell(nn.Module):
    """One fixed reservoir, laid out like a custom cell (cell_base.Cell) for the TorchScript loop and the probes.

    weight_ih (H, I [+ O]), weight_hh (H, H), bias (H,); `leak` (H,) only when the units' leaks differ
    (a checkpoint of a single-leak reservoir keeps the keys it always had).
    """

    gates: tuple[str, ...] = ()
    paired = False
    recurrent, update = staticmethod(dense_half), staticmethod(leaky_update)  # the equations of cells.LeakyCell

    def __init__(self, inputs: int, options, input_scaling: float, feedback: int = 0):
        super().__init__()
        hidden, dtype = options.hidden, torch.get_default_dtype()
        self.hidden, self.knobs = hidden, Knobs(ACTIVATION_CODES[options.activation], False)
        # The default draw order (W_in values, b, W, then W_in's zeros) is the one that predates the knobs.
        w_in = draw((hidden, inputs), options.input_weights)
        bias = (torch.rand(hidden, dtype=torch.float64) * 2 - 1) * options.bias_scaling
        w = recurrent_matrix(hidden, options.rc_connectivity, options.spectral_radius, options.weights)
        w_in = input_matrix(hidden, inputs, options.input_connectivity, input_scaling, options.input_weights, w_in)
        if feedback:  # W_fb (H, O): y_{t-1} enters like more input columns, drawn as W_in is
            w_fb = input_matrix(hidden, feedback, options.input_connectivity, options.feedback_scaling,
                                options.input_weights)
            w_in = torch.cat([w_in, w_fb], 1)  # (H, I + O)
        self.weight_ih = frozen(w_in.to(dtype))  # (H, I [+ O])
        self.weight_hh = frozen(w.to(dtype))  # (H, H)
        self.bias = frozen(bias.to(dtype))  # (H,)
        self.leak_value = options.leak
        # Per-unit leaks are weights of the model (a checkpoint holds them); one leak stays a number, exact
        # in any dtype the model is cast to.
        self.leak = frozen(leak_rates(hidden, options.leak, options.leak_spread).to(dtype)) \
            if options.leak_spread else None  # (H,)

    def rates(self) -> Tensor:
        """(H,): each unit's leak rate a."""
        return self.leak if self.leak is not None else self.weight_hh.new_full((self.hidden,), self.leak_value)

    def step_params(self) -> list[Tensor]:
        retention = 1.0 - self.leak if self.leak is not None else self.weight_hh.new_full(
            (self.hidden,), 1.0 - self.leak_value)  # (H,): the leaky update keeps (1 - a) of h_{t-1}
        return [self.weight_hh, retention]

    def project_inputs(self, u: Tensor) -> Tensor:
        return F.linear(u, self.weight_ih, self.bias)  # (..., H)

    def step(self, u: Tensor, state: Tensor):
        """One step from what the reservoir reads, u (B, I [+ O]), for the probes: (h, state, no gates)."""
        params = self.step_params()
        h, _, _ = self.update(self.project_inputs(u), self.recurrent(state, params), [state], params, self.knobs)
        return h, h, {}

    def zero_state(self, batch: int, like: Tensor) -> Tensor:
        # No weight before the head requires grad, so only a start that does ties h_t to the graph:
        # the gradient-flow probe can then differentiate the loss through the reservoir's dynamics.
        return like.new_zeros(batch, self.hidden).requires_grad_(torch.is_grad_enabled())

    def recurrent_blocks(self) -> dict[str, Tensor]:
        return {"": self.weight_hh}
