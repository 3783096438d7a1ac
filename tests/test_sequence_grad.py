"""The custom cells' hand-derived backward (models/sequence_grad.py): gradchecked, and equal to autograd
through the time loop for every cell and knob, across layers, dropout and chunks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rnnlab import config
from rnnlab.models import TaskSpec, build_model
from rnnlab.models.cell_base import ACTIVATION_CODES, activate, activation_backward, activation_slope
from rnnlab.models.cells import CELLS
from rnnlab.models.custom import run_loop
from rnnlab.models.sequence_grad import CellSequence, sequence_loops

FEATURES = TaskSpec(input_size=3, output_size=2)
HAND = {"elman", "lstm", "gru", "mgu", "lstm_peephole", "leaky", "residual", "gated_residual"}

# (arch, extra --set keys): every cell with a hand-derived backward, and the knobs its backward reads
VARIANTS = [("elman_act", {"activation": a}) for a in ACTIVATION_CODES]
VARIANTS += [("lstm_cell", {}), ("gru_cell", {}), ("lstm_peephole", {}), ("lstm_peephole", {"coupled": "true"}), ("mgu", {}),
             ("leaky", {"tau": 3.0}), ("leaky", {"tau_mode": "learned", "activation": "relu"}),
             ("leaky", {"timescales": "[2,8]", "tau_mode": "per_unit", "activation": "softsign"}),
             ("residual", {}), ("residual", {"activation": "elu"}), ("gated_residual", {}),
             ("gated_residual", {"activation": "softplus"}), ("gated_residual", {"activation": "sigmoid"})]
IDS = [f"{a}-{'-'.join(map(str, e.values()))}" for a, e in VARIANTS]


def build(arch, hidden=3, layers=2, dropout=0.0, **extra):
    sets = [f"model.arch={arch}", f"model.hidden={hidden}", f"model.layers={layers}", f"model.dropout={dropout}"]
    torch.manual_seed(0)
    model = build_model(config.load(None, sets + [f"model.{k}={v}" for k, v in extra.items()]).model, FEATURES)
    model = model.double()
    with torch.no_grad():  # zero-initialised peepholes would hide their own gradient
        for name, p in model.named_parameters():
            if "peephole" in name:
                p.uniform_(-0.5, 0.5)
    return model


def test_the_cells_with_a_hand_backward():
    """indrnn runs autograd's loop: with no matmul in its recurrence (u * h), a hand backward was slower
    (benchmarks/custom_cells_speed.py: ~1.3 of the fused Elman against autograd's ~1.5)."""
    assert {name for name, cell in CELLS.items() if cell.hand_backward is not None} == HAND
    for name in HAND:  # a step TorchScript cannot compile would run eagerly with only a warning
        assert all(isinstance(loop, torch.jit.ScriptFunction) for loop in sequence_loops(CELLS[name], True)), name


def test_a_cell_with_new_equations_does_not_inherit_a_backward():
    lstm = CELLS["lstm"]
    assert type("Other", (lstm,), {"update": staticmethod(CELLS["lstm_peephole"].update)}).hand_backward is None
    assert type("Same", (lstm,), {"name": "same"}).hand_backward is lstm.hand_backward


@pytest.mark.parametrize("arch,extra", VARIANTS, ids=IDS)
def test_gradcheck_the_sequence(arch, extra):
    """CellSequence alone against finite differences: its input half, initial state and every parameter."""
    cell = build(arch, **extra).cells[0]
    blocks = max(1, len(cell.gates))
    gi = (2.0 * torch.randn(2, 4, blocks * 3, dtype=torch.float64)).requires_grad_()  # relu6 reaches past 6
    state = [torch.randn(2, 3, dtype=torch.float64, requires_grad=True) for _ in range(2 if cell.paired else 1)]
    params = [p.detach().clone().requires_grad_() for p in cell.step_params()]  # U, then peepholes/retention

    def run(gi, *rest):
        return CellSequence.apply(cell, True, gi, *rest)

    assert torch.autograd.gradcheck(run, (gi, *state, *params), eps=1e-6, atol=1e-7)


def gradients(model, x, state, hand: bool, chunks: int = 2):
    """Outputs and the gradients of x, the initial state and every parameter, over `chunks` windows that
    carry the state across (its gradient too), with dropout drawn alike for both paths."""
    model.hand_backward = hand
    torch.manual_seed(1)
    outputs, carried, loss = [], state, 0.0
    for window in x.chunk(chunks, 1):
        y, carried = model(window, carried)
        outputs.append(y)
        loss = loss + (y * torch.cos(torch.arange(y.numel(), dtype=y.dtype)).view_as(y)).sum()
    parts = carried if isinstance(carried, tuple) else (carried,)
    loss = loss + sum((p * p).sum() for p in parts)  # the final state's gradient enters too
    leaves = [x, *(state if isinstance(state, tuple) else (state,)), *model.parameters()]
    return torch.cat(outputs, 1), torch.autograd.grad(loss, leaves, allow_unused=True)


@pytest.mark.parametrize("arch,extra", VARIANTS, ids=IDS)
def test_hand_backward_equals_autograd_through_the_loop(arch, extra):
    model = build(arch, hidden=4, layers=2, dropout=0.3, **extra)  # train mode: dropout between layers
    x = torch.randn(3, 8, 3, dtype=torch.float64, requires_grad=True)
    state = model.init_state(3)
    state = (tuple(torch.randn_like(s).requires_grad_() for s in state) if isinstance(state, tuple)
             else torch.randn_like(state).requires_grad_())
    y_hand, hand = gradients(model, x, state, True)
    y_auto, auto = gradients(model, x, state, False)
    torch.testing.assert_close(y_hand, y_auto, atol=0, rtol=0)  # the forward is the same loop, op for op
    for a, b in zip(hand, auto):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


def test_float32_follows_autograd_too():
    model = build("lstm_peephole", hidden=16, layers=1).float()
    x = torch.randn(4, 12, 3, requires_grad=True)
    state = tuple(torch.randn(1, 4, 16, requires_grad=True) for _ in range(2))
    (_, hand), (_, auto) = gradients(model, x, state, True, 3), gradients(model, x, state, False, 3)
    for a, b in zip(hand, auto):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_training_runs_the_sequence_and_inference_the_plain_loop():
    cell = build("lstm_cell").cells[0]
    gi = torch.randn(2, 5, 12, dtype=torch.float64, requires_grad=True)
    state = [torch.zeros(2, 3, dtype=torch.float64)] * 2
    assert type(run_loop(cell, gi, state)[0].grad_fn).__name__ == "CellSequenceBackward"
    assert "CellSequence" not in type(run_loop(cell, gi, state, hand_backward=False)[0].grad_fn).__name__
    with torch.no_grad():
        assert run_loop(cell, gi, state)[0].grad_fn is None


def test_double_backward_raises_instead_of_going_wrong():
    model = build("leaky", tau_mode="per_unit")
    y, _ = model(torch.randn(2, 4, 3, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="no double backward .* model.hand_backward = False"):
        torch.autograd.grad(y.square().sum(), list(model.parameters()), create_graph=True)
    model.hand_backward = False  # the way out the message names
    y, _ = model(torch.randn(2, 4, 3, dtype=torch.float64))
    grads = torch.autograd.grad(y.square().sum(), list(model.parameters()), create_graph=True)
    assert all(g.requires_grad for g in grads[:2])


@pytest.mark.parametrize("name", list(ACTIVATION_CODES))
def test_activation_backward_is_autograds(name):
    code = ACTIVATION_CODES[name]
    pre = torch.cat([4.0 * torch.randn(200, dtype=torch.float64), torch.tensor([25.0, -25.0, 7.0], dtype=torch.float64)])
    pre.requires_grad_()
    value = activate(pre, code)
    grad = torch.randn_like(pre)
    expected, = torch.autograd.grad(value, pre, grad)
    with torch.no_grad():
        torch.testing.assert_close(activation_backward(grad, pre, value, code), expected, atol=1e-12, rtol=0)
        torch.testing.assert_close(activation_slope(pre, value, code) * grad, expected, atol=1e-12, rtol=0)


def test_a_model_trains_the_same_either_way():
    """A few optimiser steps of a token model: the hand path's weights follow autograd's."""
    spec = TaskSpec(input_size=7, output_size=7, vocab_size=7)
    weights = []
    for hand in (True, False):
        torch.manual_seed(0)
        model = build_model(config.load(None, ["model.arch=gated_residual", "model.hidden=8"]).model, spec).double()
        model.hand_backward = hand
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        tokens = torch.randint(0, 7, (4, 10), generator=torch.Generator().manual_seed(2))
        for _ in range(3):
            optimizer.zero_grad()
            F.cross_entropy(model(tokens[:, :-1])[0].transpose(1, 2), tokens[:, 1:]).backward()
            optimizer.step()
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    torch.testing.assert_close(weights[0], weights[1], atol=1e-10, rtol=0)
