"""RunCurves: events in, series out; resume rewrites history; unknown kinds skipped."""

import pytest

from rnnlab.curves import RunCurves


def train(step, loss):
    return {"kind": "train", "step": step, "t": step * 0.1, "loss": loss, "lr": 0.01, "grad_norm": 1.0,
            "clipped": False, "tokens_per_s": 100.0}


def test_feed_builds_series_and_resume_drops_rewritten_steps():
    curves = RunCurves()
    curves.feed([{"kind": "start", "step": 0, "t": 0, "baseline": 3.0}] + [train(s, 5.0 - s) for s in range(1, 5)])
    curves.feed([{"kind": "eval", "step": 4, "t": 1, "loss": 1.5}, {"kind": "mystery", "step": 4, "t": 1}])
    assert curves.train_loss.xs == [1, 2, 3, 4] and curves.val_loss.ys == [1.5]
    assert curves.skipped == 1 and curves.start["baseline"] == 3.0 and curves.step == 4
    curves.feed([{"kind": "resume", "step": 2, "t": 0.2}, train(3, 9.0)])
    assert curves.train_loss.xs == [1, 2, 3] and curves.train_loss.ys[-1] == 9.0
    assert curves.val_loss.xs == [] and curves.tokens_per_s_recent == 100.0


def test_probe_events_fill_the_diagnostics():
    curves = RunCurves()
    curves.feed([
        {"kind": "gradnorm", "step": 10, "t": 1, "groups": {"layer0": 0.5, "layer0.hh.forget": 0.1, "head": 2.0},
         "clip": 5.0, "clipped_share": 0.0},
        {"kind": "spectrum", "step": 10, "t": 1, "matrices": {"layer0": {"radius": 0.9, "eig_re": [0.9], "eig_im": [0.0]}}},
        {"kind": "spectrum", "step": 20, "t": 2, "matrices": {"layer0": {"radius": 1.1, "eig_re": [1.1], "eig_im": [0.0]}},
         "jacobian": {"layer0": {"t": [1], "sv": [[1.0]], "log_product_norm": [0.0]}}},
        {"kind": "end", "step": 20, "t": 2, "state": "finished", "error": None},
    ])
    assert list(curves.layer_grad_norms) == ["layer0"] and curves.clip == 5.0
    assert curves.radius["layer0"].ys == [0.9, 1.1] and curves.jacobian["step"] == 20
    assert curves.end["state"] == "finished" and curves.logs[-1] == "[step 20] finished"


def test_reference_levels_follow_the_latest_evaluation():
    from rnnlab.curves import reference_levels

    start = {"kind": "start", "baseline": 3.17, "ngram": 1.40}  # scored on the whole validation text
    assert reference_levels(start, None) == {"baseline": 3.17, "ngram": 1.40}
    judged = {"kind": "eval", "loss": 1.6, "baseline": 3.27, "ngram": 1.58}  # on the tokens it judged
    assert reference_levels(start, judged) == {"baseline": 3.27, "ngram": 1.58}
    assert reference_levels(None, {"kind": "eval", "loss": 0.1, "baseline": 0.167}) == {"baseline": 0.167,
                                                                                          "ngram": None}


def length_eval(step, by_length, **extra):
    return {"kind": "eval", "step": step, "t": 1, "loss": 0.5, "error_rate": 0.1, "by_length": by_length,
            "trained_lengths": [1, 10], "length_metric": "error_rate", **extra}


def test_by_length_becomes_the_latest_scores_and_a_series_per_length():
    curves = RunCurves()
    curves.feed([length_eval(100, {"30": {"error_rate": 0.4}, "15": {"error_rate": 0.2}}),
                 length_eval(200, {"30": {"error_rate": 0.3}, "15": {"error_rate": 0.1}}, error_rate=0.05)])
    scores = curves.lengths
    assert (scores.step, scores.lengths, scores.values) == (200, [15, 30], [0.1, 0.3])  # sorted by length
    assert scores.trained == (1, 10) and scores.in_range == 0.05 and scores.metric == "error_rate"
    assert curves.by_length[30].xs == [100, 200] and curves.by_length[30].ys == [0.4, 0.3]
    assert curves.in_range.ys == [0.1, 0.05]
    curves.feed([{"kind": "resume", "step": 150, "t": 0}])  # the step-200 evaluation is rewritten
    assert curves.lengths is None and curves.by_length[30].xs == [100] and curves.in_range.xs == [100]


def test_old_evals_without_by_length_still_plot():
    from rnnlab.report import length_plot, run_plots

    events = [train(s, 2.0 / s) for s in range(1, 6)] + [{"kind": "eval", "step": 5, "t": 1, "loss": 0.4}]
    curves = RunCurves()
    curves.feed(events)
    assert curves.lengths is None and curves.by_length == {} and curves.val_loss.ys == [0.4]
    assert length_plot(events, 80, 16, False) is None
    assert len(run_plots(events, 80, False)) == 2 and "loss" in run_plots(events, 80, False)[0]


def test_untrusted_by_length_values_are_skipped_not_raised():
    from rnnlab.curves import length_scores

    hostile = {"30": {"error_rate": "0.5"}, "1e3": {"error_rate": 0.1}, "-4": {"error_rate": 0.1},
               " 7": {"error_rate": 0.1}, "40": {"error_rate": float("nan")}, "50": {"error_rate": True},
               "60": [0.2], "70": {"loss": 0.3}, "80": {"error_rate": 0.25}}
    scores = length_scores(length_eval(3, hostile, trained_lengths=["1", 10], length_metric=7, error_rate="x"))
    assert (scores.lengths, scores.values) == ([80], [0.25])  # the one drawable point
    assert scores.trained is None and scores.in_range is None and scores.metric == "error_rate"
    assert length_scores(length_eval(3, {"30": {"error_rate": None}})) is None
    assert length_scores(length_eval(3, ["30"])) is None
    assert length_scores(length_eval(3, {"5": {"exact": 1}}, length_metric="exact", trained_lengths=[9, 3])).trained \
        is None  # a range whose ends are the wrong way round is not drawn


def test_smoothing_is_the_debiased_ema_tensorboard_draws():
    from rnnlab.curves import smooth

    ys = [3.0, 1.0, 2.0, float("nan"), 4.0, None, 0.5]
    w = 0.6
    # by the formula, written out: s_n = (w s_{n-1} + (1 - w) y_n) over finite y, shown as s_n / (1 - w^n)
    expected, s, n = [], 0.0, 0
    for y in ys:
        if y is None or y != y:
            expected.append(y)
            continue
        s, n = w * s + (1 - w) * y, n + 1
        expected.append(s / (1 - w ** n))
    got = smooth(ys, w)
    assert got[0] == pytest.approx(3.0)  # not biased toward 0: the first value is itself
    assert [g for g in got if g is None or g == g] == pytest.approx([e for e in expected if e is None or e == e])
    assert got[3] != got[3] and got[5] is None  # a gap stays a gap
    assert got[2] == pytest.approx((0.6 * (0.6 * 0.4 * 3.0 + 0.4 * 1.0) + 0.4 * 2.0) / (1 - 0.6 ** 3))
    assert smooth(ys[:3], 0.0) == pytest.approx(ys[:3])  # weight 0: the raw values
    constant = smooth([2.0] * 50, 0.99)
    assert constant == pytest.approx([2.0] * 50)  # a flat series stays flat from its first point
    with pytest.raises(ValueError):
        smooth(ys, 1.0)
