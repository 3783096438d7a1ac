"""Additive attention (Bahdanau, Cho & Bengio 2015) over encoder states, padding masked out.

    e_{t,s} = v^T tanh(W s_{t-1} + U h_s + b)     a_t = softmax_s(e_t)     c_t = sum_s a_{t,s} h_s

U h_s + b does not depend on the decoder step: `keys()` computes it once per
source, so a step costs one (H -> A) product, a tanh over (B, S, A) and two
small batched products. PAD positions get a score of -inf, hence a weight of
exactly 0: the context never mixes in padding, and the same sentence padded to
any length gets the same context.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class AdditiveAttention(nn.Module):
    def __init__(self, query_size: int, memory_size: int, size: int):
        super().__init__()
        self.query = nn.Linear(query_size, size, bias=False)  # W: decoder state -> A
        self.key = nn.Linear(memory_size, size)  # U, and the b inside the tanh
        self.score = nn.Linear(size, 1, bias=False)  # v

    def keys(self, memory: Tensor) -> Tensor:
        """U h_s + b for every source position: (B, S, D) -> (B, S, A), once per source."""
        return self.key(memory)

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor, pad: Tensor) -> tuple[Tensor, Tensor]:
        """query (B, H) = s_{t-1}, keys (B, S, A), memory (B, S, D), pad (B, S) True on PAD.

        Returns the context (B, D) and the weights (B, S), which sum to 1 over the real positions.
        """
        scores = self.score(torch.tanh(keys + self.query(query)[:, None])).squeeze(-1)  # (B, S)
        weights = torch.softmax(scores.masked_fill(pad, float("-inf")), dim=-1)  # (B, S), 0 on PAD
        context = torch.bmm(weights[:, None], memory).squeeze(1)  # (B, D)
        return context, weights
