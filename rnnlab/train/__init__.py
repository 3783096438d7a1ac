"""Training: the loop, the algorithms (full and truncated BPTT), optimizers, checkpoints."""

from .loop import Outcome, Prepared, Trainer, prepare, resume_trainer

__all__ = ["Outcome", "Prepared", "Trainer", "prepare", "resume_trainer"]
