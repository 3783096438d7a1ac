"""A yes-or-no dialog (deleting runs asks it)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from ..literal import plain


class ConfirmScreen(ModalScreen[bool]):
    """Yes or no; dismisses with True only on an explicit yes (escape and `n` say no)."""

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]
    AUTO_FOCUS = "#no"  # deleting cannot be undone: a stray enter must mean no
    def __init__(self, question: str, details: str = ""):
        super().__init__(classes="dialog")  # app.tcss
        self.question, self.details = question, details

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question, classes="title")
            yield Static(plain(self.details, keep="\n"), classes="hint")  # run ids, one a line
            with Horizontal(id="buttons"):
                yield Button("Yes (y)", variant="error", id="yes", action="screen.answer(True)")
                yield Button("No (n)", variant="primary", id="no", action="screen.answer(False)")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
