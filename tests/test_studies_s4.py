"""Claims 11 and 12's additions to the studies: the metric "A - B" (two values of one trial, subtracted)."""

from __future__ import annotations

import pytest

from rnnlab.errors import ConfigError
from rnnlab.studies import checks
from rnnlab.studies.checks import Observation
from rnnlab.studies.metrics import check_metric_name, difference, value

EVENTS = [{"kind": "eval", "step": 100, "loss": 2.0, "loss_free_running": 5.0},
          {"kind": "eval", "step": 200, "loss": 1.5, "loss_free_running": 4.25, "bpc": 2.5, "ngram_bpc": 2.0,
           "exact@1-10": 0.5, "by_length": {"40": {"error_rate": 0.75}}, "nan": float("nan")}]


def test_a_difference_reads_both_sides_from_the_last_eval():
    assert value(EVENTS, "loss_free_running - loss") == pytest.approx(2.75)  # 4.25 - 1.5, not the first eval's
    assert value(EVENTS, "bpc - ngram_bpc") == pytest.approx(0.5)
    assert value(EVENTS, "error_rate@40 - loss") == pytest.approx(-0.75)
    assert value(EVENTS, "bpc - missing") is None and value(EVENTS, "nan - loss") is None
    assert value(EVENTS[:0], "bpc - loss") is None


def test_a_hyphen_without_spaces_stays_part_of_a_key():
    assert difference("exact@1-10") is None and difference("bpc-ngram_bpc") is None
    assert difference("bpc - ngram_bpc") == ("bpc", "ngram_bpc")


@pytest.mark.parametrize("name", ["loss_free_running - loss", "bpc - baseline_bpc", "error_rate@40 - error_rate",
                                  "grad_h0 - grad_ratio"])
def test_differences_of_metric_names_are_metric_names(name):
    check_metric_name(name, "check[0].metric")


@pytest.mark.parametrize("name", ["bpc - ", "bpc -  loss", "bpc - 3", "diverged - loss", "a - b - c", "bpc -loss"])
def test_a_bad_difference_is_one_config_error(name):
    with pytest.raises(ConfigError) as error:
        check_metric_name(name, "check[0].metric")
    assert "check[0].metric" in str(error.value) and "A - B" in str(error.value)


def test_checks_on_a_difference_exposure_bias_gap():
    """Claim 12's checks on fixture values: the gap is positive under teacher forcing, smaller with sampling."""
    gap = "loss_free_running - loss"
    runs = {("none", 0): (2.1, 5.1), ("none", 1): (2.0, 4.6), ("inverse_sigmoid", 0): (2.4, 4.1),
            ("inverse_sigmoid", 1): (2.5, 4.9)}
    obs = [Observation({"train.scheduled_sampling": s}, seed, {gap: value([{"kind": "eval", "loss": tf,
                                                                            "loss_free_running": fr}], gap)})
           for (s, seed), (tf, fr) in runs.items()]
    parse = lambda **t: checks.parse(t, "check[0]", {"train.scheduled_sampling"}, gap, None)  # noqa: E731
    positive = parse(kind="threshold", where={"train.scheduled_sampling": "none"}, op=">", value=0.0)
    assert checks.evaluate(positive, obs).outcome == "pass"
    assert checks.evaluate(positive, obs).measured == pytest.approx(2.8)  # the seed means' (3.0 + 2.6) / 2
    narrower = parse(kind="compare", a={"train.scheduled_sampling": "inverse_sigmoid"},
                     b={"train.scheduled_sampling": "none"}, mode="difference", op="<", value=0.0)
    result = checks.evaluate(narrower, obs)  # seed 0: 1.7 - 3.0 < 0 passes; seed 1: 2.4 - 2.6 passes too
    assert result.outcome == "pass" and result.per_seed == pytest.approx({0: -1.3, 1: -0.2})
    obs[3].values[gap] = 2.9  # seed 1's sampled gap now wider than its teacher-forced one: the seeds disagree
    assert checks.evaluate(narrower, obs).outcome == "inconclusive"
