"""Decoding a sequence model: greedy, temperature, top-k, nucleus (top-p) and beam search.

Every strategy drives a Stepper: `start()` gives the logits for the first
token to choose and a state, `step(tokens, state)` feeds the chosen tokens
(B,) and gives the next logits (B, V). Language models and seq2seq decoders
both fit that shape, so the same code decodes both. Beam search also needs
`reorder(state, index)`: hypotheses are rows of one batch, and after each
step the surviving rows (with repeats) are gathered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .errors import ConfigError


@dataclass
class Sampling:
    temperature: float = 1.0  # 0: greedy
    top_k: int | None = None  # keep the k most likely tokens
    top_p: float | None = None  # nucleus: keep the smallest set whose probability reaches p
    greedy: bool = False

    def check(self) -> None:
        if self.temperature < 0:
            raise ConfigError("--temperature", self.temperature, "must not be negative", "a number >= 0")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError("--top-k", self.top_k, "must be at least 1", "an integer >= 1")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ConfigError("--top-p", self.top_p, "out of range", "a number in (0, 1]")


def filter_logits(logits: Tensor, top_k: int | None, top_p: float | None) -> Tensor:
    """Set the logits outside the top-k and outside the nucleus to -inf. logits (..., V)."""
    if top_k is not None and top_k < logits.shape[-1]:
        threshold = torch.topk(logits, top_k).values[..., -1:]  # (..., 1)
        logits = logits.masked_fill(logits < threshold, float("-inf"))
    if top_p is not None and top_p < 1:
        ordered, order = torch.sort(logits, descending=True)
        probs = torch.softmax(ordered, -1)
        # drop a token once the more likely ones before it already reach p: the most likely always stays
        drop = probs.cumsum(-1) - probs >= top_p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


def pick_next(logits: Tensor, sampling: Sampling, generator: torch.Generator | None) -> Tensor:
    """Token ids (B,) from logits (B, V)."""
    if sampling.greedy or sampling.temperature == 0:
        return logits.argmax(-1)
    logits = filter_logits(logits.float() / sampling.temperature, sampling.top_k, sampling.top_p)
    return torch.multinomial(torch.softmax(logits, -1).cpu(), 1, generator=generator)[:, 0].to(logits.device)


def sample(stepper, length: int, sampling: Sampling, generator=None, eos: int | None = None):
    """Yield token ids (B,) one step at a time (for streaming), up to `length` or until every row said eos."""
    logits, state = stepper.start()
    done = None
    for position in range(length):
        tokens = pick_next(logits, sampling, generator)  # (B,)
        yield tokens
        if eos is not None:
            done = (tokens == eos) if done is None else done | (tokens == eos)
            if bool(done.all()):
                return
        if position + 1 < length:
            logits, state = stepper.step(tokens, state)


def length_penalty(length: int, alpha: float) -> float:
    """GNMT's ((5 + |Y|) / 6)^alpha (Wu et al. 2016): alpha 0 ranks by log-probability alone."""
    return ((5.0 + length) / 6.0) ** alpha


@dataclass
class Hypothesis:
    tokens: list[int]
    logprob: float  # sum of log p(token | before)

    def score(self, alpha: float) -> float:
        return self.logprob / length_penalty(len(self.tokens), alpha)


@torch.no_grad()
def beam_search(stepper, beam: int, max_len: int, eos: int | None = None, alpha: float = 0.0) -> Hypothesis:
    """The best hypothesis of a beam search for ONE sequence (the stepper's batch is 1).

    Without eos every hypothesis has max_len tokens. With eos, a hypothesis that emits it is finished; the
    search stops when the best finished one outscores every live one can still do (log-probs only fall) or
    at max_len. beam = 1 is greedy decoding exactly.
    """
    if beam < 1:
        raise ConfigError("--beam", beam, "must be at least 1", "an integer >= 1")
    if alpha < 0:  # the early stop below relies on penalties growing with length
        raise ConfigError("--length-penalty", alpha, "must not be negative", "a number >= 0")
    logits, state = stepper.start()  # (1, V)
    live = [Hypothesis([], 0.0)]
    finished: list[Hypothesis] = []
    for position in range(max_len):
        logprobs = torch.log_softmax(logits.double(), -1)  # (K, V)
        so_far = torch.tensor([h.logprob for h in live], dtype=torch.float64, device=logprobs.device)  # (K,)
        totals = so_far[:, None] + logprobs  # (K, V)
        count = min(beam, totals.numel())
        values, flat = torch.topk(totals.flatten(), count)  # ties: torch picks the lowest index, as argmax does
        vocab = logprobs.shape[1]
        rows, tokens = flat // vocab, flat % vocab
        survivors, keep_rows, keep_tokens = [], [], []
        for value, row, token in zip(values.tolist(), rows.tolist(), tokens.tolist()):
            hypothesis = Hypothesis(live[row].tokens + [token], value)
            if eos is not None and token == eos:
                finished.append(hypothesis)
            else:
                survivors.append(hypothesis)
                keep_rows.append(row)
                keep_tokens.append(token)
        live = survivors
        if not live or (finished and _cannot_improve(finished, live, alpha, max_len)):
            break
        if position + 1 < max_len:
            device = logits.device
            state = stepper.reorder(state, torch.tensor(keep_rows, device=device))
            logits, state = stepper.step(torch.tensor(keep_tokens, device=device), state)
    # hypotheses still live at max_len compete too: a translation cut short beats none
    return max(finished + live, key=lambda h: h.score(alpha))


def _cannot_improve(finished, survivors, alpha, max_len) -> bool:
    """True when no live hypothesis can still beat the best finished one: its log-prob can only fall, and the
    most its length penalty can divide by is that of the longest allowed length."""
    best = max(f.score(alpha) for f in finished)
    return all(s.logprob / length_penalty(max_len, alpha) <= best for s in survivors)


@torch.no_grad()
def sequence_logprob(stepper, tokens: list[int]) -> float:
    """log p(tokens) under the model: to compare decoders' results."""
    logits, state = stepper.start()
    total = 0.0
    for position, token in enumerate(tokens):
        total += float(torch.log_softmax(logits.double(), -1)[0, token])
        if position + 1 < len(tokens):
            logits, state = stepper.step(torch.tensor([token], device=logits.device), state)
    return total


def batch_dims(model) -> list[int]:
    """For each tensor of the model's state, the dimension that holds the batch (for reordering beams)."""
    one, two = model.init_state(1), model.init_state(2)
    one, two = (one, two) if isinstance(one, tuple) else ((one,), (two,))
    return [next(d for d, (a, b) in enumerate(zip(x.shape, y.shape)) if a != b) for x, y in zip(one, two)]


class LanguageModelStepper:
    """A recurrent language model continuing a prompt (P,) of token ids."""

    def __init__(self, model, prompt: Tensor):
        self.model, self.prompt = model, prompt
        self.device = next(model.parameters()).device
        self.dims = batch_dims(model)

    def start(self):
        logits, state = self.model(self.prompt[None].to(self.device))  # (1, P, V)
        return logits[:, -1], state

    def step(self, tokens: Tensor, state):
        logits, state = self.model(tokens[:, None], state)  # (B, 1, V)
        return logits[:, -1], state

    def reorder(self, state, index: Tensor):
        parts = state if isinstance(state, tuple) else (state,)
        moved = tuple(part.index_select(dim, index) for part, dim in zip(parts, self.dims))
        return moved if isinstance(state, tuple) else moved[0]


class FirstTokenAmong:
    """A stepper whose first choice is restricted to `allowed` tokens (V,) bool: token healing, where the
    prompt's last token is taken back and the model picks how to complete its text."""

    def __init__(self, stepper, allowed: Tensor):
        self.stepper, self.allowed = stepper, allowed

    def start(self):
        logits, state = self.stepper.start()  # (1, V)
        return logits.masked_fill(~self.allowed.to(logits.device), float("-inf")), state

    def step(self, tokens: Tensor, state):
        return self.stepper.step(tokens, state)

    def reorder(self, state, index: Tensor):
        return self.stepper.reorder(state, index)


def describe_score(hypothesis: Hypothesis) -> str:
    n = max(len(hypothesis.tokens), 1)
    return f"log p = {hypothesis.logprob:.2f} ({hypothesis.logprob / n:.3f} per token, perplexity " \
           f"{math.exp(-hypothesis.logprob / n):.2f})"
