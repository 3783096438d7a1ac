"""What each algorithm's step writes: the keys of its train (and gradnorm) events, pinned in order.

curves.py, studies/metrics.py, the TUI and old runs read these events, so the step interface
(train/steps.py) must keep them byte-for-byte. The lists were taken from the trainer before the
step dispatch moved out of loop.py (issue 16); a new key is a change to make here on purpose.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from rnnlab import config, store
from rnnlab.config import TrainConfig
from rnnlab.train import Trainer, checkpoint, prepare
from rnnlab.train.algorithms import ALGORITHMS
from rnnlab.train.steps import Backprop, Filter, GivenGradients, Readout, StepResult

from test_esn import mackey_sets
from tiny import overrides

COMMON = ["kind", "step", "t", "loss", "lr", "grad_norm", "clipped", "tokens_per_s"]
SMALL_NET = dict(model__arch="elman", model__hidden=4, model__embed=3, task__seq_len=6)  # RTRL/EKF: seconds -> ms

CASES = {  # name: (--set overrides, the train event's keys after COMMON, whether a gradnorm event follows)
    "bptt": (dict(), [], True),
    "bptt-pascanu": (dict(model__arch="elman", train__pascanu_weight=0.1), ["pascanu"], True),
    "bptt-scheduled": (dict(train__scheduled_sampling="linear", train__ss_k=10), ["teacher_forcing"], True),
    "bptt-scheduled-pascanu": (dict(model__arch="elman", train__scheduled_sampling="linear", train__ss_k=10,
                                    train__pascanu_weight=0.1), ["teacher_forcing", "pascanu"], True),
    "jordan-scheduled": (dict(model__arch="jordan", train__scheduled_sampling="exponential", train__ss_k=0.9),
                         ["teacher_forcing"], False),  # no unrolled form: no gradient groups to probe
    "tbptt": (dict(train__algorithm="tbptt", train__tbptt_k1=4, train__tbptt_k2=6), [], True),
    "rtrl": (dict(SMALL_NET, train__algorithm="rtrl"), [], True),
    "rtrl-checked": (dict(SMALL_NET, train__algorithm="rtrl", train__rtrl_check_every=1), ["rtrl_gap"], True),
    "rtrl-online": (dict(SMALL_NET, train__algorithm="rtrl", train__rtrl_mode="online"), [], True),
    "ekf": (dict(SMALL_NET, train__algorithm="ekf"), [], False),
    "ekf-scheduled": (dict(SMALL_NET, train__algorithm="ekf", train__scheduled_sampling="linear", train__ss_k=10),
                      ["teacher_forcing"], False),
}


def trained(sets: list[str], tmp_path, steps: int = 2, spoil=None):
    """(run dir, outcome, model) of a short run; `spoil(model)` may damage the prepared model first."""
    cfg = config.load(None, sets + [f"train.steps={steps}", "train.eval_every=0", "train.checkpoint_every=0",
                                    "probes.every=1", "probes.jacobian_every=0"])
    prepared = prepare(cfg)
    if spoil is not None:
        spoil(prepared.model)
    run = store.create_run(tmp_path / "runs", "keys")
    return run, Trainer(prepared, run).train(), prepared.model


def train_events(sets: list[str], tmp_path, steps: int = 2) -> list[dict]:
    run, outcome, _ = trained(sets, tmp_path, steps)
    assert outcome.state == "finished"
    return run.read_events()


@pytest.mark.parametrize("name", list(CASES))
def test_each_algorithm_writes_the_train_event_keys_it_always_did(tmp_path, name):
    extra, added, gradnorm = CASES[name]
    events = train_events(overrides(tmp_path, **extra), tmp_path)
    train = [e for e in events if e["kind"] == "train"]
    assert [e["step"] for e in train] == [1, 2]
    for event in train:
        assert list(event) == COMMON + added
        assert all(isinstance(event[k], float) for k in ("loss", "lr", "grad_norm"))
        assert isinstance(event["clipped"], bool)
    norms = [e for e in events if e["kind"] == "gradnorm"]
    assert [e["step"] for e in norms] == ([1, 2] if gradnorm else [])
    for event in norms:  # the parameter groups' norms before clipping, the clip, the share of clipped steps
        assert list(event) == ["kind", "step", "t", "groups", "clip", "clipped_share"]
        assert event["clip"] == 5.0  # train.clip's default
    if name.startswith("ekf"):  # no gradient step: the filter's ||delta w|| where a gradient norm would be
        assert all(e["lr"] == 0.0 and not e["clipped"] and e["grad_norm"] > 0 for e in train)
    else:
        assert all(e["lr"] > 0 for e in train)


def test_the_ridge_readout_writes_its_fit_where_a_gradient_would_be(tmp_path):
    run, outcome, _ = trained(mackey_sets(train__algorithm="ridge"), tmp_path, steps=3)
    assert outcome.state == "finished"
    events = run.read_events()
    train = [e for e in events if e["kind"] == "train"]
    assert [e["step"] for e in train] == [1, 2, 3]
    for event in train:
        assert list(event) == COMMON + ["samples", "fit_samples", "fit_mse"]
        assert (event["lr"], event["grad_norm"], event["clipped"]) == (0.0, 0.0, False)
    assert [e["fit_samples"] for e in train] == [48, 96, 144]
    assert not any(e["kind"] == "gradnorm" for e in events)
    assert {"spectrum", "gradflow"} <= {e["kind"] for e in events}  # the probes still run on the reservoir
    assert checkpoint.load(run.checkpoint("last"))["loss_reference"] is None  # never watched for divergence


def test_the_table_names_every_algorithm_the_config_accepts_and_the_trainer_takes_its_kind(tmp_path):
    (declared,) = [f for f in dataclasses.fields(TrainConfig) if f.name == "algorithm"]
    assert set(ALGORITHMS) == set(declared.metadata["choices"])
    kinds = {"bptt": Backprop, "tbptt": Backprop, "rtrl": GivenGradients, "ekf": Filter, "ridge": Readout}
    assert {name: entry.step for name, entry in ALGORITHMS.items()} == kinds
    for name, sets in (("tbptt", CASES["tbptt"][0]), ("rtrl", CASES["rtrl"][0]), ("ekf", CASES["ekf"][0])):
        cfg = config.load(None, overrides(tmp_path, **sets))
        trainer = Trainer(prepare(cfg), store.create_run(tmp_path / "runs", name))
        assert type(trainer.stepper) is kinds[name]


def test_a_non_finite_loss_ends_the_run_before_the_step_is_applied(tmp_path):
    def poison(model):  # one NaN weight: the first loss is NaN
        with torch.no_grad():
            model.head.bias[0] = math.nan
        poison.before = {k: v.clone() for k, v in model.state_dict().items()}

    run, outcome, model = trained(overrides(tmp_path), tmp_path, spoil=poison)
    assert (outcome.state, outcome.step) == ("diverged", 0)
    assert outcome.error == "loss became nan at step 1 (lr 0.002); lower train.lr or clip the gradients"
    for name, value in model.state_dict().items():  # no optimizer step was taken
        torch.testing.assert_close(value, poison.before[name], rtol=0, atol=0, equal_nan=True)
    assert not any(e["kind"] == "train" for e in run.read_events())
    _, outcome, _ = trained(overrides(tmp_path, **CASES["ekf"][0]), tmp_path, spoil=poison)
    assert outcome.error == "loss became nan at step 1; raise train.ekf_noise"  # no lr: the filter has none


def test_a_gradient_step_names_what_went_non_finite_the_loss_first():
    step = Backprop(None)  # the judgement needs no context
    assert step.non_finite(StepResult(1.5, 4, grad_norm=math.inf)) == "gradient norm became inf"
    assert step.non_finite(StepResult(math.nan, 4, grad_norm=math.inf)) == "loss became nan"
    assert step.non_finite(StepResult(1.5, 4, grad_norm=2.0)) is None
    assert Filter(None).non_finite(StepResult(1.5, 4, grad_norm=math.inf)) is None  # ||delta w|| is not checked
