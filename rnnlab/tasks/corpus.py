"""Text corpora: the embedded default and user files, with clear errors.

The embedded default, "stdlib", is the source of the Python standard library
that runs rnnlab: every machine that can run rnnlab has it, so the main job
needs no download. It is extracted deterministically (top-level modules in
sorted order, capped in size), so on one Python version it is the same text
everywhere.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

from ..errors import ConfigError

EMBEDDED = "stdlib"
STDLIB_CHARS = 2_000_000  # ~2 MB of code: plenty for minutes of CPU training


def stdlib_text(limit: int = STDLIB_CHARS) -> str:
    root = Path(sysconfig.get_paths()["stdlib"])
    parts, size = [], 0
    for path in sorted(root.glob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # a missing or odd file changes nothing for the others
        parts.append(text)
        size += len(text)
        if size >= limit:
            break
    if not parts:
        raise ConfigError("task.corpus", EMBEDDED, f"no Python sources found in {root}",
                          "a path to a UTF-8 text file")
    return "".join(parts)[:limit]


def read_text_file(path: str) -> str:
    file = Path(path)
    if not file.is_file():
        raise ConfigError("task.corpus", path, "file not found", f"{EMBEDDED!r} or a path to a UTF-8 text file")
    data = file.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError("task.corpus", path, f"not UTF-8 text (byte 0x{data[error.start]:02x} at "
                          f"offset {error.start})", "a UTF-8 text file") from None
    if not text.strip():
        raise ConfigError("task.corpus", path, "the file is empty", "a non-empty UTF-8 text file")
    return text.removeprefix("\ufeff")  # a BOM is not part of the text


def load_corpus(name: str) -> str:
    return stdlib_text() if name == EMBEDDED else read_text_file(name)
