"""Generating text from a trained language model (the strategies themselves: decoding.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch

from . import decoding
from .config import Config
from .decoding import Sampling
from .errors import ConfigError
from .models.base import TaskSpec
from .store import RunDir
from .tasks.tokenizers import Vocabulary, vocabulary_from_checkpoint
from .train import checkpoint


class LoadedModel(NamedTuple):
    model: torch.nn.Module  # in eval mode
    vocab: Vocabulary
    cfg: Config
    step: int  # the checkpoint's training step


def load_language_model(run: RunDir, which: str = "best", device: str = "cpu") -> LoadedModel:
    """A run's language model from its checkpoint (best falls back to last)."""
    cfg, path, saved = checkpoint.load_for_use(run, which, device, "vocab", {"vocab": list})
    vocab = vocabulary_from_checkpoint(saved)
    spec = TaskSpec(input_size=len(vocab), output_size=len(vocab), vocab_size=len(vocab))
    return LoadedModel(checkpoint.restored_model(cfg, spec, saved, path, device), vocab, cfg, int(saved["step"]))


def pick_next(logits: torch.Tensor, temperature: float, top_k: int | None, greedy: bool,
              generator: torch.Generator | None, top_p: float | None = None) -> int:
    """Choose one token id from logits (V,)."""
    return int(decoding.pick_next(logits[None], Sampling(temperature, top_k, top_p, greedy), generator)[0])


def default_prompt(vocab: Vocabulary) -> str:
    """Where generation starts when no prompt is given: a new line, else a space, else any token the text had
    (a corpus without newlines would otherwise refuse the default it never asked for)."""
    for start in ("\n", " "):
        if start in vocab.index:
            return start
    return vocab.tokens[-1]  # the last, not the first: a word vocabulary's first is <unk>


def _encode_prompt(vocab: Vocabulary, prompt: str) -> torch.Tensor:
    if not prompt:
        raise ConfigError("--prompt", prompt, "must not be empty", "at least one character")
    return vocab.encode(prompt)


def prompt_stepper(model, vocab: Vocabulary, prompt: str) -> tuple[object, str]:
    """A stepper continuing the prompt, and the text of the prompt's end it heals ('' when none).

    Word and subword models heal the prompt's last token: a prompt cut mid-word ("def get_") or before a
    space-led word ("def ") ends in a token the training text rarely had there (the next word would have
    absorbed it), so that token is taken back and the first choice is restricted to the tokens that begin
    with its text. Characters need no healing.
    """
    ids = _encode_prompt(vocab, prompt)
    last = vocab.split(prompt)[-1]
    if vocab.kind == "char" or len(ids) < 2 or last not in vocab.index:  # nothing to heal, or an <unk> word
        return decoding.LanguageModelStepper(model, ids), ""
    allowed = torch.tensor([token.startswith(last) for token in vocab.tokens])  # (V,)
    if vocab.kind == "word":
        allowed[0] = False  # <unk> stands for a word, not for the text "<unk>"
    return decoding.FirstTokenAmong(decoding.LanguageModelStepper(model, ids[:-1]), allowed), last


@torch.no_grad()
def generate(model, vocab: Vocabulary, prompt: str, length: int, temperature: float = 1.0,
             top_k: int | None = None, greedy: bool = False, seed: int | None = None,
             top_p: float | None = None) -> Iterator[str]:
    """Yield `length` tokens' texts (characters for a character model) continuing `prompt`, one at a time."""
    sampling = Sampling(temperature, top_k, top_p, greedy)
    sampling.check()
    stepper, healed = prompt_stepper(model, vocab, prompt)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    for position, tokens in enumerate(decoding.sample(stepper, length, sampling, generator)):
        text = vocab.tokens[int(tokens[0])]
        yield text[len(healed):] if position == 0 else text  # the healed text is the prompt's already


@torch.no_grad()
def beam_generate(model, vocab: Vocabulary, prompt: str, length: int, beam: int,
                  alpha: float = 0.0) -> tuple[str, decoding.Hypothesis]:
    """The most likely `length`-token continuation a beam of `beam` finds (not streamed: the best
    hypothesis is known only at the end)."""
    stepper, healed = prompt_stepper(model, vocab, prompt)
    best = decoding.beam_search(stepper, beam, length, alpha=alpha)
    return vocab.decode(best.tokens)[len(healed):], best
