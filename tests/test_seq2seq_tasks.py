"""Seq2seq tasks: batch layout, seeds, answers recomputed independently, and the metrics on known predictions."""

from __future__ import annotations

import datetime
import math
import re

import pytest
import sacrebleu
import torch

from rnnlab import config
from rnnlab.errors import ConfigError
from rnnlab.models.seq2seq import Decoded
from rnnlab.tasks import build_task
from rnnlab.tasks.dates import FORMATS
from rnnlab.tasks.seq2seq import EOS, PAD, bucket_ranges

TASKS = ["reverse", "sort", "addition", "dates", "translate"]
GEN = lambda seed=0: torch.Generator().manual_seed(seed)  # noqa: E731


def task(name, **extra):
    return build_task(config.load(None, [f"task.name={name}"] + [f"task.{k}={v}" for k, v in extra.items()]).task, 0)


def pairs(t, x, y):
    """(source tokens, target tokens) of every row."""
    return [(t.source_tokens(s), t.target_tokens(a)) for s, a in zip(x.tolist(), y.tolist())]


@pytest.mark.parametrize("name", TASKS)
def test_batch_layout_and_seeds(name):
    t = task(name)
    x, y, mask = t.train_batch(32, GEN())
    assert x.shape[0] == y.shape[0] == mask.shape[0] == 32 and mask.shape == y.shape and mask.dtype == torch.bool
    lengths = (x != PAD).sum(1)
    assert bool((x[torch.arange(x.shape[1]) >= lengths[:, None]] == PAD).all())  # right-padded, no inner PAD
    assert int(lengths.max()) == x.shape[1] and bool((x < t.spec.vocab_size).all())
    assert torch.equal(mask, y != PAD) and bool((y < t.spec.output_size).all())
    last = mask.sum(1) - 1  # every target: tokens, one EOS, then PAD
    assert bool((y[torch.arange(32), last] == EOS).all()) and int((y == EOS).sum()) == 32
    assert t.spec.eos == EOS and t.spec.vocab_size == t.spec.input_size
    low, high = t.length_range()
    assert bool((lengths >= low).all() and (lengths <= high).all())
    again = t.train_batch(32, GEN())
    other = t.train_batch(32, GEN(1))
    assert all(torch.equal(a, b) for a, b in zip((x, y, mask), again)) and not torch.equal(x, other[0][:, :x.shape[1]])
    first, second = next(iter(t.eval_batches(8, 1))), next(iter(t.eval_batches(8, 1)))
    assert torch.equal(first[0], second[0])  # evaluation: the same sequences every time


def test_reverse_sort_addition_answers():
    for name, rule in (("reverse", lambda s: s[::-1]), ("sort", sorted)):
        t = task(name, min_len=2, max_len=9, symbols=5)
        for source, target in pairs(t, *t.train_batch(64, GEN(2))[:2]):
            assert target == rule(source) and 2 <= len(source) <= 9 and set(source) <= set("abcde")
    t = task("addition", min_len=1, max_len=4)
    digits = set()
    for source, target in pairs(t, *t.train_batch(200, GEN(3))[:2]):
        a, b = "".join(source).split("+")
        assert int("".join(target)) == int(a) + int(b) and "".join(target) == str(int(a) + int(b))
        assert a == "0" or not a.startswith("0")
        digits |= {len(a), len(b)}
    assert digits == {1, 2, 3, 4}


STRPTIME = ["%d %B %Y", "%d/%m/%y", "%b %d, %Y", "%Y.%m.%d", "%A, %B %d %Y", "%B %d, %Y", "%d/%m/%Y", "%d.%m.%Y",
            "%d %b %Y", "%a, %d %b %Y", "the %d of %B, %Y", "%Y%m%d", "%B %d %Y", "%a %d %b '%y", "%Y-%m-%d"]


def parse_date(text: str, min_year: int) -> dict[str, str]:
    """strptime pattern -> the ISO date it reads in `text`, two-digit years put in the task's century window."""
    plain = re.sub(r"(\d+)(st|nd|rd|th)\b", r"\1", text)
    found = {}
    for pattern in STRPTIME:
        try:
            parsed = datetime.datetime.strptime(plain, pattern).date()
        except ValueError:
            continue
        if "%y" in pattern:
            parsed = parsed.replace(year=min_year + (parsed.year - min_year) % 100)
        weekday = re.search(r"%[aA]", pattern)
        if weekday and parsed.strftime(weekday.group()) != plain.split()[0].rstrip(","):
            continue  # strptime does not check the weekday against the date: we do
        found[pattern] = parsed.isoformat()
    return found


def test_dates_answer_is_the_iso_date_of_the_text():
    t = task("dates", min_year=1930, max_year=2029)
    patterns = set()
    for source, target in pairs(t, *t.train_batch(400, GEN(4))[:2]):
        readings = parse_date("".join(source), 1930)
        assert set(readings.values()) == {"".join(target)}, source  # one reading, and it is the answer
        assert 1930 <= int("".join(target)[:4]) <= 2029
        patterns |= set(readings)
    assert len(FORMATS) == len(STRPTIME) == len(patterns)  # every format was drawn
    only = task("dates", formats='["yyyymmdd"]')
    assert all(len(s) == 8 for s, _ in pairs(only, *only.train_batch(16, GEN())[:2]))


def translate_by_grammar(t, source: list[str]) -> list[str]:
    """The grammar of translation.py, rewritten from its docstring: parse by word category, then reorder."""
    category = {word: cat for cat, words in t.words.items() for word in words}
    phrases, current = [], None
    for word in source:  # a noun or a preposition opens a phrase; adjectives attach to the open noun
        if category[word] in ("noun", "verb", "preposition"):
            current = [word]
            phrases.append(current)
        else:
            current.append(word)
    tr = t.lexicon.__getitem__
    np = lambda p: [tr(a) for a in reversed(p[1:])] + [tr(p[0])]  # noqa: E731
    subject, verb, obj, *rest = phrases
    out = np(subject) + [t.subject_marker]
    if rest:
        preposition, noun = rest
        out += np(noun) + [tr(preposition[0])]
    return out + np(obj) + [t.object_marker, tr(verb[0])]


def test_translation_follows_the_grammar_and_lengths():
    t = task("translate", min_len=3, max_len=11, max_adjectives=2)
    lengths = set()
    for source, target in pairs(t, *t.train_batch(300, GEN(5))[:2]):
        assert target == translate_by_grammar(t, source)
        lengths.add(len(source))
    assert lengths == set(range(3, 12))
    assert len(set(t.lexicon.values()) | {t.subject_marker, t.object_marker} | set(t.lexicon)) == 2 * len(t.lexicon) + 2
    assert task("translate").lexicon == t.lexicon  # the language is fixed by lexicon_seed, not the run seed
    assert task("translate", lexicon_seed=1).lexicon != t.lexicon
    no_adjectives = task("translate", max_adjectives=0, min_len=3, max_len=5)
    assert {len(s) for s, _ in pairs(no_adjectives, *no_adjectives.train_batch(64, GEN())[:2])} == {3, 5}


def test_config_errors():
    with pytest.raises(ConfigError, match="task.max_year = 2100: a two-digit year"):
        task("dates", min_year=1950, max_year=2100)
    task("dates", min_year=1900, max_year=2100, formats='["yyyy-mm-dd", "d_month_yyyy"]')  # no two-digit years
    with pytest.raises(ConfigError, match="task.max_len = 12: no sentence of 12 to 12 words"):
        task("translate", min_len=12, max_len=12)
    with pytest.raises(ConfigError, match="task.max_len = 2: must be >= min_len"):
        task("reverse", min_len=4, max_len=2)


def test_bucket_ranges():
    assert bucket_ranges(3, 12, 3) == [(3, 6), (7, 9), (10, 12)]
    assert bucket_ranges(3, 4, 3) == [(3, 3), (4, 4)] and bucket_ranges(5, 5, 2) == [(5, 5)]


class Scripted:
    """A model whose free-running output is given: what free_running_stats sees of a real one."""

    def __init__(self, ids):
        self.ids = ids

    def decode(self, x, max_len):
        assert max_len >= 3
        return Decoded(self.ids, None, torch.zeros(*self.ids.shape, 5))


def test_metrics_on_hand_made_predictions():
    t = task("reverse", min_len=1, max_len=6, buckets=2)  # buckets 1-3 and 4-6
    ids = {c: i for i, c in enumerate(t.target.tokens)}
    src = {c: i for i, c in enumerate(t.source.tokens)}
    sources = ["abc", "abcd", "dcba", "e"]
    x = torch.tensor([[src[c] for c in s] + [PAD] * (4 - len(s)) for s in sources])
    answers = [s[::-1] for s in sources]
    y = torch.tensor([[ids[c] for c in a] + [EOS] + [PAD] * (4 - len(a)) for a in answers])
    mask = y != PAD
    perfect = t.eval_summary(t.free_running_stats(Scripted(y), x, y, mask))
    assert perfect["exact"] == 1 and perfect["bleu"] == pytest.approx(100)
    assert perfect["exact@1-3"] == perfect["exact@4-6"] == 1
    # row 0 right then junk after its EOS (ignored); row 1 one token wrong; row 2 never ends; row 3 right
    guesses = torch.tensor([[ids["c"], ids["b"], ids["a"], EOS, ids["a"]],
                            [ids["d"], ids["c"], ids["a"], ids["a"], EOS],
                            [ids["a"], ids["b"], ids["c"], ids["d"], ids["a"]],
                            [ids["e"], EOS, PAD, PAD, PAD]])
    stats = t.free_running_stats(Scripted(guesses), x, y, mask)
    summary = t.eval_summary(stats)
    assert summary["exact"] == 0.5 and summary["exact@1-3"] == 1.0 and summary["exact@4-6"] == 0.0
    hyps, refs = ["cba", "dcaa", "abcda", "e"], ["cba", "dcba", "abcd", "e"]
    expected = sacrebleu.corpus_bleu(hyps, [refs], tokenize="char", use_effective_order=True).score
    assert summary["bleu"] == pytest.approx(expected) and 0 < expected < 100
    halves = [t.prediction_stats([list(h)], [list(r)], [n]) for h, r, n in zip(hyps, refs, [3, 4, 4, 1])]
    summed = {k: sum(part[k] for part in halves) for k in halves[0]}  # batch by batch, as the trainer sums
    assert t.eval_summary(summed)["bleu"] == pytest.approx(expected)
    # teacher-forced token accuracy and loss on hand-made logits: right on 12 of the 16 real targets
    logits = torch.full((4, 5, t.spec.output_size), -3.0)
    logits.scatter_(2, y[..., None], 3.0)
    logits[0, :2] = logits[0, :2].flip(-1)  # two wrong
    logits[1, 0], logits[2, 4:] = logits[1, 0].roll(1), 0.0  # one wrong, one uniform (argmax: token 0, wrong)
    token = t.eval_summary(t.batch_stats(logits, y, mask))
    assert token["token_acc"] == pytest.approx(12 / 16)
    per_token = torch.nn.functional.cross_entropy(logits.transpose(1, 2), y, reduction="none")
    assert float(t.loss(logits, y, mask)) == pytest.approx(float(per_token[mask].mean()))


def test_word_bleu_for_translation_and_baselines():
    t = task("translate")
    x, y, mask = t.train_batch(16, GEN())
    assert t.eval_summary(t.free_running_stats(Scripted(y), x, y, mask))["bleu"] == pytest.approx(100)
    assert t.bleu_tokenize == "13a" and t.detokenize(["ab", "cd"]) == "ab cd"
    # reverse, 10 symbols, lengths 3..12: 7.5 symbols and one EOS per answer on average
    p_eos = 1 / 8.5
    p_symbol = (1 - p_eos) / 10
    entropy = -(p_eos * math.log(p_eos) + 10 * p_symbol * math.log(p_symbol))
    metrics = task("reverse", symbols=10, min_len=3, max_len=12).metrics(0.5)
    assert metrics["loss"] == 0.5 and metrics["baseline"] == pytest.approx(entropy, abs=0.02)
    assert 0 < metrics["baseline_bleu"] < 100  # copying the source: right characters, wrong order
