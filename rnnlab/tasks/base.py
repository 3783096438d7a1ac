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
    """

    Options = TaskOptions
    spec: TaskSpec

    def train_batch(self, batch_size: int, generator: torch.Generator):
        raise NotImplementedError  # pragma: no cover - interface

    def eval_batches(self, batch_size: int, count: int):
        raise NotImplementedError  # pragma: no cover - interface

    def loss(self, output: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover - interface

    def metrics(self, mean_loss: float) -> dict:
        """Turn a mean validation loss into the task's reported metrics."""
        return {"loss": mean_loss}

    def checkpoint_extras(self) -> dict:
        """What a checkpoint must carry to use the model without the task (e.g. a vocabulary)."""
        return {}
