"""An interpolated Kneser-Ney n-gram model of token ids: the baseline beside a recurrent language model.

Chen & Goodman's (1998) interpolated Kneser-Ney with one absolute discount D:

    P_k(w | h) = max(c_k(h w) - D, 0) / c_k(h) + D N_k(h) / c_k(h) * P_{k-1}(w | h')     (c_k(h) > 0)
    P_k(w | h) = P_{k-1}(w | h')                                                        (h never seen)

h' is h without its oldest token. The highest order counts n-grams; every lower
order counts *continuations*, the distinct tokens seen just before the k-gram
(a character that follows many contexts is a good guess in a new one); N_k(h)
is the number of distinct tokens seen after h. The lowest order interpolates
with the uniform distribution, so no token has probability zero. Counting is
vectorised: every k-gram is one int64 code, counts come from torch.unique and
lookups from searchsorted, so a 2 MB corpus takes well under a second.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


class Counts:
    """Sorted distinct int64 codes with a count each; count(query) is 0 for codes never seen."""

    def __init__(self, codes: Tensor):
        self.codes, self.counts = torch.unique(codes, return_counts=True)

    def __call__(self, query: Tensor) -> Tensor:
        if len(self.codes) == 0:
            return torch.zeros_like(query, dtype=torch.float64)
        index = torch.searchsorted(self.codes, query).clamp(max=len(self.codes) - 1)
        return torch.where(self.codes[index] == query, self.counts[index], 0).double()


class KneserNey:
    def __init__(self, ids: Tensor, vocab: int, order: int = 3, discount: float = 0.75):
        if vocab ** order >= 2 ** 62:
            raise ValueError(f"order {order} n-grams of {vocab} tokens do not fit an int64 code")
        self.vocab, self.order, self.discount = vocab, order, discount
        ids = ids.long()
        grams = [None] + [self._codes(ids, k) for k in range(1, order + 1)]  # grams[k]: every k-gram's code
        # per order k: (count of h w, count of h, N(h) = distinct w after h), as functions of codes
        self.levels = {}
        top = Counts(grams[order])
        distinct_top = top.codes
        self.levels[order] = (top, Counts(grams[order] // vocab), Counts(distinct_top // vocab))
        for k in range(order - 1, 0, -1):
            # continuation counts: distinct (k+1)-grams ending in this k-gram
            longer = torch.unique(grams[k + 1])
            suffixes = longer % vocab ** k
            continuation = Counts(suffixes)
            totals = Counts(suffixes // vocab)  # sum over w of continuation(h w), h of k-1 tokens
            followers = Counts(continuation.codes // vocab)  # distinct w with continuation(h w) > 0
            self.levels[k] = (continuation, totals, followers)

    def _codes(self, ids: Tensor, k: int) -> Tensor:
        """The code of the k-gram ending at every position i >= k-1: sum_j ids[i-k+1+j] V^(k-1-j)."""
        code = torch.zeros(max(len(ids) - k + 1, 0), dtype=torch.long)  # a text shorter than k has none
        for j in range(k):
            code = code * self.vocab + ids[j:len(ids) - k + 1 + j]
        return code

    def probability(self, contexts: Tensor, tokens: Tensor) -> Tensor:
        """P(token | the last order-1 tokens of each context): contexts (Q, order - 1) ids, tokens (Q,) -> (Q,)."""
        vocab = self.vocab
        # order 1: continuation unigram interpolated with uniform; its "context" is empty (code 0)
        counts, totals, followers = self.levels[1]
        total, seen = totals(torch.zeros_like(tokens)), followers(torch.zeros_like(tokens))
        p = ((counts(tokens) - self.discount).clamp(min=0) + self.discount * seen / vocab) / total
        for k in range(2, self.order + 1):
            counts, totals, followers = self.levels[k]
            history = contexts[:, contexts.shape[1] - (k - 1):]  # (Q, k-1): the k-1 latest tokens
            h = torch.zeros_like(tokens)
            for j in range(k - 1):
                h = h * vocab + history[:, j]
            c_h = totals(h)
            known = c_h > 0
            safe = c_h.clamp(min=1)
            interpolated = ((counts(h * vocab + tokens) - self.discount).clamp(min=0)
                            + self.discount * followers(h) * p) / safe
            p = torch.where(known, interpolated, p)
        return p

    def token_losses(self, ids: Tensor) -> Tensor:
        """-ln P of every token given the order-1 tokens before it, (N,) float64; NaN for the first order-1
        tokens, which have no full context."""
        ids = ids.long()
        width = self.order - 1
        losses = torch.full((len(ids),), math.nan, dtype=torch.float64)
        if len(ids) <= width:
            return losses
        positions = torch.arange(width, len(ids))
        contexts = torch.stack([ids[positions - width + j] for j in range(width)], 1) if width else \
            torch.zeros(len(positions), 0, dtype=torch.long)
        losses[width:] = -torch.log(self.probability(contexts, ids[positions]))
        return losses

    def cross_entropy(self, ids: Tensor) -> float:
        """Mean -ln P of every token from position order-1 on, each given the order-1 tokens before it."""
        losses = self.token_losses(ids)[self.order - 1:]
        return float(losses.mean()) if len(losses) else math.nan
