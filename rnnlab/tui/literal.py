"""How the TUI shows text it read from disk: as rich `Text`, with `rnnlab.literal.visible` applied.

A `str` handed to `Static.update`, a DataTable cell, a Rich table or `notify` is parsed as markup
(`[blink]lstm` would show as `lstm`, blinking), and its ESC bytes reach the terminal. `Text` is never
parsed, and `visible()` (the one home of the rule) turns control characters into `\\x1b` escapes.
"""

from __future__ import annotations

from ..console import literal as plain  # noqa: F401  `plain(value)`: the rich Text the CLI shows too
from ..literal import visible


def notify(node, message: str, *, title: str = "", severity: str = "information",
           timeout: float | None = None) -> None:
    """`node.notify` for a message that may echo ids, states or errors from disk: shown literally."""
    node.notify(visible(message), title=visible(title), severity=severity, timeout=timeout, markup=False)
