"""loss_spikes (rnnlab/studies/metrics.py): the steps whose training loss jumps above 1.25x the median of the
20 steps before it, read from train events, for finished and diverged trials alike."""

from __future__ import annotations

import json
import statistics

import numpy as np

from rnnlab.studies import checks
from rnnlab.studies.metrics import SPIKE_FACTOR, SPIKE_WINDOW, SPIKES, check_metric_name, loss_spikes, value


def train(losses) -> list[dict]:
    return [{"kind": "train", "step": i + 1, "loss": float(v)} for i, v in enumerate(losses)]


def reference(losses) -> int:
    """The definition written out with numpy: loss_t > 1.25 * median(loss_{t-20} .. loss_{t-1})."""
    x = np.asarray(losses, dtype=float)
    return int(sum(x[t] > SPIKE_FACTOR * np.median(x[t - SPIKE_WINDOW:t]) for t in range(SPIKE_WINDOW, len(x))))


def test_a_smooth_noisy_descent_has_no_spikes_and_jumps_are_counted():
    rng = np.random.default_rng(0)
    smooth = 4.0 * np.exp(-np.arange(300) / 150) + 1.0 + rng.normal(0, 0.03, 300)  # 3% noise on a falling loss
    assert loss_spikes(train(smooth)) == 0
    spiky = smooth.copy()
    spiky[[50, 51, 120, 250]] *= 1.6  # three explosions, one lasting two steps
    assert loss_spikes(train(spiky)) == 4 == reference(spiky)
    assert value(train(spiky), SPIKES) == 4.0


def test_the_window_is_the_steps_before_and_its_median_ignores_a_spike():
    flat = [2.0] * 40
    flat[30] = 2.0 * SPIKE_FACTOR  # exactly at the bar: not above it
    assert loss_spikes(train(flat)) == 0
    flat[30] = 2.6
    flat[31] = 2.6  # the second step's window holds one spike of 20: the median is still 2.0
    assert statistics.median(flat[12:31]) == 2.0 and loss_spikes(train(flat)) == 2
    flat[5] = 9.0  # before the first full window: never judged
    assert loss_spikes(train(flat)) == 2


def test_random_curves_agree_with_the_numpy_definition():
    rng = np.random.default_rng(1)
    for _ in range(20):
        curve = np.exp(rng.normal(0, 0.2, 120)) * 2.0
        assert loss_spikes(train(curve)) == reference(curve)


def test_a_curve_too_short_or_without_train_events_has_no_value():
    assert loss_spikes(train([1.0] * SPIKE_WINDOW)) is None
    assert loss_spikes([{"kind": "eval", "step": 1, "loss": 1.0}] * 50) is None
    events = train([1.0] * 30) + [{"kind": "train", "step": 31, "loss": float("nan")},
                                  {"kind": "train", "step": 32, "loss": True}, {"kind": "eval", "step": 32}]
    assert loss_spikes(events) == 0  # non-finite and non-numeric losses are skipped, other kinds ignored
    check_metric_name(SPIKES, "check[0].metric")


def test_a_diverged_trial_counts_the_spikes_of_its_curve(tmp_path):
    from rnnlab import store
    from rnnlab.studies.metrics import observe
    from tui_fixtures import synthetic_sweep

    sweep = synthetic_sweep(tmp_path / "runs")
    record = sweep.read()
    run = store.RunDir(sweep.runs_dir / record["trials"][1]["run"])
    curve = [3.0] * 25 + [5.0, 3.0, 3.0, 6.0]  # two spikes, then it blew up
    with run.events_path.open("a") as log:  # gru, lr 0.001, seed 1
        log.write("".join(json.dumps(event) + "\n" for event in train(curve)))
    run.update_status(state="diverged")
    observations = observe(sweep, record, ["loss", SPIKES, "diverged"])
    diverged = next(o for o in observations if o.state == "diverged")
    assert diverged.values == {"loss": None, SPIKES: 2.0, "diverged": 1.0}
    failed = next(o for o in observations if o.state == "failed")
    assert failed.values[SPIKES] is None  # neither finished nor diverged: no value
    result = checks.evaluate(checks.parse({"kind": "threshold", "metric": SPIKES, "op": ">=", "value": 1.0,
                                           "where": {"model.arch": "gru", "train.lr": 0.001}}, "check[0]",
                                          {"model.arch", "train.lr"}, "loss", None), observations)
    assert result.per_seed == {0: None, 1: 2.0}  # seed 0's trial finished without train events: no curve
