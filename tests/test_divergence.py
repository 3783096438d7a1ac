"""A finite loss that has blown up ends the run `diverged` (exit 3); healthy and noisy runs do not."""

from __future__ import annotations

from typer.testing import CliRunner

from rnnlab import store
from rnnlab.cli import app
from rnnlab.train.divergence import DivergenceWatch

from tiny import overrides


def feed(watch: DivergenceWatch, losses) -> list[int]:
    """The steps (1-based) at which the watch says the run diverged."""
    return [step for step, loss in enumerate(losses, 1) if watch.observe(loss) is not None]


def test_a_loss_that_stays_far_above_its_start_diverges_after_patience_steps():
    watch = DivergenceWatch(factor=10, patience=5, baseline=3.4)
    fired = feed(watch, [4.7, 733.0, 1556.0, 3308.0, 4958.0, 7980.0, 9407.0])
    assert watch.reference == 4.7 and fired == [6, 7]  # steps 2..6 are the five above 47


def test_the_reason_names_the_bar_and_the_start():
    watch = DivergenceWatch(factor=10, patience=2, baseline=None)
    assert watch.observe(4.7) is None and watch.observe(100.0) is None
    assert watch.observe(200.0) == "loss 200 stayed above 47 (10 x its starting level 4.7) for 2 steps"


def test_spikes_that_recover_never_diverge():
    # a noisy early loss (a time series, a first Adam step): above the bar, but never for `patience` steps running
    spikes = [0.1] + [2.0, 2.0, 2.0, 2.0, 0.09] * 20
    assert feed(DivergenceWatch(factor=10, patience=5, baseline=0.05), spikes) == []


def test_the_baseline_raises_a_bar_set_by_a_lucky_first_loss():
    # an MSE run whose first batch happened to be easy: 10 x 0.001 would flag ordinary losses near the baseline
    watch = DivergenceWatch(factor=10, patience=3, baseline=0.2)
    assert feed(watch, [0.001] + [0.5] * 10) == [] and watch.reference == 0.2
    assert feed(DivergenceWatch(factor=10, patience=3, baseline=None), [0.001] + [0.5] * 3) == [4]


def test_factor_0_turns_it_off_and_a_resume_keeps_the_reference():
    assert feed(DivergenceWatch(factor=0, patience=1, baseline=None), [1.0, 1e9, 1e9]) == []
    resumed = DivergenceWatch(factor=10, patience=2, baseline=None, reference=4.7)
    assert feed(resumed, [60.0, 60.0]) == [2]  # 60 is above 10 x the start of the run, not of the resume


def run(tmp_path, **extra):
    sets = [item for text in overrides(tmp_path, train__eval_every=0, **extra) for item in ("--set", text)]
    result = CliRunner().invoke(app, ["run", *sets, "--runs-dir", str(tmp_path / "runs"), "-q"])
    (path,) = (tmp_path / "runs").iterdir()
    return result, store.RunDir(path)


def test_a_blown_up_finite_loss_ends_the_run_diverged_with_exit_3(tmp_path):
    # issue 12: lr 1e4 without clipping left a char LM at ~8000 nats/char, "finished" with exit 0
    result, run_dir = run(tmp_path, train__lr=1e4, train__clip_mode="none", train__steps=80)
    assert result.exit_code == 3, result.output
    status = run_dir.read_status()
    assert status["state"] == "diverged" and status["step"] == 50
    assert "stayed above" in status["error"] and "lower train.lr or clip the gradients" in status["error"]
    losses = [e["loss"] for e in run_dir.read_events() if e["kind"] == "train"]
    assert all(loss == loss and loss < 1e30 for loss in losses)  # finite all along: the NaN check never saw it
    assert [e["state"] for e in run_dir.read_events() if e["kind"] == "end"] == ["diverged"]


def test_a_healthy_run_stays_finished(tmp_path):
    result, run_dir = run(tmp_path, train__steps=60)
    assert result.exit_code == 0, result.output
    assert run_dir.read_status()["state"] == "finished"
