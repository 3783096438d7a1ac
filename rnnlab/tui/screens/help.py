"""Every binding of every screen, generated from the screens' BINDINGS."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.keys import format_key, key_to_character
from textual.screen import ModalScreen
from textual.widgets import Markdown

INTRO = """\
# rnnlab keys

`ctrl+p` opens the command palette (new run, open a recent run, theme, quit).
`escape` goes back; `?` shows this page; `ctrl+q` quits.
"""


def _shown(key: str) -> str:
    """A key as the user reads it: 'left_square_bracket' -> '[', 'slash' -> '/', 'space', 'escape', 'tab'.

    Printable characters are shown as themselves; whitespace and control keys by their name (as a raw
    character, a space or a tab is invisible in the table, and an escape is an ESC byte).
    """
    char = key_to_character(key) or format_key(key)
    return char if len(char) == 1 and char.isprintable() and not char.isspace() and char.isascii() else key


def _code(text: str) -> str:
    """A Markdown code span that survives a table: a backtick key needs a wider fence, a pipe its escape."""
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if "`" in text else f"{fence}{text.replace('|', chr(92) + '|')}{fence}"


def _bindings_table(title: str, bindings) -> str:
    rows = [f"## {title}", "", "| key | action |", "| --- | --- |"]
    for binding in bindings:
        if isinstance(binding, tuple):
            binding = Binding(*binding)
        if binding.description:
            # "tab,p" is two keys for one action: `tab` / `p` (a "," key shows as `,`)
            keys = [binding.key_display] if binding.key_display else [_shown(key) for key in binding.key.split(",")]
            rows.append(f"| {' / '.join(_code(key) for key in keys)} | {binding.description} |")
    return "\n".join(rows) + "\n"


def help_text() -> str:
    from .attention import AttentionScreen
    from .caption import CaptionScreen
    from .heads import HeadsScreen
    from .launch import LaunchScreen
    from .live import LiveScreen
    from .runs import RunsScreen
    from .sample import SampleScreen
    from .studies import StudiesScreen, StudyScreen
    from .sweep import SweepScreen

    parts = [INTRO]
    for title, screen in (("Runs", RunsScreen), ("Sweep", SweepScreen), ("Live run", LiveScreen),
                          ("New run", LaunchScreen), ("Sample", SampleScreen), ("Attention", AttentionScreen),
                          ("Caption", CaptionScreen), ("Heads", HeadsScreen), ("Studies", StudiesScreen), ("Study", StudyScreen)):
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
