"""Sequence-to-sequence tasks, generated on the fly from a seed: the base class, and

reverse   reverse a string of symbols             "cabd"    -> "dbac"
sort      sort it                                  "cabd"    -> "abcd"
addition  add two decimal numbers, by characters   "123+45"  -> "168"
(dates.py: human dates -> ISO; translation.py: a toy language pair.)

A batch is x (B, S) source ids right-padded with 0, y (B, U) target ids ending
with EOS (1) then 0-padding, mask (B, U) True on the real targets, EOS included.
Metrics: `loss` (teacher-forced cross-entropy per target token), `token_acc`
(teacher-forced argmax accuracy), and, from free-running greedy decoding
(`free_running_stats`, which the trainer's evaluation calls): `exact` (share of
outputs equal to the answer), `bleu` (sacrebleu corpus BLEU of the
detokenised strings; characters for these tasks, words for translate) and
`exact@a-b` (exact match of the sources of a..b tokens). `baseline` is the loss
of a unigram model (target-token frequencies, EOS included, no context);
`baseline_bleu` the BLEU of answering with the source itself.
Lengths (lengths.py): reverse and sort train on sources of min_len..max_len
symbols, addition on operands of min_len..max_len digits (drawn per sequence,
padded and masked); `eval_lengths` scores `exact` at other source lengths
(addition: both operands of n digits).
"""

from __future__ import annotations

import math
import random
import string
from collections import Counter
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from sacrebleu.metrics import BLEU

from ..errors import ConfigError
from ..models.base import TaskSpec
from ..options import opt
from .registry import TASKS
from .base import EVAL_SEED, GeneratedTask, TaskOptions
from .lengths import VariableLength, check_lengths, eval_lengths_opt, length_batches_opt

PAD, EOS = 0, 1
DECODE_SLACK = 4  # free-running decoding may run this many steps past the longest answer in the batch
NGRAMS = 4  # BLEU's n-gram orders


class Vocab:
    """Token strings <-> ids; `specials` come first (PAD at 0, EOS at 1 for targets)."""

    def __init__(self, tokens, specials=("<pad>",)):
        self.tokens = [*specials, *tokens]
        self.index = {token: i for i, token in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens) -> list[int]:
        return [self.index[token] for token in tokens]


def output_tokens(ids, tokens: list[str]) -> list[str]:
    """Target ids -> tokens, up to (not including) the first EOS, PAD dropped (a task's, a loaded run's)."""
    out = []
    for i in ids:
        if i == EOS:
            break
        if i != PAD:
            out.append(tokens[i])
    return out


def bucket_ranges(low: int, high: int, count: int) -> list[tuple[int, int]]:
    """[low, high] cut into at most `count` consecutive integer ranges whose widths differ by at most 1."""
    count = min(count, high - low + 1)
    width, wider = divmod(high - low + 1, count)  # the first `wider` ranges are one longer
    ranges, start = [], low
    for i in range(count):
        end = start + width + (i < wider) - 1
        ranges.append((start, end))
        start = end + 1
    return ranges


def bucket_name(low: int, high: int) -> str:
    return f"{low}-{high}" if high > low else f"{low}"


def bleu_stats(bleu: BLEU, guesses: list[str], answers: list[str]) -> dict:
    """sacrebleu's sufficient statistics of a batch: sums, so batches add up to the corpus BLEU."""
    score = bleu.corpus_score(guesses, [answers])
    stats = {"bleu_hyp_len": float(score.sys_len), "bleu_ref_len": float(score.ref_len)}
    for n in range(NGRAMS):
        stats[f"bleu_correct{n + 1}"] = float(score.counts[n])
        stats[f"bleu_total{n + 1}"] = float(score.totals[n])
    return stats


def bleu_from_stats(totals: dict) -> float:
    """Corpus BLEU from summed statistics. Effective order: a corpus of answers shorter than four tokens
    (small sums) has no 4-grams, and plain BLEU would score even perfect answers 0."""
    correct = [int(totals[f"bleu_correct{n + 1}"]) for n in range(NGRAMS)]
    total = [int(totals[f"bleu_total{n + 1}"]) for n in range(NGRAMS)]
    return BLEU.compute_bleu(correct, total, int(totals["bleu_hyp_len"]), int(totals["bleu_ref_len"]),
                             smooth_method="exp", effective_order=True).score


class Seq2SeqTask(GeneratedTask):
    """Subclasses call `setup` with their token sets and define `example(rng)` and `length_range()`."""

    needs_decoder = True  # its spec has an eos: outputs have their own length
    joiner = ""  # detokenisation: characters join with nothing, words with a space
    bleu_tokenize = "char"  # sacrebleu's tokenizer for the detokenised strings
    baseline_label = "a unigram model of the target tokens"

    def setup(self, source_tokens, target_tokens, buckets: int) -> None:
        self.source, self.target = Vocab(source_tokens), Vocab(target_tokens, ("<pad>", "<eos>"))
        self.spec = TaskSpec(input_size=len(self.source), output_size=len(self.target),
                             vocab_size=len(self.source), eos=EOS)
        self.buckets = bucket_ranges(*self.length_range(), buckets)
        self.bleu = BLEU(tokenize=self.bleu_tokenize, effective_order=True)
        self.baselines = self._baselines(random.Random(EVAL_SEED), 1000)

    # -- what each task defines ------------------------------------------------------
    def example(self, rng: random.Random) -> tuple[list[str], list[str]]:
        raise NotImplementedError  # pragma: no cover - each task: (source tokens, target tokens)

    def length_range(self) -> tuple[int, int]:
        raise NotImplementedError  # pragma: no cover - each task: shortest and longest source, in tokens

    # -- batches -----------------------------------------------------------------------
    def make_batch(self, batch_size: int, generator: torch.Generator):
        # One draw from the torch generator seeds Python's RNG: the stream stays a function of the run's
        # seed, and building strings with `random` is far cheaper than a torch call per choice.
        rng = random.Random(int(torch.randint(2 ** 62, (1,), generator=generator)))
        return self.collate([self.example(rng) for _ in range(batch_size)])

    def collate(self, pairs):
        sources = [self.source.encode(source) for source, _ in pairs]
        targets = [self.target.encode(target) + [EOS] for _, target in pairs]
        x = torch.zeros(len(pairs), max(map(len, sources)), dtype=torch.long)  # (B, S)
        y = torch.zeros(len(pairs), max(map(len, targets)), dtype=torch.long)  # (B, U)
        for row, (source, target) in enumerate(zip(sources, targets)):
            x[row, :len(source)] = torch.tensor(source)
            y[row, :len(target)] = torch.tensor(target)
        return x, y, y != PAD  # the mask: real targets, EOS included

    # -- text --------------------------------------------------------------------------
    def target_tokens(self, ids) -> list[str]:
        return output_tokens(ids, self.target.tokens)

    def source_tokens(self, ids) -> list[str]:
        return [self.source.tokens[i] for i in ids if i != PAD]

    def detokenize(self, tokens) -> str:
        return self.joiner.join(tokens)

    # -- judging -----------------------------------------------------------------------
    def loss(self, output, y, mask):
        per_token = F.cross_entropy(output.transpose(1, 2), y, reduction="none")  # (B, U)
        return (per_token * mask).sum() / mask.sum().clamp_min(1)

    def batch_stats(self, output, y, mask) -> dict:
        right = ((output.argmax(-1) == y) & mask).sum()  # teacher-forced: each step sees the true prefix
        return {"token_right": float(right), "tokens": float(mask.sum())}

    def free_running_stats(self, model, x, y, mask) -> dict:
        """Sums over one batch of free-running greedy decoding (exact match, BLEU, per length bucket)."""
        if not hasattr(model, "decode"):
            raise TypeError(f"{type(model).__name__} cannot decode freely: seq2seq tasks need model.arch = seq2seq")
        decoded = model.decode(x, max_len=y.shape[1] + DECODE_SLACK)
        guesses = [self.target_tokens(row) for row in decoded.ids.tolist()]
        answers = [self.target_tokens(row) for row in y.tolist()]
        return self.prediction_stats(guesses, answers, (x != PAD).sum(1).tolist())

    def prediction_stats(self, guesses, answers, lengths) -> dict:
        """Sums for token lists `guesses` against `answers`, sources of `lengths` tokens."""
        stats = {"exact_right": 0.0, "rows": 0.0}
        for low, high in self.buckets:
            stats[f"exact_right@{bucket_name(low, high)}"] = stats[f"rows@{bucket_name(low, high)}"] = 0.0
        for guess, answer, length in zip(guesses, answers, lengths):
            stats["exact_right"] += guess == answer
            stats["rows"] += 1
            for low, high in self.buckets:
                if low <= length <= high:
                    stats[f"exact_right@{bucket_name(low, high)}"] += guess == answer
                    stats[f"rows@{bucket_name(low, high)}"] += 1
        text = [self.detokenize(tokens) for tokens in guesses], [self.detokenize(tokens) for tokens in answers]
        return {**stats, **bleu_stats(self.bleu, *text)}

    def eval_summary(self, totals: dict) -> dict:
        out = {}
        if "tokens" in totals:
            out["token_acc"] = totals["token_right"] / max(totals["tokens"], 1.0)
        if "rows" in totals:  # present once the evaluation decodes freely
            out["exact"] = totals["exact_right"] / max(totals["rows"], 1.0)
            out["bleu"] = bleu_from_stats(totals)
            for low, high in self.buckets:
                rows = totals[f"rows@{bucket_name(low, high)}"]
                if rows:  # a bucket no evaluation source fell into has no score
                    out[f"exact@{bucket_name(low, high)}"] = totals[f"exact_right@{bucket_name(low, high)}"] / rows
        return out

    def metrics(self, mean_loss: float) -> dict:
        return {"loss": mean_loss, **self.baselines}

    def _baselines(self, rng: random.Random, count: int) -> dict:
        pairs = [self.example(rng) for _ in range(count)]
        counts = Counter(token for _, target in pairs for token in [*target, "<eos>"])
        total = sum(counts.values())
        unigram = -sum(c / total * math.log(c / total) for c in counts.values())  # its cross-entropy
        copies = bleu_stats(self.bleu, [self.detokenize(s) for s, _ in pairs], [self.detokenize(t) for _, t in pairs])
        return {"baseline": unigram, "baseline_bleu": bleu_from_stats(copies)}

    def checkpoint_extras(self) -> dict:
        return {"source_vocab": self.source.tokens, "target_vocab": self.target.tokens, "joiner": self.joiner}


@dataclass
class LengthOptions(TaskOptions):
    min_len: int = opt(3, "shortest source, in symbols", min=1)
    max_len: int = opt(12, "longest source, in symbols", min=1)
    buckets: int = opt(3, "source-length buckets for the exact@a-b metrics", min=1)

    def check(self, section: str) -> None:
        if self.max_len < self.min_len:
            raise ConfigError(f"{section}.max_len", self.max_len, "must be >= min_len", f"an integer >= {self.min_len}")


@dataclass
class SymbolsOptions(LengthOptions):
    symbols: int = opt(10, "alphabet size (the letters a, b, c, ...)", min=2, max=26)
    eval_lengths: list[int] = eval_lengths_opt("source length")
    length_batches: int = length_batches_opt()

    def check(self, section: str) -> None:
        super().check(section)
        check_lengths(self, section, train=False)


class RangeTrained(VariableLength):
    """A seq2seq task's trained range is its min_len..max_len, each sequence drawn within it (padded and
    masked): Seq2SeqTask.make_batch comes first in the MRO, so training is what it was."""

    length_metric = "exact"

    def trained_lengths(self) -> tuple[int, int]:
        return self.options.min_len, self.options.max_len

    def batch_at(self, batch_size: int, generator: torch.Generator, n: int):
        """A batch whose every source has length n (what n counts: the task's `example`)."""
        rng = random.Random(int(torch.randint(2 ** 62, (1,), generator=generator)))
        return self.collate([self.example(rng, n) for _ in range(batch_size)])


class SymbolsTask(Seq2SeqTask, RangeTrained):
    def __init__(self, options: SymbolsOptions, seed: int = 0):
        self.options = options
        letters = list(string.ascii_lowercase[:options.symbols])
        self.setup(letters, letters, options.buckets)

    def length_range(self):
        return self.options.min_len, self.options.max_len

    def example(self, rng, n: int | None = None):
        letters = self.target.tokens[2:]
        source = rng.choices(letters, k=n or rng.randint(self.options.min_len, self.options.max_len))
        return source, self.transform(source)


@dataclass
class ReverseOptions(SymbolsOptions):
    name: str = opt("reverse", "task (`rnnlab list tasks`)")


@TASKS.register("reverse", "Reverse a string of symbols (seq2seq)")
class ReverseTask(SymbolsTask):
    Options = ReverseOptions

    @staticmethod
    def transform(source):
        return source[::-1]


@dataclass
class SortOptions(SymbolsOptions):
    name: str = opt("sort", "task (`rnnlab list tasks`)")


@TASKS.register("sort", "Sort a string of symbols (seq2seq)")
class SortTask(SymbolsTask):
    Options = SortOptions

    @staticmethod
    def transform(source):
        return sorted(source)


@dataclass
class AdditionOptions(LengthOptions):
    name: str = opt("addition", "task (`rnnlab list tasks`)")
    min_len: int = opt(1, "fewest digits of an operand", min=1, max=18)
    max_len: int = opt(3, "most digits of an operand", min=1, max=18)
    eval_lengths: list[int] = eval_lengths_opt("digits of both operands")
    length_batches: int = length_batches_opt()

    def check(self, section: str) -> None:
        super().check(section)
        check_lengths(self, section, train=False)


@TASKS.register("addition", "Multi-digit addition by characters, \"123+45\" -> \"168\" (seq2seq)")
class AdditionTask(Seq2SeqTask, RangeTrained):
    """Each operand's digit count is uniform in [min_len, max_len], then its value uniform among those
    numbers (no leading zeros). Source lengths, in characters: 2 min_len + 1 to 2 max_len + 1."""

    Options = AdditionOptions

    def __init__(self, options: AdditionOptions, seed: int = 0):
        self.options = options
        self.setup([*string.digits, "+"], list(string.digits), options.buckets)

    def length_range(self):
        return 2 * self.options.min_len + 1, 2 * self.options.max_len + 1

    def operand(self, rng, digits: int | None = None) -> int:
        digits = digits or rng.randint(self.options.min_len, self.options.max_len)
        return rng.randint(10 ** (digits - 1) if digits > 1 else 0, 10 ** digits - 1)

    def example(self, rng, n: int | None = None):
        a, b = self.operand(rng, n), self.operand(rng, n)
        return list(f"{a}+{b}"), list(str(a + b))
