"""Closed-form training of a linear readout over fixed features (echo state networks).

Each step runs one training batch through the model's fixed part without a
gradient and adds the judged positions to the normal equations, in float64:

    A += X^T X,   B += X^T Y,   X = [features, 1] (N, F+1),   Y = targets (N, O)

then re-solves (A + alpha D) [W^T; b^T] = B, D = diag(1, ..., 1, 0): the
bias is not penalised, so shifting the targets shifts only b. Re-solving
after every batch costs an (F+1)^2 Cholesky, small beside the batch's own
X^T X, and keeps the model's readout always the fit to every batch so far:
evaluations, checkpoints and a stop at any step see a real readout, and each
step's loss is honest, on a batch the readout had not seen (prequential).
After the last step the readout is the one solve over all train.steps batches.

Which positions count: those the task judges, found with the task's own
`step_losses` (zero where nothing is judged, e.g. all but the last step of a
classify-at-end task, or masked steps) on random outputs, whose loss is
non-zero wherever a position is judged; minus the model's washout. So every
task works without a hook of its own. Targets: regression values as they are;
class ids (integer targets) as one-hot rows, the usual ESN readout for
classification; a per-sequence target (B,) belongs to each judged step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError


def supports_ridge(model) -> bool:
    """Models whose only trainable part is a linear `head` over `readout_features`."""
    return hasattr(model, "readout_features") and isinstance(getattr(model, "head", None), torch.nn.Linear)


def judged_positions(task, y: torch.Tensor, mask: torch.Tensor | None, shape: tuple[int, int, int]) -> torch.Tensor:
    """(B, T) bool: the positions the task's loss judges."""
    probe = torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)  # (B, T, O)
    return task.step_losses(probe.to(y.device), y, mask) != 0


def readout_targets(y: torch.Tensor, outputs: int, steps: int) -> torch.Tensor:
    """(B, T, O) float64 targets from y: (B, T) or (B,) class ids, (B, T), (B,) or (B, T, O) values."""
    if not y.is_floating_point():
        targets = F.one_hot(y, outputs).double()  # (B, T, O) or (B, O)
        per_sequence = y.dim() == 1
    else:
        targets = y.double()
        per_sequence = y.dim() == 1
        if y.dim() <= 2:
            targets = targets.unsqueeze(-1)  # one output: (B, T, 1) or (B, 1)
    if per_sequence:
        targets = targets[:, None].expand(-1, steps, -1)  # (B, T, O): each step may be the judged one
    return targets


class RidgeReadout:
    """The normal equations of the readout, one batch at a time; `state_dict` resumes them."""

    def __init__(self, task, batch_size: int, generator: torch.Generator, device: torch.device, alpha: float):
        self.task, self.batch_size, self.generator, self.device, self.alpha = task, batch_size, generator, device, alpha
        self.gram = self.cross = None  # A (F+1, F+1), B (F+1, O), float64
        self.target_sq = 0.0  # sum of squared targets: with A and B it gives the fit's training error
        self.count = 0  # judged positions accumulated

    def design(self, model, x, y, mask) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Features (B, T, F), the rows X (N, F+1) and targets Y (N, O) of one batch."""
        # (B, T, F); a model that reads its targets (an ESN's output feedback) is fitted teacher-forced
        features = model.readout_features(x, y) if getattr(model, "takes_targets", False) else model.readout_features(x)
        batch, steps = features.shape[:2]
        outputs = model.head.out_features
        judged = judged_positions(self.task, y, mask, (batch, steps, outputs))  # (B, T)
        judged[:, :model.washout] = False
        rows = features[judged].double()  # (N, F)
        ones = torch.ones(rows.shape[0], 1, dtype=torch.float64, device=rows.device)
        targets = readout_targets(y, outputs, steps)[judged]  # (N, O)
        return features, torch.cat([rows, ones], dim=1), targets

    def add(self, rows: torch.Tensor, targets: torch.Tensor) -> None:
        gram, cross = rows.T @ rows, rows.T @ targets  # (F+1, F+1), (F+1, O)
        self.gram = gram if self.gram is None else self.gram + gram
        self.cross = cross if self.cross is None else self.cross + cross
        self.target_sq += float(targets.square().sum())
        self.count += rows.shape[0]

    def solve(self) -> torch.Tensor:
        """[W^T; b^T] (F+1, O) minimising ||X [W^T; b^T] - Y||^2 + alpha ||W||^2."""
        penalty = torch.full((self.gram.shape[0],), self.alpha, dtype=torch.float64, device=self.gram.device)
        penalty[-1] = 0.0  # the bias column
        factor, info = torch.linalg.cholesky_ex(self.gram + torch.diag(penalty))
        if int(info) != 0:  # only with no judged position at all: the bias row is then all zero
            raise ValueError(f"the ridge system is singular after {self.count} judged positions")
        return torch.cholesky_solve(self.cross, factor)

    @torch.no_grad()
    def step(self, model) -> dict:
        """One batch into the sums, the readout re-solved and written. Returns the event's fields."""
        x, y, mask = self.task.train_batch(self.batch_size, self.generator)
        x, y = x.to(self.device), y.to(self.device)
        mask = mask.to(self.device) if mask is not None else None
        features, rows, targets = self.design(model, x, y, mask)
        loss = float(self.task.loss(model.head(features).float(), y, mask))  # before this batch is learnt
        self.add(rows, targets)
        solution = self.solve()  # (F+1, O)
        model.head.weight.copy_(solution[:-1].T)
        model.head.bias.copy_(solution[-1])
        # ||X s - Y||^2 = s^T A s - 2 s^T B + Y^T Y, traced over the outputs: the fit's own training error
        sse = float((solution * (self.gram @ solution)).sum() - 2 * (solution * self.cross).sum()) + self.target_sq
        return {"loss": loss, "samples": rows.shape[0], "fit_samples": self.count,
                "fit_mse": max(sse, 0.0) / max(self.count * targets.shape[1], 1), "tokens": y.shape[0] * x.shape[1]}

    def state_dict(self) -> dict:
        return {"gram": self.gram, "cross": self.cross, "target_sq": self.target_sq, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        if state["gram"] is not None:
            self.gram, self.cross = state["gram"].to(self.device), state["cross"].to(self.device)
        self.target_sq, self.count = state["target_sq"], state["count"]


def check_ridge(model, task, arch: str) -> None:
    """Config errors of train.algorithm = "ridge", before a run exists."""
    if not supports_ridge(model):
        raise ConfigError("train.algorithm", "ridge", f"fits a linear readout over fixed features; "
                          f"model.arch {arch!r} has trainable recurrent weights", "model.arch = esn, or bptt/tbptt")
    x, y, mask = task.train_batch(1, torch.Generator().manual_seed(0))  # a private generator: the run's is untouched
    judged = judged_positions(task, y, mask, (1, x.shape[1], model.head.out_features))  # (1, T)
    if not judged[:, model.washout:].any():
        raise ConfigError("model.washout", model.washout, "leaves no judged position of the task's sequences "
                          "to fit the readout on", f"an integer < {int(judged.nonzero()[:, 1].max()) + 1}"
                          if judged.any() else "a task with judged positions")
