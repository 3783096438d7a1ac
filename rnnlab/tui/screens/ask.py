"""A one-line question in a box: the runs browser asks a run's tags and its note with it."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from ..literal import plain


class AskScreen(ModalScreen[str | None]):
    """Dismisses with the typed text on enter, None on escape (nothing changes)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    # compact: one line; its own background, so an empty field is still seen as one
    DEFAULT_CSS = """
    AskScreen #answer { background: $boost; margin: 1 0 0 0; }
    """

    def __init__(self, question: str, value: str = "", hint: str = ""):
        super().__init__(classes="dialog")  # app.tcss
        self.question, self.value, self.hint = question, value, hint

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(plain(self.question), classes="title")
            yield Input(value=self.value, id="answer", compact=True)  # the run's own text: a value, never markup
            yield Static(plain(self.hint), classes="hint")

    @on(Input.Submitted, "#answer")
    def submit(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
