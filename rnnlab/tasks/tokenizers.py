"""Text <-> token ids for language models: characters, words, or byte-pair-encoded subwords.

Every vocabulary splits text into pieces whose concatenation is the text again,
so decode(encode(text)) == text (for words, up to the words outside the
vocabulary, which become <unk>). Words and BPE share one pre-tokenisation, the
GPT-2 one: a word or a run of punctuation takes the single space before it
(" the", " (") and other whitespace stays in runs of its own, so merges never
cross a word boundary and indentation survives.

A vocabulary is saved in a checkpoint as plain lists (see to_checkpoint), so
`rnnlab sample` rebuilds it without the corpus.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter, defaultdict

import torch

from ..errors import CheckpointError, ConfigError

PRETOKEN = re.compile(r" ?\w+| ?[^\w\s]+|\s+(?!\S)|\s+")
UNKNOWN = "<unk>"


def pretokenize(text: str) -> list[str]:
    """Words with their leading space, punctuation runs, whitespace runs: ''.join(result) == text."""
    return PRETOKEN.findall(text)


class Vocabulary:
    """Characters <-> ids (the character-level vocabulary; subclasses split text differently)."""

    kind = "char"

    def __init__(self, tokens: list[str]):
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def from_text(cls, text: str) -> Vocabulary:
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.tokens)

    def split(self, text: str) -> list[str]:
        """The pieces text becomes, each a token of this vocabulary (or unknown to it)."""
        return list(text)

    def encode(self, text: str) -> torch.Tensor:
        """Token ids (N,) of text; characters never seen in the corpus are an error, not a silent guess."""
        pieces = self.split(text)
        missing = sorted({c for piece in pieces if piece not in self.index for c in piece if c not in self.alphabet})
        if missing:
            shown = text if len(text) <= 40 else text[:37] + "..."
            raise ConfigError("prompt", shown, f"characters not in the vocabulary: {''.join(missing)!r}",
                              "characters seen in the training text")
        return torch.tensor([self.index.get(p, 0) for p in pieces], dtype=torch.long)

    @property
    def alphabet(self) -> set[str]:
        return set(self.tokens)

    def decode(self, ids) -> str:
        return "".join(self.tokens[int(i)] for i in ids)

    def to_checkpoint(self) -> dict:
        return {"vocab": self.tokens}


class WordVocabulary(Vocabulary):
    """The most frequent pre-tokens of the training text; every other word is <unk> (id 0)."""

    kind = "word"

    @classmethod
    def fit(cls, text: str, size: int) -> WordVocabulary:
        counts = Counter(pretokenize(text))
        # Ties in frequency are broken alphabetically so a seed-free fit is deterministic.
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[: size - 1]
        return cls([UNKNOWN] + sorted(word for word, _ in ranked))

    def split(self, text: str) -> list[str]:
        return pretokenize(text)

    def encode(self, text: str) -> torch.Tensor:
        """Token ids (N,); a word outside the vocabulary is <unk>, as it was in training."""
        return torch.tensor([self.index.get(p, 0) for p in self.split(text)], dtype=torch.long)

    @staticmethod
    def out_of_vocabulary(ids: torch.Tensor) -> float:
        """The share of <unk> (id 0) among encoded words (N,)."""
        return float((ids == 0).double().mean()) if len(ids) else 0.0

    def to_checkpoint(self) -> dict:
        return {"vocab": self.tokens, "tokenizer": self.kind}


class BPEVocabulary(Vocabulary):
    """Byte-pair encoding (Sennrich et al. 2016) over characters: the alphabet plus learnt merges.

    Learning repeatedly merges the most frequent adjacent pair of symbols inside
    the pre-tokens of the training text; encoding replays the merges in the
    order they were learnt, lowest rank first, within each pre-token.
    """

    kind = "bpe"

    def __init__(self, alphabet: list[str], merges: list[tuple[str, str]]):
        super().__init__(list(alphabet) + [a + b for a, b in merges])
        self.merges = [tuple(pair) for pair in merges]
        self.rank = {pair: r for r, pair in enumerate(self.merges)}
        self.base = set(alphabet)
        self._cache: dict[str, list[str]] = {}

    @classmethod
    def fit(cls, text: str, train_text: str, size: int) -> BPEVocabulary:
        """Alphabet: every character of text (so no character is unknown); merges: learnt on train_text
        until the vocabulary has `size` tokens or no pair occurs twice."""
        alphabet = sorted(set(text))
        return cls(alphabet, learn_merges(Counter(pretokenize(train_text)), size - len(alphabet)))

    @property
    def alphabet(self) -> set[str]:
        return self.base

    def split(self, text: str) -> list[str]:
        return [symbol for word in pretokenize(text) for symbol in self._encode_word(word)]

    def _encode_word(self, word: str) -> list[str]:
        if word not in self._cache:
            symbols = list(word)
            while len(symbols) > 1:
                pairs = {(a, b) for a, b in zip(symbols, symbols[1:])}
                best = min(pairs, key=lambda pair: self.rank.get(pair, len(self.rank)))
                if best not in self.rank:
                    break
                symbols = merge_pair(symbols, best)
            self._cache[word] = symbols
        return self._cache[word]

    def to_checkpoint(self) -> dict:
        return {"vocab": self.tokens, "tokenizer": self.kind, "merges": [list(pair) for pair in self.merges]}


def merge_pair(symbols: list[str], pair: tuple[str, str]) -> list[str]:
    """symbols with every non-overlapping occurrence of pair, left to right, joined into one symbol."""
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            out.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def learn_merges(word_counts: Counter, merges: int) -> list[tuple[str, str]]:
    """Up to `merges` BPE merges from pre-token frequencies.

    Pair counts are kept up to date incrementally (only the words holding the
    merged pair are re-counted) and the best pair comes from a heap with lazy
    deletion, so a 1 MB corpus learns a thousand merges in about a second. Ties
    go to the alphabetically first pair, so the result is deterministic.
    """
    words = [list(word) for word in word_counts]
    freq = list(word_counts.values())
    pair_count: Counter = Counter()
    holders: defaultdict[tuple[str, str], set[int]] = defaultdict(set)
    for i, symbols in enumerate(words):
        for pair in zip(symbols, symbols[1:]):
            pair_count[pair] += freq[i]
            holders[pair].add(i)
    heap = [(-count, pair) for pair, count in pair_count.items()]
    heapq.heapify(heap)
    learnt: list[tuple[str, str]] = []
    while heap and len(learnt) < merges:
        negative, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -negative:
            continue  # stale: the pair's count changed after this entry went in (its new count is in the heap)
        if -negative < 2:
            break  # a pair seen once generalises nothing
        learnt.append(pair)
        touched = set()
        for i in holders.pop(pair):
            old, new = words[i], merge_pair(words[i], pair)
            if len(new) == len(old):
                continue  # this word lost the pair to an earlier overlapping merge
            for p in zip(old, old[1:]):
                pair_count[p] -= freq[i]
                touched.add(p)
            for p in zip(new, new[1:]):
                pair_count[p] += freq[i]
                holders[p].add(i)
                touched.add(p)
            words[i] = new
        for p in touched:
            if pair_count[p] > 0:
                heapq.heappush(heap, (-pair_count[p], p))
            else:
                del pair_count[p]
    return learnt


def vocabulary_from_checkpoint(saved: dict) -> Vocabulary:
    """The vocabulary a checkpoint was trained with (checkpoints without a tokenizer are character-level)."""
    kind = saved.get("tokenizer", "char")
    if kind == "char":
        return Vocabulary(saved["vocab"])
    if kind == "word":
        return WordVocabulary(saved["vocab"])
    if kind == "bpe":
        merges = [tuple(pair) for pair in saved["merges"]]
        return BPEVocabulary(saved["vocab"][: len(saved["vocab"]) - len(merges)], merges)
    raise CheckpointError(f"checkpoint has an unknown tokenizer {kind!r} (char, word or bpe)")
