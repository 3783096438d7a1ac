"""Jordan nets: both feedback paths against a hand-written loop, gradients, chunking, training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rnnlab import config, store
from rnnlab.models import TaskSpec, build_model
from rnnlab.models import jordan as jordan_module
from rnnlab.train import Trainer, prepare

from tiny import tiny_config

VALUES = TaskSpec(input_size=3, output_size=2)  # regression: the output value itself is fed back
TOKENS = TaskSpec(input_size=5, output_size=5, vocab_size=5)  # classes: softmax / one-hot fed back


def build(spec=VALUES, **extra):
    sets = ["model.arch=jordan", "model.hidden=4", "model.embed=3"] + [f"model.{k}={v}" for k, v in extra.items()]
    torch.manual_seed(0)
    return build_model(config.load(None, sets).model, spec).double()


def reference(model, x, targets=None):
    """The equations of the module docstring, one step at a time, written independently."""
    inputs = model.embed(x) if model.embed is not None else x
    s, fed = model.init_state(x.shape[0])
    mu, outputs = model.options.decay, []
    for t in range(x.shape[1]):
        s = mu * s + fed
        h = torch.tanh(inputs[:, t] @ model.input.weight.T + model.input.bias + s @ model.feedback.weight.T)
        for layer in model.hidden_layers:
            h = torch.tanh(h @ layer.weight.T + layer.bias)
        y = h @ model.head.weight.T + model.head.bias
        outputs.append(y)
        if targets is not None:
            fed = F.one_hot(targets[:, t], y.shape[-1]).double() if model.classes else targets[:, t]
        else:
            fed = torch.softmax(y, -1) if model.classes else y
    return torch.stack(outputs, 1)


@pytest.mark.parametrize("spec", [VALUES, TOKENS], ids=["values", "tokens"])
@pytest.mark.parametrize("extra", [{}, {"decay": 0.5, "layers": 2}], ids=["plain", "decay-deep"])
def test_both_feedback_paths_equal_the_reference(spec, extra):
    model = build(spec, **extra)
    if spec.vocab_size:
        x, targets = torch.randint(0, 5, (3, 6)), torch.randint(0, 5, (3, 6))
    else:
        x, targets = torch.randn(3, 6, 3, dtype=torch.float64), torch.randn(3, 6, 2, dtype=torch.float64)
    model.train()  # teacher forcing
    torch.testing.assert_close(model(x, targets=targets)[0], reference(model, x, targets), atol=1e-12, rtol=0)
    model.eval()  # free running: targets are ignored, the model's own outputs are fed back
    torch.testing.assert_close(model(x, targets=targets)[0], reference(model, x), atol=1e-12, rtol=0)
    model.train()
    model.options.feedback = "output"
    torch.testing.assert_close(model(x, targets=targets)[0], reference(model, x), atol=1e-12, rtol=0)


def test_a_target_reaches_only_later_outputs_under_teacher_forcing():
    model = build(TOKENS).train()
    x, targets = torch.randint(0, 5, (2, 6)), torch.randint(0, 5, (2, 6))
    changed = targets.clone()
    changed[:, 3] = (changed[:, 3] + 1) % 5
    a, b = model(x, targets=targets)[0], model(x, targets=changed)[0]
    torch.testing.assert_close(a[:, :4], b[:, :4], atol=0, rtol=0)  # y_t for t <= 3 cannot see target 3
    assert (a[:, 4] - b[:, 4]).abs().max() > 1e-6  # y_4 reads it


@pytest.mark.parametrize("feedback", ["target", "output"])
@pytest.mark.parametrize("scripted", [True, False])
def test_gradcheck(feedback, scripted, monkeypatch):
    if not scripted:
        monkeypatch.setattr(jordan_module, "scripted_loop", lambda: jordan_module.jordan_loop)
    model = build(decay=0.3, layers=2, feedback=feedback).train()
    names = [n for n, _ in model.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in model.parameters()]
    x = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    targets = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)

    def run(x, targets, *weights):
        return torch.func.functional_call(model, dict(zip(names, weights)), (x,), {"targets": targets})[0]

    assert torch.autograd.gradcheck(run, (x, targets, *params), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("training", [True, False])
def test_chunks_with_the_carried_state_equal_one_pass(training):
    model = build(TOKENS, decay=0.5).train(training)
    x, targets = torch.randint(0, 5, (2, 9)), torch.randint(0, 5, (2, 9))
    whole, _ = model(x, targets=targets)
    first, state = model(x[:, :4], targets=targets[:, :4])
    second, _ = model(x[:, 4:], state, targets=targets[:, 4:])
    torch.testing.assert_close(torch.cat([first, second], 1), whole, atol=1e-12, rtol=0)


def test_teacher_forcing_needs_a_target_per_step():
    model = build(TOKENS).train()
    with pytest.raises(ValueError, match="feedback"):
        model(torch.randint(0, 5, (2, 4)), targets=torch.randint(0, 5, (2,)))


def test_refuses_a_recurrent_init():
    with pytest.raises(Exception, match="model.init"):
        build(init="orthogonal")


def test_trains_on_narma10_through_the_trainer(tmp_path):
    cfg = config.load(None, ["task.name=narma10", "task.length=2000", "task.seq_len=20", "model.arch=jordan",
                             "model.hidden=8", "train.steps=10", "train.batch_size=4", "train.eval_every=5",
                             "train.eval_batches=2", "device=cpu"])
    run = store.create_run(tmp_path, "jordan")
    outcome = Trainer(prepare(cfg), run).train()
    assert outcome.state == "finished", outcome.error


def test_trains_on_charlm_with_truncated_bptt(tmp_path):
    cfg = tiny_config(tmp_path, model__arch="jordan", model__feedback="output", train__algorithm="tbptt",
                      train__tbptt_k1=8, train__tbptt_k2=16)
    run = store.create_run(tmp_path / "runs", "jordan")
    outcome = Trainer(prepare(cfg), run).train()
    assert outcome.state == "finished", outcome.error
