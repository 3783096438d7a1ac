"""Latch, parity, temporal order, delayed recall: the answers, the masks, the baselines."""

from __future__ import annotations

import math

import pytest
import torch

from rnnlab import config, store
from rnnlab.errors import ConfigError
from rnnlab.tasks import build_task
from rnnlab.train import Trainer, prepare

GEN = lambda seed=0: torch.Generator().manual_seed(seed)  # noqa: E731


def task(name, **extra):
    return build_task(config.load(None, [f"task.name={name}"] + [f"task.{k}={v}" for k, v in extra.items()]).task, 0)


def test_latch_answer_is_the_first_symbol():
    latch = task("latch", length=30)
    x, y, _ = latch.train_batch(50, GEN())
    assert x.shape == (50, 31) and torch.equal(y, x[:, 0]) and bool((x[:, 1:] >= 2).all())
    assert latch.metrics(0.0)["baseline"] == pytest.approx(math.log(2))


def test_parity_answer_is_the_xor_of_the_bits():
    parity = task("parity", length=9)
    x, y, _ = parity.train_batch(64, GEN(1))
    expected = torch.tensor([int(sum(row.tolist())) % 2 for row in x])
    assert torch.equal(y, expected)


def test_temporal_order_places_x_and_y_in_their_windows():
    order = task("temporal_order", length=100)
    x, y, _ = order.train_batch(200, GEN(2))
    assert bool((x[:, 0] == 0).all() and (x[:, -1] == 1).all())
    for row, label in zip(x, y):
        where = [t for t, v in enumerate(row.tolist()) if v in (2, 3)]
        assert len(where) == 2 and 10 <= where[0] < 20 and 50 <= where[1] < 60
        first, second = (row[w].item() - 2 for w in where)
        assert label.item() == first * 2 + second
    assert set(y.tolist()) == {0, 1, 2, 3}


def test_delayed_recall_targets_and_mask():
    recall = task("delayed_recall", length=12, delay=3)
    x, y, mask = recall.train_batch(5, GEN(3))
    assert torch.equal(y[:, 3:], x[:, :-3]) and not mask[:, :3].any() and mask[:, 3:].all()
    with pytest.raises(ConfigError, match="task.delay = 12: must be shorter than the sequence"):
        task("delayed_recall", length=12, delay=12)


def test_masked_positions_add_nothing_to_the_loss_or_the_gradients():
    recall = task("delayed_recall", length=10, delay=4)
    x, y, mask = recall.train_batch(3, GEN(4))
    output = torch.randn(3, 10, 8, requires_grad=True)
    loss = recall.loss(output, y, mask)
    loss.backward()
    assert output.grad[:, :4].abs().sum() == 0  # the padded/masked steps get no gradient
    unpadded = recall.loss(output[:, 4:], y[:, 4:], torch.ones(3, 6, dtype=torch.bool))
    torch.testing.assert_close(loss, unpadded)


@pytest.mark.parametrize("name,extra", [("latch", ["task.length=8"]), ("parity", ["task.length=4"]),
                                        ("temporal_order", ["task.length=12"]),
                                        ("delayed_recall", ["task.length=10", "task.delay=2"])])
def test_each_task_trains_with_probes(tmp_path, name, extra):
    cfg = config.load(None, [f"task.name={name}", "model.arch=lstm", "model.hidden=16", "model.layers=1",
                             "model.embed=8", "train.steps=30", "train.batch_size=16", "train.lr=1e-2",
                             "train.eval_every=15", "train.eval_batches=2", "probes.every=15",
                             "probes.jacobian_every=15", "probes.jacobian_steps=3", "device=cpu", *extra])
    run = store.create_run(tmp_path, name)
    assert Trainer(prepare(cfg), run).train().state == "finished"
    events = run.read_events()
    last = [e for e in events if e["kind"] == "eval"][-1]
    assert 0.0 <= last["error_rate"] <= 1.0 and "success" in last and last["baseline"] > 0
    assert any(e["kind"] == "gradflow" for e in events)
