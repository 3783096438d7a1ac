"""Language modelling: read text, predict the next token (a character, a word or a BPE subword).

Whatever the token, the loss is also reported per character (nats/char and
bits/char over the characters the judged tokens cover), so models with
different tokenisers compare on one scale. Word vocabularies are closed: a
word outside it is one <unk> token, which makes a word model's per-character
figure optimistic by as much as the <unk>s hide (reported as `oov`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..models.base import TaskSpec
from ..options import opt
from .registry import TASKS
from .base import Task, TaskOptions
from .corpus import EMBEDDED, load_corpus
from . import corpus_cache
from .tokenizers import BPEVocabulary, Vocabulary, WordVocabulary, vocabulary_from_checkpoint


@dataclass
class CharLMOptions(TaskOptions):
    name: str = opt("charlm", "task (`rnnlab list tasks`)")
    corpus: str = opt(EMBEDDED, f"{EMBEDDED!r} (embedded Python stdlib source) or a path to a UTF-8 text file")
    tokenizer: str = opt("char", "char: one token per character; word: words with their leading space, "
                         "punctuation and whitespace runs (the vocab_size most frequent, the rest <unk>); "
                         "bpe: byte-pair-encoded subwords learnt from the training text", choices=["char", "word", "bpe"])
    vocab_size: int = opt(2000, "word: words kept (with <unk>); bpe: the alphabet plus learnt merges up to this "
                          "many tokens; char: unused", min=2)
    seq_len: int = opt(128, "tokens per training window (bptt) and per eval window", min=1)
    val_fraction: float = opt(0.1, "the last part of the text held out for validation", above=0, max=0.5)
    predict: str = opt("all", "all: the next token at every position; last: read seq_len tokens and "
                       "predict only the next one (the read-30-predict-31 set-up with seq_len = 30)",
                       choices=["all", "last"])
    eval_state: str = opt("reset", "validation windows: reset (each from a zero state) | carried (the validation "
                          "text as train.batch_size streams, each window continuing the state of the one before "
                          "it: the protocol of char-rnn and AWD-LSTM, where no character is read without its "
                          "history)", choices=["reset", "carried"])
    ngram_order: int = opt(5, "order n of the interpolated Kneser-Ney n-gram model reported beside the unigram "
                           "baseline (0: none)", min=0, max=8)

    def check(self, section: str) -> None:
        if self.eval_state == "carried" and self.predict == "last":
            raise ConfigError("task.eval_state", "carried", "a window that predicts only its last token has no "
                              "stream to carry a state along", "reset, or task.predict = all")
        # A relative path is resolved now so a resumed run finds the same file.
        if self.corpus != EMBEDDED:
            self.corpus = str(Path(self.corpus).expanduser().resolve())


@TASKS.register("charlm", "Language model on a text corpus: characters, or words / BPE subwords with "
                "task.tokenizer (bits/char, perplexity, n-gram baseline)")
class CharLM(Task):
    baseline_label = "unigram"
    Options = CharLMOptions

    def __init__(self, options: CharLMOptions, seed: int = 0):
        self.options = options
        text = load_corpus(options.corpus)
        split = int(len(text) * (1 - options.val_fraction))
        train_text, val_text = text[:split], text[split:]  # split as text, so a word vocabulary sees no val words
        self.val_text = val_text  # the words behind any <unk>, for reading validation text back
        corpus = corpus_tensors(options, text, train_text, val_text)  # computed once per corpus, then cached
        self.vocab = vocabulary_from_checkpoint(corpus["vocab"])
        self.loss_unit = "nats/char" if options.tokenizer == "char" else "nats/token"
        self.train_data, self.val_data = corpus["train_data"], corpus["val_data"]  # (N,), (M,) int64
        # What each validation token covers of the text, in characters (an <unk> covers its whole word).
        self.val_lengths = corpus["val_lengths"]  # (M,)
        self.oov = self.vocab.out_of_vocabulary(self.val_data) if isinstance(self.vocab, WordVocabulary) else None
        shortest = min(len(self.train_data), len(self.val_data)) - 1
        if options.seq_len > shortest:
            raise ConfigError("task.seq_len", options.seq_len, f"longer than the corpus allows "
                              f"({len(self.train_data)} train / {len(self.val_data)} val tokens)",
                              f"an integer <= {max(shortest, 1)}")
        self.spec = TaskSpec(input_size=len(self.vocab), output_size=len(self.vocab), vocab_size=len(self.vocab),
                             causal=True)
        # Baselines token by token, (M,), so they are averaged over exactly the tokens an evaluation judges.
        self.unigram_losses = self._unigram_token_losses()
        self.ngram_losses = corpus["ngram_losses"]
        self._judge(torch.arange(len(self.val_data)))  # the whole text, until eval_batches narrows it

    def _judge(self, positions: torch.Tensor) -> None:
        """Average the baselines and the characters per token over these validation positions."""
        self.judged_chars_per_token = float(self.val_lengths[positions].double().mean()) if len(positions) else 1.0
        self.unigram_loss = float(self.unigram_losses[positions].mean()) if len(positions) else math.nan
        self.ngram_loss = None
        if self.ngram_losses is not None:
            known = self.ngram_losses[positions]
            known = known[~known.isnan()]  # the first order-1 tokens of the text have no full context
            self.ngram_loss = float(known.mean()) if len(known) else None

    def _unigram_token_losses(self) -> torch.Tensor:
        """-ln P of every validation token under a model without memory: train token frequencies, add-one
        smoothed, (M,)."""
        counts = torch.bincount(self.train_data, minlength=len(self.vocab)).double() + 1.0
        log_probs = (counts / counts.sum()).log()
        return -log_probs[self.val_data]

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
            raise ConfigError("train.batch_size", batch_size, "more streams than the text has tokens",
                              f"an integer <= {len(self.train_data) // 2}")
        return self.train_data[: length * batch_size].view(batch_size, length)

    @property
    def eval_carries_state(self) -> bool:
        """Row b of each evaluation batch continues row b of the batch before (evaluation.judge carries the
        model's state across them)."""
        return self.options.eval_state == "carried"

    def eval_batches(self, batch_size: int, count: int):
        """Fixed, non-overlapping windows from the start of the validation text: batches of consecutive
        windows (reset), or (carried) the same text as batch_size streams, batch j holding each stream's
        j-th window (the last windows that do not fill every stream are left out)."""
        seq_len = self.options.seq_len
        windows = (len(self.val_data) - 1) // seq_len
        usable = min(windows, batch_size * count)
        rows = min(batch_size, usable)
        if self.eval_carries_state:
            usable = rows * (usable // rows)
        x = self.val_data[: usable * seq_len].view(usable, seq_len)  # (W, T)
        y = self.val_data[1: usable * seq_len + 1].view(usable, seq_len)
        mask = self._judged(y)
        positions = torch.arange(1, usable * seq_len + 1).view(usable, seq_len)  # (W, T): where each target sits
        self._judge(positions[mask] if mask is not None else positions.reshape(-1))
        if self.eval_carries_state:  # (rows, W/rows, T): stream r is windows r*W/rows .. of the text, in order
            xs, ys = x.view(rows, usable // rows, seq_len), y.view(rows, usable // rows, seq_len)
            for j in range(usable // rows):
                yield xs[:, j], ys[:, j], None
            return
        for start in range(0, usable, batch_size):
            batch = y[start:start + batch_size]
            yield x[start:start + batch_size], batch, self._judged(batch)

    # -- judging -------------------------------------------------------------
    def loss(self, output: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Mean cross-entropy in nats per token. output (B, T, V), y (B, T)."""
        if mask is None:
            return F.cross_entropy(output.reshape(-1, output.shape[-1]), y.reshape(-1))
        per_token = F.cross_entropy(output.transpose(1, 2), y, reduction="none")  # (B, T)
        return (per_token * mask).sum() / mask.sum().clamp_min(1)

    def metrics(self, mean_loss: float) -> dict:
        """Per token (loss, ppl) and per character (bpc, nats_per_char), the model's and the baselines' alike
        over the tokens the last eval_batches pass judged (the whole validation text before the first): the
        per-character figures divide by the characters those tokens cover."""
        per_char = 1.0 / self.judged_chars_per_token / math.log(2)  # nats/token -> bits/char
        out = {"loss": mean_loss, "ppl": math.exp(min(mean_loss, 50.0)), "bpc": mean_loss * per_char,
               "baseline": self.unigram_loss, "baseline_bpc": self.unigram_loss * per_char}
        if self.options.tokenizer != "char":
            out["nats_per_char"] = mean_loss / self.judged_chars_per_token
        if self.ngram_loss is not None:
            out.update(ngram=self.ngram_loss, ngram_bpc=self.ngram_loss * per_char)
        if self.oov is not None:
            out["oov"] = self.oov
        return out

    def checkpoint_extras(self) -> dict:
        return self.vocab.to_checkpoint()


def corpus_tensors(options: CharLMOptions, text: str, train_text: str, val_text: str) -> dict:
    """The vocabulary (as its checkpoint form), the encoded train (N,) and validation (M,) text, the
    characters each validation token covers (M,) and the n-gram token losses (M,) or None: from the corpus
    cache when this text and these options were seen before (corpus_cache.py), else computed and stored."""
    key = corpus_cache.entry_key(text, tokenizer=options.tokenizer, vocab_size=options.vocab_size,
                                 val_fraction=options.val_fraction, ngram_order=options.ngram_order,
                                 train_chars=len(train_text))
    cached = corpus_cache.load(key)
    if cached is not None:
        return {**cached, **{name: cached[name].long() for name in corpus_cache.TENSORS}}
    vocab = make_vocabulary(options, text, train_text)
    entry = {"vocab": vocab.to_checkpoint(), "train_data": vocab.encode(train_text), "val_data": vocab.encode(val_text),
             "val_lengths": torch.tensor([len(piece) for piece in vocab.split(val_text)])}
    entry["ngram_losses"] = ngram_token_losses(options.ngram_order, entry["train_data"], entry["val_data"], len(vocab))
    longest = int(entry["val_lengths"].max()) if len(entry["val_lengths"]) else 0
    bounds = {"train_data": len(vocab), "val_data": len(vocab), "val_lengths": longest + 1}
    corpus_cache.save(key, {**entry, **{name: corpus_cache.compact(entry[name], bound) for name, bound in bounds.items()}})
    return entry


def ngram_token_losses(order: int, train_data: torch.Tensor, val_data: torch.Tensor, vocab_size: int):
    """-ln P (nats/token) of every validation token under an interpolated Kneser-Ney n-gram model of the
    training text, (M,), NaN where a token has no full context; None when the order is 0."""
    if not order:
        return None
    if vocab_size ** order >= 2 ** 62:
        raise ConfigError("task.ngram_order", order, f"{vocab_size} tokens to the power {order} "
                          "overflow the n-gram codes", f"an integer <= {int(62 / math.log2(vocab_size))}")
    from .ngram import KneserNey

    return KneserNey(train_data, vocab_size, order).token_losses(val_data)


def make_vocabulary(options: CharLMOptions, text: str, train_text: str) -> Vocabulary:
    if options.tokenizer == "word":
        return WordVocabulary.fit(train_text, options.vocab_size)
    if options.tokenizer == "bpe":
        return BPEVocabulary.fit(text, train_text, options.vocab_size)
    return Vocabulary.from_text(text)
