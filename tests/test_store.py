"""Contract 2: the run directory -- atomic writes, ids, crash inference, finding, listing (events: test_events.py)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rnnlab import store
from rnnlab.errors import RnnlabError, RunNotFound

T0 = 1_700_000_000.0  # a fixed `now` for run ids
ID_PATTERN = re.compile(r"\d{8}-\d{6}-[a-z0-9]+(-[a-z0-9]+)*-[0-9a-f]{4}")


def stamp(now: float) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(now))


def make_run(runs: Path, name: str = "exp", now: float = T0, **status) -> store.RunDir:
    run = store.create_run(runs, name, now=now)
    run.write_status({"name": name, "state": "finished", "step": 10, "total_steps": 10, **status})
    return run


# -- atomic writes ----------------------------------------------------------------------------
def test_atomic_write_replaces_content_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "status.json"
    store.atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    store.atomic_write(target, b"newer")
    assert target.read_bytes() == b"newer"
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_atomic_write_keeps_the_old_file_when_the_rename_fails(tmp_path, monkeypatch):
    target = tmp_path / "status.json"
    target.write_bytes(b'{"state": "running"}')

    def broken_replace(src, dst):
        assert Path(src).read_bytes() == b'{"state": "finished"}'  # the new content was complete
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        store.atomic_write(target, b'{"state": "finished"}')
    assert target.read_bytes() == b'{"state": "running"}'
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "last.pt"
    target.write_bytes(b"old weights")
    with pytest.raises(TypeError):
        store.atomic_write(target, "not bytes")  # fails inside the write
    def broken_fsync(fd):
        raise OSError("fsync failed")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="fsync failed"):
        store.atomic_write(target, b"new weights")
    assert target.read_bytes() == b"old weights"
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_atomic_write_failure_without_an_old_file_leaves_nothing(tmp_path, monkeypatch):
    def broken_replace(src, dst):
        raise OSError("no")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        store.atomic_write(tmp_path / "config.toml", b"x")
    assert list(tmp_path.iterdir()) == []


def test_status_round_trips_and_updates_merge(tmp_path):
    run = store.create_run(tmp_path, "s")
    run.write_status({"state": "running", "step": 0, "name": "s"})
    assert run.update_status(step=5, best_val=1.5) == {"state": "running", "step": 5, "name": "s", "best_val": 1.5}
    assert run.read_status_raw() == {"state": "running", "step": 5, "name": "s", "best_val": 1.5}
    assert sorted(p.name for p in run.path.iterdir()) == ["checkpoints", "status.json"]


# -- run ids ------------------------------------------------------------------------------------
CHILD = r"""
import os, random, secrets, sys, time
from pathlib import Path
from rnnlab import store

runs, sync, index = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
secrets.token_hex = lambda n: "%04x" % random.randrange(16)  # a tiny id space: collisions are likely
(sync / f"ready-{index}").touch()
deadline = time.time() + 60
while not (sync / "go").exists() and time.time() < deadline:
    time.sleep(0.001)
run = store.create_run(runs, "same name", now=float(sys.argv[4]))
print(run.id)
"""


def test_concurrent_create_run_gives_distinct_directories(tmp_path):
    runs, sync = tmp_path / "runs", tmp_path / "sync"
    sync.mkdir()
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(runs), str(sync), str(i), str(T0)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(8)]
    try:
        deadline = time.time() + 60
        while len(list(sync.glob("ready-*"))) < 8 and time.time() < deadline:
            time.sleep(0.005)
        (sync / "go").touch()  # release all eight at once
        outputs = [child.communicate(timeout=60) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    assert [child.returncode for child in children] == [0] * 8, [err for _, err in outputs]
    ids = [out.strip() for out, _ in outputs]
    assert len(set(ids)) == 8
    assert sorted(ids) == sorted(p.name for p in runs.iterdir())
    assert all(i.startswith(f"{stamp(T0)}-same-name-") for i in ids)


def test_create_run_retries_when_an_id_is_taken(tmp_path, monkeypatch):
    draws = iter(["aaaa", "aaaa", "aaaa", "bbbb"])
    monkeypatch.setattr(store.runs.secrets, "token_hex", lambda n: next(draws))
    first = store.create_run(tmp_path, "x", now=T0)
    second = store.create_run(tmp_path, "x", now=T0)
    assert first.id.endswith("-aaaa") and second.id.endswith("-bbbb")
    assert (first.path / "checkpoints").is_dir() and (second.path / "checkpoints").is_dir()


def test_create_run_gives_up_rather_than_sharing(tmp_path, monkeypatch):
    monkeypatch.setattr(store.runs.secrets, "token_hex", lambda n: "aaaa")
    store.create_run(tmp_path, "x", now=T0)
    with pytest.raises(RuntimeError, match="unique run directory"):
        store.create_run(tmp_path, "x", now=T0)
    assert len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize("name, slug", [
    ("../../etc x/y", "etc-x-y"),
    ("..", "run"),
    ("/", "run"),
    ("", "run"),
    ("LSTM CharLM", "lstm-charlm"),
    ("Ünïcødé név", "n-c-d-n-v"),
    ("a" * 200, "a" * 40),
    ('CON:*?<>|\\"\x00\n', "con"),
    ("--lead--and--trail--", "lead-and-trail"),
])
def test_run_ids_are_safe(tmp_path, name, slug):
    runs = tmp_path / "runs"
    run = store.create_run(runs, name, now=T0)
    assert re.fullmatch(r"[a-z0-9-]+", run.id)
    assert ID_PATTERN.fullmatch(run.id), run.id
    assert run.id == f"{stamp(T0)}-{slug}-{run.id[-4:]}"
    assert run.path.parent == runs
    assert [p.name for p in runs.iterdir()] == [run.id]
    assert list(tmp_path.iterdir()) == [runs]


# -- crashed inference -------------------------------------------------------------------------
def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def running_run(tmp_path, **fields) -> store.RunDir:
    run = store.create_run(tmp_path, "live")
    pid = os.getpid()
    run.write_status({"state": "running", "host": socket.gethostname(), "pid": pid,
                      "pid_start": store.process_start_time(pid), "step": 3, **fields})
    return run


def test_running_with_this_process_reads_as_running(tmp_path):
    run = running_run(tmp_path)
    assert run.read_status()["state"] == "running"
    assert "error" not in run.read_status()
    assert run.is_live()


def test_running_with_an_exited_pid_reads_as_crashed(tmp_path):
    run = running_run(tmp_path, pid=dead_pid(), pid_start=None)
    status = run.read_status()
    assert status["state"] == "crashed"
    assert status["error"]
    assert not run.is_live()
    assert run.read_status_raw()["state"] == "running"  # inferred by the reader, not written


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process start times need /proc")
def test_running_with_a_recycled_pid_reads_as_crashed(tmp_path):
    assert store.process_start_time(os.getpid()) is not None
    run = running_run(tmp_path, pid_start="1")  # our pid, but not the process that started the run
    assert run.read_status()["state"] == "crashed"


def test_running_on_another_host_stays_running(tmp_path):
    run = running_run(tmp_path, host=socket.gethostname() + "-elsewhere.invalid", pid=dead_pid())
    assert run.read_status()["state"] == "running"


@pytest.mark.parametrize("pid", [None, "1234", 0, -1, True])
def test_running_with_a_bad_pid_reads_as_crashed(tmp_path, pid):
    run = running_run(tmp_path, pid=pid, pid_start=None)
    assert run.read_status()["state"] == "crashed"


def test_ended_states_are_never_rewritten_as_crashed(tmp_path):
    for state in ("finished", "stopped", "diverged", "failed"):
        run = running_run(tmp_path, state=state, pid=dead_pid())
        assert run.read_status()["state"] == state


def test_a_kept_error_message_is_not_overwritten(tmp_path):
    run = running_run(tmp_path, pid=dead_pid(), error="CUDA out of memory")
    assert run.read_status()["error"] == "CUDA out of memory"


# -- finding runs ----------------------------------------------------------------------------
@pytest.fixture
def runs(tmp_path):
    runs = tmp_path / "runs"
    make_run(runs, "alpha", T0)
    make_run(runs, "alpha", T0)  # same second, same name: only the suffix differs
    make_run(runs, "beta", T0 + 3600)
    return runs


def test_find_run_by_full_id_prefix_and_path(runs, tmp_path, monkeypatch):
    beta = next(p for p in runs.iterdir() if "-beta-" in p.name)
    assert store.find_run(runs, beta.name).path == beta
    assert store.find_run(runs, stamp(T0 + 3600)).path == beta
    assert store.find_run(runs, beta.name[:-2]).path == beta
    assert store.find_run(runs, str(beta)).path == beta  # absolute path
    monkeypatch.chdir(tmp_path)
    assert store.find_run(Path("elsewhere"), f"./runs/{beta.name}").path.resolve() == beta.resolve()
    assert store.find_run(Path("elsewhere"), f"runs/{beta.name}").path.resolve() == beta.resolve()
    alpha = sorted(p for p in runs.iterdir() if "-alpha-" in p.name)[0]
    assert store.find_run(runs, alpha.name).id == alpha.name  # a full id is never ambiguous


def test_find_run_by_path_outside_the_runs_dir(tmp_path):
    other = make_run(tmp_path / "copied", "gamma")
    assert store.find_run(tmp_path / "runs", str(other.path)).path == other.path


def test_ambiguous_prefix_raises_a_helpful_run_not_found(runs):
    alphas = sorted(p.name for p in runs.iterdir() if "-alpha-" in p.name)
    with pytest.raises(RunNotFound) as info:
        store.find_run(runs, stamp(T0))
    message = str(info.value)
    assert "matches 2 runs" in message and "give more of the id" in message
    assert all(name in message for name in alphas)
    assert isinstance(info.value, RnnlabError) and info.value.exit_code == 2


@pytest.mark.parametrize("ref", ["zzz", "", "2099", "not/a/run"])
def test_no_match_raises_run_not_found_naming_ref_and_dir(runs, tmp_path, monkeypatch, ref):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RunNotFound) as info:
        store.find_run(runs, ref)
    assert repr(ref) in str(info.value) and str(runs) in str(info.value)


def test_a_directory_that_is_not_a_run_is_not_found(runs):
    bare = store.create_run(runs, "bare", now=T0 + 7200)  # no status.json or config.toml yet
    with pytest.raises(RunNotFound):
        store.find_run(runs, bare.id)
    assert bare.id not in [s.id for s in store.list_runs(runs)]


# -- listing runs -------------------------------------------------------------------------------
def test_list_runs_newest_first(tmp_path):
    runs = tmp_path / "runs"
    for offset in (60, -86400, 3600, 0):  # created out of order
        make_run(runs, f"at{int(offset)}", T0 + offset, arch="gru", task="charlm")
    rows = store.list_runs(runs)
    assert [r.name for r in rows] == ["at3600", "at60", "at0", "at-86400"]
    assert all(r.state == "finished" and r.step == 10 and r.arch == "gru" and r.problem is None for r in rows)


def test_list_runs_of_a_missing_dir_is_empty(tmp_path):
    assert store.list_runs(tmp_path / "none") == []


@pytest.mark.parametrize("content", [b"{", b"", b"[]", b"null", b'"running"', b"\xff\xfe{}",
                                     b'{"state": "finished", "step": "many"}',
                                     b'{"state": "finished", "started": "noon", "ended": 5}'],
                         ids=["truncated", "empty", "list", "null", "string", "not-utf8", "bad-step",
                              "bad-times"])
def test_corrupt_status_is_listed_as_corrupt(tmp_path, content):
    runs = tmp_path / "runs"
    good = make_run(runs, "good", T0)
    bad = make_run(runs, "bad", T0 + 60)
    bad.status_path.write_bytes(content)
    rows = store.list_runs(runs)
    assert [r.id for r in rows] == [bad.id, good.id]
    assert rows[0].state == "corrupt" and rows[0].problem
    assert rows[1].state == "finished" and rows[1].problem is None
    assert not bad.is_live()


def test_list_runs_ignores_non_runs_and_infers_crashed(tmp_path):
    runs = tmp_path / "runs"
    live = make_run(runs, "live", T0, state="running", host=socket.gethostname(), pid=dead_pid())
    config_only = store.create_run(runs, "config-only", now=T0 + 1)
    config_only.config_path.write_text('name = "config-only"\n')  # a run whose status is not written yet
    (runs / ".hidden").mkdir()
    (runs / ".hidden" / store.STATUS).write_text("{}")
    (runs / "stray.txt").write_text("not a run")
    store.create_run(runs, "empty", now=T0 + 2)  # neither status nor config
    rows = {r.id: r for r in store.list_runs(runs)}
    assert set(rows) == {live.id, config_only.id}
    assert rows[live.id].state == "crashed"


def test_a_non_numeric_time_flags_the_run_instead_of_breaking_the_listing(tmp_path):
    good = store.create_run(tmp_path, "good")
    good.write_status({"state": "finished", "started": 5.0})
    bad = store.create_run(tmp_path, "bad")
    bad.write_status({"state": "finished", "started": "noon", "elapsed": 3.0})
    rows = {row.id: row for row in store.list_runs(tmp_path)}
    assert rows[good.id].state == "finished"
    assert rows[bad.id].state == "corrupt" and "noon" in rows[bad.id].problem


def test_a_cached_listing_reads_only_the_runs_that_changed(tmp_path, monkeypatch):
    """The runs browser lists every 2 s: with a cache, an unchanged run's status.json is not read again;
    a changed, tagged, new or deleted run shows as it is now; a running run is always read."""
    from rnnlab.store import runs as runs_module

    runs_dir = tmp_path / "runs"
    made = []
    for i, state in enumerate(("finished", "stopped", "running")):
        run = store.create_run(runs_dir, f"r{i}", now=1_795_000_000.0 + i)
        run.write_status({"id": run.id, "state": state, "step": 1, "total_steps": 9, "started": 1e9 + i,
                          "host": "elsewhere", "pid": 1})  # running on another host: stays running
        made.append(run)
    read = []
    real = runs_module.summarize
    monkeypatch.setattr(runs_module, "summarize", lambda path: read.append(path.name) or real(path))
    cache: dict = {}
    first = store.list_runs(runs_dir, cache=cache)
    assert sorted(read) == sorted(run.id for run in made)
    read.clear()
    again = store.list_runs(runs_dir, cache=cache)
    assert [(s.id, s.state) for s in again] == [(s.id, s.state) for s in first]
    assert read == [made[2].id]  # only the running one (its duration grows)
    assert again[1] is first[1]  # an unchanged run: the very summary listed before
    made[0].update_status(step=5)
    store.update_labels(made[1].path, add=("baseline",))
    newer = store.create_run(runs_dir, "r3", now=1_795_000_100.0)
    newer.write_status({"id": newer.id, "state": "finished", "started": 2e9})
    store.remove_run(made[2])
    read.clear()
    listed = {summary.id: summary for summary in store.list_runs(runs_dir, cache=cache)}
    assert sorted(read) == sorted([made[0].id, made[1].id, newer.id])
    assert listed[made[0].id].step == 5 and listed[made[1].id].tags == ("baseline",)
    assert made[2].id not in listed and made[2].path not in cache
    assert list(listed.values()) == store.list_runs(runs_dir)  # the same as listing afresh
