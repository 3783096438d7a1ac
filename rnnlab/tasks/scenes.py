"""scenes: captioning generated images (the lectures' Show and tell / Show, attend and tell, at toy scale).

An image is a dark RGB canvas (size x size) with one or two filled shapes
(square, circle, triangle, cross) in one of four colours. A two-object scene
has a big subject and a small object placed so that one relation holds
clearly (the centres differ along one axis at least twice as much as along the
other, and the shapes do not touch); its caption, from a grammar, is

    a <colour> <shape> <relation> a small <colour> <shape>    relation: above | below | left of | right of

so every caption is a function of its image (the subject is the big one). A
one-object scene (training only, a share `single` of them) is captioned
"a [small] <colour> <shape>": it grounds the words without a relation.

The held-out split: a scene's combination is its subject's (shape, colour,
relation). `heldout` of the 64 combinations, chosen by `split_seed` (not the
run's seed: every run shares one split), never occur in training, and
evaluation draws only two-object scenes with them, so each evaluation caption
joins words the model has seen in a way it has not (`eval_split = "seen"`
scores two-object scenes of trained combinations instead: the control). At
most one relation per (shape, colour) pair is held out, cycling through the
relations, so every word and every pair still trains with other relations.

A batch is x (B, 3, size, size) floats in [0, 1], y (B, U) caption ids ending
with EOS then 0-padding, mask (B, U) True on the real targets: the seq2seq
tasks' shape (seq2seq.py), whose loss, BLEU (words, sacrebleu's 13a) and
exact match this reuses, by caption length (exact@8: above/below,
exact@9: left of/right of). The baselines are a unigram model of the caption
tokens; `baseline_grammar`, the loss of knowing the grammar but not the image
(each colour, shape and relation a uniform guess: the chance level of a
captioner); and `baseline_bleu` / `baseline_exact`: captions drawn from the
grammar without looking at the image.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass

import torch
from sacrebleu.metrics import BLEU

from ..models.base import TaskSpec
from ..options import opt
from .base import EVAL_SEED, TaskOptions
from .registry import TASKS
from .seq2seq import EOS, Vocab, Seq2SeqTask, bleu_from_stats, bleu_stats

SHAPES = ("square", "circle", "triangle", "cross")
COLOURS = {"red": (0.95, 0.2, 0.15), "green": (0.2, 0.8, 0.25), "blue": (0.25, 0.4, 1.0), "yellow": (1.0, 0.85, 0.1)}
RELATIONS = ("above", "below", "left of", "right of")
TRIES = 10_000  # rejection sampling of a placement: far more than ever needed (acceptance is ~10% at worst)


@dataclass(frozen=True)
class Thing:
    shape: str
    colour: str
    x: int  # centre, in pixels from the left
    y: int  # centre, in pixels from the top
    radius: int


@dataclass(frozen=True)
class Scene:
    things: tuple[Thing, ...]  # the subject first
    relation: str | None  # None for a one-object scene

    @property
    def combination(self) -> tuple[str, str, str] | None:
        """The subject's (shape, colour, relation): what the held-out split is made of."""
        subject = self.things[0]
        return (subject.shape, subject.colour, self.relation) if self.relation else None

    def caption(self, big: int) -> list[str]:
        words = []
        for i, thing in enumerate(self.things):
            if i:
                words += self.relation.split()
            words += ["a", *(["small"] if thing.radius < big else []), thing.colour, thing.shape]
        return words


def relation_of(subject: Thing, other: Thing) -> str | None:
    """The relation of subject to other when it holds clearly, else None."""
    dx, dy = other.x - subject.x, other.y - subject.y
    apart = subject.radius + other.radius + 2  # the shapes' extents never touch
    if abs(dy) >= apart and abs(dx) * 2 <= abs(dy):
        return "above" if dy > 0 else "below"
    if abs(dx) >= apart and abs(dy) * 2 <= abs(dx):
        return "left of" if dx > 0 else "right of"
    return None


def heldout_combinations(count: int, seed: int) -> set[tuple[str, str, str]]:
    """`count` (shape, colour, relation) triples, at most one per (shape, colour), relations in turn."""
    pairs = [(shape, colour) for shape in SHAPES for colour in COLOURS]
    random.Random(seed).shuffle(pairs)
    return {(shape, colour, RELATIONS[i % len(RELATIONS)]) for i, (shape, colour) in enumerate(pairs[:count])}


def shape_masks(kind: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Pixels inside each row's shape: kind (B,) index into SHAPES; dx, dy (B, S, S) offsets from its centre;
    r (B, 1, 1) its radius. Returns (B, S, S) bool."""
    ax, ay = dx.abs(), dy.abs()
    masks = torch.stack([
        (ax <= r - 1) & (ay <= r - 1),  # square: side 2r - 1, about a disc's area
        dx * dx + dy * dy <= r * r + 0.5,  # circle
        (dy >= -r) & (dy <= r - 1) & (2 * ax <= dy + r),  # triangle, apex up
        ((ax <= r // 3) & (ay <= r)) | ((ay <= r // 3) & (ax <= r)),  # cross: arms a third of r wide
    ], 1)  # (B, 4, S, S)
    return masks.gather(1, kind[:, None, None, None].expand(-1, 1, *dx.shape[1:]))[:, 0]


def render(scenes: list[Scene], size: int) -> torch.Tensor:
    """Scenes -> images (B, 3, size, size), later things drawn over earlier ones (they never overlap)."""
    images = torch.zeros(len(scenes), 3, size, size)
    grid = torch.arange(size, dtype=torch.float32)
    for slot in range(max(len(s.things) for s in scenes)):
        rows = [i for i, s in enumerate(scenes) if len(s.things) > slot]
        things = [scenes[i].things[slot] for i in rows]
        cx = torch.tensor([t.x for t in things], dtype=torch.float32)[:, None, None]  # (b, 1, 1)
        cy = torch.tensor([t.y for t in things], dtype=torch.float32)[:, None, None]
        r = torch.tensor([t.radius for t in things], dtype=torch.float32)[:, None, None]
        kind = torch.tensor([SHAPES.index(t.shape) for t in things])
        dx, dy = grid[None, None, :] - cx, grid[None, :, None] - cy  # (b, 1, S), (b, S, 1)
        dx, dy = dx.expand(-1, size, -1), dy.expand(-1, -1, size)  # (b, S, S)
        inside = shape_masks(kind, dx, dy, r)  # (b, S, S)
        colour = torch.tensor([COLOURS[t.colour] for t in things])[:, :, None, None]  # (b, 3, 1, 1)
        index = torch.tensor(rows)
        images[index] = torch.where(inside[:, None], colour, images[index])
    return images


@dataclass
class ScenesOptions(TaskOptions):
    name: str = opt("scenes", "task (`rnnlab list tasks`)")
    size: int = opt(24, "canvas side, in pixels", min=16, max=64)
    single: float = opt(0.25, "share of one-object scenes in training (evaluation: two objects, held out)",
                        min=0, max=0.9)
    heldout: int = opt(8, "(shape, colour, relation) combinations never trained on, evaluated on (of 64; at "
                       "most one relation per shape and colour)", min=1, max=16)
    split_seed: int = opt(0, "seed choosing the held-out combinations (the same split for every run seed)", min=0)
    eval_split: str = opt("heldout", "what evaluation scores: heldout (two objects, combinations never trained "
                          "on) or seen (two objects, trained combinations: the control)", choices=["heldout", "seen"])


@TASKS.register("scenes", "Caption generated scenes of shapes (image -> words; held-out combinations)")
class ScenesTask(Seq2SeqTask):
    Options = ScenesOptions
    joiner, bleu_tokenize = " ", "13a"  # words
    baseline_label = "a unigram model of the caption tokens"

    def __init__(self, options: ScenesOptions, seed: int = 0):
        self.options = options
        self.size = options.size
        self.big, self.small = round(options.size * 0.21), round(options.size * 0.125)  # 5 and 3 pixels at 24
        words = sorted({"a", "small", *COLOURS, *SHAPES, *(w for r in RELATIONS for w in r.split())})
        self.target = Vocab(words, ("<pad>", "<eos>"))
        self.spec = TaskSpec(input_size=3, output_size=len(self.target), eos=EOS)
        self.heldout = heldout_combinations(options.heldout, options.split_seed)
        self.trained = [(s, c, r) for s in SHAPES for c in COLOURS for r in RELATIONS
                        if (s, c, r) not in self.heldout]
        self.buckets = [(8, 8), (9, 9)]  # the evaluation captions' lengths in words: 1- and 2-word relations
        self.bleu = BLEU(tokenize=self.bleu_tokenize, effective_order=True)
        self.baselines = self._baselines(random.Random(EVAL_SEED), 1000)

    # -- scenes -------------------------------------------------------------------------
    def place(self, rng: random.Random, shape: str, colour: str, radius: int) -> Thing:
        margin = radius  # the whole shape inside the canvas
        return Thing(shape, colour, rng.randint(margin, self.size - 1 - margin),
                     rng.randint(margin, self.size - 1 - margin), radius)

    def scene(self, rng: random.Random, split: str) -> Scene:
        """A scene of `split`: train (one or two objects, trained combinations), heldout (two objects, held-out
        combinations) or seen (two objects, trained combinations: evaluation's control)."""
        if split == "train" and rng.random() < self.options.single:
            radius = rng.choice([self.big, self.small])
            return Scene((self.place(rng, rng.choice(SHAPES), rng.choice(list(COLOURS)), radius),), None)
        shape, colour, relation = rng.choice(sorted(self.heldout) if split == "heldout" else self.trained)
        other_shape, other_colour = rng.choice(SHAPES), rng.choice(list(COLOURS))
        for _ in range(TRIES):
            subject = self.place(rng, shape, colour, self.big)
            other = self.place(rng, other_shape, other_colour, self.small)
            if relation_of(subject, other) == relation:
                return Scene((subject, other), relation)
        raise RuntimeError(f"no placement for {relation!r} on a {self.size}-pixel canvas")  # pragma: no cover

    def captions(self, scenes: list[Scene]) -> list[list[str]]:
        return [scene.caption(self.big) for scene in scenes]

    def batch(self, scenes: list[Scene]):
        targets = [self.target.encode(words) + [EOS] for words in self.captions(scenes)]
        y = torch.zeros(len(scenes), max(map(len, targets)), dtype=torch.long)  # (B, U)
        for row, target in enumerate(targets):
            y[row, :len(target)] = torch.tensor(target)
        return render(scenes, self.size), y, y != 0  # x (B, 3, S, S), y, mask (B, U)

    def draw(self, batch_size: int, generator: torch.Generator, split: str) -> list[Scene]:
        # One torch draw seeds Python's RNG, as the seq2seq tasks do: the stream is a function of the run's seed.
        rng = random.Random(int(torch.randint(2 ** 62, (1,), generator=generator)))
        return [self.scene(rng, split) for _ in range(batch_size)]

    def make_batch(self, batch_size: int, generator: torch.Generator):
        return self.batch(self.draw(batch_size, generator, "train"))

    def eval_scenes(self, batch_size: int, count: int):
        """The evaluation's scenes (task.eval_split), batch by batch, from their own seed (the CLI and TUI show
        these)."""
        generator = torch.Generator().manual_seed(EVAL_SEED)
        for _ in range(count):
            yield self.draw(batch_size, generator, self.options.eval_split)

    def eval_batches(self, batch_size: int, count: int):
        for scenes in self.eval_scenes(batch_size, count):
            yield self.batch(scenes)

    # -- judging (the rest is Seq2SeqTask's) ----------------------------------------------------
    def free_running_stats(self, model, x, y, mask) -> dict:
        decoded = model.decode(x, max_len=y.shape[1] + 4)
        guesses = [self.target_tokens(row) for row in decoded.ids.tolist()]
        answers = [self.target_tokens(row) for row in y.tolist()]
        return self.prediction_stats(guesses, answers, [len(a) for a in answers])

    def grammar_caption(self, rng: random.Random) -> list[str]:
        """A caption of the evaluation's form with every choice random: what guessing without the image gives."""
        return ["a", rng.choice(list(COLOURS)), rng.choice(SHAPES), *rng.choice(RELATIONS).split(),
                "a", "small", rng.choice(list(COLOURS)), rng.choice(SHAPES)]

    def _baselines(self, rng: random.Random, count: int) -> dict:
        answers = self.captions([self.scene(rng, self.options.eval_split) for _ in range(count)])
        counts = Counter(token for caption in answers for token in [*caption, "<eos>"])
        total = sum(counts.values())
        unigram = -sum(c / total * math.log(c / total) for c in counts.values())
        guesses = [self.grammar_caption(rng) for _ in answers]
        chance = bleu_stats(self.bleu, [" ".join(g) for g in guesses], [" ".join(a) for a in answers])
        # the grammar without the image: uniform choices of two colours, two shapes and the relation, the rest certain
        choices = 2 * math.log(len(COLOURS)) + 2 * math.log(len(SHAPES)) + math.log(len(RELATIONS))
        grammar = count * choices / sum(len(caption) + 1 for caption in answers)  # per token, EOS included
        return {"baseline": unigram, "baseline_grammar": grammar, "baseline_bleu": bleu_from_stats(chance),
                "baseline_exact": sum(g == a for g, a in zip(guesses, answers)) / count}

    def checkpoint_extras(self) -> dict:
        return {"caption_vocab": self.target.tokens, "image_size": self.size}

