"""The character-level LM task: corpus, split, batches, metrics, baseline."""

from __future__ import annotations

import contextlib
import math

import pytest
import torch

from rnnlab import config
from rnnlab.errors import ConfigError
from rnnlab.tasks import build_task
from rnnlab.tasks.tokenizers import Vocabulary
from rnnlab.tasks.corpus import stdlib_text

from tiny import corpus


def task_on(path, **extra):
    sets = [f"task.corpus={path}"] + [f"task.{k}={v}" for k, v in extra.items()]
    return build_task(config.load(None, sets).task, seed=0)


def test_embedded_corpus_is_deterministic_python_source():
    text = stdlib_text()
    assert text == stdlib_text()
    assert len(text) > 500_000 and "def " in text and "import " in text


def test_last_tenth_is_validation(tmp_path):
    task = task_on(corpus(tmp_path), seq_len=8)
    text = corpus(tmp_path).read_text()
    split = int(len(text) * 0.9)
    assert task.vocab.decode(task.train_data) == text[:split]
    assert task.vocab.decode(task.val_data) == text[split:]


def test_train_batches_are_shifted_windows_drawn_from_the_seed(tmp_path):
    task = task_on(corpus(tmp_path), seq_len=10)
    x, y, mask = task.train_batch(6, torch.Generator().manual_seed(3))
    assert x.shape == y.shape == (6, 10) and mask is None
    assert torch.equal(x[:, 1:], y[:, :-1])
    text = task.vocab.decode(task.train_data)
    for row_x, row_y in zip(x, y):
        window = task.vocab.decode(row_x) + task.vocab.decode(row_y[-1:])
        assert window in text
    again, _, _ = task.train_batch(6, torch.Generator().manual_seed(3))
    assert torch.equal(x, again)


def test_eval_batches_cover_the_validation_text_in_order(tmp_path):
    task = task_on(corpus(tmp_path), seq_len=10)
    batches = list(task.eval_batches(4, 100))
    xs = torch.cat([x for x, _, _ in batches])
    ys = torch.cat([y for _, y, _ in batches])
    assert torch.equal(xs.reshape(-1), task.val_data[: xs.numel()])
    assert torch.equal(ys.reshape(-1), task.val_data[1: xs.numel() + 1])
    assert len(list(task.eval_batches(4, 2))) == 2


def test_unigram_baseline_and_metrics(tmp_path):
    path = tmp_path / "ab.txt"
    path.write_text("aaab" * 25 + "ab" * 5)  # train: 3:1 a:b; val: the last 11 chars
    task = task_on(path, seq_len=2)
    train, val = task.vocab.decode(task.train_data), task.vocab.decode(task.val_data)
    p = {c: (train.count(c) + 1) / (len(train) + 2) for c in "ab"}  # add-one smoothing
    expected = -sum(math.log(p[c]) for c in val) / len(val)
    assert task.unigram_loss == pytest.approx(expected)
    metrics = task.metrics(math.log(2))
    assert metrics["bpc"] == pytest.approx(1.0) and metrics["ppl"] == pytest.approx(2.0)
    assert metrics["baseline"] == pytest.approx(expected)


@pytest.mark.parametrize("predict", ["all", "last"])
def test_baselines_are_scored_on_exactly_the_tokens_an_evaluation_judges(tmp_path, predict):
    """The model's val loss covers the first windows of the validation text, so its baselines must too:
    a baseline over the whole text would compare the model with an easier or harder text."""
    path = tmp_path / "code.txt"
    path.write_text(stdlib_text(40_000))
    task = task_on(path, seq_len=16, predict=predict, ngram_order=3)
    whole = task.unigram_loss
    targets = torch.cat([y[m] if m is not None else y.reshape(-1) for _, y, m in task.eval_batches(4, 3)])
    counts = torch.bincount(task.train_data, minlength=len(task.vocab)).double() + 1
    expected = float(-(counts / counts.sum()).log()[targets].mean())
    assert len(targets) == (12 if predict == "last" else 12 * 16)
    assert task.metrics(1.0)["baseline"] == pytest.approx(expected) and expected != pytest.approx(whole)
    from rnnlab.tasks.ngram import KneserNey

    kn = KneserNey(task.train_data, len(task.vocab), 3)
    judged = task.val_data[: 12 * 16 + 1]  # every judged target sits in this prefix, each with its context
    losses = kn.token_losses(judged)[1:].view(12, 16)
    assert task.metrics(1.0)["ngram"] == pytest.approx(float(losses[:, -1].nanmean() if predict == "last"
                                                             else losses.nanmean()))


def test_masked_loss_ignores_padding(tmp_path):
    task = task_on(corpus(tmp_path), seq_len=4)
    logits = torch.randn(2, 5, len(task.vocab))
    y = torch.randint(0, len(task.vocab), (2, 5))
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    full = task.loss(logits, y, mask)
    kept = torch.cat([task.loss(logits[0:1, :3], y[0:1, :3], None).reshape(1) * 3,
                      task.loss(logits[1:2], y[1:2], None).reshape(1) * 5]).sum() / 8
    torch.testing.assert_close(full, kept)


def test_vocabulary_round_trip_and_unknown_characters():
    vocab = Vocabulary.from_text("hello world")
    assert vocab.decode(vocab.encode("low hello")) == "low hello"
    with pytest.raises(ConfigError, match="not in the vocabulary: 'z'"):
        vocab.encode("zoo")


def test_read_30_predict_31_judges_only_the_last_character(tmp_path):
    task = task_on(corpus(tmp_path), seq_len=30, predict="last")
    x, y, mask = task.train_batch(5, torch.Generator().manual_seed(0))
    assert x.shape == (5, 30) and mask.shape == (5, 30)
    assert mask[:, -1].all() and not mask[:, :-1].any()
    output = torch.randn(5, 30, len(task.vocab))
    expected = torch.nn.functional.cross_entropy(output[:, -1], y[:, -1])
    assert float(task.loss(output, y, mask)) == pytest.approx(float(expected), rel=1e-6)
    changed = output.clone()
    changed[:, :-1] = torch.randn(5, 29, len(task.vocab))  # predictions before the 31st do not count
    assert float(task.loss(changed, y, mask)) == pytest.approx(float(expected), rel=1e-6)
    for _, y_eval, mask_eval in task.eval_batches(4, 2):
        assert mask_eval[:, -1].all() and mask_eval.sum() == len(y_eval)


def test_read_30_predict_31_trains_and_refuses_truncated_bptt(tmp_path):
    from rnnlab import store
    from rnnlab.train import Trainer, prepare

    from tiny import tiny_config

    cfg = tiny_config(tmp_path, task__seq_len=30, task__predict="last", train__steps=6)
    run = store.create_run(tmp_path / "runs", "last")
    assert Trainer(prepare(cfg), run).train().state == "finished"
    train = [e for e in run.read_events() if e["kind"] == "train"]
    assert all(e["tokens_per_s"] > 0 for e in train)
    with pytest.raises(ConfigError, match="task.predict"):
        prepare(tiny_config(tmp_path, task__seq_len=30, task__predict="last", train__algorithm="tbptt"))


def test_carried_evaluation_is_one_uninterrupted_pass_over_each_stream(tmp_path):
    """eval_state = carried: batch j holds every stream's j-th window, and judge's carried state makes the
    loss that of reading each stream in one go (any lost or wrong state shows)."""
    from rnnlab.models import build_model
    from rnnlab.train.evaluation import judge

    torch.manual_seed(0)
    task = task_on(corpus(tmp_path), seq_len=10, eval_state="carried")
    cfg = config.load(None, ["model.arch=lstm", "model.hidden=12", "model.embed=6"])
    model = build_model(cfg.model, task.spec).double().eval()
    batches = list(task.eval_batches(3, 5))  # 15 windows: 3 streams of 5
    assert len(batches) == 5 and all(x.shape == (3, 10) for x, _, _ in batches)
    streams_x = torch.cat([x for x, _, _ in batches], dim=1)  # (3, 50)
    assert torch.equal(streams_x.reshape(-1), task.val_data[:150])  # stream r: windows 5r .. 5r+4, in order
    with torch.no_grad():  # as validation_metrics calls judge
        carried, _ = judge(model, task, batches, torch.device("cpu"), contextlib.nullcontext())
        output, _ = model(streams_x)  # (3, 50, V): each stream read in one go
        whole = task.loss(output, torch.cat([y for _, y, _ in batches], dim=1), None)
    assert carried == pytest.approx(float(whole), rel=1e-6)  # judge scores in float32
    reset = task_on(corpus(tmp_path), seq_len=10)
    with torch.no_grad():
        reset_loss, _ = judge(model, reset, reset.eval_batches(3, 5), torch.device("cpu"), contextlib.nullcontext())
    assert reset_loss != pytest.approx(carried, rel=1e-4)  # the state mattered
    assert task.metrics(1.0)["baseline"] == reset.metrics(1.0)["baseline"]  # the same characters judged


def test_carried_evaluation_drops_windows_that_do_not_fill_every_stream_and_refuses_predict_last(tmp_path):
    task = task_on(corpus(tmp_path), seq_len=10, eval_state="carried")
    windows = (len(task.val_data) - 1) // 10
    batches = list(task.eval_batches(4, 1000))
    assert sum(x.numel() for x, _, _ in batches) == 10 * 4 * (windows // 4)
    with pytest.raises(ConfigError, match="task.eval_state"):
        task_on(corpus(tmp_path), seq_len=10, eval_state="carried", predict="last")
