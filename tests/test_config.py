"""Contract 1: the experiment config -- defaults, TOML, typed --set, one-line errors."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from rnnlab import config, options
from rnnlab.config import TrainConfig
from rnnlab.errors import ConfigError
from rnnlab.models import ARCHS
from rnnlab.models.base import RecurrentOptions
from rnnlab.models.fused import GRUOptions, LSTMOptions
from rnnlab.options import opt
from rnnlab.tasks import build_task

REPO = Path(__file__).resolve().parents[1]
PRESETS = sorted((REPO / "experiments").glob("*.toml"))


def config_error(overrides=(), text: str | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        if text is None:
            config.load(None, list(overrides))
        else:
            config.loads(text, list(overrides))
    return info.value


def assert_names(error: ConfigError, key: str, value: str, allowed: str) -> None:
    """The message names the key, the value and what is allowed, on one line."""
    message = str(error)
    assert error.key == key
    assert message.startswith(f"{key} = "), message
    assert value in message, message
    assert allowed in message, message
    assert "\n" not in message


# -- defaults, files, typed overrides ---------------------------------------------------
def test_defaults_resolve_with_every_key_filled_in():
    cfg = config.load(None)
    assert (cfg.name, cfg.seed, cfg.device, cfg.precision) == ("experiment", 0, "auto", "fp32")
    assert isinstance(cfg.model, LSTMOptions) and cfg.model.arch == "lstm"
    assert (cfg.task.name, cfg.task.corpus) == ("charlm", "stdlib")
    assert cfg.train == TrainConfig()
    resolved = cfg.to_dict()
    for section, cls in [("model", LSTMOptions), ("task", type(cfg.task)), ("train", TrainConfig)]:
        assert set(resolved[section]) == {f.name for f in dataclasses.fields(cls)}
    assert {"name", "seed", "device", "precision"} <= set(resolved)


def test_toml_file_loads_and_overrides_win(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text('name = "mine"\nseed = 7\n\n[model]\narch = "gru"\nhidden = 32\n\n'
                    '[train]\nlr = 1e-3\nmilestones = [5, 9]\nschedule = "step"\n')
    cfg = config.load(path)
    assert (cfg.name, cfg.seed) == ("mine", 7)
    assert isinstance(cfg.model, GRUOptions) and cfg.model.hidden == 32
    assert cfg.model.layers == RecurrentOptions().layers  # untouched keys keep their defaults
    assert cfg.train.lr == 1e-3 and cfg.train.milestones == [5, 9] and cfg.train.schedule == "step"
    assert cfg.train.batch_size == TrainConfig().batch_size

    cfg = config.load(str(path), ["model.hidden=64", "seed=1"])
    assert cfg.model.hidden == 64 and cfg.seed == 1 and cfg.name == "mine"


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_every_preset_resolves(preset):
    cfg = config.load(preset)
    assert cfg.name == tomllib.loads(preset.read_text())["name"]


def test_set_overrides_are_typed():
    cfg = config.load(None, ["model.hidden=8", "train.lr=2e-3", "train.clip=1", "train.schedule=step",
                             "train.milestones=[100,200]", "train.optimizer=sgd", "seed=3"])
    assert cfg.model.hidden == 8 and type(cfg.model.hidden) is int
    assert cfg.train.lr == 0.002 and type(cfg.train.lr) is float
    assert cfg.train.clip == 1.0 and type(cfg.train.clip) is float  # an int is accepted for a number
    assert cfg.train.milestones == [100, 200] and all(type(m) is int for m in cfg.train.milestones)
    assert cfg.train.optimizer == "sgd" and cfg.seed == 3


def test_bool_literal_is_parsed_as_bool_not_string():
    # `true` reaches an integer key as a bool (so the type check rejects it) ...
    error = config_error(["train.steps=true"])
    assert_names(error, "train.steps", "True", "integer")
    assert "bool" in str(error)
    # ... and a string key keeps the text.
    assert config.load(None, ["name=true"]).name == "true"


@dataclass
class _FlagOptions(RecurrentOptions):
    arch: str = opt("flagged", "architecture")
    peephole: bool = opt(False, "a bool option, as arch-specific keys will have")
    tag: str = opt("", "a string option only this arch has")


class _FlaggedModel:
    Options = _FlagOptions


def test_bool_override_of_an_arch_specific_key(monkeypatch):
    monkeypatch.setitem(ARCHS._entries, "flagged", _FlaggedModel)
    assert config.load(None, ["model.arch=flagged", "model.peephole=true"]).model.peephole is True
    assert config.load(None, ["model.arch=flagged", "model.peephole=false"]).model.peephole is False
    # The selector is applied before any other key is typed, wherever it stands on the command line.
    cfg = config.load(None, ["model.tag=2024", "model.peephole=true", "model.arch=flagged"])
    assert cfg.model.tag == "2024" and cfg.model.peephole is True
    for bad in ("1", "yes"):
        assert_names(config_error(["model.arch=flagged", f"model.peephole={bad}"]),
                     "model.peephole", bad, "true/false")


def test_options_build_checks_bool_and_lists_directly():
    @dataclass
    class Opts:
        flag: bool = opt(False, "a flag")
        ids: list[int] = opt([], "ids", min=0)

    assert options.build(Opts, {"flag": True, "ids": [0, 3]}, "s") == Opts(True, [0, 3])
    assert Opts().ids is not Opts().ids  # list defaults are not shared between instances
    with pytest.raises(ConfigError, match="true/false"):
        options.build(Opts, {"flag": 1}, "s")
    with pytest.raises(ConfigError, match=r"s\.ids = 'x': expected integer"):
        options.build(Opts, {"ids": [1, "x"]}, "s")


@pytest.mark.parametrize("override, expected", [
    ("name=123", "123"),
    ("name=2e-3", "2e-3"),
    ("name=[1,2]", "[1,2]"),
    ('name="my run"', "my run"),
    ("name=lstm-charlm", "lstm-charlm"),
])
def test_string_keys_keep_the_text(override, expected):
    cfg = config.load(None, [override])
    assert cfg.name == expected and type(cfg.name) is str


def test_corpus_path_stays_a_string_resolved_to_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = config.load(None, ["task.corpus=some/path.txt"])
    assert cfg.task.corpus == str(tmp_path.resolve() / "some" / "path.txt")
    assert config.load(None, ["task.corpus=stdlib"]).task.corpus == "stdlib"


def test_choosing_gru_by_set_makes_gru_options_apply(tmp_path):
    assert config.load(None, ["model.forget_bias=0.5"]).model.forget_bias == 0.5  # an lstm key
    cfg = config.load(None, ["model.arch=gru", "model.hidden=16"])
    assert isinstance(cfg.model, GRUOptions) and cfg.model.hidden == 16
    assert "forget_bias" not in cfg.to_dict()["model"]
    # The selector is applied first, wherever it stands on the command line.
    error = config_error(["model.forget_bias=0.5", "model.arch=gru"])
    assert_names(error, "model.forget_bias", "0.5", "hidden")
    assert "forget_bias" not in error.allowed
    # --set arch overrides the file's arch, and the file's lstm-only key is dropped (test_switching_... below).
    path = tmp_path / "lstm.toml"
    path.write_text('[model]\narch = "lstm"\nforget_bias = 2.0\n')
    assert config.load(path).model.forget_bias == 2.0 and config.load(path).notes == []
    assert isinstance(config.load(path, ["model.arch=gru"]).model, GRUOptions)


# -- switching the arch or the task away from the file's -------------------------------------
SWITCHES = [  # the presets' own suggested comparisons (issue 13), and what each drops
    ("latch-lstm", "model.arch=gru", ["model.forget_bias"]),
    ("clockwork-latch", "model.arch=elman", ["model.groups"]),
    ("delay-recall", "model.arch=elman", ["model.max_delay"]),
    ("ntm-copy", "model.arch=lstm", ["model.controller", "model.memory_slots", "model.memory_width",
                                     "model.read_heads", "model.write_heads", "model.shift_range"]),
    ("quickstart", "task.name=copy", ["task.corpus", "task.seq_len"]),
]


@pytest.mark.parametrize("preset, switch, dropped", SWITCHES, ids=[f"{p} {s}" for p, s, _ in SWITCHES])
def test_switching_drops_the_files_keys_the_new_selection_lacks_with_a_note(preset, switch, dropped):
    path = REPO / "experiments" / f"{preset}.toml"
    cfg = config.load(path, [switch])
    section, _, choice = switch.partition("=")
    assert getattr(cfg.model if section == "model.arch" else cfg.task, section.split(".")[1]) == choice
    (note,) = cfg.notes
    assert note.startswith(", ".join(dropped) + " dropped: ")
    assert f"came from {preset}.toml and {section} = {choice!r} has no such key" in note
    written = cfg.to_dict()
    for key in dropped:
        assert key.split(".")[1] not in written[key.split(".")[0]]
    assert tomllib.loads(cfg.to_toml()) == written  # what a run directory gets: only the keys that apply
    # Everything else of the file still applies: its hidden size, its [train] and the other section.
    raw = config.read_toml(path)
    assert written["model"]["hidden"] == raw["model"]["hidden"] and written["train"]["lr"] == raw["train"]["lr"]


def test_a_key_set_explicitly_that_the_switched_arch_lacks_is_still_an_error():
    latch = REPO / "experiments" / "latch-lstm.toml"
    for overrides in (["model.arch=gru", "model.forget_bias=1.0"], ["model.forget_bias=1.0", "model.arch=gru"]):
        with pytest.raises(ConfigError) as info:
            config.load(latch, overrides)
        assert_names(info.value, "model.forget_bias", "1.0", "hidden")


def test_a_typo_in_the_file_is_still_an_error_when_the_arch_or_task_switches(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text('[model]\narch = "lstm"\nforget_bias = 2.0\nforget_bais = 1.0\n')
    with pytest.raises(ConfigError) as info:
        config.load(path, ["model.arch=gru"])
    assert_names(info.value, "model.forget_bais", "1.0", "hidden")
    path.write_text('[task]\nname = "charlm"\nseq_len = 16\nseq_lenght = 8\n')
    with pytest.raises(ConfigError) as info:
        config.load(path, ["task.name=copy", "model.hidden=8"])
    assert_names(info.value, "task.seq_lenght", "8", "corpus")


def test_nothing_is_dropped_without_a_switch_or_a_file(tmp_path):
    path = tmp_path / "gru.toml"
    path.write_text('[model]\narch = "gru"\nforget_bias = 2.0\n')  # gru never had it: a typo, not a drop
    with pytest.raises(ConfigError, match="model.forget_bias = 2.0: unknown key"):
        config.load(path, ["model.arch=gru"])  # the same arch again is no switch
    with pytest.raises(ConfigError, match=r"model.forget_bias = 2.0: unknown key \(to the file's model.arch = 'gru'"):
        config.load(path, ["model.arch=lstm"])  # lstm has the key, but the file is wrong on its own terms
    assert config.load(REPO / "experiments" / "latch-lstm.toml", ["model.arch=lstm"]).notes == []
    assert config.load(None, ["model.arch=gru"]).notes == []
    # A file without a selector chose the default (lstm): switching away from it drops its lstm keys.
    path.write_text("[model]\nforget_bias = 2.0\n")
    assert config.load(path, ["model.arch=gru"]).notes == [
        "model.forget_bias dropped: it came from gru.toml and model.arch = 'gru' has no such key"]


def test_selector_accepts_a_toml_quoted_string():
    assert isinstance(config.load(None, ['model.arch="gru"']).model, GRUOptions)
    assert config.load(None, ["task.name='charlm'"]).task.name == "charlm"


# -- errors: key, value, what is allowed ---------------------------------------------------
BAD_OVERRIDES = [
    # unknown keys and sections
    (["model.hiden=8"], "model.hiden", "8", "hidden"),
    (["train.lrate=0.1"], "train.lrate", "0.1", "lr"),
    (["hidden=8"], "hidden", "8", "seed"),
    (["probe.every=3"], "probe.every", "'3'", "model, task, train, probes"),
    # wrong types
    (["model.hidden=abc"], "model.hidden", "'abc'", "integer"),
    (["model.hidden=8.5"], "model.hidden", "8.5", "integer"),
    (["train.lr=fast"], "train.lr", "'fast'", "number"),
    (["train.milestones=100"], "train.milestones", "100", "list of integer"),
    (["train.milestones=[1,'x']"], "train.milestones", "'x'", "integer"),
    (["train.lr=inf"], "train.lr", "inf", "finite"),
    (["train.lr=nan"], "train.lr", "nan", "finite"),
    # out of range
    (["model.hidden=0"], "model.hidden", "0", "integer >= 1"),
    (["train.lr=-1"], "train.lr", "-1", "number > 0"),
    (["train.lr=0"], "train.lr", "0", "> 0"),
    (["model.layers=65"], "model.layers", "65", "<= 64"),
    (["train.momentum=1.5"], "train.momentum", "1.5", "<= 0.999"),
    (["seed=-1"], "seed", "-1", ">= 0"),
    (["train.schedule=step", "train.milestones=[0]"], "train.milestones", "[0]", ">= 1"),
    # bad choices
    (["train.optimizer=adm"], "train.optimizer", "'adm'", "sgd, momentum, adam"),
    (["train.clip_mode=l2"], "train.clip_mode", "'l2'", "norm, value, none"),
    (["precision=fp16"], "precision", "'fp16'", "fp32, bf16"),
    (["model.arch=transformer"], "model.arch", "'transformer'", "allowed: birnn, clockwork, "),
    (["task.name=imagenet"], "task.name", "'imagenet'", "charlm"),
    # devices
    (["device=gpu"], "device", "'gpu'", "auto, cpu, cuda, cuda:N, mps"),
    (["device=cuda:x"], "device", "'cuda:x'", "cuda:N"),
    (["device=CPU"], "device", "'CPU'", "cpu"),
    # cross-field rules
    (["train.algorithm=tbptt", "train.tbptt_k1=16", "train.tbptt_k2=8"], "train.tbptt_k2", "8", ">= 16"),
    (["train.schedule=step"], "train.milestones", "[]", "list of step numbers"),
    (["name="], "name", "''", "a short name"),
    # malformed --set
    (["model.hidden"], "--set", "'model.hidden'", "model.hidden=512"),
    (["=5"], "--set", "'=5'", "key=value"),
    (["model..hidden=5"], "--set", "'model..hidden=5'", "key=value"),
    (["a.b.c=1"], "--set", "'a.b.c=1'", "key=value"),
    (["model=3"], "model", "3", "[model]"),
]


@pytest.mark.parametrize("overrides, key, value, allowed", BAD_OVERRIDES, ids=[" ".join(c[0]) for c in BAD_OVERRIDES])
def test_bad_override_is_a_config_error_naming_key_value_and_allowed(overrides, key, value, allowed):
    assert_names(config_error(overrides), key, value, allowed)


def test_tbptt_keys_are_only_cross_checked_for_tbptt():
    cfg = config.load(None, ["train.tbptt_k1=16", "train.tbptt_k2=8"])  # bptt ignores them
    assert cfg.train.algorithm == "bptt"
    assert config.load(None, ["train.algorithm=tbptt", "train.tbptt_k1=8", "train.tbptt_k2=8"])


@pytest.mark.parametrize("text, key, value, allowed", [
    ("[optim]\nlr = 3\n", "optim", "{'lr': 3}", "model, task, train, probes"),
    ("[probes]\nevery = 3\n", "probes.jacobian_every", "1000", "0 or a multiple of 3"),
    ("[model]\nhiden = 8\n", "model.hiden", "8", "hidden"),
    ("[model]\nhidden = '8'\n", "model.hidden", "'8'", "integer"),
    ("model = 3\n", "model", "3", "[model]"),
    ("train = 'fast'\n", "train", "'fast'", "[train]"),
    ("[model]\narch = 3\n", "model.arch", "3", "lstm"),
])
def test_bad_file_content_is_a_config_error(text, key, value, allowed):
    assert_names(config_error(text=text), key, value, allowed)


def test_selector_set_on_a_non_table_section_is_a_config_error():
    assert_names(config_error(["model.arch=gru"], text="model = 3\n"), "model", "3", "[model]")


def test_missing_config_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert_names(info.value, "config", str(path), ".toml")
    assert "not found" in str(info.value)


@pytest.mark.parametrize("content", [b"[model\nhidden = 8\n", b"name = \n", b"name = '\xff\xfe'\n"],
                         ids=["unclosed-table", "no-value", "not-utf8"])
def test_invalid_toml_file(tmp_path, content):
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert_names(info.value, "config", str(path), "invalid TOML")


# -- corpus errors (raised when the task loads its data, before any run exists) -----------
def load_task(corpus, *overrides):
    cfg = config.load(None, [f"task.corpus={corpus}", "task.seq_len=8", *overrides])
    return build_task(cfg.task, cfg.seed)


def corpus_error(corpus, *overrides) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_task(corpus, *overrides)
    return info.value


def test_tiny_corpus_file_loads(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("hello rnnlab, " * 20, encoding="utf-8")
    task = load_task(path)
    assert len(task.vocab) == len(set("hello rnnlab, "))


def test_missing_corpus_file(tmp_path):
    path = tmp_path / "missing.txt"
    assert_names(corpus_error(path), "task.corpus", str(path), "UTF-8 text file")
    assert "not found" in str(corpus_error(path))


@pytest.mark.parametrize("content", [b"", b"  \n\t\n"], ids=["empty", "whitespace"])
def test_empty_corpus_file(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    error = corpus_error(path)
    assert_names(error, "task.corpus", str(path), "non-empty")
    assert "empty" in error.problem


def test_non_utf8_corpus_file(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\u00e9 ".encode("latin-1") * 50)
    error = corpus_error(path)
    assert_names(error, "task.corpus", str(path), "UTF-8")
    assert "0xe9" in str(error) and "offset 3" in str(error)


def test_seq_len_longer_than_the_corpus(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("hello world", encoding="utf-8")  # 9 train / 2 val characters
    assert_names(corpus_error(path), "task.seq_len", "8", "<= 1")
    # The same text with a short enough window is fine.
    cfg = config.load(None, [f"task.corpus={path}", "task.seq_len=1"])
    assert build_task(cfg.task, 0).options.seq_len == 1


# -- the resolved config round-trips ---------------------------------------------------------
@pytest.mark.parametrize("overrides", [
    [],
    ["model.arch=gru", "model.hidden=12", "train.lr=3e-4", "name=x y \"quoted\""],
    ["train.schedule=step", "train.milestones=[100,200]", "train.algorithm=tbptt", "train.tbptt_k2=64"],
    ["model.arch=elman", "model.nonlinearity=relu", "task.corpus=rel/corpus.txt", "train.time_limit=1"],
])
def test_resolved_config_round_trips_through_toml(overrides, tmp_path):
    cfg = config.load(None, overrides)
    text = cfg.to_toml()
    assert tomllib.loads(text) == cfg.to_dict()
    assert config.loads(text).to_dict() == cfg.to_dict()
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    again = config.load(path)
    assert again.to_dict() == cfg.to_dict()
    assert type(again.model) is type(cfg.model)
