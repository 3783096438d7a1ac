"""Contract 1: the experiment config.

One TOML file describes one experiment. Every key has a default, `--set
section.key=value` overrides any key (parsed as a TOML value, so numbers and
booleans are typed), and the resolved config -- every default filled in -- is
written into the run directory. The [model] and [task] tables are open-ended:
`model.arch` and `task.name` pick a registered class whose `Options`
dataclass declares the remaining keys of that table.

Switching the arch or the task away from the file's (`--set model.arch=gru`, a
sweep, the TUI's launch form) drops the file's keys that only the file's own
arch/task has, and says so in `Config.notes` (the CLI prints them; this module
never prints); a key the user set explicitly, or one the file's own selection
does not have either (a typo), is still an error. `drop_foreign_keys` is that
rule's one home. A key an arch/task has renamed (its Options' `RENAMED`, e.g.
the esn's `sparsity` -> `rc_connectivity`) is read as the new one, in a file
or a --set, with a note: `rename_old_keys`, so old run directories still load.
Those rules, and which keys select a class, are in selection.py.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from . import options, selection
from .errors import ConfigError
from .options import opt
from .selection import by_section, default_selection

OPTIMIZERS = ["sgd", "momentum", "adam", "adamw", "rmsprop", "adagrad"]
SCHEDULES = ["none", "exponential", "staircase", "step", "cosine", "plateau"]
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass
class TrainConfig:
    steps: int = opt(1000, "optimizer steps in total", min=1)
    batch_size: int = opt(32, "sequences per batch", min=1)
    algorithm: str = opt("bptt", "bptt: random windows, full backprop; tbptt: contiguous streams, "
                         "state carried across chunks; ridge: closed-form linear readout over fixed features "
                         "(esn): each step adds one batch to the normal equations and re-solves them; "
                         "rtrl: real-time recurrent learning (gradients carried forward, small nets); "
                         "ekf: extended Kalman filter on the weights (small nets; no optimizer)",
                         choices=["bptt", "tbptt", "ridge", "rtrl", "ekf"])
    tbptt_k1: int = opt(32, "tbptt: new tokens consumed per step", min=1)
    tbptt_k2: int = opt(32, "tbptt: tokens backpropagated through per step (>= tbptt_k1)", min=1)
    ridge_alpha: float = opt(1e-6, "ridge: L2 penalty alpha on the readout weights (not its bias), "
                             "(X^T X + alpha I) W = X^T Y summed over every judged position", above=0)
    rtrl_mode: str = opt("batch", "rtrl: batch (update after batch_size sequences), pattern (after each "
                         "sequence), online (after every time step)", choices=["batch", "pattern", "online"])
    rtrl_check_every: int = opt(0, "rtrl (batch, pattern): at the first step and every this many after, also "
                                "take BPTT's gradient of the same batch by autograd and record rtrl_gap = "
                                "||g_rtrl - g_bptt|| / ||g_bptt|| in that train event (0: never)", min=0)
    ekf_noise: float = opt(1.0, "ekf: measurement noise R (larger: smaller, safer steps)", above=0)
    ekf_process: float = opt(1e-4, "ekf: process noise Q added to the covariance every update", min=0)
    ekf_prior: float = opt(10.0, "ekf: initial covariance P = prior * I", above=0)
    memory_budget_gb: float = opt(2.0, "rtrl, ekf: refuse, before the run starts, a model whose estimated peak "
                                  "memory is above this many GB: RTRL holds 4 B x S x P_s floats (batch, state "
                                  "size, parameters the state depends on), the EKF 4 P x P + 4 (B x outputs) x P "
                                  "more; the cost grows as the 3rd/4th power of the hidden size, and a step near "
                                  "the limit takes minutes (0: no limit)", min=0)
    pascanu_weight: float = opt(0.0, "weight of the Pascanu et al. 2013 regulariser that keeps "
                                "||dE/dh_{k+1} dh_{k+1}/dh_k|| / ||dE/dh_{k+1}|| near 1 (0: off; bptt only)", min=0)
    scheduled_sampling: str = opt("none", "feed the model its own previous output instead of the truth with "
                                  "a probability growing over training (Bengio et al. 2015): language models, "
                                  "Jordan nets, seq2seq", choices=["none", "linear", "exponential", "inverse_sigmoid"])
    ss_k: float = opt(1000.0, "scheduled sampling: k of the schedule (linear: steps to reach the floor; "
                      "exponential: decay per step, < 1; inverse_sigmoid: steps scale)", above=0)
    ss_floor: float = opt(0.0, "scheduled sampling: the lowest probability of feeding the truth", min=0, max=1)
    free_running_eval: bool = opt(False, "also evaluate with the model fed its own greedy outputs (the "
                                  "exposure-bias gap); on by itself with scheduled sampling")
    optimizer: str = opt("adam", "update rule", choices=OPTIMIZERS)
    lr: float = opt(2e-3, "base learning rate", above=0)
    momentum: float = opt(0.9, "momentum (momentum, rmsprop)", min=0, max=0.999)
    weight_decay: float = opt(0.0, "L2 penalty (decoupled for adamw)", min=0)
    schedule: str = opt("none", "learning-rate schedule", choices=SCHEDULES)
    warmup_steps: int = opt(0, "linear warm-up from 0 before the schedule starts", min=0)
    decay_rate: float = opt(0.5, "exponential/staircase/step: factor per decay", above=0, max=1)
    decay_steps: int = opt(1000, "exponential/staircase: steps per factor of decay_rate", min=1)
    milestones: list[int] = opt([], "step: steps at which lr is multiplied by decay_rate", min=1)
    lr_min: float = opt(0.0, "cosine: final learning rate", min=0)
    plateau_patience: int = opt(1, "plateau: evals without improvement before lr is divided", min=1)
    plateau_divisor: float = opt(4.0, "plateau: lr is divided by this on a plateau", above=1)
    clip: float = opt(5.0, "clipping threshold (global norm, or per-element value)", above=0)
    clip_mode: str = opt("norm", "gradient clipping", choices=["norm", "value", "none"])
    diverge_factor: float = opt(10.0, "end the run as diverged when the training loss stays above this many "
                                "times its starting level (the higher of the first step's loss and the task's "
                                "no-memory baseline) for diverge_patience steps in a row (0: off; not for ridge)",
                                min=0)
    diverge_patience: int = opt(50, "consecutive steps above the divergence bar before the run ends", min=1)
    eval_every: int = opt(200, "steps between validation passes (0: only at the end)", min=0)
    eval_batches: int = opt(20, "validation batches per pass", min=1)
    checkpoint_every: int = opt(500, "steps between last.pt checkpoints (0: only at the end)", min=0)
    time_limit: float = opt(0.0, "end the run (as finished) after this many seconds of training; 0: none", min=0)

    def check(self, section: str) -> None:
        if self.algorithm == "tbptt" and self.tbptt_k2 < self.tbptt_k1:
            raise ConfigError(f"{section}.tbptt_k2", self.tbptt_k2, "must be >= train.tbptt_k1",
                              f"an integer >= {self.tbptt_k1}")
        if self.scheduled_sampling == "exponential" and self.ss_k >= 1:
            raise ConfigError(f"{section}.ss_k", self.ss_k, "an exponential schedule needs a decay below 1",
                              "a number in (0, 1), e.g. 0.999")
        if self.rtrl_check_every and self.algorithm == "rtrl" and self.rtrl_mode == "online":
            raise ConfigError(f"{section}.rtrl_check_every", self.rtrl_check_every, "online RTRL's gradient is one "
                              "time step's under changing weights: there is no BPTT gradient to equal", "0")
        if self.pascanu_weight and self.algorithm != "bptt":
            raise ConfigError(f"{section}.pascanu_weight", self.pascanu_weight,
                              f"the regulariser runs with train.algorithm = bptt, not {self.algorithm}", "0")
        if 0 < self.diverge_factor <= 1:
            raise ConfigError(f"{section}.diverge_factor", self.diverge_factor,
                              "a bar at or below the starting loss would end healthy runs", "0 (off) or > 1")
        if self.schedule == "step" and not self.milestones:
            raise ConfigError(f"{section}.milestones", self.milestones,
                              "schedule 'step' needs at least one milestone", "a list of step numbers")


@dataclass
class ProbesConfig:
    every: int = opt(100, "steps between probes (0 turns every probe off)", min=0)
    batch: int = opt(8, "sequences in the fixed probe batch (the first validation windows)", min=1)
    gradnorms: bool = opt(True, "pre-clip gradient norms per layer and per gate block")
    gradflow: bool = opt(True, "norm of dL/dh_t for every time step and layer")
    gates: bool = opt(True, "gate means and saturation (LSTM/GRU)")
    spectrum: bool = opt(True, "eigenvalues and singular values of the recurrent matrices")
    jacobian_every: int = opt(1000, "steps between Jacobian dh_t/dh_{t-1} spectra (costly; 0: never)", min=0)
    jacobian_steps: int = opt(32, "time steps (the last of the probe sequence) for the Jacobian", min=1)
    top_singular: int = opt(6, "leading singular values kept per Jacobian", min=1)

    def check(self, section: str) -> None:
        if self.every and self.jacobian_every and self.jacobian_every % self.every:
            raise ConfigError(f"{section}.jacobian_every", self.jacobian_every,
                              f"must be a multiple of probes.every ({self.every})",
                              f"0 or a multiple of {self.every}")


@dataclass
class RunOptions:
    """The top-level keys of the config file."""

    name: str = opt("experiment", "a short name; part of the run id")
    seed: int = opt(0, "seeds weights, batches, dropout and sampling", min=0)
    device: str = opt("auto", "auto (cuda, then mps, then cpu) | cpu | cuda | cuda:N | mps")
    precision: str = opt("fp32", "bf16 uses autocast on CUDA", choices=["fp32", "bf16"])
    threads: int = opt(0, "CPU threads torch may use; 0: chosen, one thread, or every idle core for a model of "
                       "20k+ parameters on the CPU (OMP_NUM_THREADS, when set, is kept): a second thread mostly "
                       "waits beside a busy process (rnnlab/train/threads.py, benchmarks/threads.py)", min=0, max=1024)

    def check(self, section: str) -> None:
        if not DEVICE_PATTERN.match(self.device):
            raise ConfigError("device", self.device, "not a device", "auto, cpu, cuda, cuda:N, mps")
        if not self.name.strip():
            raise ConfigError("name", self.name, "must not be empty", "a short name")


@dataclass
class Config:
    run: RunOptions
    model: Any  # the chosen architecture's Options dataclass
    task: Any  # the chosen task's Options dataclass
    train: TrainConfig
    probes: ProbesConfig
    # One line per switched section whose file keys were dropped (drop_foreign_keys): for the user, not
    # part of the config (not in to_dict, not compared).
    notes: list[str] = dataclasses.field(default_factory=list, compare=False)

    # Top-level keys read naturally as cfg.name, cfg.seed, ...
    name = property(lambda self: self.run.name)
    seed = property(lambda self: self.run.seed)
    device = property(lambda self: self.run.device)
    precision = property(lambda self: self.run.precision)
    threads = property(lambda self: self.run.threads)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self.run)
        for section in SECTIONS:
            out[section] = dataclasses.asdict(getattr(self, section))
        return out

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())


SECTIONS = ("model", "task", "train", "probes")


def section_class(section: str, selected: str | None = None):
    """The dataclass that declares the keys of `section` (for a chosen arch/task)."""
    if section == "train":
        return TrainConfig
    if section == "probes":
        return ProbesConfig
    if section == "":
        return RunOptions
    registry, selector = by_section()[section]
    name = selected or default_selection(section)
    return registry.get(name).Options


def read_toml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError("config", str(path), "file not found", "a path to a .toml file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError("config", str(path), f"invalid TOML ({error})") from None


def parse_override(text: str) -> tuple[list[str], str]:
    """'model.hidden=512' -> (['model', 'hidden'], '512')."""
    key, sep, value = text.partition("=")
    path = key.strip().split(".")
    if not sep or not all(path) or len(path) > 2:
        raise ConfigError("--set", text, "expected key=value", "e.g. model.hidden=512 or seed=3")
    return path, value.strip()


def _typed(raw: str, tp) -> Any:
    """Parse an override as a TOML value; a string field always takes the raw text."""
    if tp is str:
        try:
            parsed = tomllib.loads(f"v = {raw}")["v"]
            return parsed if isinstance(parsed, str) else raw
        except tomllib.TOMLDecodeError:
            return raw
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw  # the type check then names the key and the expected type


def resolve(raw: dict, overrides: list[str] = (), source: str | None = None) -> Config:
    """Merge overrides into a raw TOML dict and validate everything.

    `source` names the file `raw` came from, for the notes on keys dropped by a switched arch/task.
    """
    # A [sweep] table describes a sweep over this config (`rnnlab sweep FILE`): not part of one run's config
    swept = "sweep" in raw
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items() if k != "sweep"}
    for name in raw:
        if isinstance(raw[name], dict) and name not in SECTIONS:
            raise ConfigError(name, raw[name], "unknown section", ", ".join(SECTIONS))
    parsed = [parse_override(text) for text in overrides]
    renamed: list[str] = []
    for section in ("model", "task"):  # the file's own old keys, before anything compares key names
        if isinstance(raw.get(section), dict):
            selection.rename_old_keys(raw[section], section, renamed, source)
    file_choice = {section: selection.selected(raw, section) for section in ("model", "task")}
    # Selectors first: the chosen arch/task decides which keys exist.
    for path, value in parsed:
        if ".".join(path) in selection.selectors():
            table = raw.setdefault(path[0], {})
            if not isinstance(table, dict):
                raise ConfigError(path[0], table, "expected a table", f"[{path[0]}] with keys")
            table[path[1]] = _typed(value, str)  # model.arch="gru" (TOML-quoted) works like model.arch=gru
    # before the other overrides: those are never dropped
    notes = renamed + selection.drop_foreign_keys(raw, file_choice, source)
    if swept:
        notes.append(f"the [sweep] table of {source or 'the config file'} is left out: this is its base config "
                     f"(`rnnlab sweep {source or 'FILE'}` runs the sweep)")
    for path, value in parsed:
        section, key = (path[0], path[1]) if len(path) == 2 else ("", path[0])
        if section and section not in SECTIONS:
            raise ConfigError(".".join(path), value, "unknown section", ", ".join(SECTIONS))
        table = raw.setdefault(section, {}) if section else raw
        if section and not isinstance(table, dict):
            raise ConfigError(section, table, "expected a table")
        selected = table.get(by_section()[section][1]) if section in ("model", "task") else None
        cls = section_class(section, selected if isinstance(selected, str) else None)
        if key in getattr(cls, "RENAMED", {}):  # --set model.sparsity=0.9: the old name, read as the new one
            table.pop(cls.RENAMED[key][0], None)  # the override wins over the file's value of the new key
            table[key] = _typed(value, options.field_type(cls, cls.RENAMED[key][0]))
            selection.rename_old_keys(table, section, notes, "--set")
            continue
        table[key] = _typed(value, options.field_type(cls, key))
    top = {k: v for k, v in raw.items() if k not in SECTIONS}
    built = {"run": options.build(RunOptions, top, "")}
    for section in SECTIONS:
        table = raw.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(section, table, "expected a table", "[" + section + "] with keys")
        if section in ("model", "task"):
            registry, selector = by_section()[section]
            choice = table.get(selector, default_selection(section))
            if not isinstance(choice, str):
                raise ConfigError(f"{section}.{selector}", choice, "expected string", ", ".join(registry.names()))
            cls = registry.get(choice).Options
        else:
            cls = TrainConfig if section == "train" else ProbesConfig
        try:
            built[section] = options.build(cls, table, section)
        except ConfigError:
            if section == "model":
                # a preset key unknown to the arch: maybe the arch cannot do the task at all
                selection.check_pairing(raw)
            raise
    return Config(**built, notes=notes)


def load(path: str | Path | None, overrides: list[str] = ()) -> Config:
    """Load a config file (or the defaults when `path` is None) plus overrides."""
    if path is None:
        return resolve({}, overrides)
    return resolve(read_toml(Path(path)), overrides, Path(path).name)


def loads(text: str, overrides: list[str] = ()) -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError("config", text[:40], f"invalid TOML ({error})") from None
    return resolve(raw, overrides)
