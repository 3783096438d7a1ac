"""Word and BPE tokenisation: round trips, the merges BPE learns, checkpoints, and the LM task on top."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from rnnlab import config, store
from rnnlab.errors import ConfigError
from rnnlab.probes.activations import unit_activations
from rnnlab.decoding import LanguageModelStepper
from rnnlab.sampling import beam_generate, generate, load_language_model, prompt_stepper
from rnnlab.tasks import build_task
from rnnlab.tasks.corpus import stdlib_text
from rnnlab.tasks.tokenizers import (
    UNKNOWN, BPEVocabulary, Vocabulary, WordVocabulary, learn_merges, merge_pair, pretokenize,
    vocabulary_from_checkpoint,
)
from rnnlab.train import Trainer, prepare

from tiny import TEXT, tiny_config

ODD = "def f(x):\n\tif x  >= 1:  # über\r\n        return 'a b'\n\n\n  trailing   \n"


@pytest.mark.parametrize("text", [ODD, stdlib_text(20_000), "", " ", "\n\n", "a"])
def test_pretokenize_covers_the_text_exactly(text):
    assert "".join(pretokenize(text)) == text


def test_pretokens_take_their_leading_space():
    assert pretokenize("Speak, speak.\n  x") == ["Speak", ",", " speak", ".", "\n ", " x"]


def naive_merges(word_counts: Counter, merges: int) -> list[tuple[str, str]]:
    """BPE by recounting every pair after every merge: slow, obviously right."""
    words = {word: list(word) for word in word_counts}
    learnt = []
    for _ in range(merges):
        pairs = Counter()
        for word, symbols in words.items():
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += word_counts[word]
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        if pairs[best] < 2:
            break
        learnt.append(best)
        words = {word: merge_pair(symbols, best) for word, symbols in words.items()}
    return learnt


def test_learnt_merges_are_the_textbook_ones():
    counts = Counter({"low": 5, "lower": 2, "newest": 6, "widest": 3})  # Sennrich et al.'s example
    assert learn_merges(counts, 4) == [("e", "s"), ("es", "t"), ("l", "o"), ("lo", "w")]


@pytest.mark.parametrize("text", [stdlib_text(30_000), TEXT, "aaaaaaa aaa aa aaaa " * 3])
def test_incremental_merges_equal_recounting_every_time(text):
    counts = Counter(pretokenize(text))
    assert learn_merges(counts, 150) == naive_merges(counts, 150)


def test_bpe_encodes_as_replaying_the_merges_in_order():
    text = stdlib_text(30_000)
    vocab = BPEVocabulary.fit(text, text, 300)
    assert len(vocab) == 300
    for word in set(pretokenize(text[:3000])):
        symbols = list(word)
        for pair in vocab.merges:
            symbols = merge_pair(symbols, pair)
        assert vocab.split(word) == symbols
    ids = vocab.encode(text[:2000])
    assert vocab.decode(ids) == text[:2000]
    assert len(ids) < 0.6 * 2000  # the merges compress


def test_unknown_characters_are_an_error_but_unknown_words_are_unk():
    vocab = BPEVocabulary.fit("abc abd", "abc abd", 10)
    with pytest.raises(ConfigError, match="not in the vocabulary: 'z'"):
        vocab.encode("abz")
    with pytest.raises(ConfigError, match=r"prompt = 'abcabcabc.*\.\.\.'"):
        vocab.encode("abc" * 30 + "z")  # a long text is cut short in the message
    words = WordVocabulary.fit("the cat sat on the mat. the end", 4)
    assert words.tokens[0] == UNKNOWN and len(words) == 4
    assert words.decode(words.encode("a the dog")) == UNKNOWN + " the" + UNKNOWN  # " the": the most frequent
    assert words.out_of_vocabulary(words.encode("a the dog")) == pytest.approx(2 / 3)


@pytest.mark.parametrize("vocab", [
    Vocabulary.from_text(TEXT),
    WordVocabulary.fit(TEXT, 20),
    BPEVocabulary.fit(TEXT, TEXT, 60),
])
def test_a_checkpoint_rebuilds_the_same_vocabulary(vocab):
    again = vocabulary_from_checkpoint(vocab.to_checkpoint())
    assert type(again) is type(vocab) and again.tokens == vocab.tokens
    sample = TEXT[100:300]
    assert torch.equal(again.encode(sample), vocab.encode(sample))


def task_on(corpus_path, **extra):
    sets = [f"task.corpus={corpus_path}"] + [f"task.{k}={v}" for k, v in extra.items()]
    return build_task(config.load(None, sets).task, seed=0)


def test_a_bpe_task_splits_the_text_and_reports_per_character(tmp_path):
    path = tmp_path / "code.txt"
    text = stdlib_text(60_000)
    path.write_text(text)
    task = task_on(path, tokenizer="bpe", vocab_size=300, seq_len=32)
    split = int(len(text) * 0.9)
    assert task.vocab.decode(task.train_data) == text[:split]
    assert task.vocab.decode(task.val_data) == text[split:]
    assert task.spec.vocab_size == 300 and task.loss_unit == "nats/token"
    batches = list(task.eval_batches(4, 3))
    targets = torch.cat([y for _, y, _ in batches]).reshape(-1)
    chars = sum(len(task.vocab.tokens[i]) for i in targets)
    metrics = task.metrics(2.0)
    assert metrics["nats_per_char"] == pytest.approx(2.0 * len(targets) / chars)
    assert metrics["bpc"] == pytest.approx(metrics["nats_per_char"] / math.log(2))
    # The baselines per character: a token unigram model knows more than a character one (fewer,
    # longer guesses), and the 5-gram of subwords beats both.
    chars_task = task_on(path, seq_len=32)
    assert metrics["ngram_bpc"] < metrics["baseline_bpc"] < chars_task.metrics(1.0)["baseline_bpc"]


def test_a_word_task_reports_its_unknown_words(tmp_path):
    path = tmp_path / "code.txt"
    path.write_text(stdlib_text(60_000))
    task = task_on(path, tokenizer="word", vocab_size=200, seq_len=16)
    assert len(task.vocab) == 200
    unknown = float((task.val_data == 0).double().mean())
    assert 0.05 < unknown < 0.9 and task.metrics(3.0)["oov"] == pytest.approx(unknown)
    with pytest.raises(ConfigError, match="ngram_order"):
        task_on(path, tokenizer="word", vocab_size=300, ngram_order=8, seq_len=16)  # 300^8 overflows the codes


@pytest.mark.parametrize("tokenizer", ["word", "bpe"])
def test_a_subword_run_trains_and_samples(tmp_path, tokenizer):
    cfg = tiny_config(tmp_path, task__tokenizer=tokenizer, task__vocab_size=40, train__steps=30,
                      train__eval_every=15, train__lr=1e-2)
    run = store.create_run(tmp_path / "runs", "lm")
    store.atomic_write(run.config_path, cfg.to_toml().encode())
    prepared = prepare(cfg)
    assert Trainer(prepared, run).train().state == "finished"
    model, vocab, _, _ = load_language_model(run, "best")
    assert type(vocab).kind == tokenizer and vocab.tokens == prepared.task.vocab.tokens and len(vocab) <= 40
    _, healed = prompt_stepper(model, vocab, "the")  # the first token completes the prompt's last one
    pieces = list(generate(model, vocab, "the", 12, seed=3))
    assert len(pieces) == 12 and all(piece in vocab.tokens for piece in [healed + pieces[0], *pieces[1:]])
    assert pieces == list(generate(model, vocab, "the", 12, seed=3))
    text, best = beam_generate(model, vocab, "the", 6, beam=3)
    assert healed + text == vocab.decode(best.tokens) and len(best.tokens) == 6
    # Token healing: the prompt's last token is taken back and the first choice must begin with its text.
    prompt = "the quick brown fox jumps over the"
    stepper, healed = prompt_stepper(model, vocab, prompt)
    assert healed == vocab.split(prompt)[-1] and healed in vocab.index
    with torch.no_grad():
        untouched, _ = LanguageModelStepper(model, vocab.encode(prompt)[:-1]).start()  # (1, V)
    allowed = [i for i, token in enumerate(vocab.tokens) if token.startswith(healed) and token != UNKNOWN]
    best = max(allowed, key=lambda i: float(untouched[0, i]))
    assert healed + next(generate(model, vocab, prompt, 1, greedy=True)) == vocab.tokens[best]
    text, _ = beam_generate(model, vocab, prompt, 1, beam=1)
    assert healed + text == vocab.tokens[best]  # beam 1 is greedy
    record = unit_activations(model, vocab, "the quick brown fox")  # one colour per token, not per character
    assert record["tokens"] == vocab.split("the quick brown fox")
    assert record["hidden"].shape[1] == len(record["surprisal"]) == len(record["tokens"])
