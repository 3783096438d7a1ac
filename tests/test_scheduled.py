"""Scheduled sampling: the probability schedules, and that free running feeds back the model's own outputs."""

from __future__ import annotations

import math

import pytest
import torch

from rnnlab import config
from rnnlab.models import TaskSpec, build_model
from rnnlab.train.scheduled import mixed_forward, teacher_forcing_probability

from test_jordan import build as build_jordan
from test_jordan import reference as jordan_reference

TOKENS = TaskSpec(input_size=7, output_size=7, vocab_size=7, causal=True)


def test_schedules_follow_their_formulas_and_floor():
    assert [teacher_forcing_probability(i, "none", 10, 0) for i in (0, 10**6)] == [1.0, 1.0]
    assert [teacher_forcing_probability(i, "linear", 100, 0.1) for i in (0, 50, 90, 500)] == pytest.approx(
        [1.0, 0.5, 0.1, 0.1])
    assert teacher_forcing_probability(10, "exponential", 0.9, 0) == pytest.approx(0.9 ** 10)
    assert teacher_forcing_probability(200, "inverse_sigmoid", 50, 0) == pytest.approx(50 / (50 + math.exp(4)))
    assert teacher_forcing_probability(10**9, "inverse_sigmoid", 50, 0.05) == 0.05  # no overflow, the floor holds
    values = [teacher_forcing_probability(i, "inverse_sigmoid", 50, 0) for i in range(0, 1000, 50)]
    assert values == sorted(values, reverse=True)  # it only decays


def language_model():
    torch.manual_seed(0)
    cfg = config.load(None, ["model.arch=gru", "model.hidden=8", "model.layers=2", "model.embed=4"])
    return build_model(cfg.model, TOKENS).double().eval()


def test_full_teacher_forcing_is_the_ordinary_forward_pass():
    model = language_model()
    x = torch.randint(0, 7, (3, 9))
    torch.testing.assert_close(mixed_forward(model, x, 1.0, None), model(x)[0], atol=1e-12, rtol=0)


def test_free_running_feeds_back_the_models_own_choices():
    model = language_model()
    x = torch.randint(0, 7, (3, 9))
    out = mixed_forward(model, x, 0.0, None, greedy=True)  # (B, T, V)
    fed = torch.cat([x[:, :1], out[:, :-1].argmax(-1)], 1)  # what it must have read: x_0, then its own argmaxes
    torch.testing.assert_close(out, model(fed)[0], atol=1e-12, rtol=0)
    assert not torch.equal(fed, x)  # and that differs from the truth


def test_the_share_of_true_inputs_is_the_probability():
    model = language_model()
    x = torch.zeros(400, 6, dtype=torch.long)  # the truth is always token 0 ...
    with torch.no_grad():
        model.head.bias.copy_(torch.tensor([-50.0, 50, 0, 0, 0, 0, 0]))  # ... the model always says 1
    generator = torch.Generator().manual_seed(0)
    probe = {}
    original = model.forward

    def recording(tokens, state=None):
        probe.setdefault("inputs", []).append(tokens[:, 0].clone())
        return original(tokens, state)

    model.forward = recording
    mixed_forward(model, x, 0.3, generator)
    fed = torch.stack(probe["inputs"][1:], 1)  # (B, T-1): inputs after the first
    assert set(fed.unique().tolist()) == {0, 1}
    assert float((fed == 0).double().mean()) == pytest.approx(0.3, abs=0.03)


@pytest.mark.parametrize("spec_name", ["values", "tokens"])
def test_jordan_scheduled_sampling_ends_are_teacher_forcing_and_free_running(spec_name):
    from test_jordan import TOKENS as JORDAN_TOKENS, VALUES

    spec = JORDAN_TOKENS if spec_name == "tokens" else VALUES
    model = build_jordan(spec, decay=0.5).train()
    if spec.vocab_size:
        x, targets = torch.randint(0, 5, (3, 6)), torch.randint(0, 5, (3, 6))
    else:
        x, targets = torch.randn(3, 6, 3, dtype=torch.float64), torch.randn(3, 6, 2, dtype=torch.float64)
    model.teacher_forcing = 1.0
    torch.testing.assert_close(model(x, targets=targets)[0], jordan_reference(model, x, targets), atol=1e-12, rtol=0)
    model.teacher_forcing = 0.0  # in training, but nothing true is fed: free running
    torch.testing.assert_close(model(x, targets=targets)[0], jordan_reference(model, x), atol=1e-12, rtol=0)
    model.teacher_forcing = 0.5
    mixed = model(x, targets=targets)[0]
    assert not torch.allclose(mixed, jordan_reference(model, x)) and not torch.allclose(
        mixed, jordan_reference(model, x, targets))
