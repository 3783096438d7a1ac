"""A study's checks: what its sweep's results must show for the claim to count as reproduced.

The kinds, each evaluated once per seed (the seed's trials alone) and once on the mean over seeds (the
value shown):

    threshold  the points matching `where`, reduced over points (`over`: each, mean, min, max),
               against a bound: `op` (<, <=, >, >=) `value`            "elman error >= 0.4 for T >= 20"
    compare    two selections `a` and `b` (each the mean over its points), their ratio (a / b) or
               difference (a - b) against a bound                      "GRU's loss within 10% of LSTM's"
    argbest    where a swept `key`'s best value lies (the metric averaged over the other keys of
               `where`'s points): inside `within = [low, high]`        "ESN best at a radius in [0.9, 1.25]"
    trend      the metric against `key` is monotone (`direction`: increasing / decreasing), each step
               allowed to go against the trend by `slack` (a fraction of the step's start)
    slope      the least-squares slope of log(metric) against log(`key`) (the metric averaged over the
               other keys of `where`'s points) inside `within = [low, high]`   "RTRL's time grows as n^4"

Outcome: pass (every seed passes), fail (every seed fails: the seeds agree), inconclusive (seeds disagree,
or fewer than `min_seeds` seeds have a value at every point the check reads: too few finished trials).

`where` matches points: {key = value} (equal), {key = [v1, v2]} (one of), {key = {ge = 20, lt = 100}}
(ge, gt, le, lt, ne). Its keys must be swept keys.
"""

from __future__ import annotations

import math
import operator
import statistics
from dataclasses import dataclass, field

from ..errors import ConfigError
from ..sweeps.spec import HIGHER_IS_BETTER

KINDS = ("threshold", "compare", "argbest", "trend", "slope")
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
MATCH = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt, "ne": operator.ne}
SYMBOLS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<", "ne": "!="}
OVER = ("each", "mean", "min", "max")
COMMON = {"kind", "metric", "label", "min_seeds"}
KEYS = {"threshold": COMMON | {"where", "op", "value", "over"},
        "compare": COMMON | {"a", "b", "mode", "op", "value"},
        "argbest": COMMON | {"where", "key", "within", "goal"},
        "trend": COMMON | {"where", "key", "direction", "slack"},
        "slope": COMMON | {"where", "key", "within"}}


@dataclass
class Check:
    kind: str
    metric: str
    label: str
    where: dict = field(default_factory=dict)
    op: str = "<="
    value: float = 0.0
    over: str = "each"
    a: dict = field(default_factory=dict)
    b: dict = field(default_factory=dict)
    mode: str = "ratio"
    key: str = ""
    within: tuple = (0.0, 0.0)
    goal: str = "min"
    direction: str = "increasing"
    slack: float = 0.0
    min_seeds: int | None = None  # default: every seed of the sweep

    def expected(self) -> str:
        """The claim's side of the check, as the table shows it."""
        if self.kind == "threshold":
            return f"{self.over} {self.op} {self.value:g}"
        if self.kind == "compare":
            return f"{'a / b' if self.mode == 'ratio' else 'a - b'} {self.op} {self.value:g}"
        if self.kind == "argbest":
            return f"{self.goal} at {self.key} in [{self.within[0]:g}, {self.within[1]:g}]"
        if self.kind == "slope":
            return f"log-log slope over {self.key} in [{self.within[0]:g}, {self.within[1]:g}]"
        return f"{self.direction} in {self.key}" + (f" (slack {self.slack:g})" if self.slack else "")


@dataclass
class Observation:
    """One trial: its point, seed, and metric -> value (None: not finished, or the run lacks it)."""

    point: dict
    seed: int
    values: dict
    state: str = "finished"


@dataclass
class CheckResult:
    outcome: str  # pass, fail, inconclusive
    measured: float | None  # on the mean over the seeds that have every value
    per_seed: dict  # seed -> measured value (None: missing values)
    reason: str = ""


def parse(table: dict, name: str, swept: set, metric: str, goal) -> Check:
    kind = table.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{name}.kind", table.get("kind", "(missing)"), "not a check kind", ", ".join(KINDS))
    for key in table:
        if key not in KEYS[kind]:
            raise ConfigError(f"{name}.{key}", table[key], f"not a key of a {kind} check", ", ".join(sorted(KEYS[kind])))
    check = Check(kind, table.get("metric", metric), str(table.get("label", "")))
    if not isinstance(check.metric, str) or not check.metric:
        raise ConfigError(f"{name}.metric", check.metric, "expected a metric name")
    min_seeds = table.get("min_seeds")
    if min_seeds is not None and (isinstance(min_seeds, bool) or not isinstance(min_seeds, int) or min_seeds < 1):
        raise ConfigError(f"{name}.min_seeds", min_seeds, "expected an integer >= 1")
    check.min_seeds = min_seeds
    for part in ("a", "b") if kind == "compare" else ("where",):  # compare needs both; where is optional
        if part in table or kind == "compare":
            setattr(check, part, _where(table.get(part, "(missing)"), f"{name}.{part}", swept))
    if kind in ("threshold", "compare"):
        check.op = table.get("op", "(missing)")
        if check.op not in OPS:
            raise ConfigError(f"{name}.op", check.op, "not a comparison", ", ".join(OPS))
        check.value = _number(table.get("value", "(missing)"), f"{name}.value")
    if kind == "threshold":
        check.over = table.get("over", "each")
        if check.over not in OVER:
            raise ConfigError(f"{name}.over", check.over, "not a reduction over points", ", ".join(OVER))
    if kind == "compare":
        check.mode = table.get("mode", "ratio")
        if check.mode not in ("ratio", "difference"):
            raise ConfigError(f"{name}.mode", check.mode, "not a comparison mode", "ratio, difference")
    if kind in ("argbest", "trend", "slope"):
        check.key = table.get("key", "(missing)")
        if check.key not in swept:
            raise ConfigError(f"{name}.key", check.key, "not a swept key of the study", ", ".join(sorted(swept)))
    if kind in ("argbest", "slope"):
        within = table.get("within", "(missing)")
        if not (isinstance(within, list) and len(within) == 2):
            raise ConfigError(f"{name}.within", within, "expected [low, high]", "e.g. [0.9, 1.25]")
        check.within = (_number(within[0], f"{name}.within"), _number(within[1], f"{name}.within"))
        if check.within[0] > check.within[1]:
            raise ConfigError(f"{name}.within", within, "expected [low, high] with low <= high")
    if kind == "argbest":
        default = goal if goal in ("min", "max") else ("max" if check.metric.split("@")[0] in HIGHER_IS_BETTER else "min")
        check.goal = table.get("goal", default)
        if check.goal not in ("min", "max"):
            raise ConfigError(f"{name}.goal", check.goal, "not a goal", "min, max")
    if kind == "trend":
        check.direction = table.get("direction", "(missing)")
        if check.direction not in ("increasing", "decreasing"):
            raise ConfigError(f"{name}.direction", check.direction, "not a direction", "increasing, decreasing")
        check.slack = _number(table.get("slack", 0.0), f"{name}.slack")
        if check.slack < 0:
            raise ConfigError(f"{name}.slack", check.slack, "expected a fraction >= 0")
    check.label = check.label or default_label(check)
    return check


def _number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(name, value, "expected a number")
    return float(value)


def _where(table, name: str, swept: set) -> dict:
    if not isinstance(table, dict):
        raise ConfigError(name, table, "expected a table of swept key = condition", '{"task.length" = {ge = 20}}')
    for key, cond in table.items():
        if key not in swept:
            raise ConfigError(f"{name}.{key}", cond, "not a swept key of the study", ", ".join(sorted(swept)))
        if isinstance(cond, dict):
            for op, bound in cond.items():
                if op not in MATCH:
                    raise ConfigError(f"{name}.{key}.{op}", bound, "not a condition", ", ".join(MATCH))
    return dict(table)


def default_label(check: Check) -> str:
    def shown(where):
        return ", ".join(f"{k.rsplit('.', 1)[-1]} {_cond(v)}" for k, v in where.items()) or "every point"
    if check.kind == "compare":
        return f"{check.metric}: ({shown(check.a)}) vs ({shown(check.b)})"
    if check.kind in ("argbest", "trend", "slope"):
        return f"{check.metric} {check.kind} over {check.key}" + (f" ({shown(check.where)})" if check.where else "")
    return f"{check.metric} at {shown(check.where)}"


def _cond(cond) -> str:
    if isinstance(cond, dict):
        return " ".join(f"{SYMBOLS[op]}{bound}" for op, bound in cond.items())
    if isinstance(cond, list):
        return "in " + "/".join(map(str, cond))
    return f"={cond}"


def matches(point: dict, where: dict) -> bool:
    for key, cond in where.items():
        value = point.get(key)
        if isinstance(cond, dict):
            try:
                if not all(MATCH[op](value, bound) for op, bound in cond.items()):
                    return False
            except TypeError:  # a condition on numbers at a point whose value is text
                return False
        elif isinstance(cond, list):
            if value not in cond:
                return False
        elif value != cond:
            return False
    return True


def evaluate(check: Check, observations: list[Observation]) -> CheckResult:
    seeds = sorted({o.seed for o in observations})
    per_seed = {seed: _measure(check, [o for o in observations if o.seed == seed]) for seed in seeds}
    scored = {seed: v for seed, v in per_seed.items() if v is not None}
    mean = _measure(check, _seed_means(observations, check.metric, sorted(scored)))
    need = check.min_seeds if check.min_seeds is not None else len(seeds)
    if not scored or len(scored) < need:
        selected = bool(_selections(check, observations))
        return CheckResult("inconclusive", mean, per_seed,
                           f"{len(scored)} of {len(seeds)} seeds have a value at every point it reads (needs {need})"
                           if selected else "no sweep point matches it")
    passed = {seed: _passes(check, value) for seed, value in scored.items()}
    if all(passed.values()):
        return CheckResult("pass", mean, per_seed)
    if not any(passed.values()):
        return CheckResult("fail", mean, per_seed)
    return CheckResult("inconclusive", mean, per_seed, "seeds disagree: passes for seed(s) "
                       + ", ".join(str(s) for s, ok in passed.items() if ok) + ", fails for "
                       + ", ".join(str(s) for s, ok in passed.items() if not ok))


def _selections(check: Check, observations: list[Observation]) -> list:
    wheres = [check.a, check.b] if check.kind == "compare" else [check.where]
    return [o for o in observations if any(matches(o.point, w) for w in wheres)]


def _seed_means(observations: list[Observation], metric: str, seeds: list[int]) -> list[Observation]:
    """One observation per point: the metric's mean over `seeds` (the seeds complete for this check)."""
    groups: dict[str, tuple[dict, list]] = {}
    for o in observations:
        if o.seed in seeds:
            groups.setdefault(repr(sorted(o.point.items())), (o.point, []))[1].append(o.values.get(metric))
    return [Observation(point, -1, {metric: statistics.fmean(v) if v and None not in v else None})
            for point, v in groups.values()]


def _values(observations: list[Observation], where: dict, metric: str) -> list[tuple[dict, float]] | None:
    """(point, value) of the matching points; None when one lacks its value (or nothing matches)."""
    chosen = [(o.point, o.values.get(metric)) for o in observations if matches(o.point, where)]
    if not chosen or any(v is None for _, v in chosen):
        return None
    return chosen


def _measure(check: Check, observations: list[Observation]) -> float | None:
    """The check's measured value on one seed's observations (or on the seed means)."""
    if check.kind == "compare":
        a, b = (_values(observations, w, check.metric) for w in (check.a, check.b))
        if a is None or b is None:
            return None
        mean_a, mean_b = statistics.fmean(v for _, v in a), statistics.fmean(v for _, v in b)
        if check.mode == "difference":
            return mean_a - mean_b
        return mean_a / mean_b if mean_b != 0 else (math.inf if mean_a > 0 else 1.0 if mean_a == 0 else -math.inf)
    chosen = _values(observations, check.where, check.metric)
    if chosen is None:
        return None
    values = [v for _, v in chosen]
    if check.kind == "threshold":
        if check.over == "each":  # every point must pass: the worst one decides
            return min(values) if check.op in (">", ">=") else max(values)
        return {"mean": statistics.fmean, "min": min, "max": max}[check.over](values)
    by_key: dict = {}
    for point, value in chosen:
        by_key.setdefault(point.get(check.key), []).append(value)
    xs = sorted(by_key)
    ys = [statistics.fmean(by_key[x]) for x in xs]
    if check.kind == "argbest":
        pick = min if check.goal == "min" else max
        return float(xs[ys.index(pick(ys))])
    if check.kind == "slope":
        return log_log_slope(xs, ys)
    sign = 1 if check.direction == "increasing" else -1  # trend: the steps that go against it
    return float(sum(sign * (b - a) < -check.slack * abs(a) for a, b in zip(ys, ys[1:])))


def log_log_slope(xs: list, ys: list[float]) -> float | None:
    """k of y ~ c x^k: the least-squares line through (log x, log y); None without two positive points."""
    try:
        points = [(math.log(x), math.log(y)) for x, y in zip(xs, ys)]
    except (ValueError, TypeError):  # a value <= 0, or a key that is not a number: no power law to fit
        return None
    if len({u for u, _ in points}) < 2:
        return None
    mean_u, mean_v = statistics.fmean(u for u, _ in points), statistics.fmean(v for _, v in points)
    spread = sum((u - mean_u) ** 2 for u, _ in points)
    return sum((u - mean_u) * (v - mean_v) for u, v in points) / spread


def _passes(check: Check, measured: float) -> bool:
    if check.kind in ("threshold", "compare"):
        return OPS[check.op](measured, check.value)
    if check.kind in ("argbest", "slope"):
        return check.within[0] <= measured <= check.within[1]
    return measured == 0


def verdict(outcomes: list[str]) -> str:
    """reproduced: every check passes; not reproduced: a check fails (its seeds agree); else inconclusive."""
    if outcomes and all(o == "pass" for o in outcomes):
        return "reproduced"
    if "fail" in outcomes:
        return "not reproduced"
    return "inconclusive"
