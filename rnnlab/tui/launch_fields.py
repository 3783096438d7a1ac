"""The new-run form's fields, apart from their screen (screens/launch.py): which keys it shows, what each
means and allows for the chosen arch/task, and their text. Plain data from config, options and the
registries, no widgets."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from .. import config, selection
from ..errors import ConfigError
from ..options import describe

# The key hyperparameters; every other key keeps the preset's value (or its default).
FIELDS = ("name", "model.arch", "model.hidden", "model.layers", "model.dropout", "task.name", "task.corpus",
          "task.tokenizer", "task.seq_len", "train.steps", "train.batch_size", "train.optimizer", "train.lr",
          "train.clip", "train.algorithm", "probes.every", "device")
DEVICES = ["auto", "cpu", "cuda", "mps"]  # a preset's cuda:N is added to these when it has one


def registries() -> dict:
    """The selector fields' registries ({"model.arch": ARCHS, ...}, config's selection.selectors). The first
    call imports every model and task (torch, ~2 s): a thread's job (LaunchScreen._prepare,
    RnnlabApp.warm_up), after which it costs nothing."""
    return selection.selectors()


def field_id(key: str, kind: str = "field") -> str:
    """The id of a key's widget ("field-model-hidden") or of its problem line ("problem-model-hidden")."""
    return f"{kind}-{key.replace('.', '-')}"


def split(key: str) -> tuple[str, str]:
    return key.rpartition(".")[::2]  # "model.hidden" -> ("model", "hidden"), "seed" -> ("", "seed")


def lookup(raw: dict, key: str):
    section, name = split(key)
    table = raw.get(section, {}) if section else raw
    return table.get(name) if isinstance(table, dict) else None


def as_text(value) -> str:
    """A value as the user would type it after `--set key=` (TOML for numbers and booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def choice(values: dict) -> tuple:
    """The selector keys' string values among `values` (dotted key -> value), as a hashable key for
    field_info: (("model.arch", "gru"), ("task.name", "charlm"))."""
    return tuple((key, values[key]) for key in registries() if isinstance(values.get(key), str))


@functools.lru_cache(maxsize=None)  # describe() reads type hints: slow enough to matter per keystroke
def field_info(key: str, chosen: tuple = ()) -> tuple[dict, list | None] | None:
    """(describe() row, choices) of `key` for the arch/task `chosen` (see choice()); None if that class
    has no such key."""
    section, name = split(key)
    picked = next((value for selector, value in chosen if split(selector)[0] == section), None)
    try:
        cls = config.section_class(section, picked)
    except ConfigError:  # an unknown arch/task: resolve() reports it on the selector
        cls = config.section_class(section)
    for row, field in zip(describe(cls), dataclasses.fields(cls)):
        if row["key"] == name:
            return row, field.metadata.get("choices")
    return None


def preset_label(path: Path) -> str:
    """The preset's name and its first comment line (what it is for)."""
    try:
        first = (path.read_text(encoding="utf-8").splitlines() or [""])[0]
    except (OSError, UnicodeDecodeError):
        first = ""
    return f"{path.stem} - {first.lstrip('# ')}" if first.startswith("#") else path.stem
