"""Which keys exist for a chosen arch/task (selection.prune_to_selection), as the launch form asks."""

from __future__ import annotations

import dataclasses

from rnnlab import selection
from rnnlab.models import ARCHS
from rnnlab.tasks import TASKS


def test_the_selector_keys_are_the_registries_own():
    assert selection.selectors() == {"model.arch": ARCHS, "task.name": TASKS}


def test_prune_keeps_what_the_chosen_classes_declare_and_every_other_section():
    lstm = {f.name for f in dataclasses.fields(ARCHS.get("lstm").Options)}
    gru = {f.name for f in dataclasses.fields(ARCHS.get("gru").Options)}
    only_lstm = sorted(lstm - gru)  # e.g. forget_bias
    assert only_lstm
    keys = ["name", "train.lr", "model.arch", "task.corpus"] + [f"model.{k}" for k in only_lstm]
    assert selection.prune_to_selection(keys, {"model.arch": "lstm"}) == keys  # charlm by default: has corpus
    assert selection.prune_to_selection(keys, {"model.arch": "gru", "task.name": "adding"}) == \
        ["name", "train.lr", "model.arch"]


def test_an_unknown_or_absent_choice_is_judged_by_the_default_class():
    keys = ["model.forget_bias", "task.corpus"]  # lstm and charlm, the defaults, have both
    assert selection.prune_to_selection(keys, {"model.arch": "no-such-arch", "task.name": 3}) == keys
    assert selection.prune_to_selection(keys, {}) == keys
