"""Backpropagation through time, full and truncated.

Both produce one training loss per optimizer step; `state_dict()` holds what a
resumed run needs to continue exactly where it stopped.
"""

from __future__ import annotations

import torch

from ..models.base import apply_model, detach_state
from .regularizer import regularized_loss
from .scheduled import mixed_forward


class FullBPTT:
    """Each step: a fresh batch of random windows, zero initial state, backprop through all of it.

    With `pascanu_weight` the loss carries the gradient-norm regulariser (regularizer.py); with
    `mixes_inputs` (language models) and `teacher_forcing` < 1, inputs are mixed with the model's own
    samples (scheduled sampling, scheduled.py). `extras` holds what the step's train event should add.
    """

    def __init__(self, task, batch_size: int, generator: torch.Generator, device: torch.device,
                 pascanu_weight: float = 0.0, mixes_inputs: bool = False):
        self.task, self.batch_size, self.generator, self.device = task, batch_size, generator, device
        self.pascanu_weight, self.mixes_inputs = pascanu_weight, mixes_inputs
        self.teacher_forcing = 1.0  # set by the trainer each step under scheduled sampling
        self.extras: dict = {}

    def step_loss(self, model) -> tuple[torch.Tensor, int]:
        x, y, mask = self.task.train_batch(self.batch_size, self.generator)
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        mask = mask.to(self.device) if mask is not None else None
        tokens = int(mask.sum()) if mask is not None else y.numel()
        if self.pascanu_weight:
            loss, omega = regularized_loss(model, self.task, x, y, mask, self.pascanu_weight)
            self.extras = {"pascanu": omega}
            return loss, tokens
        if self.mixes_inputs and self.teacher_forcing < 1.0:
            output = mixed_forward(model, x, self.teacher_forcing, self.generator)  # (B, T, V)
        else:
            output, _ = apply_model(model, x, y)  # (B, T, O)
        loss = self.task.loss(output, y, mask)
        penalty = model.take_penalty() if hasattr(model, "take_penalty") else None  # a model's own term of
        if penalty is not None:  # this forward (the captioner's doubly stochastic attention, models/caption.py)
            self.extras = {"penalty": float(penalty.detach())}
            loss = loss + penalty
        return loss, tokens

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class TruncatedBPTT:
    """TBPTT(k1, k2) over B contiguous streams of the training text.

    Every step consumes k1 new tokens and backpropagates through the last k2
    (k2 >= k1): the window starts k2 - k1 tokens before the new ones, from the
    state carried (detached) from the previous step. The loss counts only the
    k1 new tokens; the older ones are context, already counted once. At the
    end of the streams they wrap around and the state restarts from zero.
    """

    def __init__(self, task, batch_size: int, k1: int, k2: int, device: torch.device):
        self.streams = task.train_streams(batch_size).to(device)  # (B, L)
        self.extras: dict = {}  # nothing to add to a train event (FullBPTT's may hold pascanu)
        self.task, self.k1, self.k2 = task, k1, k2
        self.pos = 0  # index of the first new token of the next step
        self.state = None  # state at the start of the next window, detached

    def _window_start(self, pos: int) -> int:
        return max(0, pos - (self.k2 - self.k1))

    def step_loss(self, model) -> tuple[torch.Tensor, int]:
        length = self.streams.shape[1]
        if self.pos + self.k1 + 1 > length:  # not enough text left for k1 targets: wrap
            self.pos, self.state = 0, None
        start, end = self._window_start(self.pos), self.pos + self.k1
        middle = self._window_start(end)  # where the next window starts
        x = self.streams[:, start:end]  # (B, W)
        y = self.streams[:, start + 1:end + 1]  # (B, W)
        outputs, state = [], self.state
        for a, b in ((start, middle), (middle, end)):
            if b > a:
                out, state = apply_model(model, x[:, a - start:b - start], y[:, a - start:b - start], state)  # (B, b-a, O)
                outputs.append(out)
            if b == middle:
                carried = detach_state(state)
        output = torch.cat(outputs, dim=1)  # (B, W, O)
        new = end - self.pos  # only the new tokens count
        loss = self.task.loss(output[:, -new:], y[:, -new:], None)
        self.state, self.pos = carried, end
        return loss, y[:, -new:].numel()

    def state_dict(self) -> dict:
        state = self.state
        if isinstance(state, torch.Tensor):
            state = (state,)
        return {"pos": self.pos, "state": [s.cpu() for s in state] if state is not None else None,
                "tuple": isinstance(self.state, tuple)}

    def load_state_dict(self, saved: dict) -> None:
        self.pos = saved["pos"]
        if saved["state"] is None:
            self.state = None
        else:
            tensors = tuple(s.to(self.streams.device) for s in saved["state"])
            self.state = tensors if saved["tuple"] else tensors[0]
