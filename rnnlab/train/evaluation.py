"""A validation pass: the task's loss and metrics over its evaluation batches, the exposure-bias side,
and, for tasks with a length, the metrics at each of `task.eval_lengths` (tasks/lengths.py)."""

from __future__ import annotations

import torch

from ..models.base import apply_model
from ..tasks.lengths import eval_lengths
from .scheduled import feeds_itself, mixed_forward


@torch.no_grad()
def validation_metrics(model, task, tc, device: torch.device, autocast) -> dict:
    """task.metrics of the mean loss, plus eval_summary of the summed batch (and decoding) statistics."""
    model.eval()
    mean_loss, totals = judge(model, task, task.eval_batches(tc.batch_size, tc.eval_batches), device, autocast)
    metrics = task.metrics(mean_loss)
    metrics.update(task.eval_summary(totals) if totals else {})
    metrics.update(exposure_metrics(model, task, tc, device))
    metrics.update(length_metrics(model, task, tc, device, autocast))
    return metrics


def judge(model, task, batches, device: torch.device, autocast) -> tuple[float, dict]:
    """The mean loss per judged token over `batches`, and the summed batch (and decoding) statistics.
    A task whose batches continue each other (`eval_carries_state`) has the model's state carried along."""
    total, count, totals = 0.0, 0, {}
    carry, state = getattr(task, "eval_carries_state", False), None
    for x, y, mask in batches:
        x, y = x.to(device), y.to(device)
        mask = mask.to(device) if mask is not None else None
        with autocast:
            output, next_state = apply_model(model, x, y, state)
        state = next_state if carry else None
        output = output.float()
        tokens = int(mask.sum()) if mask is not None else y.numel()
        total += float(task.loss(output, y, mask)) * tokens
        count += tokens
        stats = task.batch_stats(output, y, mask)
        if hasattr(task, "free_running_stats"):  # what needs the model running free: seq2seq decoding, series
            with autocast:
                stats.update(task.free_running_stats(model, x, y, mask))
        for key, value in stats.items():
            totals[key] = totals.get(key, 0.0) + value
    return total / max(count, 1), totals


@torch.no_grad()
def length_metrics(model, task, tc, device: torch.device, autocast) -> dict:
    """{'by_length': {"n": {'loss', ...eval_summary}}, 'trained_lengths': [min, max], 'length_metric'} for a
    task with eval_lengths, else {}. Cost: len(eval_lengths) x task.length_batches batches of
    train.batch_size, each at its length (so a long one costs in proportion)."""
    lengths = eval_lengths(task)
    if not lengths:
        return {}
    by_length = {}
    for n in lengths:
        batches = task.length_eval_batches(tc.batch_size, task.options.length_batches, n)
        mean_loss, totals = judge(model, task, batches, device, autocast)
        by_length[str(n)] = {"loss": mean_loss, **(task.eval_summary(totals) if totals else {})}  # JSON keys
    return {"by_length": by_length, "trained_lengths": list(task.trained_lengths()),
            "length_metric": task.length_metric}


@torch.no_grad()
def exposure_metrics(model, task, tc, device: torch.device) -> dict:
    """The other side of the exposure-bias gap: the free-running loss of a language model, or the
    teacher-forced loss of a model whose evaluation runs free (Jordan nets)."""
    if not (tc.free_running_eval or tc.scheduled_sampling != "none"):
        return {}
    teacher_side = hasattr(model, "eval_teacher_forced")
    if not teacher_side and not feeds_itself(task):
        return {}
    total, count = 0.0, 0
    for x, y, mask in task.eval_batches(tc.batch_size, tc.eval_batches):
        x, y = x.to(device), y.to(device)
        mask = mask.to(device) if mask is not None else None
        if teacher_side:
            model.eval_teacher_forced = True
            try:
                output, _ = apply_model(model, x, y)
            finally:
                model.eval_teacher_forced = False
        else:
            output = mixed_forward(model, x, 0.0, None, greedy=True)  # its own argmax as the next input
        tokens = int(mask.sum()) if mask is not None else y.numel()
        total += float(task.loss(output.float(), y, mask)) * tokens
        count += tokens
    return {"loss_teacher_forced" if teacher_side else "loss_free_running": total / max(count, 1)}
