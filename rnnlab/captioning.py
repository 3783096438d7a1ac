"""Loading a trained captioning run to caption its held-out scenes (decoding.decode_one: greedy or beam).

The checkpoint carries the caption vocabulary and the canvas size; the
scenes come from the run's own task config (tasks/scenes.py), regenerated
from the evaluation seed, so example N is the N-th scene its evaluations
score. `rnnlab caption` and the TUI's caption screen load through here.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .decoding import EOS, decode_one, output_tokens
from .errors import CheckpointError, ConfigError
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
    cfg, path, saved = checkpoint.load_for_use(run, which, device, "caption_vocab",
                                               {"caption_vocab": list, "image_size": int})
    task = build_task(cfg.task, cfg.seed)
    if saved["caption_vocab"] != task.target.tokens:
        raise CheckpointError(f"{path}: its caption vocabulary is not its task's (the run's config was edited?)")
    spec = TaskSpec(input_size=3, output_size=len(saved["caption_vocab"]), eos=EOS)
    model = checkpoint.restored_model(cfg, spec, saved, path, device)
    return LoadedCaptioner(model, saved["caption_vocab"], task, cfg.train.batch_size, int(saved["step"]))


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
    return caption_scene(loaded, scene_at(loaded, index), beam, max_len)


def caption_scene(loaded: LoadedCaptioner, scene, beam: int = 1, max_len: int = 24) -> Captioned:
    image, y, _ = loaded.task.batch([scene])  # (1, 3, H, W), (1, U)
    device = next(loaded.model.parameters()).device
    tokens, attention = decode_one(loaded.model, image[0].to(device), max_len, beam)
    return Captioned(image[0].tolist(), output_tokens(y[0].tolist(), loaded.words),
                     output_tokens(tokens, loaded.words), attention, loaded.model.options.grid)


ROLES = {1: "subject's colour", 2: "subject's shape", -2: "object's colour", -1: "object's shape"}  # caption
# positions of the words that name one of the two things (the object's counted from the caption's end)


def thing_cells(thing, size: int, grid: int) -> set[int]:
    """The feature-grid cells (row-major) that a thing's bounding box overlaps, on a size x size canvas."""
    low_x, high_x = (thing.x - thing.radius) * grid // size, (thing.x + thing.radius) * grid // size
    low_y, high_y = (thing.y - thing.radius) * grid // size, (thing.y + thing.radius) * grid // size
    return {row * grid + col for row in range(low_y, high_y + 1) for col in range(low_x, high_x + 1)}


class Shares(NamedTuple):
    scenes: int
    exact: float  # share of the scenes captioned exactly
    roles: dict  # role -> (mean attention on the subject's cells, on the object's), over the exact two-object ones


def attention_shares(loaded: LoadedCaptioner, count: int, beam: int = 1) -> Shares:
    """Caption held-out scenes 0..count-1 and measure where the decoder looks while it names each thing: the
    attention mass on the grid cells of the subject and of the object, for each role's word (Xu et al.'s
    claim, as a number: the model attends to the object it is naming)."""
    if count < 1:
        raise ConfigError("--score", count, "must be at least 1", "an integer >= 1")
    sums = {role: [0.0, 0.0] for role in ROLES.values()}
    right = judged = 0
    batches = loaded.task.eval_scenes(loaded.batch_size, -(-count // loaded.batch_size))
    for scene in [scene for batch in batches for scene in batch][:count]:
        result = caption_scene(loaded, scene, beam)
        right += result.words == result.truth
        if result.words != result.truth or result.attention is None or len(scene.things) < 2:
            continue
        judged += 1
        cells = [thing_cells(thing, loaded.task.size, result.grid) for thing in scene.things[:2]]
        for position, role in ROLES.items():
            weights = result.attention[position % len(result.words)]
            for which in (0, 1):
                sums[role][which] += sum(weights[cell] for cell in cells[which])
    roles = {role: (on[0] / judged, on[1] / judged) for role, on in sums.items()} if judged else {}
    return Shares(count, right / count, roles)
