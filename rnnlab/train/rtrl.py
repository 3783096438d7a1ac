"""Real-time recurrent learning (Williams & Zipser 1989): gradients carried forward in time.

With s_t the whole recurrent state (every layer's h, and c for LSTM-likes)
and theta every trainable parameter, one step is s_t, o_t = F(theta, s_{t-1}, x_t).
RTRL carries the sensitivity P_t = ds_t/dtheta, (B, S, P), forward:

    P_t = dF/ds_{t-1} P_{t-1} + dF/dtheta          (both Jacobians per sequence: vmap + jacrev)
    dL/dtheta = sum_t  dL_t/dtheta|direct + dL_t/ds_{t-1} P_{t-1}

so the gradient of the loss so far is known at every step, with no stored
history: the price is the (S x S)(S x P) product each step, O(n^4) for n
units (P ~ n^2). Update modes:
  batch    m sequences, one update at the end of them: exactly BPTT's gradient
  pattern  the same with one sequence per update
  online   an update after every time step with the gradient of that step's loss,
           the sensitivities carried on under the changing weights (an approximation)
With train.rtrl_check_every (batch, pattern), a step also takes BPTT's gradient of its
batch by autograd and reports how far apart the two are (rtrl_gap in its train event).
The one-step function is the models' unrolled form (models/unrolled.py): the
fused kernels cannot be differentiated per sequence.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call, jacrev, vmap

from ..errors import ConfigError
from ..models.unrolled import is_custom, layer_step

MODES = ["batch", "pattern", "online"]


def check_rtrl(model, options) -> None:
    """RTRL needs a one-step form (fused Elman/LSTM/GRU or a custom cell) and no dropout."""
    if not (isinstance(getattr(model, "rnn", None), (nn.RNN, nn.LSTM, nn.GRU)) or is_custom(model)):
        raise ConfigError("train.algorithm", "rtrl", f"model.arch = {options.arch!r} has no one-step form for RTRL",
                          "elman, lstm, gru or a custom cell (elman_act, lstm_cell, mgu, ...)")
    if options.dropout:
        raise ConfigError("model.dropout", options.dropout, "RTRL's sensitivities assume a fixed network", "0")


class StepAbandoned(Exception):
    """A stop was asked for mid-step: the step was given up whole (nothing of it applied, its batch undrawn)."""


def state_parameters(step_model) -> tuple[int, int]:
    """(P, P_s): every trainable parameter, and those the state depends on (all but the read-out)."""
    sizes = [(name, p.numel()) for name, p in step_model.named_parameters() if p.requires_grad]
    return sum(n for _, n in sizes), sum(n for name, n in sizes if not name.startswith("model.head."))


def memory_needed(step_model, batch: int) -> int:
    """Bytes RTRL holds at its peak, each time step: the carried sensitivity (B, S, P_s), this step's
    ds_t/dtheta twice (jacrev's per-parameter pieces, then their concatenation), and the product that
    replaces the sensitivity: four (B, S, P_s) tensors (see _advance)."""
    _, state_count = state_parameters(step_model)
    return 4 * batch * step_model.state_size * state_count * step_model.model.head.weight.element_size()


class OneStep(nn.Module):
    """The whole model as one time step on flat states: (x_t, s_{t-1} (B, S)) -> (o_t (B, O), s_t (B, S))."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.layers = model.options.layers
        self.hidden = model.options.hidden
        self.paired = isinstance(model.init_state(1), tuple)  # (h, c) per layer

    @property
    def state_size(self) -> int:
        return self.layers * self.hidden * (2 if self.paired else 1)

    def forward(self, x_t: Tensor, flat: Tensor):
        model, hidden = self.model, self.hidden
        inputs = model.embed(x_t) if model.embed is not None else x_t  # (B, I)
        parts = flat.split(hidden, dim=-1)  # per layer: h, or h then c
        new = []
        for layer in range(self.layers):
            step, _ = layer_step(model, layer)
            state = (parts[2 * layer], parts[2 * layer + 1]) if self.paired else parts[layer]
            inputs, state, _ = step(inputs, state)  # (B, H)
            new.extend(state if self.paired else (state,))
        return model.head(inputs), torch.cat(new, -1)  # (B, O), (B, S)


class RTRL:
    """Computes gradients itself (sets .grad); steps.GivenGradients then clips and steps as for BPTT."""

    should_stop = staticmethod(lambda: False)  # the Trainer sets its stop flag here; checked every time step

    def __init__(self, task, model, batch_size: int, mode: str, generator: torch.Generator, device: torch.device,
                 check_every: int = 0):
        self.task, self.mode, self.generator, self.device = task, mode, generator, device
        self.check_every, self.steps_taken = check_every, 0  # steps_taken: which steps compare with BPTT
        self.extras: dict = {}  # the Trainer adds these to the step's train event
        self.batch_size = 1 if mode == "pattern" else batch_size
        self.step_model = OneStep(model)
        self.names = [name for name, p in self.step_model.named_parameters() if p.requires_grad]
        # the read-out touches no state: its sensitivity is always zero, so it is not carried
        self.state_names = [n for n in self.names if not n.startswith("model.head.")]
        # gradients are assembled as [state parameters..., read-out...]: the head must come last
        assert self.names[:len(self.state_names)] == self.state_names, "the read-out must be registered last"
        self.state_count = state_parameters(self.step_model)[1]  # P_s: the sensitivity's width
        self.sequence = None  # online mode: (x, y, mask, t, flat state, sensitivity) across trainer steps

    # -- the two per-step computations ------------------------------------------------
    def _state_jacobians(self, params: dict, x_t: Tensor, flat: Tensor):
        """Per sequence: ds_t/dtheta as (B, S, P_s) and ds_t/ds_{t-1} (B, S, S), and s_t (B, S)."""

        def new_state(p, s, x):
            return functional_call(self.step_model, p, (x[None], s[None]))[1][0]  # (S,)

        recurrent = {n: params[n] for n in self.state_names}
        d_params, d_state = vmap(jacrev(new_state, argnums=(0, 1)), in_dims=(None, 0, 0))(recurrent, flat, x_t)
        by_param = torch.cat([d_params[n].flatten(2) for n in self.state_names], 2)  # (B, S, P_s)
        with torch.no_grad():
            s_new = functional_call(self.step_model, params, (x_t, flat))[1]
        return by_param, d_state, s_new

    def _loss_gradient(self, params: dict, x_t: Tensor, flat: Tensor, y, mask, t: int,
                       outputs_shape) -> tuple[float, Tensor, Tensor]:
        """This step's share of the task loss: (L with o_t among zeros, d/dtheta direct (P,), d/ds_{t-1} (B, S)).

        The sum over t of the values is the sequence's loss plus (T - 1) times the all-zero outputs' loss.
        """
        flat = flat.detach().requires_grad_()
        leaves = {n: p.detach().requires_grad_() for n, p in params.items()}
        out_t, _ = functional_call(self.step_model, leaves, (x_t, flat))  # (B, O)
        # Losses are sums over positions: placing o_t among zeros gives exactly its share's gradient
        outputs = out_t.new_zeros(outputs_shape)  # (B, T, O)
        outputs = torch.cat([outputs[:, :t], out_t[:, None], outputs[:, t + 1:]], 1)
        share = self.task.loss(outputs, y, mask)
        grads = torch.autograd.grad(share, [leaves[n] for n in self.names] + [flat], allow_unused=True)
        direct = torch.cat([(g if g is not None else torch.zeros_like(leaves[n])).flatten()
                            for g, n in zip(grads[:-1], self.names)])  # (P,)
        return float(share.detach()), direct, grads[-1]

    def _advance(self, params, x, y, mask, t, flat, sensitivity):
        """One time step: (loss share, gradient of that share (P,), new state, new sensitivity)."""
        x_t = x[:, t]
        value, direct, by_state = self._loss_gradient(params, x_t, flat, y, mask, t,
                                                      (*x.shape[:2], self.step_model.model.head.out_features))
        through_state = torch.einsum("bs,bsp->p", by_state, sensitivity)  # (P_s,)
        gradient = direct + torch.cat([through_state, direct.new_zeros(direct.numel() - self.state_count)])  # (P,)
        by_param, d_state, s_new = self._state_jacobians(params, x_t, flat)
        sensitivity = torch.bmm(d_state, sensitivity) + by_param  # (B, S, P): the O(n^4) product
        return value, gradient, s_new, sensitivity

    def _begin(self, x, y, mask):
        """Zero state and sensitivity (B, S, P_s), and the loss of all-zero outputs (see _loss_gradient)."""
        batch, head = x.shape[0], self.step_model.model.head
        flat = torch.zeros(batch, self.step_model.state_size, device=self.device, dtype=head.weight.dtype)
        sensitivity = flat.new_zeros(batch, self.step_model.state_size, self.state_count)
        zero_loss = float(self.task.loss(flat.new_zeros(*x.shape[:2], head.out_features), y, mask))
        return flat, sensitivity, zero_loss

    def _set_gradients(self, gradient: Tensor) -> None:
        params = dict(self.step_model.named_parameters())
        for name, piece in zip(self.names, gradient.split([params[n].numel() for n in self.names])):
            params[name].grad = piece.view_as(params[name]).clone()

    def _batch(self):
        x, y, mask = self.task.train_batch(self.batch_size, self.generator)
        dtype = self.step_model.model.head.weight.dtype  # features follow the model's precision
        x, y = (t.to(self.device, dtype) if t.is_floating_point() else t.to(self.device) for t in (x, y))
        return x, y, (mask.to(self.device) if mask is not None else None)

    # -- what the Trainer calls ---------------------------------------------------------
    def step_loss(self, model) -> tuple[Tensor, int]:
        params = {n: p.detach() for n, p in self.step_model.named_parameters() if n in self.names}
        self.extras = {}
        if self.mode == "online":
            return self._online_step(params)
        undrawn = self.generator.get_state()
        x, y, mask = self._batch()
        flat, sensitivity, zero_loss = self._begin(x, y, mask)
        steps = x.shape[1]
        total, gradient = -(steps - 1) * zero_loss, 0.0
        for t in range(steps):
            self._stop_if_asked(undrawn)
            value, g, flat, sensitivity = self._advance(params, x, y, mask, t, flat, sensitivity)
            total, gradient = total + value, gradient + g
        self._set_gradients(gradient)
        if self.check_every and self.steps_taken % self.check_every == 0:
            self.extras = {"rtrl_gap": self.bptt_gap(model, (x, y, mask), gradient)}
        self.steps_taken += 1
        return torch.tensor(total, dtype=torch.float64), int(mask.sum()) if mask is not None else y.numel()

    def bptt_gap(self, model, batch, gradient: Tensor) -> float:
        """||g_rtrl - g_bptt|| / ||g_bptt||: the same loss differentiated backwards through the whole
        sequence (the model's own forward, fused kernels included), from the zero state RTRL starts in."""
        x, y, mask = batch
        params = dict(self.step_model.named_parameters())
        with torch.enable_grad():
            output, _ = model(x)  # (B, T, O)
            loss = self.task.loss(output, y, mask)
            found = torch.autograd.grad(loss, [params[n] for n in self.names], allow_unused=True)
        expected = torch.cat([(g if g is not None else torch.zeros_like(params[n])).flatten()
                              for g, n in zip(found, self.names)])  # (P,)
        return float((gradient - expected).norm() / expected.norm().clamp_min(torch.finfo(expected.dtype).tiny))

    def _stop_if_asked(self, undrawn, put_back=None) -> None:
        """A long step (seconds per sequence on a big net) gives way to SIGINT/SIGTERM between time steps;
        `put_back` undoes what the step changed so far, and the batch generator goes back to before this
        step's batch, so a resumed run draws it again."""
        if self.should_stop():
            if put_back is not None:
                put_back()
            self.generator.set_state(undrawn)
            raise StepAbandoned

    def _online_step(self, params) -> tuple[Tensor, int]:
        if self.sequence is None:
            x, y, mask = self._batch()
            self.sequence = [x, y, mask, 0, *self._begin(x, y, mask)]
        x, y, mask, t, flat, sensitivity, zero_loss = self.sequence
        value, gradient, flat, sensitivity = self._advance(params, x, y, mask, t, flat, sensitivity)
        steps = x.shape[1]
        # scaled by T: a step's share of a sequence-mean loss, at the size of that mean (and its gradient)
        self._set_gradients(gradient * steps)
        self.sequence = None if t + 1 == steps else [x, y, mask, t + 1, flat, sensitivity, zero_loss]
        return torch.tensor((value - zero_loss) * steps + zero_loss, dtype=torch.float64), x.shape[0]

    def state_dict(self) -> dict:
        return {"steps_taken": self.steps_taken}  # online mode restarts its sequence on resume

    def load_state_dict(self, state: dict) -> None:
        self.sequence = None
        self.steps_taken = int(state.get("steps_taken", 0))  # absent in checkpoints older than rtrl_check_every
