"""The Kneser-Ney baseline: distributions that sum to one, and the textbook counts on a tiny text."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import pytest
import torch

from rnnlab.tasks.ngram import KneserNey

TEXT = "abracadabra abracadabra cabbage a bad cab"
CHARS = sorted(set(TEXT)) + ["z"]  # z: a character the text never has
IDS = torch.tensor([CHARS.index(c) for c in TEXT])


def reference(text: str, vocab: list[str], order: int, d: float):
    """Interpolated Kneser-Ney written from the formulas with dictionaries, one query at a time."""
    grams = {k: Counter(text[i:i + k] for i in range(len(text) - k + 1)) for k in range(1, order + 1)}

    def counts(k, gram):
        if k == order:
            return grams[k][gram]
        return len({g for g in grams[k + 1] if g[1:] == gram})  # distinct left extensions

    def p(k, h, w):
        if k == 0:
            return 1 / len(vocab)
        h = h[len(h) - (k - 1):] if k > 1 else ""
        seen = {v: counts(k, h + v) for v in vocab}
        total = sum(seen.values())
        if total == 0:
            return p(k - 1, h, w)
        followers = sum(1 for v in vocab if seen[v] > 0)
        return (max(seen[w] - d, 0) + d * followers * p(k - 1, h, w)) / total

    return lambda h, w: p(order, h, w)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_every_context_gets_a_distribution(order):
    model = KneserNey(IDS, len(CHARS), order)
    contexts = [list(c) for c in itertools.product(range(len(CHARS)), repeat=order - 1)][:200]
    for context in contexts:
        q = torch.tensor([context] * len(CHARS), dtype=torch.long).view(len(CHARS), order - 1)
        p = model.probability(q, torch.arange(len(CHARS)))
        assert float(p.sum()) == pytest.approx(1.0, abs=1e-12) and bool((p > 0).all())


@pytest.mark.parametrize("order", [1, 2, 3])
def test_equals_the_formulas_written_out(order):
    model = KneserNey(IDS, len(CHARS), order, discount=0.6)
    slow = reference(TEXT, CHARS, order, 0.6)
    for h in ["ab", "ca", "zz", "a ", "br", "db"][: 6 if order > 1 else 1]:
        h = h[len(h) - (order - 1):] if order > 1 else ""
        q = torch.tensor([[CHARS.index(c) for c in h]] * len(CHARS), dtype=torch.long).view(len(CHARS), order - 1)
        fast = model.probability(q, torch.arange(len(CHARS)))
        for w, value in zip(CHARS, fast.tolist()):
            assert value == pytest.approx(slow(h, w), abs=1e-12), (h, w)


def test_more_context_predicts_a_repetitive_text_better():
    text = torch.tensor([i % 7 for i in range(2000)])
    losses = [KneserNey(text[:1500], 7, order).cross_entropy(text[1500:]) for order in (1, 2, 3)]
    assert losses[0] == pytest.approx(math.log(7), abs=0.01)  # every symbol equally frequent
    assert losses[2] < losses[1] < 0.5 * losses[0]


def test_texts_shorter_than_the_order():
    model = KneserNey(torch.tensor([0, 1]), 3, order=4)  # no 3- or 4-gram at all: lower orders answer
    p = model.probability(torch.tensor([[0, 1, 2]] * 3), torch.arange(3))
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-12)
    assert math.isnan(model.cross_entropy(torch.tensor([0, 1])))
