"""threads = 0 (rnnlab/train/threads.py): one thread, or the idle cores for a big model; never more threads
than cores nothing else uses; a sweep worker's share and the user's OMP_NUM_THREADS kept."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from rnnlab.train import threads
from rnnlab.train.threads import PARAMS_FOR_MORE_THREADS, choose_threads, usable_cores

from tiny import overrides

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def torch_threads(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "_assigned", None)
    yield
    torch.set_num_threads(before)


def model_of(params: int) -> nn.Module:
    return nn.Linear(params, 1, bias=False)  # params weights


@pytest.mark.parametrize("samples, cores, usable", [
    (["0.00 0.01 0.05 1/180 4242"] * 8, 2, 2),  # only this process runs
    (["3.00 3.00 3.00 1/180 4242"] * 8, 2, 2),  # a lagging load average of work that has ended: ignored
    (["0.30 0.40 0.50 2/180 4242"] * 8, 2, 1),  # one other task runnable at every reading
    (["0.30 0.40 0.50 2/180 4242"] * 4 + ["0.3 0.4 0.5 1/180 4242"] * 4, 2, 1),  # a neighbour half the time
    (["0.30 0.40 0.50 2/180 4242"] * 2 + ["0.3 0.4 0.5 1/180 4242"] * 6, 2, 2),  # a blip
    (["3.70 2.00 1.00 5/180 4242"] * 8, 2, 1),  # more than the cores: still one
    (["5.60 5.00 5.00 7/180 4242"] * 8, 16, 10),
    (["not a loadavg"], 4, None),  # unreadable: falls back to os.getloadavg
])
def test_usable_cores_are_the_cores_nothing_else_is_using(samples, cores, usable):
    got = usable_cores(samples, cores)
    assert 1 <= got <= cores
    if usable is not None:
        assert got == usable


def test_a_spinning_neighbour_takes_a_core(tmp_path):
    """The real count: a process spinning beside this one is seen (whatever else the machine runs only
    lowers the figure further)."""
    import multiprocessing
    import os
    import time

    cores = len(os.sched_getaffinity(0))
    if cores < 2:
        pytest.skip("one core: nothing to take")
    stop = multiprocessing.Event()
    neighbour = multiprocessing.Process(target=spin, args=(stop,), daemon=True)
    neighbour.start()
    try:
        time.sleep(0.3)
        assert usable_cores() <= cores - 1
    finally:
        stop.set()
        neighbour.join()


def spin(stop) -> None:
    while not stop.is_set():
        pass


def test_a_configured_count_is_kept():
    assert choose_threads(3, model_of(10), CPU) == 3


def test_a_small_model_gets_one_thread_a_big_one_the_idle_cores(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 7)
    assert choose_threads(0, model_of(PARAMS_FOR_MORE_THREADS - 1), CPU) == 1
    assert choose_threads(0, model_of(PARAMS_FOR_MORE_THREADS), CPU) == 7
    assert choose_threads(0, model_of(PARAMS_FOR_MORE_THREADS), torch.device("meta")) == 1  # not a CPU run


def test_a_sweep_workers_share_and_the_users_omp_setting_are_kept(monkeypatch):
    big = model_of(PARAMS_FOR_MORE_THREADS)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(2)  # as torch would have read a "2"
    assert choose_threads(0, big, CPU) == 2
    monkeypatch.delenv("OMP_NUM_THREADS")
    threads.assign(1)
    assert torch.get_num_threads() == 1 and choose_threads(0, big, CPU) == 1
    assert choose_threads(2, big, CPU) == 2  # a trial's own setting still wins


def test_a_run_reports_the_threads_it_chose(tmp_path):
    """The real path: `rnnlab run` of a small model with threads = 0 trains on one thread and says so."""
    from typer.testing import CliRunner

    from rnnlab.cli import app

    torch.set_num_threads(2)
    sets = [arg for value in overrides(tmp_path, threads=0, train__steps=2) for arg in ("--set", value)]
    result = CliRunner().invoke(app, ["run", *sets, "--json", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    start = next(json.loads(line) for line in result.output.splitlines() if '"kind": "start"' in line)
    assert start["threads"] == 1 == torch.get_num_threads()


def test_a_sweep_trial_with_threads_0_keeps_its_workers_share(tmp_path):
    """One worker on every core: each trial (threads = 0) trains on the worker's share, the small model
    too (alone it would take one thread), and the big one whatever the load it sees at its start."""
    import os

    from typer.testing import CliRunner

    from rnnlab import store
    from rnnlab.cli import app
    from rnnlab.sweeps.backends import cluster_cpus

    from tiny import experiment_tables

    path = tmp_path / "swp.toml"
    path.write_text(f'name = "swp"\ndevice = "cpu"\nthreads = 0\n{experiment_tables(tmp_path, 2, 2)}'
                    '[sweep]\n"model.hidden" = [700, 8]\n', encoding="utf-8")  # 700: over the bar
    result = CliRunner().invoke(app, ["sweep", str(path), "--workers", "1", "--quiet",
                                      "--runs-dir", str(tmp_path / "runs")], env={**os.environ})
    assert result.exit_code == 0, result.output
    share = cluster_cpus("local", None)
    for run in store.list_runs(tmp_path / "runs"):
        start = next(e for e in store.RunDir(run.path).read_events() if e["kind"] == "start")
        assert start["threads"] == share, (run.id, start["threads"])
