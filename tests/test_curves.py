"""RunCurves: events in, series out; resume rewrites history; unknown kinds skipped."""

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
