"""Every training algorithm through the Trainer: runs finish, events say what they did, bad pairs are refused."""

from __future__ import annotations

import pytest

from rnnlab import config, store
from rnnlab.errors import ConfigError
from rnnlab.train import Trainer, prepare

from tiny import tiny_config

SMALL = ["model.hidden=6", "model.layers=1", "model.embed=4", "train.batch_size=4", "train.eval_every=3",
         "train.eval_batches=2", "train.steps=6", "probes.every=3", "probes.jacobian_every=3",
         "probes.jacobian_steps=3", "device=cpu"]


def train(tmp_path, sets):
    cfg = config.load(None, SMALL + sets)
    run = store.create_run(tmp_path, "algo")
    outcome = Trainer(prepare(cfg), run).train()
    assert outcome.state == "finished", outcome.error
    events = run.read_events()
    return [e for e in events if e["kind"] == "train"], [e for e in events if e["kind"] == "eval"], events


@pytest.mark.parametrize("mode", ["batch", "pattern", "online"])
def test_rtrl_runs_in_every_mode(tmp_path, mode):
    trains, evals, events = train(tmp_path, ["model.arch=elman", "task.name=copy", "task.length=4",
                                             "task.copy_len=2", "train.algorithm=rtrl", f"train.rtrl_mode={mode}"])
    assert len(trains) == 6 and evals
    assert any(e["kind"] == "gradnorm" for e in events)  # RTRL's gradients reach the probes like BPTT's


def test_ekf_runs_and_reports_its_update_size(tmp_path):
    trains, evals, _ = train(tmp_path, ["model.arch=elman", "task.name=sines", "task.length=500", "task.seq_len=8",
                                        "train.algorithm=ekf"])
    assert all(e["lr"] == 0.0 and e["grad_norm"] > 0 for e in trains)
    assert evals[-1]["loss"] < trains[0]["loss"]


def test_pascanu_regulariser_value_is_logged(tmp_path):
    trains, _, _ = train(tmp_path, ["model.arch=elman", "task.name=adding", "task.length=8",
                                    "train.pascanu_weight=2.0"])
    assert all(e["pascanu"] >= 0 for e in trains)


def test_scheduled_sampling_on_a_language_model(tmp_path):
    cfg = tiny_config(tmp_path, train__scheduled_sampling="linear", train__ss_k=6, train__ss_floor=0.25,
                      train__steps=8)
    run = store.create_run(tmp_path / "runs", "ss")
    assert Trainer(prepare(cfg), run).train().state == "finished"
    trains = [e for e in run.read_events() if e["kind"] == "train"]
    assert [e["teacher_forcing"] for e in trains] == pytest.approx([1 - i / 6 if i < 4.5 else 0.25
                                                                     for i in range(1, 9)], abs=1e-6)
    evals = [e for e in run.read_events() if e["kind"] == "eval"]
    assert all("loss_free_running" in e for e in evals)


def test_jordan_reports_its_teacher_forced_loss_beside_the_free_running_one(tmp_path):
    _, evals, _ = train(tmp_path, ["model.arch=jordan", "task.name=narma10", "task.length=1000",
                                   "task.seq_len=10", "train.free_running_eval=true",
                                   "train.scheduled_sampling=inverse_sigmoid", "train.ss_k=3"])
    assert all(e["loss_teacher_forced"] != e["loss"] for e in evals)


@pytest.mark.parametrize("sets,key", [
    (["model.arch=jordan", "task.name=narma10", "train.algorithm=rtrl"], "train.algorithm"),
    (["model.arch=mgu", "task.name=adding", "train.algorithm=ekf", "model.dropout=0.2"], "model.dropout"),
    (["model.arch=lstm", "train.algorithm=tbptt", "train.pascanu_weight=1"], "train.pascanu_weight"),
    (["model.arch=lstm", "task.name=adding", "train.scheduled_sampling=linear"], "train.scheduled_sampling"),
    (["model.arch=lstm", "task.name=adding", "train.free_running_eval=true"], "train.free_running_eval"),
    (["train.scheduled_sampling=exponential", "train.ss_k=2"], "train.ss_k"),
    (["model.arch=gru", "task.name=reverse"], "model.arch"),
])
def test_refused_combinations(sets, key):
    with pytest.raises(ConfigError) as error:
        prepare(config.load(None, SMALL + sets))
    assert error.value.key == key, str(error.value)
