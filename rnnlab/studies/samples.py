"""A study's samples (`sample = N` in [study]): N characters generated from the best checkpoint of each
point's first finished trial (its lowest seed), saved in result.json beside the numbers. A metric says how
well a language model predicts; only a sample shows what it learnt (indentation, keywords, brackets).

Temperature 1 (the model's own distribution: the one its bits/char score) and generator seed 0, so a study
evaluated again samples the same text; the prompt is sampling.default_prompt (a new line)."""

from __future__ import annotations

from .. import store
from ..errors import RnnlabError
from ..sweeps import results

TEMPERATURE = 1.0
SEED = 0
MAX_CHARS = 2000  # a result.json stays small


def collect(sweep: store.SweepDir, record: dict, chars: int) -> list[dict]:
    """One sample per point: {point, seed, run, step, temperature, prompt, text}, or {..., error} for a
    trial whose checkpoint cannot be sampled (not a language model, a damaged file)."""
    from .. import sampling

    first: dict[str, results.TrialResult] = {}
    for trial in results.trial_results(sweep, record):
        key = repr(sorted(trial.point.items()))
        if trial.state == "finished" and trial.run is not None and (
                key not in first or trial.seed < first[key].seed):
            first[key] = trial
    out = []
    for trial in first.values():
        entry = {"point": trial.point, "seed": trial.seed, "run": trial.run, "temperature": TEMPERATURE}
        try:
            loaded = sampling.load_language_model(store.RunDir(sweep.runs_dir / trial.run), "best")
            prompt = sampling.default_prompt(loaded.vocab)
            text = "".join(sampling.generate(loaded.model, loaded.vocab, prompt, chars, temperature=TEMPERATURE,
                                             seed=SEED))
        except RnnlabError as error:
            out.append({**entry, "error": str(error)})
            continue
        out.append({**entry, "step": loaded.step, "prompt": prompt, "text": text})
    return out

