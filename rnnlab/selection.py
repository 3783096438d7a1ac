"""Contract 1's selection rules: which keys select a registered class, and what a choice means for the rest.

`model.arch` and `task.name` (each registry names the key that selects from
it) pick the class whose `Options` declares the other keys of [model] and
[task]. Here, for config.py (resolve), the launch form and anyone else:
which keys select (`selectors`), which keys a choice has (`prune_to_selection`),
what a switched arch/task drops (`drop_foreign_keys`), old names read as new
ones (`rename_old_keys`), and the one arch/task mismatch found before training
(`check_pairing`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .errors import ConfigError

DEFAULT_SELECTION = {"model": "lstm", "task": "charlm"}


def selectors() -> dict:
    """The keys that select a registered class, and their registries: {"model.arch": ARCHS, "task.name":
    TASKS}. The first call imports every model and task (torch, ~2 s)."""
    from .models import ARCHS  # imported late: the models import rnnlab.options, never this
    from .tasks import TASKS

    return {registry.key: registry for registry in (ARCHS, TASKS)}  # each registry names its key


def by_section() -> dict:
    """section -> (registry, selector key in the section): {"model": (ARCHS, "arch"), "task": (TASKS, "name")}."""
    return {key.partition(".")[0]: (registry, key.partition(".")[2]) for key, registry in selectors().items()}


def default_selection(section: str) -> str:
    return DEFAULT_SELECTION[section]


def selected(raw: dict, section: str):
    """The arch/task `raw` picks for `section` (its default when the table does not say; None if not a table)."""
    table = raw.get(section, {})
    return table.get(by_section()[section][1], default_selection(section)) if isinstance(table, dict) else None


def registered(section: str, choice) -> type | None:
    """The class `choice` names in the section's registry; None for an unknown name or a non-string."""
    registry, _ = by_section()[section]
    return registry.get(choice) if isinstance(choice, str) and choice in registry.names() else None


def prune_to_selection(keys, values: dict) -> list[str]:
    """The dotted keys among `keys` (e.g. "model.peephole", "train.lr") that exist for what `values` (dotted
    key -> value, like a form's fields or `--set`s) selects: a [model]/[task] key its arch/task lacks is left
    out, every other key stays. An absent or unknown choice is judged by the section's default class
    (resolve() reports an unknown name on its selector)."""
    fields = {}
    for section, (registry, selector) in by_section().items():
        cls = registered(section, values.get(f"{section}.{selector}")) or registry.get(default_selection(section))
        fields[section] = {field.name for field in dataclasses.fields(cls.Options)}
    kept = []
    for key in keys:
        section, _, name = key.rpartition(".")
        if section not in fields or name in fields[section]:
            kept.append(key)
    return kept


def drop_foreign_keys(raw: dict, file_choice: dict[str, Any], source: str | None = None) -> list[str]:
    """Remove, in place, the [model]/[task] keys of `raw` that belong to the file's arch/task but not to the
    one now chosen; return one note per section that lost keys.

    `raw` is the file's tables with the selectors already overridden and nothing else yet; `file_choice`
    maps "model"/"task" to what the file itself chose. A key the file's own selection lacks is a typo, and
    an error even where the new selection has it; every key of a section whose selection did not change
    stays (its build checks it).
    """
    notes = []
    for section, (_, selector) in by_section().items():
        table, before, after = raw.get(section), file_choice.get(section), selected(raw, section)
        old, new = registered(section, before), registered(section, after)
        if before == after or old is None or new is None or not isinstance(table, dict):
            continue
        keep = {f.name for f in dataclasses.fields(new.Options)}
        own = [f.name for f in dataclasses.fields(old.Options)]
        for key in table:
            if key not in own:
                raise ConfigError(f"{section}.{key}", table[key], f"unknown key (to the file's {section}.{selector} "
                                  f"= {before!r})", ", ".join(own))
        dropped = [key for key in table if key not in keep]
        if not dropped:
            continue
        check_pairing(raw)  # the new arch cannot do the task at all: that, not a note, is what to say
        for key in dropped:
            del table[key]
        names = ", ".join(f"{section}.{key}" for key in dropped)
        came, has = ("it", "such key") if len(dropped) == 1 else ("they", "such keys")
        notes.append(f"{names} dropped: {came} came from {source or 'the config file'} and "
                     f"{section}.{selector} = {after!r} has no {has}")
    return notes


def rename_old_keys(table: dict, section: str, notes: list[str], source: str | None = None) -> None:
    """Read, in place, the keys an arch/task has renamed (its Options' RENAMED: old -> (new, conversion,
    what the note says)) as the new ones, with a note: old run directories and presets still load."""
    cls = registered(section, selected({section: table}, section))
    for old, (new, convert, how) in getattr(cls.Options, "RENAMED", {}).items() if cls else ():
        if old not in table:
            continue
        value = table.pop(old)
        if new in table:
            raise ConfigError(f"{section}.{old}", value, f"is the old name of {section}.{new} ({how}), "
                              "which is given too", f"only {section}.{new}")
        table[new] = convert(value, f"{section}.{old}")
        notes.append(f"{section}.{old} = {value!r} (from {source or 'the config file'}) read as "
                     f"{section}.{new} = {table[new]!r}: the key was renamed ({how})")


def needs_encoder_decoder(arch: str, task: str) -> ConfigError:
    """The error for a model that cannot emit an output sequence of its own length (one message, two checks)."""
    if task == "scenes":  # an image in, a caption out: the encoder is a CNN
        return ConfigError("model.arch", arch, "task 'scenes' captions images: it needs an image captioner",
                           "image_caption")
    return ConfigError("model.arch", arch, f"task {task!r} maps a sequence to another of a different length: "
                       "it needs an encoder-decoder", "seq2seq")


def check_pairing(raw: dict) -> None:
    """Raise the arch/task mismatch, if that is what a bad or trimmed [model]/[task] table means: a
    seq2seq preset's `model.cell` is unknown to lstm, or about to be dropped (drop_foreign_keys), only
    because `--set model.arch=lstm` replaced the encoder-decoder the task needs. (A config that merely
    pairs them, with nothing to drop, still loads: `prepare` refuses to train it.)"""
    chosen = {}
    for section in by_section():
        chosen[section] = registered(section, selected(raw, section))
        if chosen[section] is None:
            return  # the section's own build names the bad selector
    if getattr(chosen["task"], "needs_decoder", False) and not hasattr(chosen["model"], "decode"):
        raise needs_encoder_decoder(chosen["model"].registry_name, chosen["task"].registry_name)
