"""How many CPU threads a run's torch uses: `threads = N` is N; `threads = 0`, the default, is chosen.

torch's own default is one thread per core, whatever else the machine runs. Beside a busy process every
extra thread mostly waits for a core (an NTM step took 28x longer with 2 threads than with 1 on a busy
2-core machine), and on a small model even idle cores buy little: a step is many small kernels, each too
short to split (benchmarks/threads.py has the figures). So the choice is one thread, unless the model is
big enough for more to pay and that many cores are idle now.
"""

from __future__ import annotations

import os

import torch

# Parameters from which more threads may pay, on idle cores only (benchmarks/threads.py, 2 cores, torch
# 2.13). Beside busy processes (load 5 on the 2 cores) 2 threads ran an LSTM step at 0.19-0.74x the speed
# of 1 thread at every width from 64 to 512: usable_cores() is what keeps a big model from that.
PARAMS_FOR_MORE_THREADS = 250_000


def usable_cores(loadavg: str | None = None, cores: int | None = None) -> int:
    """Cores this process may use that nothing else is using now, at least 1: the cores of its affinity
    mask, less the other runnable tasks (the larger of the kernel's instantaneous count and the 1-minute
    load average, so a neighbour that just started and one that runs in bursts both count). `loadavg`
    and `cores` stand in for /proc/loadavg and the affinity mask (tests)."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        if loadavg is None:
            with open("/proc/loadavg") as handle:
                loadavg = handle.read()
        fields = loadavg.split()  # "0.52 0.40 0.31 2/345 6789": averages, runnable/all tasks, last pid
        busy = max(int(fields[3].split("/")[0]) - 1, float(fields[0]))  # runnable now, less this process
    except (OSError, ValueError, IndexError):
        try:
            busy = os.getloadavg()[0]
        except (OSError, AttributeError):  # no load figure at all (Windows): assume nothing else runs
            busy = 0.0
    return max(1, cores - int(busy + 0.5))


_assigned: int | None = None  # a sweep worker's share of the cores, from its backend (assign)


def assign(threads: int) -> None:
    """A sweep worker's threads: set now, and what every trial it runs with threads = 0 keeps."""
    global _assigned
    _assigned = threads
    torch.set_num_threads(threads)


def choose_threads(configured: int, model: torch.nn.Module, device: torch.device) -> int:
    """The thread count for this run: the configured one; else a sweep worker's share, or the user's
    OMP_NUM_THREADS as torch read it; else one, or every idle core for a big model on the CPU. A GPU run's
    CPU side only launches kernels: one thread."""
    if configured:
        return configured
    if _assigned is not None:
        return _assigned
    if os.environ.get("OMP_NUM_THREADS", "").strip():
        return torch.get_num_threads()
    if device.type != "cpu":
        return 1
    if sum(p.numel() for p in model.parameters()) < PARAMS_FOR_MORE_THREADS:
        return 1
    return usable_cores()
