"""Messages the TUI's workers post to screens (small dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.message import Message


@dataclass
class RunUpdate(Message):
    """New events of a watched run, and its status (None when unreadable or deleted)."""

    events: list[dict] = field(default_factory=list)
    status: dict | None = None
    problem: str | None = None  # e.g. "run directory deleted", "3 corrupt lines skipped"
