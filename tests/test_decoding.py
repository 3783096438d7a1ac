"""Decoding: nucleus filtering, beam search against greedy and against brute force."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from rnnlab import config, decoding
from rnnlab.decoding import Sampling, beam_search, filter_logits, sequence_logprob
from rnnlab.models import TaskSpec, build_model


class MarkovStepper:
    """A hand-made model: the next token's probabilities depend on the last token only. Token 2 is eos."""

    def __init__(self, start, table):
        self.start_probs, self.table = torch.tensor(start).log(), torch.tensor(table).log()

    def start(self):
        return self.start_probs[None], None

    def step(self, tokens, state):
        return self.table[tokens], None

    def reorder(self, state, index):
        return state


# greedy takes "a" (0.6) and then the best after it (0.4): 0.24; "b, eos" has 0.4 * 0.9 = 0.36
TRAP = MarkovStepper([0.6, 0.4, 1e-9], [[0.4, 0.3, 0.3], [0.05, 0.05, 0.9], [1 / 3, 1 / 3, 1 / 3]])


def brute_force(stepper, max_len, eos, alpha):
    """Every sequence that ends at eos (or runs to max_len), scored as beam search scores them."""
    best = None
    for length in range(1, max_len + 1):
        for tokens in itertools.product(range(3), repeat=length):
            if eos in tokens[:-1] or (tokens[-1] != eos and length < max_len):
                continue
            score = sequence_logprob(stepper, list(tokens)) / decoding.length_penalty(length, alpha)
            if best is None or score > best[0]:
                best = (score, list(tokens))
    return best


def test_nucleus_keeps_the_smallest_set_reaching_p():
    logits = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()[None]
    kept = lambda p: torch.isfinite(filter_logits(logits, None, p))[0].tolist()  # noqa: E731
    assert kept(0.7) == [True, True, False, False]
    assert kept(0.5) == [True, False, False, False]  # the most likely alone reaches 0.5
    assert kept(0.96) == [True, True, True, True]
    assert kept(1e-6) == [True, False, False, False]  # the most likely always stays
    shuffled = logits[:, [2, 0, 3, 1]]  # the same rule whatever the order of the vocabulary
    assert torch.isfinite(filter_logits(shuffled, None, 0.7))[0].tolist() == [False, True, False, True]
    generator = torch.Generator().manual_seed(0)
    picks = {int(decoding.pick_next(logits, Sampling(top_p=0.7), generator)) for _ in range(200)}
    assert picks == {0, 1}


def test_sampling_options_are_checked():
    for bad in (Sampling(top_p=0.0), Sampling(top_p=1.5), Sampling(top_k=0), Sampling(temperature=-1)):
        with pytest.raises(Exception, match="must|out of range"):
            bad.check()


def test_beam_escapes_the_greedy_trap():
    greedy = beam_search(TRAP, 1, 2, eos=2)
    assert greedy.tokens == [0, 0] and math.exp(greedy.logprob) == pytest.approx(0.24)
    best = beam_search(TRAP, 2, 2, eos=2)
    assert best.tokens == [1, 2] and math.exp(best.logprob) == pytest.approx(0.36)


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
@pytest.mark.parametrize("max_len", [2, 4])
def test_a_wide_beam_finds_the_brute_force_optimum(alpha, max_len):
    score, tokens = brute_force(TRAP, max_len, 2, alpha)
    found = beam_search(TRAP, 3 ** max_len, max_len, eos=2, alpha=alpha)
    assert found.tokens == tokens and found.score(alpha) == pytest.approx(score)


def tiny_lm(seed):
    torch.manual_seed(seed)
    cfg = config.load(None, ["model.arch=lstm", "model.hidden=8", "model.layers=2", "model.embed=4"])
    model = build_model(cfg.model, TaskSpec(input_size=6, output_size=6, vocab_size=6)).double().eval()
    with torch.no_grad():  # sharper, more varied distributions than a fresh init gives
        model.head.weight.mul_(8)
    return model


@pytest.mark.parametrize("seed", range(5))
def test_beam_one_is_greedy_and_wider_beams_are_never_less_likely(seed):
    model = tiny_lm(seed)
    prompt = torch.tensor([seed % 6, 1, 2])
    stepper = decoding.LanguageModelStepper(model, prompt)
    greedy = [int(t) for t in decoding.sample(stepper, 12, Sampling(greedy=True))]
    one = beam_search(stepper, 1, 12)
    assert one.tokens == greedy
    assert one.logprob == pytest.approx(sequence_logprob(stepper, greedy), abs=1e-9)
    for beam in (2, 4, 8):
        wider = beam_search(stepper, beam, 12)
        assert wider.logprob == pytest.approx(sequence_logprob(stepper, wider.tokens), abs=1e-9)
        assert wider.logprob >= one.logprob - 1e-12


def test_reorder_follows_each_state_tensors_batch_dimension():
    model = tiny_lm(0)
    stepper = decoding.LanguageModelStepper(model, torch.tensor([1]))
    assert stepper.dims == [1, 1]  # (L, B, H) for h and c
    h = torch.arange(2 * 3 * 8.0).view(2, 3, 8)
    moved, _ = stepper.reorder((h, h), torch.tensor([2, 2, 0]))
    assert torch.equal(moved[:, 0], h[:, 2]) and torch.equal(moved[:, 2], h[:, 0])
