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


# -- samples: `sample = N` in [study] (rnnlab/studies/samples.py) ----------------------------------------

def tiny_sweep(tmp_path):
    """A sweep record: hidden 8 (seed 1 finished without a checkpoint, seed 0 trained), hidden 16 (seed 0
    failed, seed 1 trained): only the lowest finished seed of each point may be sampled."""
    from rnnlab import store
    from rnnlab.sweeps.spec import trial_key
    from rnnlab.train import Trainer, prepare
    from tiny import tiny_config

    runs = tmp_path / "runs"
    trials = []
    for hidden, seed, state in ((8, 1, "finished"), (8, 0, "finished"), (16, 0, "failed"), (16, 1, "finished")):
        point = {"model.hidden": hidden}
        trial = {"key": trial_key(point, seed), "point": point, "seed": seed, "overrides": [], "run": None,
                 "state": state}
        if (hidden, seed) == (8, 1):  # finished, but nothing to sample: choosing it would fail the test
            run = store.create_run(runs, "h8-s1")
            run.write_status({"id": run.id, "state": "finished", "step": 8})
            trial["run"] = run.id
        elif state == "finished":
            cfg = tiny_config(tmp_path, model__hidden=hidden, seed=seed, train__steps=8)
            run = store.create_run(runs, f"h{hidden}-s{seed}")
            store.atomic_write(run.config_path, cfg.to_toml().encode())
            assert Trainer(prepare(cfg), run).train().state == "finished"
            trial["run"] = run.id
        trials.append(trial)
    sweep = store.SweepDir(runs / store.SWEEPS / "20261202-050000-tiny-aaaa")
    sweep.path.mkdir(parents=True)
    record = {"format": 1, "id": sweep.id, "name": "tiny", "state": "finished", "metric": "loss", "goal": "min",
              "spec": {"model.hidden": [8, 16], "seeds": [0, 1], "metric": "loss", "goal": "min"},
              "trials": trials}
    sweep.write(record)
    return sweep, record


def test_samples_come_from_each_points_lowest_finished_seed_as_sampling_gives_them(tmp_path):
    import torch

    from rnnlab import sampling, store
    from rnnlab.console import sample_text
    from rnnlab.studies.report import section
    from rnnlab.studies.samples import collect

    sweep, record = tiny_sweep(tmp_path)
    samples = collect(sweep, record, 40)
    assert [(s["point"]["model.hidden"], s["seed"]) for s in samples] == [(8, 0), (16, 1)]  # 16's seed 0 failed
    for sample in samples:  # the text is what sampling.generate gives from that trial's best checkpoint
        loaded = sampling.load_language_model(store.RunDir(sweep.runs_dir / sample["run"]), "best")
        torch.manual_seed(123)  # the sample's own generator decides, not the global one
        prompt = sampling.default_prompt(loaded.vocab)
        expected = "".join(sampling.generate(loaded.model, loaded.vocab, prompt, 40, temperature=1.0, seed=0))
        assert sample["text"] == expected and len(sample["text"]) == 40 and sample["step"] == loaded.step == 8
        assert sample["prompt"] == prompt and sample["temperature"] == 1.0
    assert collect(sweep, record, 40) == samples  # evaluated again: the same text
    shown = sample_text(samples[0]).plain
    assert shown == f"sample (model.hidden=8, seed 0, step 8, temperature 1.0):\n{samples[0]['text']}"
    lines = section({"points": [], "checks": [], "keys": [], "samples": samples})
    text = "\n".join(lines)
    assert f"(model.hidden = 16, seed 1, the best checkpoint at step 8, temperature 1.0):\n\n```\n" \
           f"{samples[1]['text']}\n```" in text


def test_a_saved_sample_is_shown_literally_and_cannot_close_its_fence():
    from rnnlab.studies.report import sample_lines
    from rnnlab.studies.report import fence

    hostile = "def f():\n\treturn 1\n````\n\x1b[2J# done"
    lines = sample_lines({"point": {"model.hidden": 8}, "seed": 2, "step": 40, "temperature": 1.0, "text": hostile})
    assert lines[-3] == lines[-1] == "`````" and fence("no ticks") == "```"
    assert lines[-2] == "def f():\n\treturn 1\n````\n\\x1b[2J# done"  # lines and tabs kept, the escape shown
    assert "model.hidden = 8, seed 2" in lines[1]
    failed = sample_lines({"point": {}, "seed": 0, "error": "run x is not a language model"})
    assert failed == ["", "No sample (seed 0): run x is not a language model"]


@pytest.mark.parametrize("value", [0, 2001, "many", True])
def test_a_bad_sample_length_is_one_config_error(tmp_path, value):
    from rnnlab.studies import spec
    from study_fixtures import PASSING, study_text

    shown = f'"{value}"' if isinstance(value, str) else str(value).lower()
    path = tmp_path / "bad.toml"
    path.write_text(study_text(tmp_path, PASSING, head=f"sample = {shown}"), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        spec.load(path)
    assert "study.sample" in str(error.value)


def test_a_difference_as_the_sweeps_own_metric_is_one_config_error(tmp_path):
    from rnnlab.studies import spec
    from study_fixtures import PASSING, study_text

    text = study_text(tmp_path, PASSING).replace("seeds = [0]", 'seeds = [0]\nmetric = "bpc - ngram_bpc"')
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        spec.load(path)
    assert "sweep.metric" in str(error.value) and "goes in a check's metric" in str(error.value)
