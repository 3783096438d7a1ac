"""The vanishing-gradient regulariser of Pascanu, Mikolov & Bengio (2013), eq. (9).

    Omega = mean over k (and sequences) of ( ||dE/ds_{k+1} ds_{k+1}/ds_k|| / ||dE/ds_{k+1}|| - 1 )^2

It asks each step back in time to preserve the norm of the error signal, so
gradients neither vanish nor (with clipping beside it) explode. As in the
paper, dE/ds_{k+1} is held constant when Omega is differentiated, and so are
the state s_k and the layer's input at k + 1: Omega's gradient reaches only the
weights of the step itself. s is the state of one layer (h, or (h, c)); every
layer gets its own terms. Steps where no error arrives (||dE/ds|| ~ 0, e.g.
before the answer of a memory task) have no ratio and are left out.

The hidden states must be tensors of their own, so the loss is computed with
the models' unrolled form (models/unrolled.py): the same equations as the
fused kernels, one step at a time.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import ConfigError
from ..models.base import apply_model
from ..models.unrolled import is_custom, layer_step, unrolled_forward

TINY = 1e-12  # below this ||dE/ds|| there is no ratio to take


def check_regularizer(model, options) -> None:
    if not (hasattr(model, "rnn") and hasattr(model.rnn, "weight_hh_l0")) and not is_custom(model):
        raise ConfigError("train.pascanu_weight", "> 0", f"model.arch = {options.arch!r} has no one-step form",
                          "elman, lstm, gru or a custom cell (elman_act, lstm_cell, mgu, ...)")
    if options.dropout:
        raise ConfigError("model.dropout", options.dropout, "the regulariser runs the unrolled model, without "
                          "dropout", "0 with train.pascanu_weight > 0")


def _states(trace, layer: int) -> list:
    """The layer's state after every step: h_t, or (h_t, c_t)."""
    hs, cs = trace.hidden[layer], trace.cells[layer]
    return [(h, c) for h, c in zip(hs, cs)] if cs else list(hs)


def _flat(state) -> list[Tensor]:
    return list(state) if isinstance(state, tuple) else [state]


def _stack(states: list) -> Tensor | tuple:
    """A list of T states -> one state of batch T * B (steps side by side)."""
    if isinstance(states[0], tuple):
        return tuple(torch.cat(parts, 0) for parts in zip(*states))
    return torch.cat(states, 0)


def penalty_terms(model, trace, loss: Tensor) -> Tensor:
    """Omega's ratios minus one, squared, for every layer, step k and sequence with an error signal."""
    terms = []
    for layer in range(model.options.layers):
        states = _states(trace, layer)
        steps = len(states)
        if steps < 2:
            continue
        flat_states = [t for state in states for t in _flat(state)]
        grads = torch.autograd.grad(loss, flat_states, retain_graph=True, allow_unused=True)
        per_part = len(_flat(states[0]))
        errors = [grads[i * per_part:(i + 1) * per_part] for i in range(steps)]  # dE/ds_t, one list per t
        errors = [[torch.zeros_like(s) if g is None else g.detach() for g, s in zip(e, _flat(st))]
                  for e, st in zip(errors, states)]
        inputs = trace.inputs if layer == 0 else torch.stack(trace.hidden[layer - 1], 1)  # (B, T, I)
        # s_k for k = 0..T-2 as one batch, each with its own leaf so the Jacobian is of one step only
        before = _stack([tuple(p.detach() for p in _flat(s)) if isinstance(s, tuple) else s.detach()
                         for s in states[:-1]])
        before = tuple(p.requires_grad_() for p in before) if isinstance(before, tuple) else before.requires_grad_()
        x_next = inputs[:, 1:].detach().transpose(0, 1).reshape(-1, inputs.shape[-1])  # (T-1 * B, I)
        cotangent = [torch.cat([e[i] for e in errors[1:]], 0) for i in range(per_part)]  # dE/ds_{k+1}
        terms.append(layer_terms(model, layer, before, x_next, cotangent))
    return torch.cat(terms) if terms else loss.new_zeros(0)


def layer_terms(model, layer: int, before, x_next: Tensor, cotangent: list[Tensor]) -> Tensor:
    """(ratio - 1)^2 per step and sequence with an error signal, from constant s_k (leaves), x_{k+1}, dE/ds_{k+1}:
    a function of the layer's weights alone (what the finite-difference test perturbs)."""
    step, _ = layer_step(model, layer)
    _, after, _ = step(x_next, before)  # s_{k+1} recomputed from the constant s_k, weights in the graph
    back = torch.autograd.grad(_flat(after), _flat(before), cotangent, create_graph=True)
    carried = torch.cat(back, -1).norm(dim=-1)  # (T-1 * B,) ||dE/ds_{k+1} ds_{k+1}/ds_k||
    arriving = torch.cat(cotangent, -1).norm(dim=-1)  # ||dE/ds_{k+1}||
    alive = arriving > TINY
    return (carried[alive] / arriving[alive] - 1.0) ** 2


def regularized_loss(model, task, x: Tensor, y: Tensor, mask, weight: float) -> tuple[Tensor, float]:
    """(task loss + weight * Omega, Omega's value) for one batch, through the unrolled model."""
    if not weight:
        output, _ = apply_model(model, x, y)
        return task.loss(output, y, mask), 0.0
    trace = unrolled_forward(model, x)
    loss = task.loss(trace.output, y, mask)
    terms = penalty_terms(model, trace, loss)
    omega = terms.mean() if terms.numel() else loss.new_zeros(())
    return loss + weight * omega, float(omega.detach())
