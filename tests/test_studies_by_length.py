"""Studies that read metrics by length (claims 7 and 10): checks on a drop between lengths ("exact@3 -
exact@12", the difference metric itself: test_studies_difference_samples.py), and every NAME@N a shipped
study's check reads being a length its trials actually score."""

from __future__ import annotations

import pytest

from rnnlab import config as config_mod
from rnnlab.studies import checks, spec
from rnnlab.studies.checks import Observation
from rnnlab.studies.metrics import value
from rnnlab.sweeps import spec as sweep_spec


def eval_event(step: int, exact: float, by_length: dict) -> dict:
    return {"kind": "eval", "step": step, "exact": exact,
            "by_length": {str(n): {"exact": e, "bleu": 100 * e} for n, e in by_length.items()}}


def claim7_observations(drops: dict) -> list[Observation]:
    """{attention: [(exact@3, exact@12) per seed]} -> observations whose drop metric is read from events."""
    name = "exact@3 - exact@12"
    out = []
    for attention, per_seed in drops.items():
        for seed, (short, long) in enumerate(per_seed):
            events = [eval_event(600, (short + long) / 2, {3: short, 12: long})]
            out.append(Observation({"model.attention": attention}, seed, {name: value(events, name)}))
    return out


def drop_check(**table):
    return checks.parse({"metric": "exact@3 - exact@12", **table}, "check[0]", {"model.attention"}, "exact", "max")


def test_a_compare_of_drops_pairs_seeds_and_decides_degrades_less():
    less = drop_check(kind="compare", a={"model.attention": "bahdanau"}, b={"model.attention": "none"},
                      mode="difference", op="<", value=0.0)
    obs = claim7_observations({"bahdanau": [(1.0, 0.98), (1.0, 0.9)], "none": [(0.95, 0.05), (0.9, 0.3)]})
    result = checks.evaluate(less, obs)
    assert result.outcome == "pass"
    assert result.per_seed == pytest.approx({0: 0.02 - 0.90, 1: 0.10 - 0.60})
    assert result.measured == pytest.approx(0.06 - 0.75)  # on the seed means of each point's drop
    # attention degrading more than the fixed context for one seed: the seeds disagree
    mixed = claim7_observations({"bahdanau": [(1.0, 0.98), (1.0, 0.2)], "none": [(0.95, 0.05), (0.9, 0.6)]})
    assert checks.evaluate(less, mixed).outcome == "inconclusive"
    worse = claim7_observations({"bahdanau": [(1.0, 0.5), (1.0, 0.4)], "none": [(0.95, 0.9), (0.9, 0.9)]})
    assert checks.evaluate(less, worse).outcome == "fail"
    holds = drop_check(kind="threshold", where={"model.attention": "bahdanau"}, op="<=", value=0.1)
    assert checks.evaluate(holds, obs).outcome == "pass" and checks.evaluate(holds, worse).outcome == "fail"


def test_a_trial_missing_a_length_leaves_the_check_inconclusive():
    obs = claim7_observations({"bahdanau": [(1.0, 1.0), (1.0, 1.0)], "none": [(0.9, 0.1), (0.9, 0.1)]})
    obs[1] = Observation(obs[1].point, obs[1].seed, {"exact@3 - exact@12": value([eval_event(600, 1.0, {3: 1.0})],
                                                                               "exact@3 - exact@12")})
    result = checks.evaluate(drop_check(kind="threshold", where={"model.attention": "bahdanau"}, op="<=",
                                        value=0.1), obs)
    assert result.outcome == "inconclusive" and result.per_seed[1] is None


def read_lengths(metric: str) -> set[int]:
    return {int(part.partition("@")[2]) for part in metric.split(" - ") if "@" in part}


def unscored(study) -> list[tuple]:
    """(size, point, check label) wherever a check reads NAME@N at a point whose config does not score N."""
    out = []
    for size in spec.SIZES:
        table = study.sweep_table(size)
        points = {t.key: t for t in sweep_spec.build_spec(table, default_metric="loss").expand() if
                  t.seed == table.get("seeds", [0])[0]}.values()  # a seed never changes what is scored
        for trial in points:
            wanted = [c for c in study.checks if read_lengths(c.metric) and any(
                checks.matches(trial.point, w) for w in ([c.a, c.b] if c.kind == "compare" else [c.where]))]
            if not wanted:
                continue
            cfg = config_mod.resolve(study.config, study.sets(size) + trial.overrides())
            scored = set(getattr(cfg.task, "eval_lengths", None) or [])
            out += [(size, trial.point, c.label) for c in wanted if not read_lengths(c.metric) <= scored]
    return out


@pytest.mark.parametrize("study", spec.load_all(), ids=lambda s: s.name)
def test_every_length_a_shipped_check_reads_is_one_its_trials_score(study):
    """A check on error_rate@N whose trials never score N would be inconclusive forever."""
    assert unscored(study) == []


def test_a_check_on_an_unscored_length_is_found(tmp_path):
    text = (spec.studies_dir() / "attention-length.toml").read_text(encoding="utf-8")
    text = text.replace('base = "../', f'base = "{spec.studies_dir().parent}/')
    text = text.replace('"task.eval_lengths=[3, 4, 5, 6, 7, 8, 9, 10, 11, 12]"', '"task.eval_lengths=[3, 6, 9]"')
    path = tmp_path / "attention-length.toml"
    path.write_text(text, encoding="utf-8")
    missing = unscored(spec.load(path))
    assert missing and {size for size, _, _ in missing} == {"full"}  # quick still scores 12
    assert {label for _, _, label in missing} == {c.label for c in spec.load(path).checks}
