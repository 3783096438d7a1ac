"""The line under a form that says what is wrong (or a note, a legend): one widget for every screen."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ..literal import plain


class ProblemLine(Static):
    """Takes no room while it has nothing to say (80x24 has none to spare), and shows its text literally:
    messages echo typed values, a preset's keys, a vocabulary's tokens, any of which may hold markup or
    escape sequences."""

    def __init__(self, *, id: str | None = None, classes: str = "problem"):
        super().__init__("", id=id, classes=classes)
        self.display = False

    def say(self, *lines: str) -> None:
        """Show these lines (none, or only empty ones: hide). Each is literal, a new line in one included;
        only the breaks between them are real."""
        lines = tuple(line for line in lines if line)
        self.update(Text("\n").join(plain(line) for line in lines))
        self.display = bool(lines)
