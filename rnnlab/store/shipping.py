"""A run directory shipped between machines that share no filesystem (the Ray backend)."""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path

from ..errors import CorruptRun
from ..literal import visible
from .files import atomic_write
from .runs import RunDir


# -- shipping a run directory between machines (the Ray backend, where nodes share no filesystem) --------
def pack_run(run: RunDir) -> bytes:
    """A run directory as tar bytes (gzip), its members named `<run-id>/...`."""
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(run.path, arcname=run.id)
    return buffer.getvalue()


def unpack_run(runs_dir: Path, data: bytes, replace: bool = False) -> RunDir:
    """Unpack `pack_run` bytes into `runs_dir` as `<runs_dir>/<run-id>`, safely: one top folder with a
    run id's shape, only plain files and folders inside it (no absolute paths, `..`, links or devices).
    An existing run of that id is an error unless `replace` (a resumed trial coming back): then the
    new copy is unpacked beside it and swapped in by rename, so a failure leaves the old one whole."""
    import io
    import tarfile

    runs_dir = Path(runs_dir)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        members = tar.getmembers()
        tops = {Path(m.name).parts[0] if Path(m.name).parts else "" for m in members}
        if len(tops) != 1:
            raise CorruptRun(f"a shipped run directory holds {len(tops)} top-level entries, not one")
        [run_id] = tops
        if not re.fullmatch(r"[0-9]{8}-[0-9]{6}-[a-z0-9-]+-[0-9a-f]{4}", run_id):
            raise CorruptRun(f"a shipped run directory is named {visible(repr(run_id))[:80]}, not a run id")
        for member in members:
            parts = Path(member.name).parts
            if member.name.startswith(("/", "\\")) or ".." in parts or not (member.isfile() or member.isdir()):
                raise CorruptRun(f"shipped run {run_id}: refused member {visible(repr(member.name))[:120]}")
        target = runs_dir / run_id
        if target.exists() and not replace:
            raise CorruptRun(f"shipped run {run_id}: {visible(target)} already exists")
        runs_dir.mkdir(parents=True, exist_ok=True)
        incoming = runs_dir / f".incoming-{run_id}-{secrets.token_hex(3)}"
        incoming.mkdir()
        try:
            if hasattr(tarfile, "data_filter"):  # Python 3.11.4+: the same refusals, by tarfile itself
                tar.extractall(incoming, filter="data")
            else:
                tar.extractall(incoming)
            if target.exists():
                old = runs_dir / f".replaced-{run_id}-{secrets.token_hex(3)}"
                os.replace(target, old)
                os.replace(incoming / run_id, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(incoming / run_id, target)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
    return RunDir(target)


def write_probe(runs_dir: Path) -> tuple[str, str]:
    """A marker file in `runs_dir` (dot-named: never listed) that a worker on another machine reads to
    tell whether it sees this runs directory; returns (its absolute path, the token it holds)."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(8)
    path = runs_dir.resolve() / f".rnnlab-probe-{token}"
    atomic_write(path, token.encode())
    return str(path), token


def remove_probe(path: str) -> None:
    Path(path).unlink(missing_ok=True)
