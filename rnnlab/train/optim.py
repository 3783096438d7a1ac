"""Optimizers and learning-rate schedules, configured by [train]."""

from __future__ import annotations

import math

import torch

from ..config import TrainConfig


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    lr, wd = cfg.lr, cfg.weight_decay
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd)
    if cfg.optimizer == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=wd)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=cfg.momentum, weight_decay=wd)
    if cfg.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)
    raise ValueError(cfg.optimizer)  # unreachable: the config validated the choice


class Schedule:
    """lr(step) = base * warmup(step) * shape(step) * plateau factor.

    Everything but the plateau factor is a pure function of the step, so a
    resumed run continues the schedule from its step; the plateau state is
    saved in the checkpoint.
    """

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.factor = 1.0  # product of plateau divisions so far
        self.best = math.inf
        self.bad_evals = 0

    def lr(self, step: int) -> float:
        """The learning rate used for optimizer step number `step` (1-based)."""
        cfg = self.cfg
        lr = cfg.lr * self.factor
        if cfg.warmup_steps and step <= cfg.warmup_steps:
            return lr * step / cfg.warmup_steps
        done = step - 1 - cfg.warmup_steps  # steps already taken after warm-up
        if cfg.schedule == "exponential":
            lr *= cfg.decay_rate ** (done / cfg.decay_steps)
        elif cfg.schedule == "staircase":
            lr *= cfg.decay_rate ** (done // cfg.decay_steps)
        elif cfg.schedule == "step":
            lr *= cfg.decay_rate ** sum(step > m for m in cfg.milestones)
        elif cfg.schedule == "cosine":
            span = max(cfg.steps - cfg.warmup_steps - 1, 1)  # the last step reaches lr_min
            progress = min(done / span, 1.0)
            lr = cfg.lr_min + (lr - cfg.lr_min) * 0.5 * (1 + math.cos(math.pi * progress))
        return lr

    def observe(self, val_loss: float) -> bool:
        """Feed a validation loss; returns True when a plateau just divided the lr."""
        if val_loss < self.best * (1 - 1e-4):
            self.best, self.bad_evals = val_loss, 0
            return False
        self.bad_evals += 1
        if self.cfg.schedule == "plateau" and self.bad_evals >= self.cfg.plateau_patience:
            self.factor /= self.cfg.plateau_divisor
            self.bad_evals = 0
            return True
        return False

    def state_dict(self) -> dict:
        return {"factor": self.factor, "best": self.best, "bad_evals": self.bad_evals}

    def load_state_dict(self, state: dict) -> None:
        self.factor, self.best, self.bad_evals = state["factor"], state["best"], state["bad_evals"]


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
