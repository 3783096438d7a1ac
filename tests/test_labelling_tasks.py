"""flank_sum and markov_source: labels recomputed independently, masks, padding, baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnlab import config
from rnnlab.errors import ConfigError
from rnnlab.models import build_model
from rnnlab.models.bidirectional import BidirectionalModel
from rnnlab.tasks import build_task

GEN = lambda seed=0: torch.Generator().manual_seed(seed)  # noqa: E731


def task(name, **extra):
    return build_task(config.load(None, [f"task.name={name}"] + [f"task.{k}={v}" for k, v in extra.items()]).task, 0)


def test_flank_sum_shapes_padding_and_determinism():
    flank = task("flank_sum", length=15, min_length=9, symbols=3)
    x, y, mask = flank.train_batch(200, GEN(1))
    assert x.shape == y.shape == mask.shape == (200, 15) and mask.dtype == torch.bool
    lengths = (x != 3).sum(1)
    assert int(lengths.min()) == 9 and int(lengths.max()) == 15  # every length in [min_length, length] occurs
    for row, length in zip(x, lengths.tolist()):
        assert bool((row[length:] == 3).all()) and bool((row[:length] < 3).all())  # padding only trails
    again = flank.train_batch(200, GEN(1))
    assert all(torch.equal(a, b) for a, b in zip((x, y, mask), again))
    assert not torch.equal(x, flank.train_batch(200, GEN(2))[0])
    assert flank.spec.pad == 3 and flank.spec.vocab_size == 4 and flank.spec.output_size == 5
    assert not flank.spec.causal


@pytest.mark.parametrize("before,after", [(3, 3), (0, 2), (2, 0), (1, 4)])
def test_flank_sum_labels_and_mask_recomputed(before, after):
    flank = task("flank_sum", length=12, min_length=8, before=before, after=after, symbols=4)
    x, y, mask = flank.train_batch(64, GEN(3))
    for row in range(64):
        tokens = x[row].tolist()
        length = tokens.index(4) if 4 in tokens else len(tokens)
        for t in range(12):
            judged = t - before >= 0 and t + after < length
            assert bool(mask[row, t]) == judged
            if judged:
                assert int(y[row, t]) == tokens[t - before] + tokens[t + after]


def test_flank_sum_baseline_is_what_a_one_way_model_can_reach():
    """The best prediction from x_{<=t} alone: x_{t-before} + a uniform unknown, loss ln S, errors 1 - 1/S."""
    flank = task("flank_sum", length=30, min_length=12, before=2, after=2, symbols=4)
    x, y, mask = flank.train_batch(500, GEN(4))
    known = torch.zeros_like(x)
    known[:, 2:] = x[:, :-2]  # x_{t-2}
    classes = torch.arange(7)
    plausible = (classes >= known[..., None]) & (classes < known[..., None] + 4)  # (B, T, 7): x_{t-2} + {0..3}
    logits = torch.where(plausible, 0.0, -1e9)
    assert flank.loss(logits, y, mask).item() == pytest.approx(math.log(4), abs=1e-6)
    assert flank.metrics(0.0)["baseline"] == pytest.approx(math.log(4))
    stats = flank.batch_stats(logits, y, mask)
    assert flank.eval_summary(stats)["error_rate"] == pytest.approx(0.75, abs=0.02)  # argmax: one guess of 4
    perfect = F.one_hot(y, 7).double() * 50
    assert flank.eval_summary(flank.batch_stats(perfect, y, mask)) == {"error_rate": 0.0, "success": True}


def test_flank_sum_options_are_checked():
    with pytest.raises(ConfigError, match="task.min_length = 5: leaves no step with both flanks inside"):
        task("flank_sum", min_length=5, before=3, after=2)
    with pytest.raises(ConfigError, match="task.min_length = 50: longer than the longest sequence"):
        task("flank_sum", min_length=50, length=40)


@pytest.mark.parametrize("arch,extra,fused", [("birnn", ["model.cell=lstm"], True),
                                              ("birnn", ["model.cell=gru"], False),
                                              ("deep", ["model.cell=mgu", "model.input_skip=true"], None)])
def test_padding_adds_nothing_to_the_loss_or_the_gradients(arch, extra, fused):
    """The masked loss of a padded batch = the loss of the unpadded sequences run alone; same gradients."""
    flank = task("flank_sum", length=14, min_length=7, before=1, after=2, symbols=3)
    options = config.load(None, [f"model.arch={arch}", "model.hidden=4", "model.layers=2", "model.embed=3",
                                 *extra]).model
    torch.manual_seed(0)
    model = build_model(options, flank.spec).double()
    if fused is False:
        model = BidirectionalModel(options, flank.spec, fused=False).double()
    x, y, mask = flank.train_batch(5, GEN(5))
    padded = flank.loss(model(x)[0], y, mask)
    padded_grads = torch.autograd.grad(padded, list(model.parameters()))
    lengths = (x != 3).sum(1).tolist()
    assert sum(length < 14 for length in lengths) >= 3 and len(set(lengths)) >= 3  # padded, unevenly
    total, count = 0.0, 0
    for row, length in enumerate(lengths):
        judged = mask[row, :length]
        output = model(x[row:row + 1, :length])[0][0]  # (L, O): no padding at all
        total = total + F.cross_entropy(output[judged], y[row, :length][judged], reduction="sum")
        count += int(judged.sum())
    alone = total / count
    torch.testing.assert_close(padded, alone, atol=1e-10, rtol=0)
    for a, b in zip(padded_grads, torch.autograd.grad(alone, list(model.parameters()))):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


def test_markov_source_shapes_determinism_and_chains():
    source = task("markov_source", length=20, classes=3, symbols=5)
    x, y, mask = source.train_batch(40, GEN(6))
    assert x.shape == (40, 20) and y.shape == (40,) and mask is None
    assert int(x.max()) < 5 and int(y.max()) < 3
    assert all(torch.equal(a, b) for a, b in zip((x, y), source.train_batch(40, GEN(6))[:2]))
    assert source.chains.shape == (3, 5, 5)
    torch.testing.assert_close(source.chains.sum(-1), torch.ones(3, 5, dtype=torch.float64))
    other_run = build_task(config.load(None, ["task.name=markov_source", "task.length=20", "task.classes=3",
                                              "task.symbols=5"]).task, seed=99)
    assert torch.equal(other_run.chains, source.chains)  # the chains define the task, not the run seed


def test_markov_source_sequences_follow_their_class_chain():
    """Empirical transition frequencies per class match that class's chain (and not another's)."""
    source = task("markov_source", length=40, classes=3, symbols=3)
    x, y, _ = source.train_batch(3000, GEN(7))
    counts = np.zeros((3, 3, 3))
    for row, label in zip(x.tolist(), y.tolist()):
        for a, b in zip(row[:-1], row[1:]):
            counts[label, a, b] += 1
    frequencies = counts / counts.sum(-1, keepdims=True)
    assert np.abs(frequencies - source.chains.numpy()).max() < 0.03
    assert np.bincount(x[:, 0].numpy(), minlength=3).min() > 900  # the first symbol is uniform: no clue


def test_markov_source_bayes_posterior_and_baselines():
    source = task("markov_source", length=12, classes=4, symbols=3, concentration=0.3)
    x, y, _ = source.train_batch(300, GEN(8))
    log_chains = np.log(source.chains.numpy())
    for row, expected in zip(x.tolist()[:20], source.log_posterior(x)[:20]):
        scores = np.array([sum(log_chains[k, a, b] for a, b in zip(row[:-1], row[1:])) for k in range(4)])
        posterior = scores - np.logaddexp.reduce(scores)
        np.testing.assert_allclose(expected.numpy(), posterior, atol=1e-9)
    accuracy = float((source.log_posterior(x).argmax(1) == y).double().mean())
    metrics = source.metrics(0.5)
    assert metrics["baseline"] == pytest.approx(math.log(4))
    assert 0 < metrics["bayes_loss"] < math.log(4) and accuracy == pytest.approx(1 - metrics["bayes_error"], abs=0.06)
    assert accuracy > 0.8  # the labels are the generating chains: Bayes finds most of them
    logits = torch.zeros(300, 12, 4)
    logits[:, -1] = source.log_posterior(x).float()
    assert source.loss(logits, y, None).item() == pytest.approx(metrics["bayes_loss"], abs=0.1)
