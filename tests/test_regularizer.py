"""The Pascanu et al. (2013) regulariser: its value on a known case, its gradient against finite differences."""

from __future__ import annotations

import pytest
import torch

from rnnlab import config
from rnnlab.models import TaskSpec, build_model
from rnnlab.models.unrolled import unrolled_forward
from rnnlab.train.regularizer import layer_terms, penalty_terms, regularized_loss

FEATURES = TaskSpec(input_size=3, output_size=2)


class Regression:
    """A loss at every step, so an error signal reaches every state."""

    def loss(self, output, y, mask):
        return ((output - y) ** 2).mean()


def build(arch, layers=1, **extra):
    sets = [f"model.arch={arch}", "model.hidden=4", f"model.layers={layers}"] + [f"model.{k}={v}" for k, v in extra.items()]
    torch.manual_seed(0)
    return build_model(config.load(None, sets).model, FEATURES).double()


@pytest.mark.parametrize("radius", [0.5, 1.0, 2.0])
def test_a_scaled_orthogonal_linear_recurrence_has_ratio_equal_to_its_scale(radius):
    model = build("elman_act", activation="linear")
    with torch.no_grad():
        q, _ = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64))
        model.cells[0].weight_hh.copy_(radius * q)  # ||g W|| = radius ||g|| for every g
    x, y = torch.randn(3, 6, 3, dtype=torch.float64), torch.randn(3, 6, 2, dtype=torch.float64)
    trace = unrolled_forward(model, x)
    terms = penalty_terms(model, trace, Regression().loss(trace.output, y, None))
    assert terms.numel() == 3 * 5  # every sequence, every step k = 0..T-2
    torch.testing.assert_close(terms, torch.full_like(terms, (radius - 1) ** 2), atol=1e-12, rtol=0)


def frozen_inputs(model, layer=0):
    """Constant s_k, x_{k+1} and dE/ds_{k+1}, as the regulariser holds them."""
    generator = torch.Generator().manual_seed(1)
    paired = isinstance(model.init_state(1), tuple)
    shape = (10, 4)  # (T-1 * B, H)
    before = tuple(torch.randn(shape, dtype=torch.float64, generator=generator).requires_grad_() for _ in range(2))
    before = before if paired else before[0]
    x_next = torch.randn(10, 3 if layer == 0 else 4, dtype=torch.float64, generator=generator)
    cotangent = [torch.randn(shape, dtype=torch.float64, generator=generator) for _ in range(2 if paired else 1)]
    return before, x_next, cotangent


@pytest.mark.parametrize("arch,extra", [("elman", {}), ("elman_act", {"activation": "softsign"}), ("lstm", {}),
                                        ("gru", {}), ("gru_cell", {}), ("lstm_peephole", {})])
def test_the_gradient_matches_finite_differences(arch, extra):
    model = build(arch, **extra)
    before, x_next, cotangent = frozen_inputs(model)
    names = [n for n, p in model.named_parameters() if not n.startswith("head")]
    weights = [p.detach().clone().requires_grad_() for n, p in model.named_parameters() if n in names]

    def omega(*values):
        with torch.nn.utils.stateless._reparametrize_module(model, dict(zip(names, values))):
            return layer_terms(model, 0, before, x_next, cotangent).mean()

    assert torch.autograd.gradcheck(omega, weights, eps=1e-6, atol=1e-7)


def test_the_loss_part_is_the_fused_models_loss_and_weight_zero_adds_nothing():
    model = build("lstm", layers=2)
    x, y = torch.randn(3, 6, 3, dtype=torch.float64), torch.randn(3, 6, 2, dtype=torch.float64)
    fused = Regression().loss(model(x)[0], y, None)
    plain, omega_zero = regularized_loss(model, Regression(), x, y, None, 0.0)
    assert float(plain.detach()) == pytest.approx(float(fused.detach()), abs=1e-12) and omega_zero == 0.0
    total, omega = regularized_loss(model, Regression(), x, y, None, 0.3)
    assert omega > 0 and float(total.detach()) == pytest.approx(float(fused.detach()) + 0.3 * omega, abs=1e-10)
    total.backward()  # the penalty's second-order graph backpropagates into every recurrent weight
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_steps_without_an_error_signal_are_left_out():
    model = build("elman")
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    trace = unrolled_forward(model, x)
    loss = trace.output[:, -1].square().mean()  # judged at the last step only: errors reach every earlier step
    assert penalty_terms(model, trace, loss).numel() == 2 * 4
    loss = trace.output[:, 1].square().mean()  # judged at step 1: s_2.. get no error, k + 1 = 1 only
    assert penalty_terms(model, trace, loss).numel() == 2 * 1
