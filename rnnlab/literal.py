"""Text from disk shown as what it is: control characters made visible, never obeyed.

A run directory may come from someone else, or be renamed by hand: its id,
config values, status fields, error messages, sampled text and corpus text
are untrusted. Written raw to a terminal, an ESC sequence in any of them can
clear the screen, retitle the window or move the cursor; shown through Rich
or Textual markup, `[blink]lstm` would turn into a style. Every place that
shows such a string passes it through `visible()` first and prints it as
plain text (rich `Text`, `markup=False`), so the user sees `\\x1b[2J`
literally.

The one home for this rule: the CLI (console.py) and the TUI both import it.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls (0x80-0x9f: 0x9b is a one-byte CSI), and the
# Unicode format characters that reorder or hide text (bidi overrides and
# isolates, zero-width joiners, BOM): the "Trojan Source" characters.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(value, keep: str = "") -> str:
    """`value` as a string whose unsafe characters are shown as escapes (`\\x1b`, `\\u202e`).

    `keep` lists characters that stay as they are where the context is a block of
    text (a sample, a corpus excerpt): `keep="\\n\\t"` keeps its lines and tabs.
    A backslash is left alone, so ordinary paths and regexes read as typed.
    """
    text = value if isinstance(value, str) else str(value)
    if keep:
        return _UNSAFE.sub(lambda m: m.group() if m.group() in keep else _escape(m), text)
    return _UNSAFE.sub(_escape, text)


def is_visible(value: str) -> bool:
    """True when `value` has nothing `visible()` would escape (a name safe to show raw)."""
    return _UNSAFE.search(value) is None
