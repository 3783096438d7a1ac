"""Untrusted text is shown literally: control characters become visible escapes."""

from __future__ import annotations

import pytest

from rnnlab.literal import is_visible, visible


@pytest.mark.parametrize("raw, shown", [
    ("lstm", "lstm"),
    ("\x1b[2Jrun", "\\x1b[2Jrun"),  # clear screen
    ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),  # retitle the window (OSC ... BEL)
    ("a\nb\rc\td", "a\\nb\\rc\\td"),
    ("\x9b2J", "\\x9b2J"),  # a one-byte C1 CSI
    ("\x7f\x00", "\\x7f\\x00"),
    ("abc\u202edef", "abc\\u202edef"),  # a bidi override that reverses what follows
    ("[blink]lstm[/]", "[blink]lstm[/]"),  # markup is not this function's business: shown as text elsewhere
    ("C:\\runs\\x", "C:\\runs\\x"),  # a backslash stays
    ("λ ünïcode ✓", "λ ünïcode ✓"),
])
def test_visible_escapes_exactly_the_unsafe_characters(raw, shown):
    assert visible(raw) == shown
    assert is_visible(shown)
    assert is_visible(raw) == (raw == shown)


def test_visible_keeps_the_characters_a_block_of_text_needs():
    assert visible("line 1\n\tline 2\x1b[31m\r", keep="\n\t") == "line 1\n\tline 2\\x1b[31m\\r"


def test_visible_takes_any_value():
    assert visible(3.5) == "3.5"
    assert visible(["a\x1b"]) == "['a\\x1b']"  # the repr already escapes; nothing raw survives
