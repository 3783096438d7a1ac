"""Decoding: greedy, temperature, top-k, seeds; streaming from a real checkpoint."""

from __future__ import annotations

import pytest
import torch

from rnnlab import store
from rnnlab.errors import ConfigError
from rnnlab.sampling import generate, load_language_model, pick_next
from rnnlab.train import Trainer, prepare

from tiny import tiny_config


def test_pick_next_rules():
    logits = torch.tensor([0.1, 3.0, 2.9, -1.0])
    assert pick_next(logits, 1.0, None, True, None) == 1
    assert pick_next(logits, 0.0, None, False, None) == 1  # temperature 0 is greedy
    gen = torch.Generator().manual_seed(0)
    assert {pick_next(logits, 1.0, 1, False, gen) for _ in range(50)} == {1}  # top-1 is greedy
    picks = {pick_next(logits, 5.0, 2, False, gen) for _ in range(200)}
    assert picks == {1, 2}  # top-2 never leaves the two best, even when hot
    cold = [pick_next(logits, 0.05, None, False, gen) for _ in range(100)]
    assert cold.count(1) > 90  # a low temperature sharpens towards the mode


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("sample")
    cfg = tiny_config(tmp_path, train__steps=40, train__eval_every=20, train__lr=1e-2)
    prepared = prepare(cfg)
    run = store.create_run(tmp_path / "runs", "lm")
    store.atomic_write(run.config_path, cfg.to_toml().encode())
    assert Trainer(prepared, run).train().state == "finished"
    return run


def test_generate_streams_reproducible_text(trained_run):
    model, vocab, _, _ = load_language_model(trained_run, "best")
    a = "".join(generate(model, vocab, "the ", 60, temperature=0.8, seed=7))
    b = "".join(generate(model, vocab, "the ", 60, temperature=0.8, seed=7))
    c = "".join(generate(model, vocab, "the ", 60, temperature=0.8, seed=8))
    assert len(a) == 60 and a == b and a != c
    assert set(a) <= set(vocab.tokens)
    greedy = "".join(generate(model, vocab, "the ", 30, greedy=True))
    assert greedy == "".join(generate(model, vocab, "the ", 30, temperature=0.0))


def test_greedy_continues_the_most_likely_character(trained_run):
    model, vocab, _, _ = load_language_model(trained_run, "last")
    first = next(generate(model, vocab, "the quick", 1, greedy=True))
    logits, _ = model(vocab.encode("the quick")[None])
    assert first == vocab.tokens[int(logits[0, -1].argmax())]


def test_bad_prompts_are_config_errors(trained_run):
    model, vocab, _, _ = load_language_model(trained_run)
    with pytest.raises(ConfigError, match="not in the vocabulary"):
        next(generate(model, vocab, "ZZZ", 5))
    with pytest.raises(ConfigError, match="--prompt"):
        next(generate(model, vocab, "", 5))
