"""Checkpoints: weights + optimizer + step + RNG + vocabulary, written atomically.

They load with `weights_only=True`: a run directory from someone else can
never execute code on this machine. Every way a file can fail to be a usable
checkpoint is one CheckpointError naming the file (see docs/run-directory.md);
none repeats torch's advice to retry with `weights_only=False`, which is the
one thing a hostile file wants.
"""

from __future__ import annotations

import io
import math
import pickle
import re
import warnings
from pathlib import Path

import torch

from ..errors import CheckpointError, first_line
from ..literal import visible
from ..store import RunDir, atomic_write

# What every reader needs, and what resuming training needs on top (with the types written).
READ_KEYS = {"step": int, "model": dict}
TRAINING_KEYS = {**READ_KEYS, "elapsed": float, "optimizer": dict, "schedule": dict, "algorithm": dict,
                 "rng": dict, "best_val": float, "clipped_steps": int}


def save(run: RunDir, which: str, payload: dict) -> Path:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    path = run.checkpoint(which)
    atomic_write(path, buffer.getvalue())
    return path


def load(path: Path, map_location="cpu", keys: dict = READ_KEYS) -> dict:
    """The checkpoint at `path` as a dict holding `keys` (name -> type), or a one-line CheckpointError."""
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"cannot load {path}: the file is empty (0 bytes), not a checkpoint")
    try:
        with warnings.catch_warnings():  # torch warns of pickle protocols it may not read, asking for an issue
            warnings.simplefilter("ignore")
            saved = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        blocked = re.search(r"GLOBAL (\S+)", str(error))  # the safe unpickler met a class or function
        if blocked:
            raise CheckpointError(f"cannot load {path}: it holds objects rnnlab does not load "
                                  f"({visible(blocked.group(1)[:80])}); only tensors and plain data load, "
                                  "for safety") from None
        raise CheckpointError(f"cannot load {path}: not a PyTorch checkpoint") from None
    except Exception as error:  # a truncated archive, or bytes torch cannot parse at all
        detail = first_line(error).split(". ")[0]  # torch's first sentence says what broke; never its advice
        detail = "" if "weights_only" in detail else f": {visible(detail)[:100]}"
        raise CheckpointError(f"cannot load {path}: not a PyTorch checkpoint (corrupt or truncated{detail})") from None
    check_keys(saved, keys, path)
    return saved


def check_keys(saved, keys: dict, path: Path) -> None:
    if not isinstance(saved, dict):
        raise CheckpointError(f"cannot load {path}: it holds a {type(saved).__name__}, not an rnnlab checkpoint")
    missing = [key for key in keys if key not in saved]
    if missing:
        raise CheckpointError(f"cannot load {path}: it lacks {', '.join(missing)}: not a complete rnnlab checkpoint")
    for key, kind in keys.items():
        value = saved[key]
        fits = (isinstance(value, (int, float)) and not math.isnan(value)  # best_val is inf before an eval
                if kind is float else isinstance(value, kind))
        if isinstance(value, bool) or not fits or (kind is int and value < 0):
            wanted = "a non-negative integer" if kind is int else "a number" if kind is float else kind.__name__
            raise CheckpointError(f"cannot load {path}: its {key} is {visible(repr(value))[:40]} of type "
                                  f"{type(value).__name__}, not {wanted}")


def path_for_run(run: RunDir, which: str = "best") -> Path:
    """best falls back to last (a run stopped before its first evaluation has no best.pt)."""
    path = run.checkpoint(which)
    return run.checkpoint("last") if which == "best" and not path.is_file() else path


# What a checkpoint holds that says which kind of model it is, and what that kind is used with: the
# readers below name the right command when a run of another kind is given to them.
KINDS = {
    "vocab": ("a language model", "vocabulary", "sample from it with `rnnlab sample RUN`"),
    "target_vocab": ("a seq2seq model", "target vocabulary", "decode its inputs with `rnnlab translate RUN INPUT`"),
    "caption_vocab": ("a captioning model", "caption vocabulary", "caption its scenes with `rnnlab caption RUN`"),
}


def load_for_use(run: RunDir, which: str, device: str, kind: str, keys: dict):
    """(config, path, checkpoint) of a run to use, not to train (sampling, translating, captioning): the
    checkpoint (best falls back to last) must be of `kind` (a KINDS key) and hold `keys` of their types."""
    from ..config import load as load_config

    cfg = load_config(run.config_path)
    path = path_for_run(run, which)
    saved = load(path, map_location=device)
    if kind not in saved:
        what, noun, _ = KINDS[kind]
        hint = next((f"; {use}" for key, (_, _, use) in KINDS.items() if key != kind and key in saved), "")
        raise CheckpointError(f"run {run.id} is not {what} (its checkpoint has no {noun}){hint}")
    check_keys(saved, keys, path)
    return cfg, path, saved


def restored_model(cfg, spec, saved: dict, path: Path, device: str) -> torch.nn.Module:
    """The run's model for its task's spec, with the checkpoint's weights, in eval mode."""
    from ..models import build_model

    model = build_model(cfg.model, spec).to(device)
    load_model(model, saved["model"], path)
    return model.eval()


def load_model(model: torch.nn.Module, state: dict, path: Path) -> None:
    """Load a state dict, or say in one line which tensor does not fit the config (torch says it in many)."""
    own = model.state_dict()
    for name, tensor in state.items():
        if name in own and (not isinstance(tensor, torch.Tensor) or tensor.shape != own[name].shape):
            shape = "x".join(map(str, tensor.shape)) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise CheckpointError(f"{path} does not match the run's config: {visible(name)} is {shape} there, "
                                  f"{'x'.join(map(str, own[name].shape))} for the config")
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        what = f"lacks {visible(missing[0])}" if missing else f"has {visible(str(unexpected[0]))}"
        raise CheckpointError(f"{path} does not match the run's config: its model {what} "
                              f"({len(missing)} missing, {len(unexpected)} unexpected tensors)")
    model.load_state_dict(state)


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
