"""Claims 8 and 9's additions: the `slope` check kind, the step_seconds and rtrl_gap metrics, and RTRL's
own comparison with BPTT's gradient (train.rtrl_check_every)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rnnlab import config, store
from rnnlab.errors import ConfigError
from rnnlab.studies import checks
from rnnlab.studies.checks import Observation
from rnnlab.studies.metrics import value
from rnnlab.train.loop import Trainer, prepare

SWEPT = {"train.algorithm", "model.hidden"}


def slope_check(**table):
    return checks.parse({"kind": "slope", "key": "model.hidden", **table}, "check[0]", SWEPT, "step_seconds", None)


def timings(per_seed: dict) -> list[Observation]:
    """{seed: {hidden: seconds}} for RTRL, and BPTT at a flat 1 ms."""
    out = []
    for seed, by_n in per_seed.items():
        for n, seconds in by_n.items():
            out.append(Observation({"train.algorithm": "rtrl", "model.hidden": n}, seed, {"step_seconds": seconds}))
            out.append(Observation({"train.algorithm": "bptt", "model.hidden": n}, seed, {"step_seconds": 1e-3}))
    return out


def test_slope_is_the_least_squares_power_against_numpy():
    rng = np.random.default_rng(0)
    ns = [4, 8, 16, 32, 64]
    noisy = {n: 2e-6 * n ** 3.2 * math.exp(rng.normal(0, 0.1)) for n in ns}
    expected = np.polyfit(np.log(ns), np.log([noisy[n] for n in ns]), 1)[0]
    assert checks.log_log_slope(ns, [noisy[n] for n in ns]) == pytest.approx(expected, rel=1e-12)
    assert checks.log_log_slope([4, 8], [0.0, 1.0]) is None  # no power law through zero
    assert checks.log_log_slope([8, 8], [1.0, 2.0]) is None  # one x: no line


def test_slope_check_passes_fails_and_reads_only_its_points():
    quartic = {n: 1e-7 * n ** 4 for n in (8, 16, 32)}
    cubic = {n: 1e-7 * n ** 3 for n in (8, 16, 32)}
    theory = slope_check(where={"train.algorithm": "rtrl"}, within=[3.5, 4.5])
    result = checks.evaluate(theory, timings({0: quartic, 1: quartic}))
    assert result.outcome == "pass" and result.measured == pytest.approx(4.0)
    assert checks.evaluate(theory, timings({0: cubic, 1: cubic})).outcome == "fail"
    split = checks.evaluate(theory, timings({0: quartic, 1: cubic}))
    assert split.outcome == "inconclusive" and split.per_seed == pytest.approx({0: 4.0, 1: 3.0})
    # BPTT's flat 1 ms: slope 0, and the where keeps it out of RTRL's fit
    flat = slope_check(where={"train.algorithm": "bptt"}, within=[-0.1, 0.1])
    assert checks.evaluate(flat, timings({0: quartic})).measured == pytest.approx(0.0)
    assert theory.expected() == "log-log slope over model.hidden in [3.5, 4.5]"


def test_bad_slope_checks_are_one_line_errors():
    with pytest.raises(ConfigError, match="within"):
        slope_check(within=[4.5, 3.5])
    with pytest.raises(ConfigError, match="check\\[0\\].key"):
        checks.parse({"kind": "slope", "key": "task.length", "within": [3, 5]}, "check[0]", SWEPT, "loss", None)
    with pytest.raises(ConfigError, match="not a key of a slope check"):
        slope_check(within=[3, 5], direction="increasing")


def test_step_seconds_is_the_median_window_and_rtrl_gap_the_largest():
    # steps 10 ms apart, one 2 s evaluation after step 15: the median over windows of 10 passes over it
    times, t = [], 0.0
    for step in range(1, 31):
        t += 0.010 + (2.0 if step == 16 else 0.0)
        times.append(round(t, 3))
    events = [{"kind": "train", "step": i + 1, "t": t} for i, t in enumerate(times)]
    events[0]["rtrl_gap"], events[20]["rtrl_gap"] = 3e-7, 5e-7
    events.insert(16, {"kind": "eval", "step": 16, "t": times[15] + 1.9, "loss": 1.0})
    assert value(events, "step_seconds") == pytest.approx(0.010, abs=2e-4)
    assert value(events, "rtrl_gap") == pytest.approx(5e-7)
    assert value(events[:1], "step_seconds") is None  # one step: no gap
    assert value([e for e in events if "rtrl_gap" not in e], "rtrl_gap") is None


def tiny_rtrl(tmp_path, sets):
    cfg = config.load(None, ["model.arch=elman", "model.hidden=4", "model.layers=1", "model.embed=3",
                             "task.name=delayed_recall", "task.length=5", "task.delay=1", "task.symbols=3",
                             "train.algorithm=rtrl", "train.batch_size=2", "train.steps=3", "train.eval_every=0",
                             "train.checkpoint_every=0", "probes.every=0", "device=cpu", *sets])
    prepared = prepare(cfg)
    run = store.create_run(tmp_path, "rtrl-gap")
    return Trainer(prepared, run), run


def test_rtrl_records_its_gap_to_bptt_on_the_chosen_steps(tmp_path):
    trainer, run = tiny_rtrl(tmp_path, ["train.rtrl_check_every=2"])
    assert trainer.train().state == "finished"
    train = [e for e in run.read_events() if e["kind"] == "train"]
    assert [("rtrl_gap" in e) for e in train] == [True, False, True]  # steps 1 and 3
    assert all(0 <= e["rtrl_gap"] < 1e-5 for e in train if "rtrl_gap" in e)  # float32 rounding only
    assert trainer.algorithm.state_dict() == {"steps_taken": 3}  # a resumed run keeps the schedule


def test_the_gap_measures_a_wrong_gradient(tmp_path):
    trainer, _ = tiny_rtrl(tmp_path, [])
    rtrl, model = trainer.algorithm, trainer.model.double()
    x, y, mask = rtrl.task.train_batch(2, torch.Generator().manual_seed(3))
    params = dict(rtrl.step_model.named_parameters())
    output, _ = model(x)
    found = torch.autograd.grad(rtrl.task.loss(output, y, mask), [params[n] for n in rtrl.names])
    exact = torch.cat([g.flatten() for g in found])  # (P,)
    assert rtrl.bptt_gap(model, (x, y, mask), exact) == pytest.approx(0.0, abs=1e-12)
    assert rtrl.bptt_gap(model, (x, y, mask), 1.5 * exact) == pytest.approx(0.5, rel=1e-9)


def test_online_rtrl_refuses_a_bptt_check():
    with pytest.raises(ConfigError, match="train.rtrl_check_every"):
        config.load(None, ["train.algorithm=rtrl", "train.rtrl_mode=online", "train.rtrl_check_every=1"])
    config.load(None, ["train.algorithm=bptt", "train.rtrl_check_every=1"])  # ignored by the others
