"""Character-level language modelling: read text, predict the next character."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..models.base import TaskSpec
from ..options import opt
from . import TASKS
from .base import Task, TaskOptions
from .corpus import EMBEDDED, load_corpus


@dataclass
class CharLMOptions(TaskOptions):
    name: str = opt("charlm", "task (`rnnlab list tasks`)")
    corpus: str = opt(EMBEDDED, f"{EMBEDDED!r} (embedded Python stdlib source) or a path to a UTF-8 text file")
    seq_len: int = opt(128, "characters per training window (bptt) and per eval window", min=1)
    val_fraction: float = opt(0.1, "the last part of the text held out for validation", above=0, max=0.5)
    predict: str = opt("all", "all: the next character at every position; last: read seq_len characters and "
                       "predict only the next one (the read-30-predict-31 set-up with seq_len = 30)",
                       choices=["all", "last"])
    ngram_order: int = opt(5, "order n of the interpolated Kneser-Ney n-gram model reported beside the unigram "
                           "baseline (0: none)", min=0, max=8)

    def check(self, section: str) -> None:
        # A relative path is resolved now so a resumed run finds the same file.
        if self.corpus != EMBEDDED:
            self.corpus = str(Path(self.corpus).expanduser().resolve())


class Vocabulary:
    """Characters <-> ids; stored in every checkpoint as its list of characters."""

    def __init__(self, chars: list[str]):
        self.chars = list(chars)
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> Vocabulary:
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        missing = sorted({c for c in text if c not in self.index})
        if missing:
            raise ConfigError("prompt", text, f"characters not in the vocabulary: {''.join(missing)!r}",
                              "characters seen in the training text")
        return torch.tensor([self.index[c] for c in text], dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


@TASKS.register("charlm", "Character-level language model on a text corpus (bits/char, perplexity)")
class CharLM(Task):
    loss_unit, baseline_label = "nats/char", "unigram"
    Options = CharLMOptions

    def __init__(self, options: CharLMOptions, seed: int = 0):
        self.options = options
        text = load_corpus(options.corpus)
        self.vocab = Vocabulary.from_text(text)
        data = torch.tensor([self.vocab.index[c] for c in text], dtype=torch.long)  # (N,)
        split = int(len(data) * (1 - options.val_fraction))
        self.train_data, self.val_data = data[:split], data[split:]
        shortest = min(len(self.train_data), len(self.val_data)) - 1
        if options.seq_len > shortest:
            raise ConfigError("task.seq_len", options.seq_len, f"longer than the corpus allows "
                              f"({len(self.train_data)} train / {len(self.val_data)} val characters)",
                              f"an integer <= {max(shortest, 1)}")
        self.spec = TaskSpec(input_size=len(self.vocab), output_size=len(self.vocab), vocab_size=len(self.vocab),
                             causal=True)
        self.unigram_loss = self._unigram_cross_entropy()
        self.ngram_loss = self._ngram_cross_entropy()

    def _ngram_cross_entropy(self) -> float | None:
        """Val loss (nats/char) of an interpolated Kneser-Ney n-gram model of the training text."""
        order = self.options.ngram_order
        if not order:
            return None
        if len(self.vocab) ** order >= 2 ** 62:
            raise ConfigError("task.ngram_order", order, f"{len(self.vocab)} characters to the power {order} "
                              "overflow the n-gram codes", f"an integer <= {int(62 / math.log2(len(self.vocab)))}")
        from .ngram import KneserNey

        loss = KneserNey(self.train_data, len(self.vocab), order).cross_entropy(self.val_data)
        return loss if math.isfinite(loss) else None  # a validation text shorter than the order

    def _unigram_cross_entropy(self) -> float:
        """Val loss (nats/char) of a model without memory: train char frequencies, add-one smoothed."""
        counts = torch.bincount(self.train_data, minlength=len(self.vocab)).double() + 1.0
        log_probs = (counts / counts.sum()).log()
        return float(-log_probs[self.val_data].mean())

    # -- batches -------------------------------------------------------------
    def train_batch(self, batch_size: int, generator: torch.Generator):
        """Random windows of the training text: x (B, T), y = x shifted by one."""
        seq_len = self.options.seq_len
        starts = torch.randint(0, len(self.train_data) - seq_len, (batch_size,), generator=generator)
        window = self.train_data[starts[:, None] + torch.arange(seq_len + 1)]  # (B, T+1)
        return window[:, :-1], window[:, 1:], self._judged(window[:, 1:])

    def _judged(self, y: torch.Tensor) -> torch.Tensor | None:
        """predict = last: a mask (B, T) true at the last position only; None (every position) otherwise."""
        if self.options.predict == "all":
            return None
        mask = torch.zeros_like(y, dtype=torch.bool)
        mask[:, -1] = True
        return mask

    def train_streams(self, batch_size: int) -> torch.Tensor:
        """The training text as B contiguous streams, (B, L), for truncated BPTT."""
        length = len(self.train_data) // batch_size
        if length < 2:
            raise ConfigError("train.batch_size", batch_size, "more streams than the text has characters",
                              f"an integer <= {len(self.train_data) // 2}")
        return self.train_data[: length * batch_size].view(batch_size, length)

    def eval_batches(self, batch_size: int, count: int):
        """Fixed, non-overlapping windows from the start of the validation text."""
        seq_len = self.options.seq_len
        windows = (len(self.val_data) - 1) // seq_len
        usable = min(windows, batch_size * count)
        x = self.val_data[: usable * seq_len].view(usable, seq_len)  # (W, T)
        y = self.val_data[1: usable * seq_len + 1].view(usable, seq_len)
        for start in range(0, usable, batch_size):
            batch = y[start:start + batch_size]
            yield x[start:start + batch_size], batch, self._judged(batch)

    # -- judging -------------------------------------------------------------
    def loss(self, output: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Mean cross-entropy in nats per character. output (B, T, V), y (B, T)."""
        if mask is None:
            return F.cross_entropy(output.reshape(-1, output.shape[-1]), y.reshape(-1))
        per_token = F.cross_entropy(output.transpose(1, 2), y, reduction="none")  # (B, T)
        return (per_token * mask).sum() / mask.sum().clamp_min(1)

    def metrics(self, mean_loss: float) -> dict:
        return {
            "loss": mean_loss,
            "bpc": mean_loss / math.log(2),
            "ppl": math.exp(min(mean_loss, 50.0)),
            "baseline": self.unigram_loss,  # unigram, nats/char
            "baseline_bpc": self.unigram_loss / math.log(2),
            **({"ngram": self.ngram_loss, "ngram_bpc": self.ngram_loss / math.log(2)}
               if self.ngram_loss is not None else {}),
        }

    def checkpoint_extras(self) -> dict:
        return {"vocab": self.vocab.chars}
