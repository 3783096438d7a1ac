"""What a language model computes once per corpus, kept on disk: the vocabulary (a BPE one's merges), the
encoded text, what each validation token covers, and the n-gram baseline's token losses.

On the embedded corpus these cost 1.5-5 s of every `rnnlab run` (the Kneser-Ney 5-gram most of it), more
than the rest of rnnlab's start-up together (benchmarks/startup.py). An entry is keyed by a SHA-256 of
everything it was computed from (the text itself and the options that shape it), so an edited corpus or a
changed option simply misses. Entries hold tensors, strings and numbers only and load with
`torch.load(weights_only=True)`: a cache file can never run code. Anything wrong with one (truncated,
foreign, unreadable) is a miss, never an error: the cache is a speed-up, and the run computes afresh.

Where: $RNNLAB_CACHE (a folder; `off` turns the cache off), else $XDG_CACHE_HOME/rnnlab, else
~/.cache/rnnlab. At most MAX_ENTRIES files and MAX_BYTES stay, the least recently used going first (the newest stays).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import torch

from ..store.files import atomic_write

FORMAT = 1  # bump when an entry's contents change meaning: old entries then miss
MAX_ENTRIES = 16  # 4 MB each on the embedded corpus
MAX_BYTES = 1 << 30  # and at most 1 GiB in all (an entry is ~2 bytes per character of its corpus)
TENSORS = ("train_data", "val_data", "val_lengths")  # every entry has these; ngram_losses may be None


def cache_dir() -> Path | None:
    """The cache folder, or None when $RNNLAB_CACHE is `off`."""
    chosen = os.environ.get("RNNLAB_CACHE")
    if chosen is not None:
        return None if chosen.strip().lower() in ("off", "0", "") else Path(chosen).expanduser()
    try:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    except RuntimeError:  # no home directory to be found (no $HOME, no passwd entry): no cache
        return None
    return Path(base) / "rnnlab"


def entry_key(text: str, **options) -> str:
    """SHA-256 of the format, the options (sorted) and the text: the entry's file name."""
    digest = hashlib.sha256(json.dumps([FORMAT, options], sort_keys=True).encode())
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def load(key: str) -> dict | None:
    """The entry for `key`, checked; None on any miss or any fault in the file."""
    folder = cache_dir()
    if folder is None:
        return None
    path = folder / f"corpus-{key}.pt"
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        os.utime(path)  # recently used: kept longest
    except Exception:  # noqa: BLE001 - absent, truncated, foreign, unreadable: all a miss
        return None
    return saved if _well_formed(saved, key) else None


def _well_formed(saved, key: str) -> bool:
    if not isinstance(saved, dict) or saved.get("format") != FORMAT or saved.get("key") != key:
        return False
    if not isinstance(saved.get("vocab"), dict):
        return False
    tensors = [saved.get(name) for name in TENSORS]
    if not all(isinstance(t, torch.Tensor) and t.dim() == 1 for t in tensors):
        return False
    losses = saved.get("ngram_losses")
    if losses is not None and not (isinstance(losses, torch.Tensor) and losses.shape == saved["val_data"].shape):
        return False
    return saved["val_lengths"].shape == saved["val_data"].shape


def save(key: str, entry: dict) -> None:
    """Write the entry (atomically: a reader sees all of it or none); a full disk or a read-only home only
    means no cache. Then drop the least recently used entries beyond MAX_ENTRIES or MAX_BYTES."""
    folder = cache_dir()
    if folder is None:
        return
    buffer = io.BytesIO()
    torch.save({**entry, "format": FORMAT, "key": key}, buffer)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / f"corpus-{key}.pt", buffer.getvalue())
        entries = sorted(((p.stat(), p) for p in folder.glob("corpus-*.pt")), key=lambda e: -e[0].st_mtime)
        total = 0
        for count, (stat, path) in enumerate(entries):
            total += stat.st_size
            if count >= MAX_ENTRIES or (count and total > MAX_BYTES):  # the newest stays, however big
                path.unlink(missing_ok=True)
    except OSError:
        pass


def compact(values: torch.Tensor, bound: int) -> torch.Tensor:
    """Non-negative integers below `bound` in the smallest type that holds them (4x smaller on disk)."""
    return values.to(torch.int16 if bound <= 2**15 else torch.int32)
