"""A study's checks on fixture results: pass, fail and inconclusive for each kind, and the verdict."""

from __future__ import annotations

import pytest

from rnnlab.errors import ConfigError
from rnnlab.studies import checks
from rnnlab.studies.checks import Observation
from rnnlab.studies.metrics import value

SWEPT = {"model.arch", "task.length", "model.spectral_radius"}


def check(**table):
    return checks.parse(table, "check[0]", SWEPT, "error_rate", None)


def grid(values: dict) -> list[Observation]:
    """{(arch, length): [value per seed]} -> observations (None: the trial did not finish)."""
    return [Observation({"model.arch": arch, "task.length": length}, seed, {"error_rate": v})
            for (arch, length), per_seed in values.items() for seed, v in enumerate(per_seed)]


ELMAN_FAILS = {("elman", 10): [0.0, 0.0], ("elman", 30): [0.5, 0.45], ("elman", 100): [0.52, 0.5],
               ("lstm", 10): [0.0, 0.0], ("lstm", 30): [0.0, 0.01], ("lstm", 100): [0.02, 0.0]}


def test_threshold_each_point_must_pass_and_seeds_must_agree():
    elman = check(kind="threshold", where={"model.arch": "elman", "task.length": {"ge": 20}}, op=">=", value=0.4)
    result = checks.evaluate(elman, grid(ELMAN_FAILS))
    assert result.outcome == "pass"
    assert result.measured == pytest.approx(0.475)  # the worst point's seed mean: (0.5 + 0.45) / 2
    assert result.per_seed == {0: 0.5, 1: 0.45}
    strict = check(kind="threshold", where={"model.arch": "elman", "task.length": {"ge": 20}}, op=">=", value=0.6)
    assert checks.evaluate(strict, grid(ELMAN_FAILS)).outcome == "fail"
    split = check(kind="threshold", where={"model.arch": "elman", "task.length": {"ge": 20}}, op=">=", value=0.48)
    result = checks.evaluate(split, grid(ELMAN_FAILS))  # seed 0 worst 0.5 passes, seed 1 worst 0.45 fails
    assert result.outcome == "inconclusive" and "seeds disagree" in result.reason


def test_threshold_reductions_over_points():
    mean = check(kind="threshold", where={"model.arch": "lstm"}, op="<=", value=0.005, over="mean")
    assert checks.evaluate(mean, grid(ELMAN_FAILS)).per_seed == pytest.approx({0: 0.02 / 3, 1: 0.01 / 3})
    assert checks.evaluate(mean, grid(ELMAN_FAILS)).outcome == "inconclusive"  # 0.0067 fails, 0.0033 passes
    most = check(kind="threshold", where={"model.arch": "lstm"}, op="<", value=0.05, over="max")
    assert checks.evaluate(most, grid(ELMAN_FAILS)).outcome == "pass"


def test_an_unfinished_trial_makes_a_check_inconclusive_not_failed():
    values = {**ELMAN_FAILS, ("lstm", 100): [0.0, None]}
    lstm = check(kind="threshold", where={"model.arch": "lstm", "task.length": 100}, op="<=", value=0.05)
    result = checks.evaluate(lstm, grid(values))
    assert result.outcome == "inconclusive" and "1 of 2 seeds" in result.reason
    relaxed = check(kind="threshold", where={"model.arch": "lstm", "task.length": 100}, op="<=", value=0.05,
                    min_seeds=1)
    assert checks.evaluate(relaxed, grid(values)).outcome == "pass"
    nothing = check(kind="threshold", where={"task.length": 7}, op="<=", value=1)
    assert checks.evaluate(nothing, grid(values)).reason == "no sweep point matches it"


def test_compare_ratio_and_difference_are_paired_by_seed():
    obs = [Observation({"model.arch": a}, s, {"error_rate": v})
           for a, vs in {"gru": [1.05, 1.30], "lstm": [1.00, 1.00]}.items() for s, v in enumerate(vs)]
    within = check(kind="compare", a={"model.arch": "gru"}, b={"model.arch": "lstm"}, op="<=", value=1.1)
    result = checks.evaluate(within, obs)
    assert result.per_seed == pytest.approx({0: 1.05, 1: 1.30}) and result.outcome == "inconclusive"
    assert result.measured == pytest.approx(1.175)
    loose = check(kind="compare", a={"model.arch": "gru"}, b={"model.arch": "lstm"}, op="<=", value=1.5)
    assert checks.evaluate(loose, obs).outcome == "pass"
    diff = check(kind="compare", a={"model.arch": "gru"}, b={"model.arch": "lstm"}, mode="difference",
                 op="<", value=0.0)
    assert checks.evaluate(diff, obs).outcome == "fail" and checks.evaluate(diff, obs).per_seed[1] == pytest.approx(0.3)


def radius_sweep(curves: list[list[float]]) -> list[Observation]:
    radii = [0.3, 0.9, 1.1, 1.5, 2.0]
    return [Observation({"model.spectral_radius": r}, seed, {"nrmse": v})
            for seed, curve in enumerate(curves) for r, v in zip(radii, curve)]


def test_argbest_finds_the_optimum_per_seed():
    best = checks.parse({"kind": "argbest", "key": "model.spectral_radius", "within": [0.9, 1.25]},
                        "check[0]", SWEPT, "nrmse", None)
    assert best.goal == "min"
    agree = radius_sweep([[0.1, 0.01, 0.005, 0.02, 0.3], [0.2, 0.004, 0.006, 0.03, 0.4]])
    result = checks.evaluate(best, agree)
    assert result.outcome == "pass" and result.per_seed == {0: 1.1, 1: 0.9}
    assert result.measured == 1.1  # the seed means: 0.007 at 0.9, 0.0055 at 1.1
    small = radius_sweep([[0.001, 0.01, 0.005, 0.02, 0.3], [0.002, 0.004, 0.006, 0.03, 0.4]])
    assert checks.evaluate(best, small).outcome == "fail"  # both seeds best at 0.3
    split = radius_sweep([[0.1, 0.01, 0.005, 0.02, 0.3], [0.002, 0.004, 0.006, 0.03, 0.4]])
    assert checks.evaluate(best, split).outcome == "inconclusive"
    higher = checks.parse({"kind": "argbest", "key": "model.spectral_radius", "within": [0.2, 0.5],
                           "goal": "max"}, "check[0]", SWEPT, "nrmse", None)
    assert checks.evaluate(higher, agree).per_seed == {0: 2.0, 1: 2.0}


def test_trend_counts_steps_against_it():
    rising = check(kind="trend", key="task.length", direction="increasing", where={"model.arch": "elman"})
    result = checks.evaluate(rising, grid(ELMAN_FAILS))
    assert result.outcome == "pass" and result.per_seed == {0: 0.0, 1: 0.0}  # 0 -> 0.5 -> 0.52, 0 -> 0.45 -> 0.5


def test_trend_with_slack():
    obs = grid({("elman", 10): [0.1, 0.1], ("elman", 30): [0.5, 0.5], ("elman", 100): [0.48, 0.3]})
    rising = check(kind="trend", key="task.length", direction="increasing")
    assert checks.evaluate(rising, obs).outcome == "fail"  # both fall after 30
    slack = check(kind="trend", key="task.length", direction="increasing", slack=0.1)
    result = checks.evaluate(slack, obs)  # 0.5 -> 0.48 is within 10%, 0.5 -> 0.3 is not
    assert result.per_seed == {0: 0.0, 1: 1.0} and result.outcome == "inconclusive"
    falling = check(kind="trend", key="task.length", direction="decreasing")
    assert checks.evaluate(falling, obs).per_seed == {0: 1.0, 1: 1.0}


def test_the_verdict():
    assert checks.verdict(["pass", "pass"]) == "reproduced"
    assert checks.verdict(["pass", "fail", "inconclusive"]) == "not reproduced"
    assert checks.verdict(["pass", "inconclusive"]) == "inconclusive"
    assert checks.verdict([]) == "inconclusive"


@pytest.mark.parametrize("table, key", [
    ({"kind": "median"}, "check[0].kind"),
    ({"kind": "threshold", "op": ">=", "value": 1, "wher": {}}, "check[0].wher"),
    ({"kind": "threshold", "op": "=>", "value": 1}, "check[0].op"),
    ({"kind": "threshold", "op": ">=", "value": "high"}, "check[0].value"),
    ({"kind": "threshold", "op": ">=", "value": 1, "over": "sum"}, "check[0].over"),
    ({"kind": "threshold", "op": ">=", "value": 1, "where": {"model.hidden": 8}}, "check[0].where.model.hidden"),
    ({"kind": "threshold", "op": ">=", "value": 1, "where": {"task.length": {"atleast": 8}}},
     "check[0].where.task.length.atleast"),
    ({"kind": "compare", "a": {}, "op": "<", "value": 1}, "check[0].b"),
    ({"kind": "compare", "a": {}, "b": {}, "op": "<", "value": 1, "mode": "log"}, "check[0].mode"),
    ({"kind": "argbest", "key": "model.leak", "within": [0, 1]}, "check[0].key"),
    ({"kind": "argbest", "key": "task.length", "within": [2, 1]}, "check[0].within"),
    ({"kind": "argbest", "key": "task.length", "within": ["a", 1]}, "check[0].within"),
    ({"kind": "trend", "key": "task.length", "direction": "up"}, "check[0].direction"),
    ({"kind": "trend", "key": "task.length", "direction": "increasing", "slack": -1}, "check[0].slack"),
    ({"kind": "trend", "key": "task.length", "direction": "increasing", "min_seeds": 0}, "check[0].min_seeds"),
])
def test_bad_checks_are_one_line_errors_naming_the_key(table, key):
    with pytest.raises(ConfigError) as error:
        checks.parse(table, "check[0]", SWEPT, "error_rate", None)
    assert error.value.key == key and "\n" not in str(error.value)


def test_metrics_read_the_last_eval_its_by_length_and_the_gradient_flow():
    events = [{"kind": "eval", "step": 10, "error_rate": 0.5},
              {"kind": "gradflow", "step": 20, "layers": {"layer0": {"last": [0.001, 0.01, 0.1], "total": [1, 1, 1]}}},
              {"kind": "eval", "step": 20, "error_rate": 0.25, "loss": float("nan"),
               "by_length": {"40": {"error_rate": 0.75}}}]
    assert value(events, "error_rate") == 0.25
    assert value(events, "error_rate@40") == 0.75
    assert value(events, "error_rate@80") is None
    assert value(events, "loss") is None  # not finite
    assert value(events, "grad_h0") == 0.001
    assert value(events, "grad_ratio") == pytest.approx(0.01)
    assert value(events[:1], "grad_h0") is None


def test_observations_read_a_sweeps_trials_and_count_divergence(tmp_path):
    from rnnlab import store
    from rnnlab.studies.metrics import observe
    from tui_fixtures import synthetic_sweep

    sweep = synthetic_sweep(tmp_path / "runs")
    record = sweep.read()
    store.RunDir(sweep.runs_dir / record["trials"][1]["run"]).update_status(state="diverged")
    observations = observe(sweep, record, ["loss", "diverged"])
    by_state = {o.state: o.values for o in observations}
    assert observations[0].values == {"loss": 2.0, "diverged": 0.0}  # gru, lr 0.001, seed 0
    assert by_state["diverged"] == {"loss": None, "diverged": 1.0}
    assert by_state["failed"] == {"loss": None, "diverged": None}  # neither finished nor diverged: no value
    assert by_state["running"] == {"loss": None, "diverged": None}
    result = checks.evaluate(checks.parse({"kind": "threshold", "metric": "diverged", "where": {"model.arch": "gru"},
                                           "op": "<=", "value": 0.0, "over": "max"}, "check[0]",
                                          {"model.arch", "train.lr"}, "loss", None), observations)
    assert result.per_seed == {0: 0.0, 1: 1.0} and result.outcome == "inconclusive"
