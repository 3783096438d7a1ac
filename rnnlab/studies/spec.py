"""A study file (experiments/studies/NAME.toml): one claim of the lectures, the sweep that tests it, and
the checks that decide it. See docs/studies.md for the format; every bad key is one ConfigError line.

    [study]   claim, watch, anchor (and anchor_value, number, base: an experiment file to start from,
              sample: characters of text to generate from each point's first seed, samples.py)
    [model] [task] [train] [probes] ...   the config (merged over `base`, key by key)
    [sweep]   the sweep, as in any experiment file
    [quick] [full]   the two sizes: `set` (--set strings) and `sweep` (keys that replace the sweep's)
    [[check]] what the results must show (rnnlab/studies/checks.py: threshold, compare, argbest, trend, slope)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import config as config_mod
from ..errors import ConfigError
from ..sweeps import spec as sweep_spec
from . import checks as checks_mod
from .metrics import check_metric_name, difference
from .samples import MAX_CHARS as MAX_SAMPLE

SIZES = ("quick", "full")
STUDY_KEYS = {"claim": str, "watch": str, "anchor": str, "anchor_value": str, "number": int, "base": str,
              "sample": int}
REQUIRED = ("claim", "watch", "anchor")
SIZE_KEYS = ("set", "sweep")


def studies_dir() -> Path:
    """experiments/studies/ of this checkout (the CLI's default), whatever the working directory."""
    return Path(__file__).resolve().parent.parent.parent / "experiments" / "studies"


@dataclass
class Study:
    name: str
    path: Path
    claim: str
    watch: str
    anchor: str
    anchor_value: str
    number: int | None
    config: dict  # the experiment's raw config (base merged with the file's own tables), no [sweep]
    sweep: dict  # the [sweep] table
    sizes: dict  # "quick"/"full" -> {"set": [...], "sweep": {...}}
    checks: list = field(default_factory=list)  # checks_mod.Check
    sample: int = 0  # characters sampled from each point's first seed into the result (0: none; samples.py)

    def sweep_table(self, size: str) -> dict:
        return {**self.sweep, **self.sizes[size]["sweep"]}

    def sets(self, size: str) -> list[str]:
        return list(self.sizes[size]["set"])

    def experiment(self, size: str) -> dict:
        """The experiment file a sweep of this size runs: the config with its [sweep] table."""
        return {**self.config, "sweep": self.sweep_table(size)}

    def command(self, size: str) -> str:
        return f"rnnlab reproduce {self.name} --{size}"


def load(path: Path) -> Study:
    path = Path(path)
    raw = config_mod.read_toml(path)
    name = path.stem
    head = raw.pop("study", None)
    if not isinstance(head, dict):
        raise ConfigError("study", head if head is not None else "(missing)", f"{path.name} has no [study] table",
                          "[study] with claim, watch, anchor")
    for key, value in head.items():
        if key not in STUDY_KEYS:
            raise ConfigError(f"study.{key}", value, "unknown key", ", ".join(STUDY_KEYS))
        if not isinstance(value, STUDY_KEYS[key]) or isinstance(value, bool):
            raise ConfigError(f"study.{key}", value, f"expected {STUDY_KEYS[key].__name__}")
    if "sample" in head and not 1 <= head["sample"] <= MAX_SAMPLE:
        raise ConfigError("study.sample", head["sample"], "characters to sample from each point's first seed",
                          f"an integer in 1..{MAX_SAMPLE}")
    for key in REQUIRED:
        if not str(head.get(key, "")).strip():
            raise ConfigError(f"study.{key}", head.get(key, "(missing)"), "required, a sentence or paragraph")
    sweep = raw.pop("sweep", None)
    if not isinstance(sweep, dict) or not sweep:
        raise ConfigError("sweep", sweep if sweep is not None else "(missing)", "a study needs a [sweep] table")
    sizes = {size: _size(raw.pop(size, None), size) for size in SIZES}
    check_tables = raw.pop("check", None)
    config = raw
    if "base" in head:
        base_path = (path.parent / head["base"]).resolve()
        if not base_path.is_file():
            raise ConfigError("study.base", head["base"], f"no such experiment file (from {path.parent})")
        base = config_mod.read_toml(base_path)
        base.pop("sweep", None)  # the study's own sweep replaces the base file's
        config = merge(base, raw)
    keys = set()
    for size in SIZES:  # every point of both sizes resolves: a study that cannot run fails here
        table = {**sweep, **sizes[size]["sweep"]}
        spec = sweep_spec.build_spec(table, default_metric=str(sweep.get("metric", "loss")))
        sweep_spec.check_trials(config, sizes[size]["set"], spec.expand())
        keys |= set(spec.keys)
    metric = sweep.get("metric", "loss")
    if isinstance(metric, str) and difference(metric):  # sweeps/results reads one eval key per trial
        raise ConfigError("sweep.metric", metric, "a sweep's metric is one eval key",
                          "e.g. loss; a difference A - B goes in a check's metric")
    checks = _checks(check_tables, keys, metric, sweep.get("goal"))
    return Study(name, path, head["claim"].strip(), head["watch"].strip(), head["anchor"].strip(),
                 str(head.get("anchor_value", "")).strip(), head.get("number"), config, sweep, sizes, checks,
                 head.get("sample", 0))


def _size(table, size: str) -> dict:
    if not isinstance(table, dict):
        raise ConfigError(size, table if table is not None else "(missing)", f"a study needs a [{size}] table",
                          'set = ["train.steps=200"] and/or sweep = {seeds = [0, 1]}')
    for key in table:
        if key not in SIZE_KEYS:
            raise ConfigError(f"{size}.{key}", table[key], "unknown key", ", ".join(SIZE_KEYS))
    sets, swept = table.get("set", []), table.get("sweep", {})
    if not isinstance(sets, list) or not all(isinstance(s, str) and "=" in s for s in sets):
        raise ConfigError(f"{size}.set", sets, "expected a list of --set strings", '["train.steps=200"]')
    if not isinstance(swept, dict):
        raise ConfigError(f"{size}.sweep", swept, "expected a table of sweep keys", "{seeds = [0, 1]}")
    return {"set": list(sets), "sweep": dict(swept)}


def _checks(tables, keys: set, metric: str, goal) -> list:
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise ConfigError("check", tables if tables is not None else "(missing)",
                          "a study needs at least one [[check]] table", ", ".join(checks_mod.KINDS))
    out = []
    for index, table in enumerate(tables):
        check = checks_mod.parse(table, f"check[{index}]", keys, metric, goal)
        check_metric_name(check.metric, f"check[{index}].metric")
        out.append(check)
    return out


def merge(base: dict, over: dict) -> dict:
    """`over`'s keys replace `base`'s, section by section (a study changes a few keys of a preset)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key].update(value)
        else:
            out[key] = value
    return out


def discover(root: Path | None = None) -> list[Path]:
    root = Path(root) if root is not None else studies_dir()
    return sorted(root.glob("*.toml")) if root.is_dir() else []


def load_all(root: Path | None = None) -> list[Study]:
    """Every study, by claim number (then name)."""
    studies = [load(path) for path in discover(root)]
    return sorted(studies, key=lambda s: (s.number if s.number is not None else 99, s.name))


def find(name: str, root: Path | None = None) -> Study:
    as_path = Path(name)
    if as_path.suffix == ".toml" and as_path.is_file():
        return load(as_path)
    paths = {p.stem: p for p in discover(root)}
    if name not in paths:
        raise ConfigError("study", name, "no such study", ", ".join(paths) or f"none in {root or studies_dir()}")
    return load(paths[name])
