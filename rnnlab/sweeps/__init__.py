"""Sweeps: a set of ordinary runs that differ in a few keys (docs/config.md, "Sweeps").

    spec.py      the [sweep] table and --sweep options -> trials (grid or random search)
    trial.py     run_trial: what `rnnlab run` does, for one trial, inside a worker process
    backends.py  the backend seam (submit trial jobs, get their messages) and the local process pool
    driver.py    the sweep record (through rnnlab.store), dispatching, Ctrl-C, resuming
    results.py   per-point metric mean/std over seeds, from the trials' own events; the plot and CSV
"""
