"""Every binding of every screen, generated from the screens' BINDINGS."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.keys import key_to_character
from textual.screen import ModalScreen
from textual.widgets import Markdown

INTRO = """\
# rnnlab keys

`ctrl+p` opens the command palette (new run, open a recent run, theme, quit).
`escape` goes back; `?` shows this page; `ctrl+q` quits.
"""


def _shown(key: str) -> str:
    """'left_square_bracket' -> '[', 'ctrl+l' stays: what the user presses."""
    return key_to_character(key) or key


def _bindings_table(title: str, bindings) -> str:
    rows = [f"## {title}", "", "| key | action |", "| --- | --- |"]
    for binding in bindings:
        if isinstance(binding, tuple):
            binding = Binding(*binding)
        if binding.description:
            keys = binding.key_display or ", ".join(_shown(key) for key in binding.key.split(","))
            rows.append(f"| `{keys}` | {binding.description} |")
    return "\n".join(rows) + "\n"


def help_text() -> str:
    from .launch import LaunchScreen
    from .live import LiveScreen
    from .runs import RunsScreen
    from .sample import SampleScreen

    parts = [INTRO]
    for title, screen in (("Runs", RunsScreen), ("Live run", LiveScreen), ("New run", LaunchScreen),
                          ("Sample", SampleScreen)):
        parts.append(_bindings_table(title, screen.BINDINGS))
    return "\n".join(parts)


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 80%; height: 80%; border: round $accent; background: $surface; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(help_text())
