"""Sequence labelling and classification of whole given sequences, generated from a seed.

flank_sum      label every step t with x_{t-before} + x_{t+after}: the answer needs the input
               `after` steps ahead, which a one-way (causal) model has not read yet. Sequences have
               random lengths, padded with a pad token; padded steps and steps whose flanks fall
               outside the sequence are masked out. Baseline: ln(symbols), the best a model that sees
               only one side of t can do (x_{t+after} is uniform and independent of everything before
               it), with an error rate of 1 - 1/symbols; a bidirectional model can reach 0 errors.
markov_source  which of K fixed random Markov chains generated the sequence (one class per
               sequence, answered at the last step). Chance: ln K. The chains are known, so the
               Bayes-optimal classifier's loss and error rate on fresh sequences are reported too:
               the floor no model can beat.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..models.base import TaskSpec
from ..options import opt
from .registry import TASKS
from .base import GeneratedTask, TaskOptions, error_rate_summary
from .memory import ClassifyAtEnd


@dataclass
class FlankSumOptions(TaskOptions):
    name: str = opt("flank_sum", "task (`rnnlab list tasks`)")
    length: int = opt(40, "T: longest sequence (the batch's width)", min=2)
    min_length: int = opt(20, "shortest sequence; lengths are uniform in [min_length, length]", min=2)
    before: int = opt(3, "the label at t reads x_{t-before}", min=0)
    after: int = opt(3, "... and x_{t+after} (0: a one-way model can solve it)", min=0)
    symbols: int = opt(4, "alphabet size S; labels are 0 .. 2S-2", min=2)

    def check(self, section: str) -> None:
        if self.min_length > self.length:
            raise ConfigError(f"{section}.min_length", self.min_length, "longer than the longest sequence",
                              f"an integer <= length ({self.length})")
        if self.before + self.after >= self.min_length:
            raise ConfigError(f"{section}.min_length", self.min_length, "leaves no step with both flanks inside "
                              "the sequence", f"an integer > before + after ({self.before + self.after})")


@TASKS.register("flank_sum", "Label each step with x_{t-k1} + x_{t+k2}: needs the future (variable lengths, padded)")
class FlankSumTask(GeneratedTask):
    main_metric = "error_rate"
    Options = FlankSumOptions
    loss_unit, baseline_label = "nats/label", "the best a one-way model can do"

    def __init__(self, options: FlankSumOptions, seed: int = 0):
        self.options = options
        symbols = options.symbols
        # ids 0 .. S-1 are symbols, S the padding
        self.spec = TaskSpec(input_size=symbols + 1, output_size=2 * symbols - 1, vocab_size=symbols + 1,
                               pad=symbols)

    def make_batch(self, batch_size: int, generator: torch.Generator):
        o = self.options
        lengths = torch.randint(o.min_length, o.length + 1, (batch_size, 1), generator=generator)  # (B, 1)
        x = torch.randint(0, o.symbols, (batch_size, o.length), generator=generator)  # (B, T)
        t = torch.arange(o.length)[None]  # (1, T)
        x = x.masked_fill(t >= lengths, o.symbols)  # pad after each sequence's end
        mask = (t >= o.before) & (t + o.after < lengths)  # (B, T): both flanks inside the sequence
        y = torch.zeros_like(x)
        span = slice(o.before, o.length - o.after)  # the steps whose flanks are inside the batch's width
        y[:, span] = x[:, :o.length - o.after - o.before] + x[:, o.before + o.after:]
        return x, y.masked_fill(~mask, 0), mask  # y 0 where masked: a valid class, never judged

    def loss(self, output, y, mask):
        per_step = F.cross_entropy(output.transpose(1, 2), y, reduction="none")  # (B, T)
        return per_step[mask].sum() / mask.sum().clamp_min(1)  # indexing: masked steps have no gradient path

    def batch_stats(self, output, y, mask):
        return {"wrong": float(((output.argmax(-1) != y) & mask).sum()), "count": float(mask.sum())}

    def eval_summary(self, totals):
        return error_rate_summary(totals)

    def metrics(self, mean_loss):
        # One-way models: when after >= 1 the unseen flank is uniform; when after == 0 a model without
        # memory lacks x_{t-before} (before >= 1) the same way. Both leave ln S.
        return {"loss": mean_loss, "baseline": math.log(self.options.symbols)}


@dataclass
class MarkovSourceOptions(TaskOptions):
    name: str = opt("markov_source", "task (`rnnlab list tasks`)")
    length: int = opt(30, "T: symbols per sequence", min=2)
    classes: int = opt(4, "K: Markov chains, one per class", min=2)
    symbols: int = opt(4, "alphabet size", min=2)
    concentration: float = opt(1.0, "Dirichlet concentration of each chain's transition rows: larger = rows "
                                    "closer to uniform and to each other (harder)", above=0)


CHAINS_SEED = 20140101  # the chains are the task's definition: the same for every run seed
BAYES_SEED, BAYES_SAMPLES = 7, 4096


@TASKS.register("markov_source", "Classify a sequence by which of K random Markov chains generated it")
class MarkovSourceTask(ClassifyAtEnd):
    Options = MarkovSourceOptions

    def __init__(self, options: MarkovSourceOptions, seed: int = 0):
        self.options = options
        self.vocab, self.classes = options.symbols, options.classes
        self.spec = TaskSpec(input_size=options.symbols, output_size=options.classes, vocab_size=options.symbols)
        rng = np.random.default_rng(CHAINS_SEED)
        alpha = np.full(options.symbols, options.concentration)
        rows = rng.dirichlet(alpha, size=(options.classes, options.symbols))  # (K, S, S): P_k[a -> b]
        self.chains = torch.tensor(rows, dtype=torch.float64).clamp_min(1e-300)  # a zero would be -inf in logs
        x, y, _ = self.make_batch(BAYES_SAMPLES, torch.Generator().manual_seed(BAYES_SEED))
        log_post = self.log_posterior(x)  # (N, K)
        self.bayes_loss = float(F.nll_loss(log_post, y))
        self.bayes_error = float((log_post.argmax(1) != y).double().mean())

    def make_batch(self, batch_size: int, generator: torch.Generator):
        o = self.options
        label = torch.randint(0, o.classes, (batch_size,), generator=generator)  # (B,)
        symbol = torch.randint(0, o.symbols, (batch_size,), generator=generator)  # (B,) first: uniform, no clue
        sequence = [symbol]
        for _ in range(o.length - 1):
            rows = self.chains[label, symbol]  # (B, S): each sequence's next-symbol distribution
            symbol = torch.multinomial(rows, 1, generator=generator).squeeze(1)
            sequence.append(symbol)
        return torch.stack(sequence, 1), label, None  # x (B, T)

    def log_posterior(self, x: torch.Tensor) -> torch.Tensor:
        """log p(class | x) under the true chains, uniform prior: (B, K)."""
        log_chains = self.chains.log()  # (K, S, S)
        steps = log_chains[:, x[:, :-1], x[:, 1:]]  # (K, B, T-1)
        return torch.log_softmax(steps.sum(-1).T, dim=1)

    def metrics(self, mean_loss):
        return {"loss": mean_loss, "baseline": math.log(self.classes), "bayes_loss": self.bayes_loss,
                "bayes_error": self.bayes_error}
