"""RTRL: its forward-carried gradients equal BPTT's exactly; online mode updates every step."""

from __future__ import annotations

import pytest
import torch

from rnnlab import config
from rnnlab.models import build_model
from rnnlab.tasks import build_task
from rnnlab.train.rtrl import RTRL

CASES = [  # (arch, layers, task sets)
    ("elman", 1, ["task.name=copy", "task.length=3", "task.copy_len=2", "task.symbols=3"]),
    ("elman_act", 2, ["task.name=adding", "task.length=6"]),
    ("lstm", 2, ["task.name=latch", "task.length=5"]),
    ("gru_cell", 1, ["task.name=delayed_recall", "task.length=6", "task.delay=2"]),
]


def setup(arch, layers, task_sets):
    cfg = config.load(None, [f"model.arch={arch}", "model.hidden=4", f"model.layers={layers}", "model.embed=3",
                             *task_sets])
    task = build_task(cfg.task, 0)
    torch.manual_seed(0)
    model = build_model(cfg.model, task.spec).double()
    x, y, mask = task.train_batch(3, torch.Generator().manual_seed(5))
    if x.is_floating_point():
        x = x.double()
    if y.is_floating_point():
        y = y.double()
    return task, model, (x, y, mask)


def rtrl_for(task, model, batch, mode="batch"):
    algorithm = RTRL(task, model, batch[0].shape[0], mode, torch.Generator(), torch.device("cpu"))
    algorithm._batch = lambda: batch  # the very batch BPTT sees
    return algorithm


@pytest.mark.parametrize("arch,layers,task_sets", CASES, ids=[c[0] for c in CASES])
def test_batch_mode_gradients_equal_bptt(arch, layers, task_sets):
    task, model, batch = setup(arch, layers, task_sets)
    x, y, mask = batch
    output, _ = model(x)
    loss = task.loss(output, y, mask)
    expected = torch.autograd.grad(loss, list(model.parameters()))
    value, tokens = rtrl_for(task, model, batch).step_loss(model)
    assert float(value) == pytest.approx(float(loss.detach()), abs=1e-10)
    for (name, p), g in zip(model.named_parameters(), expected):
        torch.testing.assert_close(p.grad, g, atol=1e-8, rtol=0, msg=name)


def test_pattern_mode_is_batch_mode_on_one_sequence():
    task, model, (x, y, mask) = setup("elman", 1, CASES[0][2])
    one = (x[:1], y[:1], None)
    algorithm = rtrl_for(task, model, one, mode="pattern")
    assert algorithm.batch_size == 1
    algorithm.step_loss(model)
    output, _ = model(one[0])
    expected = torch.autograd.grad(task.loss(output, one[1], None), list(model.parameters()))
    for p, g in zip(model.parameters(), expected):
        torch.testing.assert_close(p.grad, g, atol=1e-8, rtol=0)


def test_online_mode_walks_the_sequence_one_step_per_update():
    task, model, batch = setup("elman", 1, CASES[0][2])
    algorithm = rtrl_for(task, model, batch, mode="online")
    steps = batch[0].shape[1]
    values = []
    for t in range(steps):
        value, tokens = algorithm.step_loss(model)
        values.append(float(value))
        assert tokens == batch[0].shape[0]
        assert (algorithm.sequence is None) == (t == steps - 1)  # a fresh sequence after the last step
    # with the weights unchanged between steps, the step losses average to the sequence's loss
    output, _ = model(batch[0])
    assert sum(values) / steps == pytest.approx(float(task.loss(output, batch[1], batch[2]).detach()), abs=1e-10)
    # and the first step's gradient is that of the first step's loss alone: a change at the last input cannot reach it
    algorithm = rtrl_for(task, model, batch, mode="online")
    algorithm.step_loss(model)
    first = [p.grad.clone() for p in model.parameters()]
    changed = (batch[0].clone(), batch[1], batch[2])
    changed[0][:, -1] = (changed[0][:, -1] + 1) % task.spec.vocab_size
    algorithm = rtrl_for(task, model, changed, mode="online")
    algorithm.step_loss(model)
    for a, p in zip(first, model.parameters()):
        torch.testing.assert_close(a, p.grad, atol=0, rtol=0)


def test_refuses_models_without_a_one_step_form_and_dropout():
    from rnnlab.train.rtrl import check_rtrl

    cfg = config.load(None, ["model.arch=elman", "model.dropout=0.1"])
    with pytest.raises(Exception, match="model.dropout"):
        check_rtrl(build_model(cfg.model, setup("elman", 1, CASES[0][2])[0].spec), cfg.model)
