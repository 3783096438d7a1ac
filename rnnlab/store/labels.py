"""A run's tags and note (labels.json): the user's own words about a run, beside what the trainer records.

Not in status.json, which the trainer rewrites every few seconds: a tag added while a run trains must not be
lost to its next status write, nor its status to the tag. Each change is a read-modify-write under an
exclusive flock on the run's .labels.lock, so two processes tagging one run at once both land, and the
file itself is replaced atomically, so a reader never sees half of it.
"""

from __future__ import annotations

import fcntl
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, CorruptRun
from ..literal import visible
from .files import atomic_write

LABELS, LABELS_LOCK = "labels.json", ".labels.lock"
TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,39}")  # no spaces or ':' (the filter reads tag:NAME)
NOTE_LIMIT = 2000  # characters: a note, not a lab book


@dataclass(frozen=True)
class Labels:
    tags: tuple[str, ...] = ()
    note: str = ""


def read_labels(run_path: Path) -> Labels:
    """The run's labels; none when it has no labels.json. Raises CorruptRun for one that is unreadable."""
    path = Path(run_path) / LABELS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Labels()
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise CorruptRun(f"{visible(path)} is unreadable ({error.__class__.__name__}): fix or delete it") from None
    tags, note = (data.get("tags"), data.get("note")) if isinstance(data, dict) else (None, None)
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags) or not isinstance(note, str):
        raise CorruptRun(f"{visible(path)} is not {{\"tags\": [names], \"note\": text}}: fix or delete it")
    return Labels(tuple(tags), note)


def check_tag(tag: str) -> str:
    if not TAG.fullmatch(tag):
        raise ConfigError("tag", tag, "not a tag name", "letters, digits and _ . + - (up to 40, no spaces)")
    return tag


def parse_tag_changes(words: list[str], keep: tuple[str, ...] | None = None) -> tuple[tuple, tuple]:
    """(add, remove) from `+name` (add), `-name` (remove) and a bare `name` (add). With `keep`, the tags the
    words start from (a dialog that shows them): one left out of the words is removed too."""
    add = tuple(check_tag(word.lstrip("+")) for word in words if not word.startswith("-"))
    remove = tuple(check_tag(word[1:]) for word in words if word.startswith("-"))
    if keep is not None:
        remove += tuple(tag for tag in keep if tag not in add and tag not in remove)
    return add, remove


def update_labels(run_path: Path, add: tuple[str, ...] = (), remove: tuple[str, ...] = (),
                  note: str | None = None) -> Labels:
    """Add and remove tags (order kept, no repeats) and/or replace the note; the labels as written."""
    for tag in (*add, *remove):
        check_tag(tag)
    if note is not None and len(note) > NOTE_LIMIT:
        raise ConfigError("note", f"{note[:20]}...", f"{len(note)} characters", f"at most {NOTE_LIMIT}")
    run_path = Path(run_path)
    with open(run_path / LABELS_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        labels = read_labels(run_path)
        tags = [tag for tag in labels.tags if tag not in remove]
        tags += [tag for tag in dict.fromkeys(add) if tag not in tags]
        labels = Labels(tuple(tags), labels.note if note is None else note)
        atomic_write(run_path / LABELS, (json.dumps({"tags": list(labels.tags), "note": labels.note},
                                                    ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
    return labels
