"""A sweep's spec: the [sweep] table of an experiment file (plus `--sweep key=v1,v2` options) expanded
into trials. A trial is a point (swept key -> value) and a seed; its key is the canonical JSON of both.

Grid: every swept key holds a list; the trials are the cartesian product, times `seeds`.
Random search: `trials = N`; a key holds a list (a choice), `{choice = [...]}`, `{uniform = [a, b]}`,
`{log_uniform = [a, b]}` or `{int_uniform = [a, b]}` (inclusive); N points are drawn from `sweep_seed`
(default 0), the same points every time, times `seeds`.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from .. import config as config_mod
from ..errors import ConfigError

RESERVED = ("seeds", "metric", "goal", "trials", "sweep_seed")
DISTRIBUTIONS = ("choice", "uniform", "log_uniform", "int_uniform")
HIGHER_IS_BETTER = {"accuracy", "bleu", "exact_match", "token_accuracy", "success"}


@dataclass
class Trial:
    point: dict  # swept key -> value
    seed: int

    @property
    def key(self) -> str:
        return trial_key(self.point, self.seed)

    def overrides(self) -> list[str]:
        """--set strings that make the base config this trial's config."""
        return [f"{key}={toml_value(value)}" for key, value in self.point.items()] + [f"seed={self.seed}"]


def trial_key(point: dict, seed: int) -> str:
    return json.dumps({"point": point, "seed": seed}, sort_keys=True, separators=(",", ":"))


def toml_value(value) -> str:
    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


@dataclass
class SweepSpec:
    keys: dict  # swept key -> list of values (grid) or a distribution table (random)
    seeds: list[int]
    metric: str
    goal: str  # "min" or "max"
    trials: int | None = None  # random search: points to draw
    sweep_seed: int = 0
    table: dict = field(default_factory=dict)  # the resolved [sweep] table, as recorded

    def expand(self) -> list[Trial]:
        if self.trials is None:
            names = list(self.keys)
            points = [dict(zip(names, combo)) for combo in itertools.product(*(self.keys[n] for n in names))]
        else:
            rng = random.Random(self.sweep_seed)
            points = [{name: draw(rng, name, dist) for name, dist in self.keys.items()} for _ in range(self.trials)]
        unique = {trial_key(point, 0): point for point in reversed(points)}  # the first of equal points
        points = [point for point in points if unique.get(trial_key(point, 0)) is point]
        return [Trial(point, seed) for point in points for seed in self.seeds]


def draw(rng: random.Random, name: str, dist) -> object:
    if isinstance(dist, list):
        return rng.choice(dist)
    (kind, args), = dist.items()
    if kind == "choice":
        return rng.choice(args)
    low, high = args
    if kind == "uniform":
        return rng.uniform(low, high)
    if kind == "int_uniform":
        return rng.randint(low, high)
    return math.exp(rng.uniform(math.log(low), math.log(high)))  # log_uniform


def parse_sweep_option(text: str) -> tuple[str, object]:
    """`--sweep key=v1,v2,...` -> (key, [v1, v2, ...]), each value read like a --set value (TOML, else text).
    `--sweep trials=20`, `metric=NAME`, `goal=max`, `sweep_seed=3` take one value."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or not raw.strip():
        raise ConfigError("--sweep", text, "expected key=v1,v2,...", "e.g. --sweep model.hidden=32,64,128")
    raw = raw.strip()
    try:
        values = tomllib.loads(f"v = [{raw}]")["v"]
    except tomllib.TOMLDecodeError:
        values = [_one(item.strip()) for item in raw.split(",")]
    if key in ("trials", "sweep_seed", "metric", "goal"):
        if len(values) != 1:
            raise ConfigError(f"--sweep {key}", raw, "takes one value")
        return key, values[0]
    return key, values


def _one(raw: str):
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def read_sweep_file(path: Path) -> tuple[dict, dict]:
    """(the file's config without [sweep], its [sweep] table or {})."""
    raw = config_mod.read_toml(Path(path))
    table = raw.pop("sweep", {})
    if not isinstance(table, dict):
        raise ConfigError("sweep", table, "expected a table", "[sweep] with swept keys, seeds, metric, trials")
    return raw, table


def build_spec(table: dict, options: list[str] = (), default_seed: int = 0, default_metric: str = "loss") -> SweepSpec:
    """The [sweep] table with the --sweep options applied (each adds or replaces a key), checked: one
    ConfigError line names the bad key."""
    table = dict(table)
    for text in options:
        key, values = parse_sweep_option(text)
        table[key] = values
    seeds = table.get("seeds", [default_seed])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if (not isinstance(seeds, list) or not seeds
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds)):
        raise ConfigError("sweep.seeds", seeds, "expected a list of seeds", "e.g. [0, 1, 2]")
    if len(set(seeds)) != len(seeds):
        raise ConfigError("sweep.seeds", seeds, "a seed is listed twice")
    metric = table.get("metric", default_metric)
    if not isinstance(metric, str) or not metric:
        raise ConfigError("sweep.metric", metric, "expected the name of an eval metric", "e.g. loss, error_rate")
    goal = table.get("goal", "max" if metric in HIGHER_IS_BETTER else "min")
    if goal not in ("min", "max"):
        raise ConfigError("sweep.goal", goal, "not a goal", "min, max")
    trials = table.get("trials")
    if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int) or trials < 1):
        raise ConfigError("sweep.trials", trials, "expected a number of random points", "an integer >= 1")
    sweep_seed = table.get("sweep_seed", 0)
    if isinstance(sweep_seed, bool) or not isinstance(sweep_seed, int):
        raise ConfigError("sweep.sweep_seed", sweep_seed, "expected an integer")
    keys = {k: v for k, v in table.items() if k not in RESERVED}
    if "seed" in keys:
        raise ConfigError("sweep.seed", keys["seed"], "seeds are swept by `seeds`", "seeds = [0, 1, 2]")
    for key, values in keys.items():
        _check_key(key, values, random_search=trials is not None)
    if not keys and len(seeds) < 2:
        raise ConfigError("sweep", table, "nothing to sweep", 'swept keys, e.g. "model.hidden" = [32, 64]')
    resolved = {**keys, "seeds": seeds, "metric": metric, "goal": goal}
    if trials is not None:
        resolved.update(trials=trials, sweep_seed=sweep_seed)
    return SweepSpec(keys, seeds, metric, goal, trials, sweep_seed, resolved)


def _check_key(key: str, values, random_search: bool) -> None:
    name = f"sweep.{key}" if "." in key else f"sweep.{key}"
    if isinstance(values, list):
        if not values:
            raise ConfigError(name, values, "an empty list sweeps nothing", "a list of values")
        return
    if not random_search or not isinstance(values, dict):
        allowed = ("a list, or one of {" + ", ".join(f"{d} = [...]" for d in DISTRIBUTIONS) + "}"
                   if random_search else "a list of values (distributions need `trials = N`)")
        raise ConfigError(name, values, "not a list of values" if not random_search else "not a distribution",
                          allowed)
    if len(values) != 1 or next(iter(values)) not in DISTRIBUTIONS:
        raise ConfigError(name, values, "not a distribution", ", ".join(DISTRIBUTIONS))
    (kind, args), = values.items()
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise ConfigError(name, values, "choice needs a list of values")
        return
    numbers = isinstance(args, list) and len(args) == 2 and all(
        isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)
    if not numbers or args[0] >= args[1]:
        raise ConfigError(name, values, f"{kind} needs [low, high] with low < high")
    if kind == "log_uniform" and args[0] <= 0:
        raise ConfigError(name, values, "log_uniform needs low > 0")
    if kind == "int_uniform" and not all(isinstance(a, int) for a in args):
        raise ConfigError(name, values, "int_uniform needs integers")


def check_trials(base: dict, sets: list[str], trials: list[Trial]) -> list:
    """Every trial's config resolves, or one ConfigError line naming the key and the point."""
    configs = []
    for trial in trials:
        try:
            configs.append(config_mod.resolve(base, list(sets) + trial.overrides()))
        except ConfigError as error:
            raise ConfigError(error.key, error.value, f"{error.problem} (at sweep point {describe_point(trial)})",
                              error.allowed) from None
    return configs


def describe_point(trial: Trial) -> str:
    return ", ".join([f"{k}={toml_value(v)}" for k, v in trial.point.items()] + [f"seed={trial.seed}"])
