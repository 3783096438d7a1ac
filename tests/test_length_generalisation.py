"""Length generalisation (rnnlab/tasks/lengths.py): batches at length n, training ranges, by_length in evals."""

from __future__ import annotations

import contextlib
import math

import pytest
import torch
import torch.nn.functional as F

from rnnlab import config, store
from rnnlab.errors import ConfigError
from rnnlab.tasks import build_task
from rnnlab.tasks.seq2seq import PAD
from rnnlab.train import Trainer, prepare
from rnnlab.train.evaluation import validation_metrics


def load(name, *sets):
    return config.load(None, [f"task.name={name}", "device=cpu", *sets])


def task(name, *sets):
    return build_task(load(name, *sets).task, 0)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# -- a batch at length n ---------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 4, 13])
def test_copy_at_length_n_copies_n_symbols(n):
    copy = task("copy", "task.length=6")
    x, y, mask = copy.batch_at(5, gen(), n)
    assert x.shape == y.shape == (5, 6 + 2 * n) and mask is None
    assert bool(((x[:, :n] >= 1) & (x[:, :n] <= 8)).all())  # the symbols first
    assert bool((x[:, n + 5] == 9).all()) and int((x == 9).sum()) == 5  # one delimiter each, after T - 1 blanks
    assert bool((x[:, n:n + 5] == 0).all()) and bool((x[:, n + 6:] == 0).all())
    assert torch.equal(y[:, -n:], x[:, :n]) and bool((y[:, :-n] == 0).all())  # then the same n symbols
    wrong = copy.batch_stats(F.one_hot(y, 10).float(), y, None)
    assert wrong == {"wrong": 0.0, "count": float(5 * n)}  # only the n copied symbols are judged


@pytest.mark.parametrize("name,n,shape", [("latch", 7, (3, 8)), ("parity", 9, (3, 9)), ("temporal_order", 15, (3, 15)),
                                          ("delayed_recall", 11, (3, 11)), ("adding", 17, (3, 17, 2))])
def test_memory_and_adding_tasks_at_length_n(name, n, shape):
    t = task(name)
    x, y, mask = t.batch_at(3, gen(), n)
    assert tuple(x.shape) == shape
    if name == "temporal_order":  # the start and end markers, and X/Y in the paper's windows of this length
        assert bool((x[:, 0] == 0).all()) and bool((x[:, -1] == 1).all())
        where = (x >= 2) & (x <= 3)
        assert bool((where.sum(1) == 2).all())
        first = where.float().argmax(1)
        assert bool(((first >= 1) & (first < max(int(0.1 * n) + 2, int(0.2 * n)))).all())
    if name == "delayed_recall":
        assert mask.shape == (3, n) and not bool(mask[:, :5].any()) and bool(mask[:, 5:].all())
        assert torch.equal(y[:, 5:], x[:, :-5])
    if name == "parity":
        assert torch.equal(y, x.sum(1) % 2)


def test_seq2seq_sources_of_length_n():
    reverse = task("reverse", "task.max_len=5")
    x, y, mask = reverse.batch_at(6, gen(), 9)  # beyond max_len
    assert bool(((x != PAD).sum(1) == 9).all()) and y.shape == (6, 10)  # 9 symbols + EOS
    for row in range(6):
        assert reverse.target_tokens(y[row].tolist()) == reverse.source_tokens(x[row].tolist())[::-1]
    addition = task("addition")
    x, y, _ = addition.batch_at(6, gen(), 5)
    for row in range(6):
        a, b = "".join(addition.source_tokens(x[row].tolist())).split("+")
        assert len(a) == len(b) == 5 and "".join(addition.target_tokens(y[row].tolist())) == str(int(a) + int(b))
    assert reverse.trained_lengths() == (3, 5) and addition.trained_lengths() == (1, 3)


# -- training on a range ---------------------------------------------------------------------------

def copy_len_of(copy, x):
    return (x.shape[1] - copy.options.length) // 2


def test_a_range_draws_lengths_within_it_reproducibly():
    copy = task("copy", "task.length=3", "task.train_lengths=[2, 6]")
    assert copy.trained_lengths() == (2, 6)
    first, second = gen(7), gen(7)
    lengths = []
    for _ in range(60):
        x, y, _ = copy.train_batch(4, first)
        again, _, _ = copy.train_batch(4, second)
        assert torch.equal(x, again)  # the same seed, the same stream
        lengths.append(copy_len_of(copy, x))
    assert set(lengths) == {2, 3, 4, 5, 6}  # every length of the range, nothing outside it
    parity = task("parity", "task.train_lengths=[3, 5]")
    assert {parity.train_batch(2, first)[0].shape[1] for _ in range(40)} == {3, 4, 5}


def test_a_resumed_run_draws_the_lengths_the_uninterrupted_one_draws(tmp_path):
    from rnnlab.train.loop import resume_trainer

    def config_for(steps):
        return load("copy", "task.length=2", "task.train_lengths=[1, 8]", "model.arch=lstm", "model.hidden=8",
                    "model.embed=4", "model.layers=1", f"train.steps={steps}", "train.batch_size=4",
                    "train.eval_every=0", "train.checkpoint_every=3", "probes.every=0")

    def curve(run):  # one loss per step: the same batches (lengths included) give the same losses
        return [e["loss"] for e in run.read_events() if e["kind"] == "train"]

    whole = store.create_run(tmp_path, "whole", config_text=config_for(6).to_toml())
    Trainer(prepare(config_for(6)), whole).train()
    parts = store.create_run(tmp_path, "parts", config_text=config_for(3).to_toml())
    Trainer(prepare(config_for(3)), parts).train()
    assert resume_trainer(parts, ["train.steps=6"]).train().state == "finished"
    assert len(curve(whole)) == 6 and curve(parts) == pytest.approx(curve(whole), rel=1e-6)


def test_without_a_range_the_stream_is_the_fixed_length_one():
    copy = task("copy", "task.length=4", "task.copy_len=3")
    x, _, _ = copy.train_batch(5, gen(3))
    expected = torch.randint(1, 9, (5, 3), generator=gen(3))  # what the uRNN copy always drew: no length draw
    assert torch.equal(x[:, :3], expected) and x.shape == (5, 10)
    assert copy.trained_lengths() == (3, 3)


def memoryless_copy_loss(copy, lengths):
    """The token-weighted loss of blanks everywhere and a uniform guess where symbols are copied."""
    total = tokens = 0.0
    for n in lengths:
        x, y, _ = copy.batch_at(8, gen(), n)
        logits = torch.full((*y.shape, 10), -30.0)
        logits[..., 0] = 0.0
        logits[:, -n:, :] = -30.0
        logits[:, -n:, 1:9] = 0.0
        total += float(copy.loss(logits, y, None)) * y.numel()
        tokens += y.numel()
    return total / tokens


def test_the_copy_baseline_over_a_range_is_what_a_memoryless_model_scores():
    copy = task("copy", "task.length=5", "task.train_lengths=[1, 4]")
    assert copy.metrics(0.0)["baseline"] == pytest.approx(memoryless_copy_loss(copy, [1, 2, 3, 4]), rel=1e-5)
    fixed = task("copy", "task.length=5", "task.copy_len=3")
    assert fixed.metrics(0.0)["baseline"] == pytest.approx(3 * math.log(8) / 11)


@pytest.mark.parametrize("sets,problem", [
    (["task.train_lengths=[5]"], "expected \\[min, max\\]"), (["task.train_lengths=[6, 2]"], "min <= max"),
    (["task.eval_lengths=[0]"], "out of range"), (["task.name=temporal_order", "task.eval_lengths=[20, 8]"], ">= 12"),
    (["task.name=delayed_recall", "task.delay=5", "task.train_lengths=[3, 9]"], ">= 6"),
    (["task.name=reverse", "task.eval_lengths=[0]"], "out of range"),
    (["task.name=dates", "task.eval_lengths=[5]"], "unknown key"),  # no length to vary
    (["task.name=reverse", "task.train_lengths=[1, 5]"], "unknown key"),  # min_len..max_len is its range
])
def test_bad_lengths_are_one_line_config_errors(sets, problem):
    with pytest.raises(ConfigError, match=problem):
        config.load(None, ["task.name=copy", *sets])


# -- scoring by length -----------------------------------------------------------------------------

class Oracle(torch.nn.Module):
    """Right by construction: computes each task's answer from the input alone (or, `blind`, never)."""

    def __init__(self, t, blind=False):
        super().__init__()
        self.t, self.blind = t, blind

    def forward(self, x, state=None):
        name, o = self.t.options.name, self.t.options
        out = torch.zeros(*x.shape[:2], self.t.spec.output_size)  # (B, T, classes)
        if name == "adding":
            marked = (x[..., 0] * x[..., 1]).sum(1)  # (B,)
            out[:, -1, 0] = 0.0 if self.blind else marked
            return out, None
        if name == "copy":
            n = (x.shape[1] - o.length) // 2
            answer = torch.zeros_like(x)
            answer[:, -n:] = x[:, :n]
        elif name == "delayed_recall":
            answer = torch.zeros_like(x)
            answer[:, o.delay:] = x[:, :-o.delay]
        else:
            last = {"latch": lambda: x[:, 0], "parity": lambda: x.sum(1) % 2,
                    "temporal_order": lambda: temporal_order_class(x)}[name]()
            answer = torch.zeros_like(x)
            answer[:, -1] = last
        if self.blind:
            answer = torch.zeros_like(answer)
        return F.one_hot(answer, out.shape[-1]).float() * 30.0, None


def temporal_order_class(x):
    marked = [[int(v) - 2 for v in row if v in (2, 3)] for row in x]  # X=0, Y=1, in order of appearance
    return torch.tensor([first * 2 + second for first, second in marked])


@pytest.mark.parametrize("name,sets", [
    ("copy", ["task.length=4", "task.train_lengths=[1, 5]", "task.eval_lengths=[8, 20]"]),
    ("latch", ["task.length=6", "task.eval_lengths=[12, 30]"]),
    ("parity", ["task.length=5", "task.train_lengths=[2, 6]", "task.eval_lengths=[10, 25]"]),
    ("temporal_order", ["task.length=20", "task.eval_lengths=[40, 60]"]),
    ("delayed_recall", ["task.length=10", "task.eval_lengths=[20, 40]"]),
    ("adding", ["task.length=10", "task.eval_lengths=[20, 40]"]),
])
def test_a_perfect_model_scores_zero_at_every_length_and_a_blind_one_does_not(name, sets):
    cfg = load(name, "train.batch_size=8", "train.eval_batches=2", "task.length_batches=2", *sets)
    t = build_task(cfg.task, 0)
    score = lambda model: validation_metrics(model, t, cfg.train, torch.device("cpu"), contextlib.nullcontext())
    perfect, blind = score(Oracle(t)), score(Oracle(t, blind=True))
    assert list(perfect["by_length"]) == [str(n) for n in cfg.task.eval_lengths]
    assert perfect["trained_lengths"] == list(t.trained_lengths()) and perfect["length_metric"] == t.length_metric
    for n in cfg.task.eval_lengths:
        right, wrong = perfect["by_length"][str(n)], blind["by_length"][str(n)]
        assert right[t.length_metric] == pytest.approx(0.0, abs=1e-6) and right["loss"] < 1e-6
        assert wrong[t.length_metric] > 0.1  # a metric that can fail: a model without the answer fails it


def test_each_length_has_its_own_fixed_evaluation_sequences():
    copy = task("copy", "task.eval_lengths=[3, 5]")
    a = list(copy.length_eval_batches(4, 2, 5))
    b = list(copy.length_eval_batches(4, 2, 5))
    assert all(torch.equal(x1, x2) for (x1, _, _), (x2, _, _) in zip(a, b))  # the same every evaluation
    assert not torch.equal(a[0][0], a[1][0]) and a[0][0].shape == (4, copy.options.length + 10)


def test_the_eval_events_of_a_run_carry_by_length(tmp_path):
    cfg = load("copy", "task.length=3", "task.train_lengths=[1, 3]", "task.eval_lengths=[6, 9]", "model.arch=lstm",
               "model.hidden=8", "model.embed=4", "model.layers=1", "train.steps=6", "train.batch_size=4",
               "train.eval_every=3", "train.eval_batches=1", "task.length_batches=1", "probes.every=0")
    run = store.create_run(tmp_path, "lengths")
    assert Trainer(prepare(cfg), run).train().state == "finished"
    evals = [e for e in run.read_events() if e["kind"] == "eval"]
    assert len(evals) == 2
    for event in evals:
        assert set(event["by_length"]) == {"6", "9"} and event["trained_lengths"] == [1, 3]
        for row in event["by_length"].values():
            assert 0.0 <= row["error_rate"] <= 1.0 and math.isfinite(row["loss"])


# -- `rnnlab runs show` ----------------------------------------------------------------------------

def test_runs_show_prints_the_length_plots(tmp_path):
    from typer.testing import CliRunner

    from rnnlab.cli import app
    from tui_fixtures import LENGTHS_ID, length_run

    length_run(tmp_path / "runs")
    result = CliRunner().invoke(app, ["runs", "show", LENGTHS_ID, "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    title = next(i for i, line in enumerate(lines) if "error_rate by length at step 1000" in line)
    plot = lines[title:title + 18]
    assert any("trained 1-10" in line for line in plot) and sum("░" in line for line in plot) >= 5  # shaded
    assert any(line.split() == ["10", "20", "30", "40"] for line in plot)  # x: the lengths, to the longest
    assert "length" in "".join(plot) and "error_rate at each length over training" in result.output
    assert "by_length" not in result.output.split("validation at step")[1].splitlines()[0]  # not a number
    assert "error_rate by length (trained 1-10): 15 0.05  20 0.0667  30 0.1  40 0.133" in result.output


def test_runs_show_prints_a_hostile_metric_name_literally(tmp_path):
    import json

    from typer.testing import CliRunner

    from rnnlab.cli import app
    from tui_fixtures import LENGTHS_ID, length_run

    run = length_run(tmp_path / "runs")
    events = [json.loads(line) for line in run.events_path.read_text().splitlines()]
    for event in events:
        if event["kind"] == "eval":
            event["length_metric"] = "err\x1b[2J\x1b]0;pwned\x07"
            for row in event["by_length"].values():
                row["err\x1b[2J\x1b]0;pwned\x07"] = row["error_rate"]
    run.events_path.write_text("".join(json.dumps(event) + "\n" for event in events))
    result = CliRunner().invoke(app, ["runs", "show", LENGTHS_ID, "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "err\\x1b[2J\\x1b]0;pwned\\x07 by length at step 1000" in result.output


def test_seq2seq_scores_exact_match_by_source_length_and_tasks_without_a_length_score_none():
    from rnnlab.tasks.lengths import eval_lengths

    cfg = load("reverse", "model.arch=seq2seq", "model.hidden=8", "model.embed=4", "task.max_len=4",
               "task.eval_lengths=[6, 9]", "task.length_batches=1", "train.batch_size=4", "train.eval_batches=1")
    prepared = prepare(cfg)
    metrics = validation_metrics(prepared.model, prepared.task, cfg.train, torch.device("cpu"),
                                 contextlib.nullcontext())
    assert metrics["trained_lengths"] == [3, 4] and metrics["length_metric"] == "exact"
    for n in ("6", "9"):
        row = metrics["by_length"][n]
        assert 0.0 <= row["exact"] <= 1.0 and 0.0 <= row["token_acc"] <= 1.0 and math.isfinite(row["loss"])
        assert not any(key.startswith("exact@") for key in row)  # no trained bucket holds these sources
    assert eval_lengths(task("markov_source")) == [] and eval_lengths(task("dates")) == []
