"""Long-range dependency benchmarks, generated on the fly from a seed.

copy    (the uRNN definition, Arjovsky et al. 2016): 10 symbols from 1..8, T - 1
        blanks, a delimiter, 10 blanks; then reproduce the 10 symbols. A model
        without memory predicts blanks, then a uniform guess: 10 ln 8 / (T + 20).
adding  (Hochreiter & Schmidhuber 1997; Le et al. 2015): T pairs (value, marker);
        two values are marked, one in each half; output their sum at the end.
        Predicting the mean (1.0) gives MSE 1/6 = 0.167. `variant = "lstm"` is
        the LSTM paper's: values in [-1, 1], target 0.5 + (x1 + x2) / 4,
        success = every error under 0.04.
Each reports a success criterion besides the loss, on fixed evaluation
sequences (their own seed, so they never overlap the training stream's).
Lengths (lengths.py): copy varies copy_len (Graves et al. 2014's copy length),
adding varies T.
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


@dataclass
class CopyOptions(TaskOptions):
    name: str = opt("copy", "task (`rnnlab list tasks`)")
    length: int = opt(100, "T: blanks between the symbols and the delimiter (+1)", min=1)
    symbols: int = opt(8, "alphabet size of the symbols to copy", min=2)
    copy_len: int = opt(10, "how many symbols to remember", min=1)
    train_lengths: list[int] = train_lengths_opt("copy_len")
    eval_lengths: list[int] = eval_lengths_opt("copy_len")
    length_batches: int = length_batches_opt()

    def check(self, section: str) -> None:
        check_lengths(self, section)


@TASKS.register("copy", "Copy/memory task: remember 10 symbols over T blanks (uRNN definition)")
class CopyTask(VariableLength, GeneratedTask):
    main_metric = "error_rate"
    Options = CopyOptions

    def __init__(self, options: CopyOptions, seed: int = 0):
        self.options = options
        vocab = options.symbols + 2  # 0 blank, 1..S symbols, S+1 delimiter
        self.spec = TaskSpec(input_size=vocab, output_size=vocab, vocab_size=vocab)
        # The loss is per token: over a range of copy lengths n (one per batch, uniform), the no-memory
        # loss is the expected n ln S over the expected T + 2n tokens.
        lengths = range(self.trained_lengths()[0], self.trained_lengths()[1] + 1)
        self.baseline = (sum(lengths) * math.log(options.symbols)
                         / sum(options.length + 2 * n for n in lengths))

    def fixed_length(self) -> int:
        return self.options.copy_len

    def batch_at(self, batch_size: int, generator: torch.Generator, n: int):
        """n symbols, T - 1 blanks, the delimiter, n blanks; the target: blanks, then the n symbols."""
        blanks = self.options.length
        symbols = torch.randint(1, self.options.symbols + 1, (batch_size, n), generator=generator)  # (B, n)
        x = torch.zeros(batch_size, blanks + 2 * n, dtype=torch.long)  # (B, T + 2n)
        x[:, :n] = symbols
        x[:, n + blanks - 1] = self.options.symbols + 1  # the delimiter: "now repeat them"
        y = torch.zeros_like(x)
        y[:, -n:] = symbols
        return x, y, None

    def loss(self, output, y, mask):
        return F.cross_entropy(output.reshape(-1, output.shape[-1]), y.reshape(-1))

    def step_losses(self, output, y, mask):
        return F.cross_entropy(output.transpose(1, 2), y, reduction="none")  # (B, T)

    def batch_stats(self, output, y, mask) -> dict:
        copied = slice(-((y.shape[1] - self.options.length) // 2), None)  # the last n of T + 2n steps
        wrong = (output[:, copied].argmax(-1) != y[:, copied]).sum()
        return {"wrong": float(wrong), "count": float(y[:, copied].numel())}

    def eval_summary(self, totals: dict) -> dict:
        return error_rate_summary(totals)

    def metrics(self, mean_loss: float) -> dict:
        return {"loss": mean_loss, "baseline": self.baseline}


@dataclass
class AddingOptions(TaskOptions):
    name: str = opt("adding", "task (`rnnlab list tasks`)")
    length: int = opt(100, "T: sequence length", min=2)
    variant: str = opt("standard", "standard: U(0,1) values, target their sum; lstm: the 1997 paper's",
                       choices=["standard", "lstm"])
    train_lengths: list[int] = train_lengths_opt("T")
    eval_lengths: list[int] = eval_lengths_opt("T")
    length_batches: int = length_batches_opt()

    def check(self, section: str) -> None:
        check_lengths(self, section, floor=2)  # one marked value in each half


@TASKS.register("adding", "Adding problem: sum the two marked values of a long sequence (MSE)")
class AddingTask(VariableLength, GeneratedTask):
    loss_unit, baseline_label = "MSE", "predict the mean"
    length_metric = "loss"  # the MSE: its baseline does not depend on T
    Options = AddingOptions

    def __init__(self, options: AddingOptions, seed: int = 0):
        self.options = options
        self.spec = TaskSpec(input_size=2, output_size=1)
        # Predicting the target's mean: the target's variance (sum of two uniforms on [0,1] or [-1,1]/4).
        self.baseline = 1 / 6 if options.variant == "standard" else 2 * (1 / 3) / 16

    def batch_at(self, batch_size: int, generator: torch.Generator, length: int):
        values = torch.rand(batch_size, length, generator=generator)  # (B, T)
        if self.options.variant == "lstm":
            values = values * 2 - 1
        half = length // 2
        first = torch.randint(0, half, (batch_size,), generator=generator)
        second = torch.randint(half, length, (batch_size,), generator=generator)
        markers = torch.zeros(batch_size, length)
        rows = torch.arange(batch_size)
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        x = torch.stack([values, markers], dim=-1)  # (B, T, 2)
        total = values[rows, first] + values[rows, second]  # (B,)
        y = total if self.options.variant == "standard" else 0.5 + total / 4
        return x, y, None

    def loss(self, output, y, mask):
        return F.mse_loss(output[:, -1, 0], y)  # only the answer at the end counts

    def step_losses(self, output, y, mask):
        losses = torch.zeros(output.shape[:2], device=output.device, dtype=output.dtype)  # (B, T)
        losses[:, -1] = (output[:, -1, 0] - y) ** 2
        return losses

    def batch_stats(self, output, y, mask) -> dict:
        error = (output[:, -1, 0] - y).abs()
        return {"within": float((error < 0.04).sum()), "sequences": float(y.numel())}

    def eval_summary(self, totals: dict) -> dict:
        accuracy = totals["within"] / max(totals["sequences"], 1.0)
        if self.options.variant == "lstm":  # the paper's criterion: no error of 0.04 or more
            return {"accuracy": accuracy, "success": accuracy == 1.0}
        return {"accuracy": accuracy, "success": None}  # judged on the MSE (see metrics)

    def metrics(self, mean_loss: float) -> dict:
        out = {"loss": mean_loss, "mse": mean_loss, "baseline": self.baseline}
        if self.options.variant == "standard":
            out["solved"] = mean_loss < 0.01 * self.baseline * 6  # MSE < 0.01
        return out
