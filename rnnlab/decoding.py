"""Decoding a sequence model: greedy, temperature, top-k, nucleus (top-p) and beam search.

Every strategy drives a Stepper: `start()` gives the logits for the first
token to choose and a state, `step(tokens, state)` feeds the chosen tokens
(B,) and gives the next logits (B, V). Language models and seq2seq decoders
both fit that shape, so the same code decodes both. Beam search also needs
`reorder(state, index)`: hypotheses are rows of one batch, and after each
step the surviving rows (with repeats) are gathered.

A seq2seq model decodes here too (`translate`, with the vocabularies as
`Seq2SeqVocab`): below the probes, which record its attention, and below
translating.py, which loads a run to decode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from .errors import ConfigError
from .tasks.seq2seq import EOS, PAD, output_tokens


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


class Seq2SeqVocab(NamedTuple):
    source: list[str]  # id -> token, PAD first
    target: list[str]  # id -> token, PAD and EOS first
    joiner: str  # "" for characters, " " for words

    def encode(self, text: str) -> Tensor:
        """Text -> source ids (S,); a token the run never saw is a one-line error."""
        tokens = text.split() if self.joiner else list(text)
        index = {token: i for i, token in enumerate(self.source)}
        unknown = sorted({t for t in tokens if t not in index or index[t] == PAD})
        if not tokens or unknown:
            raise ConfigError("input", text, f"not in the source vocabulary: {' '.join(map(repr, unknown))}"
                              if unknown else "is empty", "tokens of: " + self.joiner.join(self.source[1:]))
        return torch.tensor([index[t] for t in tokens])

    def output_tokens(self, ids) -> list[str]:
        return output_tokens(ids, self.target)


class Seq2SeqStepper:
    """A seq2seq decoder for beam_search: one source, hypotheses as rows of a batch."""

    def __init__(self, model, source: Tensor):
        self.model = model
        self.memory = model.encode(source[None])  # batch of one

    def start(self):
        bos = torch.full((1,), self.model.bos, dtype=torch.long, device=self.memory.states.device)
        logits, carry, _ = self.model.step(bos, self.model.initial_carry(self.memory), self.memory)
        return logits, (carry, self.memory)

    def step(self, tokens: Tensor, state):
        carry, memory = state
        logits, carry, _ = self.model.step(tokens, carry, memory)
        return logits, (carry, memory)

    def reorder(self, state, index: Tensor):
        carry, memory = state
        carry = tuple(c.index_select(1, index) for c in carry) if isinstance(carry, tuple) \
            else carry.index_select(1, index)  # (L, K, H)
        memory = type(memory)(*(None if part is None else part.index_select(0, index) for part in memory))
        return carry, memory


class Decoding(NamedTuple):
    source: list[str]
    output: list[str]  # without EOS
    attention: list[list[float]] | None  # (U, S): for each output token (and the EOS), weights over the source


@torch.no_grad()
def decode_one(model, source: Tensor, max_len: int, beam: int = 1,
               alpha: float = 0.0) -> tuple[list[int], list[list[float]] | None]:
    """Decode one source (S,) ids, or one image (3, H, W) for a captioner: the chosen ids (up to EOS, included)
    and their attention (U, S) or None, read by feeding the choice back (teacher forcing)."""
    if beam > 1:
        tokens = beam_search(Seq2SeqStepper(model, source), beam, max_len, eos=EOS, alpha=alpha).tokens
    else:
        tokens = model.decode(source[None], max_len).ids[0].tolist()
        tokens = tokens[:tokens.index(EOS) + 1] if EOS in tokens else tokens
    output = torch.tensor(tokens, dtype=torch.long, device=source.device)[None]
    model(source[None], targets=output)  # fills last_attention (1, U, S)
    weights = model.last_attention
    return tokens, [[round(float(w), 4) for w in row] for row in weights[0]] if weights is not None else None


def translate(model, vocab: Seq2SeqVocab, source: Tensor, max_len: int, beam: int = 1,
              alpha: float = 0.0) -> Decoding:
    """Decode one source (S,) with its attention over the source tokens."""
    tokens, attention = decode_one(model, source, max_len, beam, alpha)
    return Decoding([vocab.source[i] for i in source.tolist()], vocab.output_tokens(tokens), attention)
