"""What each algorithm's step writes: the keys of its train (and gradnorm) events, pinned in order.

curves.py, studies/metrics.py, the TUI and old runs read these events, so the step interface
(train/steps.py) must keep them byte-for-byte. The lists were taken from the trainer before the
step dispatch moved out of loop.py (issue 16); a new key is a change to make here on purpose.
"""

from __future__ import annotations

import pytest

from rnnlab import config, store
from rnnlab.train import Trainer, prepare

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


def train_events(sets: list[str], tmp_path, steps: int = 2) -> list[dict]:
    cfg = config.load(None, sets + [f"train.steps={steps}", "train.eval_every=0", "train.checkpoint_every=0",
                                    "probes.every=1", "probes.jacobian_every=0"])
    run = store.create_run(tmp_path / "runs", "keys")
    assert Trainer(prepare(cfg), run).train().state == "finished"
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
    events = train_events(mackey_sets(train__algorithm="ridge"), tmp_path, steps=3)
    train = [e for e in events if e["kind"] == "train"]
    assert [e["step"] for e in train] == [1, 2, 3]
    for event in train:
        assert list(event) == COMMON + ["samples", "fit_samples", "fit_mse"]
        assert (event["lr"], event["grad_norm"], event["clipped"]) == (0.0, 0.0, False)
    assert [e["fit_samples"] for e in train] == [48, 96, 144]
    assert not any(e["kind"] == "gradnorm" for e in events)
    assert {"spectrum", "gradflow"} <= {e["kind"] for e in events}  # the probes still run on the reservoir
