"""Length generalisation: train on a range of lengths, score at lengths beyond it.

A task with a length says only how to make a batch at length n (`batch_at`);
the help of its keys names which of its dimensions n is:

copy            copy_len, the symbols to copy (Graves et al. 2014; the blanks T stay fixed)
adding, latch,  T, the sequence length (the distance that must be bridged)
parity, temporal_order
delayed_recall  T, the sequence length (the delay k stays: the model is never told it, so
                another k is another task)
reverse, sort   the source length in symbols (their min_len..max_len is the trained range)
addition        the digits of each operand (min_len..max_len)
dates and translate have none here: a date's length is set by its format, and a toy
sentence's by a grammar that has no longer sentences than 5 + 3 max_adjectives words.

Training draws ONE length per batch, uniform in `train_lengths = [min, max]`,
from the run's generator (as pytorch-ntm does): tensors stay dense, no mask
changes the loss, and the stream is reproducible from the seed and resumable
with the generator's state. The plain validation pass then draws its lengths the
same way from its fixed seed, so `loss` and `error_rate` are over the trained
range. `eval_lengths` adds, to each eval event, the metrics of `length_batches`
batches at each length, made from their own seed (EVAL_SEED + n): fixed across
evaluations and independent of the other lengths.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ..options import opt
from .base import EVAL_SEED

# -- the keys (declared in each task's Options, so each help names the task's own length) ----------


def train_lengths_opt(what: str):
    return opt([], f"train on a range: [min, max] {what}, one drawn per batch (empty: the fixed {what})", min=1)


def eval_lengths_opt(what: str):
    return opt([], f"each eval also scores these {what} values (by_length in eval events; empty: off)", min=1)


def length_batches_opt():
    return opt(2, "evaluation batches (of train.batch_size) at each of eval_lengths", min=1)


def check_lengths(options, section: str, floor: int = 1, train: bool = True) -> None:
    """train_lengths is empty or [min, max] with floor <= min <= max; every eval length is >= floor."""
    lengths = options.train_lengths if train else []
    if lengths and (len(lengths) != 2 or lengths[0] > lengths[1]):
        raise ConfigError(f"{section}.train_lengths", lengths, "expected [min, max] with min <= max",
                          "e.g. [1, 20], or [] for the fixed length")
    for key, values in (("train_lengths", lengths), ("eval_lengths", options.eval_lengths)):
        if any(n < floor for n in values):
            raise ConfigError(f"{section}.{key}", values, "a length is too short for this task",
                              f"integers >= {floor}")


# -- the task side -----------------------------------------------------------------------------


class VariableLength:
    """Mixin for a GeneratedTask whose sequences have a length n.

    Subclasses define `batch_at(batch_size, generator, n)`, and `fixed_length()` (the length without a
    training range) where it is not `options.length`; `length_metric` is the eval metric plotted against length.
    """

    length_metric = "error_rate"

    def batch_at(self, batch_size: int, generator: torch.Generator, n: int):
        raise NotImplementedError  # pragma: no cover - each task

    def fixed_length(self) -> int:
        return self.options.length  # T, for all but copy

    def trained_lengths(self) -> tuple[int, int]:
        lengths = self.options.train_lengths
        return (lengths[0], lengths[1]) if lengths else (self.fixed_length(), self.fixed_length())

    def make_batch(self, batch_size: int, generator: torch.Generator):
        if not self.options.train_lengths:  # the fixed length: the stream is what it was before ranges existed
            return self.batch_at(batch_size, generator, self.fixed_length())
        low, high = self.trained_lengths()
        n = int(torch.randint(low, high + 1, (1,), generator=generator))
        return self.batch_at(batch_size, generator, n)

    def length_eval_batches(self, batch_size: int, count: int, n: int):
        """`count` fixed batches at length n, from a seed of their own."""
        generator = torch.Generator().manual_seed(EVAL_SEED + n)
        for _ in range(count):
            yield self.batch_at(batch_size, generator, n)


def eval_lengths(task) -> list[int]:
    """The lengths a task scores beyond its trained range ([] for tasks without a length)."""
    if not isinstance(task, VariableLength):
        return []
    return list(getattr(task.options, "eval_lengths", []))
