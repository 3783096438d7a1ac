"""Studies: a claim of the lectures as a sweep plus checks on its results (`rnnlab reproduce`).

spec.py (the study file), checks.py (threshold, compare, argbest, trend, slope; the verdict), metrics.py (what the
checks read from a trial's events), runner.py (its sweep through the sweep driver, found again through
store.StudyDir; result.json), report.py (docs/RESULTS.md)."""
