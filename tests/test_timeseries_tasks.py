"""Time-series tasks: the generators follow their equations; metrics and baselines are right."""

from __future__ import annotations

import math

import pytest
import torch

from rnnlab import config, store
from rnnlab.errors import ConfigError
from rnnlab.tasks import build_task
from rnnlab.tasks.timeseries import mackey_glass, narma10
from rnnlab.train import Trainer, prepare


def task(name, **extra):
    return build_task(config.load(None, [f"task.name={name}"] + [f"task.{k}={v}" for k, v in extra.items()]).task, 0)


def test_narma10_follows_its_recursion():
    u, y = narma10(300, torch.Generator().manual_seed(0))
    u, y = u.double().tolist(), y.double().tolist()
    for t in range(20, 300):  # target t is y(t+1): from the ten outputs before it and the inputs u[t], u[t-9]
        expected = math.tanh(0.3 * y[t - 1] + 0.05 * y[t - 1] * sum(y[t - 10:t]) + 1.5 * u[t - 9] * u[t] + 0.1)
        assert y[t] == pytest.approx(expected, abs=1e-6)
    assert all(0 <= v <= 0.5 for v in u)


def test_mackey_glass_is_deterministic_and_in_its_usual_range():
    a = mackey_glass(1000, torch.Generator().manual_seed(1))
    b = mackey_glass(1000, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and 0.2 < float(a.min()) and float(a.max()) < 1.5 and float(a.std()) > 0.1


@pytest.mark.parametrize("name", ["mackey_glass", "sines", "narma10"])
def test_windows_targets_and_metrics(name):
    series = task(name, length=2000, seq_len=50, protocol="windows")
    x, y, _ = series.train_batch(4, torch.Generator().manual_seed(2))
    assert x.shape == (4, 50, 1) and y.shape == (4, 50)
    if name != "narma10":  # the target is the next input
        torch.testing.assert_close(x[:, 1:, 0], y[:, :-1])
    metrics = series.metrics(series.variance)
    assert metrics["r2"] == pytest.approx(0.0, abs=1e-6) and metrics["nrmse"] == pytest.approx(1.0)
    batches = list(series.eval_batches(4, 100))
    assert len(series.val_y) == 200 and sum(b[0].shape[0] for b in batches) == 200 // 50


def test_training_windows_reach_both_ends_of_the_training_part():
    series = task("sines", length=1000, eval_steps=900, seq_len=100)  # a training part of exactly one window
    x, _, _ = series.train_batch(3, torch.Generator().manual_seed(0))
    torch.testing.assert_close(x, series.train_x[None].expand(3, -1, -1))
    starts = task("sines", length=1000, eval_steps=500, seq_len=499).train_batch(200, torch.Generator())[0][:, 0, 0]
    assert len(set(starts.tolist())) == 2  # the windows at 0 and at 1, the last that fits


def test_a_gru_beats_predicting_the_mean_on_sines(tmp_path):
    cfg = config.load(None, ["task.name=sines", "task.length=3000", "task.seq_len=40", "model.arch=gru",
                             "model.hidden=24", "model.layers=1", "train.steps=60", "train.lr=1e-2",
                             "train.batch_size=16", "train.eval_every=30", "train.eval_batches=4",
                             "probes.every=30", "probes.jacobian_every=30", "probes.jacobian_steps=3", "device=cpu"])
    run = store.create_run(tmp_path, "sines")
    assert Trainer(prepare(cfg), run).train().state == "finished"
    last = [e for e in run.read_events() if e["kind"] == "eval"][-1]
    assert last["r2_continuous"] > 0.5 and last["nrmse_continuous"] < 0.7


class Persistence(torch.nn.Module):
    """Predicts that the next value is the current one; carries nothing (state is returned as given)."""

    def forward(self, x, state=None):
        return x.clone(), state


def test_free_running_prediction_feeds_back_the_models_own_outputs():
    horizon = 7
    t = task("sines", seq_len=20, horizon=horizon, protocol="windows")
    x, y, mask = next(iter(t.eval_batches(4, 1)))
    stats = t.free_running_stats(Persistence(), x, y, mask)
    warm = 20 - horizon
    # persistence read the true series up to warm - 1, then can only repeat that value
    expected = (x[:, warm - 1, 0:1] - x[:, warm:, 0]) ** 2  # (B, horizon)
    assert stats["free_sq"] == pytest.approx(float(expected.sum()), rel=1e-6)
    assert stats["free_sq_last"] == pytest.approx(float(expected[:, -1].sum()), rel=1e-6)
    assert stats["free_count"] == expected.numel() and stats["free_rows"] == 4
    summary = t.eval_summary(stats)
    assert summary["free_nrmse"] == pytest.approx(math.sqrt(float(expected.mean()) / t.variance), rel=1e-6)
    assert f"free_nrmse@{horizon}" in summary


def test_free_running_needs_an_autonomous_series_and_room_to_read(tmp_path):
    with pytest.raises(ConfigError, match="task.horizon"):
        task("narma10", horizon=5)
    with pytest.raises(ConfigError, match="task.horizon"):
        config.load(None, ["task.name=sines", "task.seq_len=10", "task.horizon=10", "task.protocol=windows"])
    cfg = config.load(None, ["task.name=sines", "task.length=2000", "task.seq_len=30", "task.horizon=10",
                             "task.protocol=windows",
                             "model.arch=gru", "model.hidden=8", "model.layers=1", "train.steps=4",
                             "train.batch_size=4", "train.eval_every=2", "train.eval_batches=2", "device=cpu"])
    run = store.create_run(tmp_path, "free")
    assert Trainer(prepare(cfg), run).train().state == "finished"
    evals = [e for e in run.read_events() if e["kind"] == "eval"]
    assert all("free_nrmse" in e and "free_nrmse@10" in e for e in evals)
