"""The corpus cache (rnnlab/tasks/corpus_cache.py): a hit gives exactly what computing gives, anything
else is a miss, and a bad file is never an error."""

from __future__ import annotations

import time

import pytest
import torch

from rnnlab import config
from rnnlab.tasks import corpus_cache
from rnnlab.tasks.charlm import CharLM

TEXT = ("def add(a, b):\n    return a + b\n\nclass Point:\n    x = 1\n    y = 2\n" * 60)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("RNNLAB_CACHE", str(folder))
    return folder


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT)
    return path


def task(corpus, **options) -> CharLM:
    raw = {"task": {"name": "charlm", "corpus": str(corpus), "seq_len": 16, **options}}
    return CharLM(config.resolve(raw).task, 0)


def same(a: CharLM, b: CharLM) -> None:
    assert a.vocab.tokens == b.vocab.tokens and type(a.vocab) is type(b.vocab)
    for name in ("train_data", "val_data", "val_lengths", "unigram_losses"):
        assert getattr(a, name).dtype == getattr(b, name).dtype
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert (a.ngram_losses is None) == (b.ngram_losses is None)
    if a.ngram_losses is not None:
        assert torch.equal(a.ngram_losses.isnan(), b.ngram_losses.isnan())
        assert torch.equal(a.ngram_losses.nan_to_num(), b.ngram_losses.nan_to_num())
    assert a.metrics(1.0) == pytest.approx(b.metrics(1.0), nan_ok=True)


@pytest.mark.parametrize("options", [{}, {"tokenizer": "word", "vocab_size": 20},
                                     {"tokenizer": "bpe", "vocab_size": 60}, {"ngram_order": 0}])
def test_a_hit_gives_what_computing_gives(cache, corpus, monkeypatch, options):
    first = task(corpus, **options)  # computed, then stored
    assert len(list(cache.glob("corpus-*.pt"))) == 1
    with monkeypatch.context() as patched:
        patched.setattr("rnnlab.tasks.charlm.make_vocabulary", lambda *a: pytest.fail("recomputed on a hit"))
        same(task(corpus, **options), first)
    monkeypatch.setenv("RNNLAB_CACHE", "off")
    same(task(corpus, **options), first)  # computed afresh


def test_changed_text_or_options_miss(cache, corpus):
    task(corpus)
    task(corpus, ngram_order=3)
    task(corpus, val_fraction=0.2)
    corpus.write_text(TEXT + "z = 3\n")
    changed = task(corpus)
    assert len(list(cache.glob("corpus-*.pt"))) == 4
    assert "z" in changed.vocab.tokens


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign", "wrong shapes"])
def test_a_damaged_entry_is_a_miss_and_is_replaced(cache, corpus, damage):
    good = task(corpus)
    [path] = cache.glob("corpus-*.pt")
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "garbage":
        path.write_bytes(b"\x00not a torch file" * 10)
    elif damage == "foreign":
        torch.save({"format": corpus_cache.FORMAT, "key": "someone else's"}, path)
    else:
        saved = torch.load(path, weights_only=True)
        saved["val_lengths"] = saved["val_lengths"][:-1]
        torch.save(saved, path)
    same(task(corpus), good)
    assert corpus_cache.load(path.stem.removeprefix("corpus-")) is not None  # written afresh


def test_an_entry_that_would_run_code_is_refused(cache, corpus):
    """weights_only: a pickle that calls a function on load is a miss, and the function never runs."""
    good = task(corpus)
    [path] = cache.glob("corpus-*.pt")
    ran = cache / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(ran), "w"))

    torch.save({"format": corpus_cache.FORMAT, "payload": Payload()}, path)
    same(task(corpus), good)
    assert not ran.exists()


def test_off_writes_nothing_and_an_unwritable_folder_is_no_error(tmp_path, corpus, monkeypatch):
    monkeypatch.setenv("RNNLAB_CACHE", "off")
    task(corpus)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("RNNLAB_CACHE", str(blocker / "cache"))  # under a file: mkdir fails
    task(corpus)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "corpus.txt"]


def test_least_recently_used_entries_go_beyond_the_limit(cache, corpus, monkeypatch):
    monkeypatch.setattr(corpus_cache, "MAX_ENTRIES", 2)

    def entries() -> set[str]:
        return {p.name for p in cache.glob("corpus-*.pt")}

    seen = []
    for order in (1, 2, 3):
        before = entries()
        task(corpus, ngram_order=order)
        [new] = entries() - before
        seen.append(new)
        time.sleep(0.02)  # distinct mtimes
    assert entries() == {seen[1], seen[2]}  # the oldest went
    task(corpus, ngram_order=2)  # a hit: now the most recently used
    time.sleep(0.02)
    task(corpus, ngram_order=4)
    assert seen[1] in entries() and seen[2] not in entries() and len(entries()) == 2


def test_the_cache_stays_under_its_byte_limit_but_keeps_the_newest(cache, corpus, monkeypatch):
    task(corpus, ngram_order=1)
    [first] = cache.glob("corpus-*.pt")
    monkeypatch.setattr(corpus_cache, "MAX_BYTES", first.stat().st_size + 10)
    time.sleep(0.02)
    task(corpus, ngram_order=2)  # together over the limit: the older one goes
    assert not first.exists() and len(list(cache.glob("corpus-*.pt"))) == 1
    monkeypatch.setattr(corpus_cache, "MAX_BYTES", 1)
    time.sleep(0.02)
    task(corpus, ngram_order=3)  # bigger than the limit alone: still kept (the newest)
    assert len(list(cache.glob("corpus-*.pt"))) == 1


def test_no_home_directory_means_no_cache_not_an_error(corpus, monkeypatch):
    monkeypatch.delenv("RNNLAB_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(corpus_cache.Path, "home", staticmethod(no_home))
    assert corpus_cache.cache_dir() is None
    assert task(corpus).vocab.tokens  # computed, nothing stored
