"""Loading a trained captioning run to caption its held-out scenes (decoding.decode_one: greedy or beam).

The checkpoint carries the caption vocabulary and the canvas size; the
scenes come from the run's own task config (tasks/scenes.py), regenerated
from the evaluation seed, so example N is the N-th scene its evaluations
score. `rnnlab caption` and the TUI's caption screen load through here.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .config import load as load_config
from .decoding import EOS, decode_one, output_tokens
from .errors import CheckpointError, ConfigError
from .models import build_model
from .models.base import TaskSpec
from .store import RunDir
from .tasks import build_task
from .train import checkpoint


class LoadedCaptioner(NamedTuple):
    model: torch.nn.Module  # eval mode
    words: list[str]  # id -> word, PAD and EOS first
    task: object  # the run's ScenesTask: its held-out scenes
    batch_size: int  # the evaluation's batch size: example N is row N % B of batch N // B
    step: int


class Captioned(NamedTuple):
    image: list  # (3, H, W) floats in [0, 1]
    truth: list[str]
    words: list[str]  # the generated caption, without EOS
    attention: list[list[float]] | None  # (U, L): each word's (and the EOS's) weights over the grid, row-major
    grid: int  # the feature grid's side: L = grid * grid


def load_captioner(run: RunDir, which: str = "best", device: str = "cpu") -> LoadedCaptioner:
    cfg = load_config(run.config_path)
    path = checkpoint.path_for_run(run, which)
    saved = checkpoint.load(path, map_location=device)
    if "caption_vocab" not in saved:
        raise CheckpointError(f"run {run.id} is not a captioning model (its checkpoint has no caption vocabulary)")
    checkpoint.check_keys(saved, {"caption_vocab": list, "image_size": int}, path)
    task = build_task(cfg.task, cfg.seed)
    if saved["caption_vocab"] != task.target.tokens:
        raise CheckpointError(f"{path}: its caption vocabulary is not its task's (the run's config was edited?)")
    spec = TaskSpec(input_size=3, output_size=len(saved["caption_vocab"]), eos=EOS)
    model = build_model(cfg.model, spec).to(device)
    checkpoint.load_model(model, saved["model"], path)
    return LoadedCaptioner(model.eval(), saved["caption_vocab"], task, cfg.train.batch_size, int(saved["step"]))


def scene_at(loaded: LoadedCaptioner, index: int):
    """The held-out scene `index` of the run's evaluation stream."""
    if index < 0:
        raise ConfigError("--index", index, "must not be negative", "an integer >= 0")
    batch, row = divmod(index, loaded.batch_size)
    for number, scenes in enumerate(loaded.task.eval_scenes(loaded.batch_size, batch + 1)):
        if number == batch:
            return scenes[row]


def caption(loaded: LoadedCaptioner, index: int, beam: int = 1, max_len: int = 24) -> Captioned:
    """Caption held-out scene `index`, with each word's attention over the feature grid."""
    scene = scene_at(loaded, index)
    image, y, _ = loaded.task.batch([scene])  # (1, 3, H, W), (1, U)
    device = next(loaded.model.parameters()).device
    tokens, attention = decode_one(loaded.model, image[0].to(device), max_len, beam)
    return Captioned(image[0].tolist(), output_tokens(y[0].tolist(), loaded.words),
                     output_tokens(tokens, loaded.words), attention, loaded.model.options.grid)
