"""Teacher forcing, free running and scheduled sampling (Bengio et al. 2015).

A model that reads its own previous output is trained, under teacher forcing,
on the true previous token, but at test time it reads its own guesses: the
exposure bias. Scheduled sampling feeds the truth with probability eps_i and
the model's own sample otherwise, eps_i decaying with the training step i:

    linear           eps_i = max(floor, 1 - i / k)
    exponential      eps_i = max(floor, k^i)            (k < 1)
    inverse_sigmoid  eps_i = max(floor, k / (k + exp(i / k)))

For language models (tasks whose next input is the current target) the mix
happens here, one step at a time, for any model that carries a state; models
with their own feedback path (Jordan nets, seq2seq decoders) read
`model.teacher_forcing` (the current eps) themselves.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

SCHEDULES = ["none", "linear", "exponential", "inverse_sigmoid"]


def teacher_forcing_probability(step: int, schedule: str, k: float, floor: float) -> float:
    """eps_i: the probability of feeding the truth at training step i (1 for `none`)."""
    if schedule == "none":
        return 1.0
    if schedule == "linear":
        value = 1.0 - step / k
    elif schedule == "exponential":
        value = k ** step
    else:
        value = k / (k + math.exp(min(step / k, 700.0)))  # exp overflows past ~709
    return max(floor, min(1.0, value))


def mixed_forward(model, x: Tensor, probability: float, generator: torch.Generator | None,
                  greedy: bool = False) -> Tensor:
    """A language model's outputs (B, T, V) when input t > 0 is the true token x_t with `probability`, else
    the model's own choice from its output at t - 1 (sampled, or the argmax when `greedy`), per sequence.

    What is fed back is a discrete token, so no gradient flows through the choice (as in the paper).
    """
    outputs, state, previous = [], None, None  # previous: the logits at t - 1, (B, V)
    for t in range(x.shape[1]):
        tokens = x[:, t]  # (B,)
        if previous is not None and probability < 1.0:
            with torch.no_grad():
                if greedy:
                    own = previous.argmax(-1)
                else:
                    own = torch.multinomial(F.softmax(previous.float(), -1).cpu(), 1, generator=generator)[:, 0]
                truth = torch.rand(tokens.shape[0], generator=generator) < probability  # (B,) on the CPU
                tokens = torch.where(truth.to(tokens.device), tokens, own.to(tokens.device))
        logits, state = model(tokens[:, None], state)  # (B, 1, V)
        outputs.append(logits)
        previous = logits[:, 0]
    return torch.cat(outputs, 1)


def feeds_itself(task) -> bool:
    """Token tasks whose next input is the current target: the model could be fed its own predictions."""
    return bool(task.spec.causal and task.spec.vocab_size is not None)


def set_teacher_forcing(train, model, algorithm, step: int) -> dict:
    """Scheduled sampling's eps for training step `step`, given to whichever mixes the inputs (a model with
    its own feedback path, else the algorithm); the train event's teacher_forcing key, or {} without it."""
    if train.scheduled_sampling == "none":
        return {}
    probability = teacher_forcing_probability(step, train.scheduled_sampling, train.ss_k, train.ss_floor)
    if hasattr(model, "teacher_forcing"):
        model.teacher_forcing = probability
    else:
        algorithm.teacher_forcing = probability
    return {"teacher_forcing": round(probability, 6)}
