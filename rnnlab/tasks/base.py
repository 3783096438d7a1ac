"""The task interface: batches from a seed, a loss, metrics, and a baseline."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..models.base import TaskSpec
from ..options import opt


@dataclass
class TaskOptions:
    name: str = opt("charlm", "task (`rnnlab list tasks`)")


class Task:
    """A source of training batches and a judge of predictions.

    Batches are `(x, y, mask)`: x (B, T) ids or (B, T, I) features, y the
    targets, mask (B, T) bool or None when every position counts.

    Optional: `free_running_stats(model, x, y, mask) -> dict` of sums, for
    metrics that need the model fed its own outputs (seq2seq decoding,
    multi-step series prediction); evaluation adds them to the batch_stats.
    """

    Options = TaskOptions
    spec: TaskSpec
    loss_unit = "nats/token"  # what the loss measures, for tables and plot titles
    baseline_label = "no memory"  # the reference that metrics()["baseline"] is
    main_metric = "loss"  # the eval metric a sweep compares by default (lower is better, unless
    # rnnlab.sweeps.spec.HIGHER_IS_BETTER names it)
    needs_decoder = False  # True: outputs end with spec.eos, so only an encoder-decoder (a model with decode) fits

    def train_batch(self, batch_size: int, generator: torch.Generator):
        raise NotImplementedError  # pragma: no cover - interface

    def eval_batches(self, batch_size: int, count: int):
        raise NotImplementedError  # pragma: no cover - interface

    def probe_batch(self, batch_size: int):
        """The probes' fixed batch: the first evaluation batch, unless evaluation's batches are unlike
        training's (a series scored as one long stretch gives its held-out windows of the training length)."""
        return next(iter(self.eval_batches(batch_size, 1)))

    def loss(self, output: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover - interface

    def step_losses(self, output: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The loss at every step, (B, T), zero where nothing is judged (for the gradient-flow probe)."""
        losses = torch.nn.functional.cross_entropy(output.transpose(1, 2), y, reduction="none")  # (B, T)
        return losses * mask if mask is not None else losses

    def batch_stats(self, output: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None) -> dict:
        """Sums over one evaluation batch for `eval_summary` (e.g. errors and counts); none by default."""
        return {}

    def eval_summary(self, totals: dict) -> dict:
        """Metrics from the summed `batch_stats` of a whole evaluation (e.g. error rate, success)."""
        return {}

    def metrics(self, mean_loss: float) -> dict:
        """Turn a mean validation loss into the task's reported metrics."""
        return {"loss": mean_loss}

    def checkpoint_extras(self) -> dict:
        """What a checkpoint must carry to use the model without the task (e.g. a vocabulary)."""
        return {}


EVAL_SEED = 1_000_003  # evaluation sequences come from their own generator, never the training stream's


class GeneratedTask(Task):
    """Sequences made on the fly: training draws from the run's generator, evaluation from a fixed seed."""

    def make_batch(self, batch_size: int, generator: torch.Generator):
        raise NotImplementedError  # pragma: no cover - each task

    def train_batch(self, batch_size: int, generator: torch.Generator):
        return self.make_batch(batch_size, generator)

    def eval_batches(self, batch_size: int, count: int):
        generator = torch.Generator().manual_seed(EVAL_SEED)
        for _ in range(count):
            yield self.make_batch(batch_size, generator)


def error_rate_summary(totals: dict) -> dict:
    """From summed {'wrong', 'count'}: the error rate, and success as the literature's < 1% of errors."""
    error_rate = totals["wrong"] / max(totals["count"], 1.0)
    return {"error_rate": error_rate, "success": error_rate < 0.01}
