"""Copy and adding tasks: generators, answers, baselines, and a real training run each."""

from __future__ import annotations

import math

import pytest
import torch

from rnnlab import config, store
from rnnlab.errors import ConfigError
from rnnlab.tasks import build_task
from rnnlab.train import Trainer, prepare


def task(name, **extra):
    return build_task(config.load(None, [f"task.name={name}"] + [f"task.{k}={v}" for k, v in extra.items()]).task, 0)


def test_copy_sequences_follow_the_urnn_definition():
    copy = task("copy", length=15)
    x, y, mask = copy.train_batch(6, torch.Generator().manual_seed(1))
    assert x.shape == y.shape == (6, 35) and mask is None  # T + 20
    assert torch.equal(y[:, -10:], x[:, :10]) and bool((x[:, :10] >= 1).all() and (x[:, :10] <= 8).all())
    assert bool((x[:, 24] == 9).all()) and int((x == 9).sum()) == 6  # one delimiter, at T + 10 - 1
    assert int(y[:, :-10].abs().sum()) == 0 and int(x[:, 10:24].abs().sum()) == 0
    again, _, _ = copy.train_batch(6, torch.Generator().manual_seed(1))
    assert torch.equal(x, again)


def test_copy_baseline_is_what_a_memoryless_model_scores():
    copy = task("copy", length=30)
    x, y, _ = copy.train_batch(64, torch.Generator().manual_seed(2))
    logits = torch.full((64, 50, 10), -1e9)
    logits[:, :-10, 0] = 0.0  # certain of the blanks ...
    logits[:, -10:, 1:9] = 0.0  # ... then a uniform guess among the 8 symbols
    assert float(copy.loss(logits, y, None)) == pytest.approx(10 * math.log(8) / 50, rel=1e-5)
    assert copy.metrics(0.0)["baseline"] == pytest.approx(10 * math.log(8) / 50)
    stats = copy.batch_stats(logits, y, None)
    assert stats["count"] == 640 and copy.eval_summary({"wrong": 0.0, "count": 640.0})["success"]


@pytest.mark.parametrize("variant", ["standard", "lstm"])
def test_adding_target_is_the_sum_of_the_two_marked_values(variant):
    adding = task("adding", length=40, variant=variant)
    x, y, _ = adding.train_batch(500, torch.Generator().manual_seed(3))
    assert x.shape == (500, 40, 2) and y.shape == (500,)
    markers = x[..., 1]
    assert bool((markers.sum(1) == 2).all())
    assert bool((markers[:, :20].sum(1) == 1).all())  # one mark in each half
    marked = (x[..., 0] * markers).sum(1)
    expected = marked if variant == "standard" else 0.5 + marked / 4
    torch.testing.assert_close(y, expected)
    # The baseline: predicting the mean target has MSE equal to the target's variance.
    assert float(((y - y.mean()) ** 2).mean()) == pytest.approx(adding.baseline, rel=0.15)


def test_tbptt_on_independent_sequences_is_a_config_error():
    with pytest.raises(ConfigError, match="train.algorithm = 'tbptt'.*allowed: bptt"):
        prepare(config.load(None, ["task.name=adding", "train.algorithm=tbptt", "device=cpu"]))


@pytest.mark.parametrize("name,extra", [("adding", ["task.length=12"]), ("copy", ["task.length=5", "task.copy_len=3"])])
def test_a_small_gru_trains_on_the_task_with_probes(tmp_path, name, extra):
    cfg = config.load(None, [f"task.name={name}", "model.arch=gru", "model.hidden=16", "model.layers=1",
                             "model.embed=8", "train.steps=40", "train.batch_size=16", "train.lr=1e-2",
                             "train.eval_every=20", "train.eval_batches=2", "probes.every=20",
                             "probes.jacobian_every=20", "probes.jacobian_steps=3", "device=cpu", *extra])
    run = store.create_run(tmp_path, name)
    outcome = Trainer(prepare(cfg), run).train()
    assert outcome.state == "finished"
    events = run.read_events()
    evals = [e for e in events if e["kind"] == "eval"]
    assert evals[-1]["loss"] < evals[-1]["baseline"] * (1.0 if name == "adding" else 1.5)
    assert ("mse" in evals[-1]) == (name == "adding") and ("error_rate" in evals[-1]) == (name == "copy")
    flows = [e for e in events if e["kind"] == "gradflow"]
    assert len(flows[-1]["layers"]["layer0"]["last"]) == cfg.task.length + (0 if name == "adding" else 6)
