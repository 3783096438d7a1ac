"""A cell over a whole sequence with its hand-derived backward: the training path of the custom cells.

Autograd through the time loop records every pointwise op of every step and, in backward, computes
dL/dU as T small products (G*H, B) x (B, H), one per step. CellSequence, the recipe of Haste and of
PyTorch's "Optimizing CUDA RNN with TorchScript" post, runs one layer's whole sequence as one
autograd node instead:

  forward   the cell's own update (the loop of custom.py, same ops, same numbers) without a graph,
            keeping per step only references to what the update computed anyway: what it returns
            third (its gates, tanh(c), a pre-activation) and the state before the step
  backward  time in reverse around the cell's backward step (HandBackward, cell_base.py; each cell
            declares its own beside its update in cells.py): per step a few pointwise ops, written
            with torch's own fused sigmoid/tanh backward kernels, and dL/dh_{t-1} = dL/dpre_t U + the
            direct path; each step's dL/dpre_t goes straight into one (B, T, G*H) buffer, so after
            the loop dL/dU = dpre (B*T, G*H)^T h_{t-1} (B*T, H) is one matmul. The input projection's
            gradient is autograd's, one matmul outside (gi is computed before the loop).

Precomputing the pointwise factors of all steps at once, over (T, B, G*H) tensors, was tried and
was slower on the CPU: the big temporaries leave the cache, the per-step ones stay in it.

The backward is differentiable once: a double backward (create_graph=True) raises instead of going
wrong. Nothing that needs one, or needs each h_t as a tensor of its own (the probes, the Pascanu
regulariser, RTRL), runs the sequence: they step the cells one step at a time (Cell.step). custom.run_loop
chooses: CellSequence when the cell has a HandBackward, a gradient is wanted and autocast is off;
else autograd through the loop. tests/test_sequence_grad.py gradchecks it and holds it equal to
autograd through the loop in float64.
"""

from __future__ import annotations

import warnings
from typing import List, Tuple

import torch
from torch import Tensor

from .cell_base import Knobs


def make_saving_loop(recurrent, update):
    """custom.make_loop's time loop, also returning what the backward steps read: per step, what the
    update returned third, then the state before the step (references, nothing is copied)."""

    def loop(gi: Tensor, state: List[Tensor], params: List[Tensor],
             knobs: Knobs) -> Tuple[Tensor, List[Tensor], List[List[Tensor]]]:
        outputs: List[Tensor] = []
        kept: List[List[Tensor]] = []
        for gi_t in gi.unbind(1):
            h, new, saved = update(gi_t, recurrent(state[0], params), state, params, knobs)
            outputs.append(h)
            kept.append(saved + state)
            state = new
        return torch.stack(outputs, 1), state, kept  # (B, T, H)

    return loop


def make_reverse_loop(step):
    """Time in reverse around one cell's backward step."""

    def reverse(grad_hidden: Tensor, carry: List[Tensor], kept: List[List[Tensor]], weight: Tensor,
                params: List[Tensor], knobs: Knobs, split: bool) -> Tuple[Tensor, Tensor, List[Tensor]]:
        # grad_hidden (B, T, H): dL/dh_t from above; carry: dL/d(final state). Returns dL/dgi and dL/dgh
        # (B, T, G*H) each (one tensor unless split), and the carry at t = 0: dL/d(initial state), then
        # the step's sums.
        grads = grad_hidden.unbind(1)
        dgi = grad_hidden.new_empty(grad_hidden.shape[0], len(grads), weight.shape[0])  # (B, T, G*H)
        dgh = torch.empty_like(dgi) if split else dgi
        dh_next, rest = carry[0], carry[1:]
        for t in range(len(grads) - 1, -1, -1):
            dh = grads[t] + dh_next  # (B, H): from above and from step t + 1
            blocks, direct, rest = step(dh, rest, kept[t], params, knobs)
            # written in place, (B, G*H): no stack after the loop
            half = len(blocks) // 2 if split else len(blocks)
            slot = torch.cat(blocks[:half], 1, out=dgi[:, t])
            if split:
                slot = torch.cat(blocks[half:], 1, out=dgh[:, t])
            dh_next = slot.mm(weight) if direct is None else torch.addmm(direct, slot, weight)  # (B, H)
        return dgi, dgh, [dh_next] + rest

    return reverse


DOUBLE_BACKWARD = ("a custom cell's hand-derived backward has no double backward (create_graph=True); "
                   "set model.hand_backward = False to run autograd through the loop")

_LOOPS: dict = {}  # (recurrent, update, step) -> ((eager saving, eager reverse), (scripted ones) or None)


def sequence_loops(cell, compiled: bool):
    """(saving loop, reverse loop) of a cell, scripted on first use unless compiled is False or scripting fails."""
    key = (cell.recurrent, cell.update, cell.hand_backward.step)
    if key not in _LOOPS:
        eager = (make_saving_loop(key[0], key[1]), make_reverse_loop(key[2]))
        try:
            scripted = (torch.jit.script(make_saving_loop(key[0], key[1])), torch.jit.script(make_reverse_loop(key[2])))
        except Exception as error:  # noqa: BLE001 - any scripting failure means: run eagerly
            warnings.warn(f"TorchScript unavailable for {cell.update.__qualname__}'s backward, running eagerly: {error}")
            scripted = None
        _LOOPS[key] = (eager, scripted)
    eager, scripted = _LOOPS[key]
    return scripted if compiled and scripted is not None else eager


class CellSequence(torch.autograd.Function):
    """apply(cell, compiled, gi (B, T, G*H), *state (B, H) each, *params) -> (h (B, T, H), *final state).

    params is cell.step_params(): the recurrent weight U first, then what the cell's finish gives the
    gradients of."""

    @staticmethod
    def forward(ctx, cell, compiled, gi, *tensors):
        count = 2 if cell.paired else 1
        state, params = list(tensors[:count]), list(tensors[count:])
        saving, reverse = sequence_loops(cell, compiled)
        with torch.jit.optimized_execution(False):  # as custom.run_loop
            hidden, final, kept = saving(gi, state, params, cell.knobs)
        # saved, not kept on ctx: autograd frees them after backward (unless retain_graph) and checks
        # that nothing changed them in place since
        ctx.save_for_backward(hidden, *tensors, *[k for step in kept for k in step])
        ctx.rule, ctx.reverse, ctx.knobs, ctx.count = cell.hand_backward, reverse, cell.knobs, count
        ctx.inputs, ctx.per_step = len(tensors), len(kept[0]) if kept else 0
        return (hidden, *final)

    @staticmethod
    def backward(ctx, grad_hidden, *grad_final):
        if torch.is_grad_enabled():  # create_graph=True: torch's once_differentiable would let
            # autograd.grad(..., inputs) skip the missing second-order terms silently
            raise RuntimeError(DOUBLE_BACKWARD)
        hidden, *saved = ctx.saved_tensors
        state, params, flat = saved[:ctx.count], saved[ctx.count:ctx.inputs], saved[ctx.inputs:]
        kept = [flat[k:k + ctx.per_step] for k in range(0, len(flat), ctx.per_step)]  # per step again
        with torch.jit.optimized_execution(False):
            dgi, dgh, carry = ctx.reverse(grad_hidden, list(grad_final), kept, params[0], list(params), ctx.knobs,
                                          ctx.rule.split)
        batch, steps, size = hidden.shape
        h_prev = torch.cat([state[0].unsqueeze(1), hidden[:, :-1]], 1)  # (B, T, H): h_0 ... h_{T-1}
        # dL/dU over all steps at once: (G*H, B*T) x (B*T, H)
        grad_weight = dgh.reshape(batch * steps, -1).t().mm(h_prev.reshape(batch * steps, size))
        sums = carry[ctx.count:]
        extras = ctx.rule.finish(sums, dgh) if ctx.rule.finish is not None else []
        return (None, None, dgi, *carry[:ctx.count], grad_weight, *extras)


def run_sequence(cell, gi: Tensor, state: List[Tensor], compiled: bool) -> Tuple[Tensor, List[Tensor]]:
    """As custom.run_loop: outputs (B, T, H) and the final state, with the cell's hand-derived backward."""
    hidden, *final = CellSequence.apply(cell, compiled, gi, *state, *cell.step_params())
    return hidden, final
