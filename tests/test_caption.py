"""Captioning: the scenes task, the CNN + attention captioner, its regulariser, decoding, and `rnnlab caption`."""

from __future__ import annotations

import random

import pytest
import torch
from typer.testing import CliRunner

from rnnlab import config, store
from rnnlab.captioning import caption, load_captioner, scene_at
from rnnlab.cli import app as cli_app
from rnnlab.decoding import Seq2SeqStepper, beam_search, decode_one
from rnnlab.errors import ConfigError
from rnnlab.models import build_model
from rnnlab.models.caption import CaptionOptions
from rnnlab.tasks.scenes import COLOURS, RELATIONS, SHAPES, ScenesOptions, ScenesTask, relation_of
from rnnlab.train import Trainer, prepare
from rnnlab.train.bptt import FullBPTT

TASK = ScenesTask(ScenesOptions())


def captioner(attention: str = "soft", **options):
    torch.manual_seed(0)
    options = {"hidden": 12, "embed": 6, "channels": 5, "grid": 3, "attention": attention, **options}
    return build_model(CaptionOptions(**options), TASK.spec).double()


def batch(size: int = 4, seed: int = 0, task: ScenesTask = TASK):
    return task.make_batch(size, torch.Generator().manual_seed(seed))


def test_the_generator_is_a_function_of_its_seed():
    (x1, y1, m1), (x2, y2, m2) = batch(16, seed=3), batch(16, seed=3, task=ScenesTask(ScenesOptions()))
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and torch.equal(m1, m2)
    x3, y3, _ = batch(16, seed=4)
    assert not torch.equal(x1, x3)
    assert x1.shape == (16, 3, 24, 24) and x1.dtype == torch.float32 and 0 <= x1.min() and x1.max() <= 1
    ends = m1.sum(1) - 1  # each caption ends with EOS, then padding
    assert bool((y1[torch.arange(16), ends] == 1).all()) and bool((y1[~m1] == 0).all())


def test_the_heldout_split_shares_no_combination_with_training():
    task = ScenesTask(ScenesOptions(heldout=12, split_seed=5))
    generator = torch.Generator().manual_seed(0)
    trained = {s.combination for _ in range(20) for s in task.draw(64, generator, "train")}
    heldout = {s.combination for scenes in task.eval_scenes(64, 4) for s in scenes}
    seen = ScenesTask(ScenesOptions(heldout=12, split_seed=5, eval_split="seen"))
    controls = {s.combination for scenes in seen.eval_scenes(64, 4) for s in scenes}
    trained.discard(None)  # one-object scenes have no relation
    assert heldout == task.heldout and len(heldout) == 12  # every held-out combination is evaluated, only they
    assert not trained & heldout and len(trained) == 64 - 12  # and training sees every other one
    assert controls <= trained and None not in controls  # the control: two objects, trained combinations
    pairs = [(shape, colour) for shape, colour, _ in heldout]
    assert len(set(pairs)) == len(pairs)  # at most one relation per (shape, colour): the rest still train
    assert task.heldout == ScenesTask(ScenesOptions(heldout=12, split_seed=5), seed=7).heldout  # not the run seed


def test_each_caption_says_what_its_image_shows():
    scenes = [TASK.scene(random.Random(i), ("train", "heldout")[i % 2]) for i in range(200)]
    images = TASK.batch(scenes)[0]
    for scene, image, words in zip(scenes, images, TASK.captions(scenes)):
        for thing in scene.things:  # the centre pixel of every shape has its colour (the background is black)
            assert image[:, thing.y, thing.x].tolist() == pytest.approx(COLOURS[thing.colour])
        subject = scene.things[0]
        small = ["small"] if subject.radius < TASK.big else []  # only a one-object scene's may be small
        assert words[:3 + len(small)] == ["a", *small, subject.colour, subject.shape]
        if scene.relation:
            other = scene.things[1]
            assert relation_of(subject, other) == scene.relation and subject.radius > other.radius
            assert words[3:] == [*scene.relation.split(), "a", "small", other.colour, other.shape]
    lit = (images.sum(1) > 0).float().sum((1, 2))  # (B,) pixels drawn
    one = torch.tensor([len(s.things) == 1 for s in scenes])
    assert lit[~one].min() > lit[one & (lit > 0)].min()  # two shapes cover more than one small one


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_attention_over_the_grid_sums_to_one(cell):
    model = captioner(cell=cell)
    x, y, _ = batch()
    model(x.double(), targets=y)
    weights = model.last_attention  # (B, U, L)
    assert weights.shape == (4, y.shape[1], 9) and bool((weights >= 0).all())
    torch.testing.assert_close(weights.sum(-1), torch.ones(4, y.shape[1], dtype=torch.float64), atol=1e-12, rtol=0)


@pytest.mark.parametrize("attention", ["soft", "none"])
def test_teacher_forcing_and_step_by_step_decoding_agree(attention):
    model = captioner(attention).eval()
    x, y, _ = batch()
    x = x.double()
    with torch.no_grad():
        logits, _ = model(x, targets=y)  # (B, U, V)
        memory = model.encode(x)
        carry, tokens = model.initial_carry(memory), torch.full((4,), model.bos)
        for t in range(y.shape[1]):
            step_logits, carry, weights = model.step(tokens, carry, memory)
            torch.testing.assert_close(step_logits, logits[:, t], atol=1e-12, rtol=0)
            if attention == "soft":
                torch.testing.assert_close(weights, model.last_attention[:, t], atol=1e-12, rtol=0)
            tokens = y[:, t]
        decoded = model.decode(x, max_len=12)
        torch.testing.assert_close(decoded.logits[:, 0], logits[:, 0], atol=1e-12, rtol=0)
        greedy, _ = decode_one(model, x[1], 12)  # beam 1 through the Stepper is greedy decoding
        assert beam_search(Seq2SeqStepper(model, x[1]), 1, 12, eos=1).tokens == greedy


def test_the_doubly_stochastic_term_is_its_formula():
    lam = 0.3
    model = captioner(doubly_stochastic=lam).train()
    x, y, mask = batch(5)
    model(x.double(), targets=y)
    penalty = model.take_penalty()
    alpha = model.last_attention  # (B, U, L), the same weights, detached
    expected = 0.0
    for b in range(5):  # lambda * sum_l (1 - sum_t alpha_tl)^2 over each caption's real steps, mean over images
        for l in range(9):
            expected += (1 - sum(float(alpha[b, t, l]) for t in range(int(mask[b].sum())))) ** 2
    assert float(penalty.detach()) == pytest.approx(lam * expected / 5, rel=1e-12)
    assert penalty.requires_grad and model.take_penalty() is None  # taken once
    model.eval()
    model(x.double(), targets=y)
    assert model.take_penalty() is None  # evaluation's loss is the cross-entropy alone


def test_training_adds_the_regulariser_to_the_loss():
    model = captioner(doubly_stochastic=0.5).float().train()
    step = FullBPTT(TASK, 4, torch.Generator().manual_seed(1), torch.device("cpu"))
    loss, tokens = step.step_loss(model)
    x, y, mask = TASK.make_batch(4, torch.Generator().manual_seed(1))
    with torch.no_grad():
        plain = TASK.loss(model(x, targets=y)[0], y, mask)
    assert step.extras["penalty"] > 0 and tokens == mask.sum()
    assert float(loss.detach()) == pytest.approx(float(plain) + step.extras["penalty"], rel=1e-5)


def test_refusals():
    with pytest.raises(ConfigError, match="needs an image captioning task"):
        prepare(config.load(None, ["model.arch=image_caption", "task.name=reverse", "device=cpu"]))
    with pytest.raises(ConfigError, match="needs a sequence-to-sequence task"):
        prepare(config.load(None, ["model.arch=seq2seq", "task.name=scenes", "device=cpu"]))
    with pytest.raises(ConfigError, match="model.doubly_stochastic"):
        prepare(config.load(None, ["model.arch=image_caption", "model.attention=none", "model.doubly_stochastic=1",
                                   "task.name=scenes", "device=cpu"]))
    with pytest.raises(ConfigError, match="task.heldout"):
        config.load(None, ["model.arch=image_caption", "task.name=scenes", "task.heldout=17"])


def caption_config(**extra) -> config.Config:
    values = {"device": "cpu", "model.arch": "image_caption", "task.name": "scenes", "task.size": 16,
              "model.cell": "gru", "model.hidden": 16, "model.embed": 16, "model.channels": 8, "model.grid": 4,
              "train.steps": 100, "train.batch_size": 16, "train.lr": 0.03, "train.eval_every": 100, "train.eval_batches": 2, "train.checkpoint_every": 100,
              "probes.every": 0, **extra}
    return config.load(None, [f"{k}={v}" for k, v in values.items()])


@pytest.fixture(scope="module")
def caption_run(tmp_path_factory):
    cfg = caption_config()
    prepared = prepare(cfg)
    run = store.create_run(tmp_path_factory.mktemp("caption") / "runs", "cap")
    store.atomic_write(run.config_path, cfg.to_toml().encode())
    outcome = Trainer(prepared, run).train()
    assert outcome.state == "finished"
    return run, prepared, outcome


def test_a_tiny_run_learns_the_colours_above_chance(caption_run):
    """100 steps: the subject's colour, read off the image, is right far more often than a guess (1 in 4)."""
    _, prepared, outcome = caption_run
    x, y, _ = next(prepared.task.eval_batches(256, 1))  # held-out scenes
    with torch.no_grad():
        logits, _ = prepared.model.eval()(x, targets=y)
    assert float((logits[:, 1].argmax(-1) == y[:, 1]).float().mean()) > 0.45  # y[:, 1]: the subject's colour
    final = outcome.final
    choices = 5 * torch.log(torch.tensor(4.0)).item()  # colours, shapes (two each), the relation: 4 ways each
    assert choices / 10 < final["baseline_grammar"] < choices / 9  # captions of 9 and 10 tokens, EOS included
    assert final["loss"] < final["baseline"]
    assert 0 <= final["exact"] <= 1 and 0 <= final["bleu"] <= 100 and {"exact@8", "exact@9"} <= set(final)


def test_the_loaded_run_captions_its_heldout_scenes(caption_run):
    run, prepared, _ = caption_run
    loaded = load_captioner(run)
    scene = scene_at(loaded, 17)  # row 1 of the second evaluation batch (16 a batch)
    assert scene == list(prepared.task.eval_scenes(16, 2))[1][1]
    result = caption(loaded, 17, beam=3)
    assert result.truth == prepared.task.captions([scene])[0]
    assert len(result.attention) == len(result.words) + 1 and len(result.attention[0]) == 4 * 4
    assert set(result.words) <= {*COLOURS, *SHAPES, *(w for r in RELATIONS for w in r.split()), "a", "small"}


def test_caption_command(caption_run):
    run, _, _ = caption_run
    runner = CliRunner()
    runs_dir = str(run.path.parent)
    result = runner.invoke(cli_app, ["caption", run.id, "--index", "2", "--beam", "2", "--runs-dir", runs_dir])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(set(line) == {"▀"} for line in lines[:8]) and len(lines[0]) == 16  # 16 x 16 pixels: 8 lines
    words = caption(load_captioner(run), 2, beam=2).words
    assert lines[8].startswith(f"scene 2: {' '.join(words)}")
    assert "<eos>" in result.output and all(word in result.output for word in words)
    bad = runner.invoke(cli_app, ["caption", run.id, "--index", "-1", "--runs-dir", runs_dir])
    assert bad.exit_code == 2 and bad.output.count("\n") == 1
    sampled = runner.invoke(cli_app, ["sample", run.id, "--runs-dir", runs_dir])
    assert sampled.exit_code == 2 and "caption its scenes with `rnnlab caption RUN`" in sampled.output
    missing = runner.invoke(cli_app, ["caption", "nope", "--runs-dir", runs_dir])
    assert missing.exit_code == 2 and missing.output.count("\n") == 1


def test_a_run_that_is_not_a_captioner_says_so(tmp_path):
    from test_seq2seq import seq2seq_config

    cfg = seq2seq_config(**{"train.steps": 2, "train.eval_every": 2, "train.checkpoint_every": 2})
    run = store.create_run(tmp_path / "runs", "s2s")
    store.atomic_write(run.config_path, cfg.to_toml().encode())
    Trainer(prepare(cfg), run).train()
    result = CliRunner().invoke(cli_app, ["caption", run.id, "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "is not a captioning model" in result.output
    assert "rnnlab translate RUN INPUT" in result.output  # what a seq2seq run is for
    assert result.output.count("\n") == 1


def test_attention_shares_measure_the_weights_on_each_things_cells(caption_run, monkeypatch):
    import rnnlab.captioning as captioning
    from rnnlab.captioning import ROLES, Captioned, attention_shares, thing_cells
    from rnnlab.tasks.scenes import Thing

    assert thing_cells(Thing("square", "red", 5, 5, 3), 24, 6) == {0, 1, 2, 6, 7, 8, 12, 13, 14}  # pixels 2..8
    assert thing_cells(Thing("circle", "red", 20, 3, 3), 24, 6) == {4, 5, 10, 11}
    run, _, _ = caption_run
    loaded = load_captioner(run)
    printed = CliRunner().invoke(cli_app, ["caption", run.id, "--score", "20", "--runs-dir", str(run.path.parent)])
    exact = attention_shares(loaded, 20).exact
    assert exact == sum(caption(loaded, i).words == caption(loaded, i).truth for i in range(20)) / 20
    assert printed.exit_code == 0 and printed.output.startswith(f"20 held-out scenes: exact match {exact:.3f}")

    def perfect(loaded, scene, beam=1):  # every caption right; word t attends to cell t only
        truth = loaded.task.captions([scene])[0]
        weights = [[float(cell == t) for cell in range(16)] for t in range(len(truth) + 1)]
        return Captioned([], truth, truth, weights, 4)

    monkeypatch.setattr(captioning, "caption_scene", perfect)
    shares = attention_shares(loaded, 40)
    scenes = [scene for batch in loaded.task.eval_scenes(16, 3) for scene in batch][:40]
    for position, role in ROLES.items():
        expected = []
        for scene in scenes:
            cell = position % len(loaded.task.captions([scene])[0])  # the word's index: the cell it looks at
            expected.append([cell in thing_cells(thing, 16, 4) for thing in scene.things])
        assert shares.exact == 1 and shares.roles[role] == pytest.approx(tuple(sum(e[i] for e in expected) / 40
                                                                               for i in (0, 1)))
