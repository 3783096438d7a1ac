"""Generating text from a trained language model: greedy, temperature, top-k."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch

from .config import Config
from .config import load as load_config
from .errors import CheckpointError, ConfigError
from .models import build_model
from .models.base import TaskSpec
from .store import RunDir
from .tasks.charlm import Vocabulary
from .train import checkpoint


class LoadedModel(NamedTuple):
    model: torch.nn.Module  # in eval mode
    vocab: Vocabulary
    cfg: Config
    step: int  # the checkpoint's training step


def load_language_model(run: RunDir, which: str = "best", device: str = "cpu") -> LoadedModel:
    """A run's language model from its checkpoint (best falls back to last)."""
    cfg: Config = load_config(run.config_path)
    saved = checkpoint.load_for_run(run, which, map_location=device)
    if "vocab" not in saved:
        raise CheckpointError(f"run {run.id} is not a language model (its checkpoint has no vocabulary)")
    vocab = Vocabulary(saved["vocab"])
    spec = TaskSpec(input_size=len(vocab), output_size=len(vocab), vocab_size=len(vocab))
    model = build_model(cfg.model, spec).to(device)
    try:
        model.load_state_dict(saved["model"])
    except RuntimeError as error:
        raise CheckpointError(f"checkpoint does not match the run's config: {str(error).splitlines()[0]}") from None
    model.eval()
    return LoadedModel(model, vocab, cfg, int(saved["step"]))


def pick_next(logits: torch.Tensor, temperature: float, top_k: int | None, greedy: bool,
              generator: torch.Generator | None) -> int:
    """Choose one token id from logits (V,)."""
    if greedy or temperature == 0:
        return int(logits.argmax())
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.numel():
        threshold = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < threshold, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probs.cpu(), 1, generator=generator))


@torch.no_grad()
def generate(model, vocab: Vocabulary, prompt: str, length: int, temperature: float = 1.0,
             top_k: int | None = None, greedy: bool = False, seed: int | None = None) -> Iterator[str]:
    """Yield `length` characters continuing `prompt`, one at a time (for streaming)."""
    if temperature < 0:
        raise ConfigError("--temperature", temperature, "must not be negative", "a number >= 0")
    if top_k is not None and top_k < 1:
        raise ConfigError("--top-k", top_k, "must be at least 1", "an integer >= 1")
    if not prompt:
        raise ConfigError("--prompt", prompt, "must not be empty", "at least one character")
    ids = vocab.encode(prompt)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    device = next(model.parameters()).device
    logits, state = model(ids[None].to(device))  # (1, P, V)
    last = logits[0, -1]
    for _ in range(length):
        token = pick_next(last, temperature, top_k, greedy, generator)
        yield vocab.chars[token]
        logits, state = model(torch.tensor([[token]], device=device), state)  # (1, 1, V)
        last = logits[0, -1]
