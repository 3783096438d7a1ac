"""Checkpoints: weights + optimizer + step + RNG + vocabulary, written atomically.

They load with `weights_only=True`: a run directory from someone else can
never execute code on this machine.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..store import RunDir, atomic_write


def save(run: RunDir, which: str, payload: dict) -> Path:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    path = run.checkpoint(which)
    atomic_write(path, buffer.getvalue())
    return path


def load(path: Path, map_location="cpu") -> dict:
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # a corrupt or foreign file: say so in one line
        raise CheckpointError(f"cannot load {path}: {str(error).splitlines()[0]}") from None


def load_for_run(run: RunDir, which: str = "best", map_location="cpu") -> dict:
    """best falls back to last (a run stopped before its first evaluation has no best.pt)."""
    path = run.checkpoint(which)
    if which == "best" and not path.is_file():
        path = run.checkpoint("last")
    return load(path, map_location)


def rng_state(generator: torch.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "data": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["data"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
