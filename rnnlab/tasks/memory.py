"""Classic memory tasks with a class to predict, generated from a seed.

latch           (Bengio et al. 1994) remember the first symbol through T noise symbols
parity          the XOR of T bits, answered at the end
temporal_order  (Hochreiter & Schmidhuber 1997) in which order did X and Y appear
                among distractors (4 classes: XX, XY, YX, YY)
delayed_recall  at every step, name the symbol seen k steps before (a label per step;
                the first k steps are masked out)
A model without memory is at chance: the baseline loss is ln(classes), and
success is an error rate under 1% on the fixed evaluation sequences.
Lengths (lengths.py): each varies T, its sequence length; delayed recall keeps k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models.base import TaskSpec
from ..options import opt
from .registry import TASKS
from .base import GeneratedTask, TaskOptions, error_rate_summary
from .lengths import VariableLength, check_lengths, eval_lengths_opt, length_batches_opt, train_lengths_opt


class ClassifyAtEnd(GeneratedTask):
    """Token sequences (B, T) -> one class per sequence (B,), judged on the last output."""
    main_metric = "error_rate"

    vocab: int
    classes: int
    loss_unit, baseline_label = "nats/sequence", "chance"

    def __init__(self, options, seed: int = 0):
        self.options = options
        self.spec = TaskSpec(input_size=self.vocab, output_size=self.classes, vocab_size=self.vocab)

    def loss(self, output, y, mask):
        return F.cross_entropy(output[:, -1, :self.classes], y)

    def step_losses(self, output, y, mask):
        losses = torch.zeros(output.shape[:2], device=output.device, dtype=output.dtype)  # (B, T)
        losses[:, -1] = F.cross_entropy(output[:, -1, :self.classes], y, reduction="none")
        return losses

    def batch_stats(self, output, y, mask):
        return {"wrong": float((output[:, -1, :self.classes].argmax(-1) != y).sum()), "count": float(y.numel())}

    def eval_summary(self, totals):
        return error_rate_summary(totals)

    def metrics(self, mean_loss):
        return {"loss": mean_loss, "baseline": math.log(self.classes)}


@dataclass
class LatchOptions(TaskOptions):
    name: str = opt("latch", "task (`rnnlab list tasks`)")
    length: int = opt(50, "T: symbols after the one to remember", min=1)
    train_lengths: list[int] = train_lengths_opt("T")
    eval_lengths: list[int] = eval_lengths_opt("T")
    length_batches: int = length_batches_opt()

    def check(self, section: str) -> None:
        check_lengths(self, section, floor=1)


@TASKS.register("latch", "Latch: remember the first of T symbols (Bengio et al. 1994)")
class LatchTask(VariableLength, ClassifyAtEnd):
    Options = LatchOptions
    vocab, classes = 6, 2  # ids 0, 1: the two symbols to latch; 2..5: noise

    def batch_at(self, batch_size, generator, n):
        first = torch.randint(0, 2, (batch_size,), generator=generator)  # (B,)
        noise = torch.randint(2, self.vocab, (batch_size, n), generator=generator)
        return torch.cat([first[:, None], noise], dim=1), first, None  # x (B, T+1)


@dataclass
class ParityOptions(TaskOptions):
    name: str = opt("parity", "task (`rnnlab list tasks`)")
    length: int = opt(20, "T: bits in each sequence", min=1)
    train_lengths: list[int] = train_lengths_opt("T")
    eval_lengths: list[int] = eval_lengths_opt("T")
    length_batches: int = length_batches_opt()

    def check(self, section: str) -> None:
        check_lengths(self, section, floor=1)


@TASKS.register("parity", "Parity: the XOR of T bits, answered at the end")
class ParityTask(VariableLength, ClassifyAtEnd):
    Options = ParityOptions
    vocab, classes = 2, 2

    def batch_at(self, batch_size, generator, n):
        bits = torch.randint(0, 2, (batch_size, n), generator=generator)  # (B, T)
        return bits, bits.sum(1) % 2, None


@dataclass
class TemporalOrderOptions(TaskOptions):
    name: str = opt("temporal_order", "task (`rnnlab list tasks`)")
    length: int = opt(100, "T: sequence length", min=12)
    train_lengths: list[int] = train_lengths_opt("T")
    eval_lengths: list[int] = eval_lengths_opt("T")
    length_batches: int = length_batches_opt()

    def check(self, section: str) -> None:
        check_lengths(self, section, floor=12)


@TASKS.register("temporal_order", "Temporal order: XX, XY, YX or YY among distractors (Hochreiter 1997)")
class TemporalOrderTask(VariableLength, ClassifyAtEnd):
    """Tokens: 0 start marker B, 1 end marker E, 2 X, 3 Y, 4..7 distractors a-d.

    The two relevant symbols fall in [10%, 20%] and [50%, 60%] of the sequence,
    as in the LSTM paper, so the first must be held for about T/2 steps.
    """

    Options = TemporalOrderOptions
    vocab, classes = 8, 4

    def batch_at(self, batch_size, generator, length):
        x = torch.randint(4, 8, (batch_size, length), generator=generator)  # (B, T) distractors
        x[:, 0], x[:, -1] = 0, 1
        which = torch.randint(0, 2, (batch_size, 2), generator=generator)  # 0: X, 1: Y
        rows = torch.arange(batch_size)
        for k, (lo, hi) in enumerate(((0.1, 0.2), (0.5, 0.6))):
            low, high = max(1, int(lo * length)), max(int(lo * length) + 2, int(hi * length))
            where = torch.randint(low, high, (batch_size,), generator=generator)
            x[rows, where] = 2 + which[:, k]
        return x, which[:, 0] * 2 + which[:, 1], None  # classes XX=0, XY=1, YX=2, YY=3


@dataclass
class DelayedRecallOptions(TaskOptions):
    name: str = opt("delayed_recall", "task (`rnnlab list tasks`)")
    length: int = opt(50, "T: sequence length", min=2)
    delay: int = opt(5, "k: recall the symbol seen k steps before", min=1)
    symbols: int = opt(8, "alphabet size", min=2)
    train_lengths: list[int] = train_lengths_opt("T")
    eval_lengths: list[int] = eval_lengths_opt("T")
    length_batches: int = length_batches_opt()

    def check(self, section: str) -> None:
        from ..errors import ConfigError

        if self.delay >= self.length:
            raise ConfigError(f"{section}.delay", self.delay, "must be shorter than the sequence",
                              f"an integer < {self.length}")
        check_lengths(self, section, floor=self.delay + 1)  # something to recall at every length


@TASKS.register("delayed_recall", "Delayed recall: at every step, the symbol seen k steps back (masked)")
class DelayedRecallTask(VariableLength, GeneratedTask):
    main_metric = "error_rate"
    baseline_label = "chance"
    Options = DelayedRecallOptions

    def __init__(self, options, seed: int = 0):
        self.options = options
        self.spec = TaskSpec(input_size=options.symbols, output_size=options.symbols, vocab_size=options.symbols)

    def batch_at(self, batch_size, generator, n):
        o = self.options
        x = torch.randint(0, o.symbols, (batch_size, n), generator=generator)  # (B, T)
        y = torch.zeros_like(x)
        y[:, o.delay:] = x[:, :-o.delay]  # the answer at t is x[t - k]
        mask = torch.zeros(batch_size, n, dtype=torch.bool)
        mask[:, o.delay:] = True  # before step k there is nothing to recall: no loss, no gradient
        return x, y, mask

    def loss(self, output, y, mask):
        per_step = F.cross_entropy(output.transpose(1, 2), y, reduction="none")  # (B, T)
        return (per_step * mask).sum() / mask.sum().clamp_min(1)

    def batch_stats(self, output, y, mask):
        wrong = ((output.argmax(-1) != y) & mask).sum()
        return {"wrong": float(wrong), "count": float(mask.sum())}

    def eval_summary(self, totals):
        return error_rate_summary(totals)

    def metrics(self, mean_loss):
        return {"loss": mean_loss, "baseline": math.log(self.options.symbols)}
