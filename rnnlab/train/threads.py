"""How many CPU threads a run's torch uses: `threads = N` is N; `threads = 0`, the default, is chosen.

torch's own default is one thread per core, whatever else the machine runs. Beside a busy process every
extra thread mostly waits for a core (an NTM step took 28x longer with 2 threads than with 1 on a busy
2-core machine), and on a small model even idle cores buy little: a step is many small kernels, each too
short to split (benchmarks/threads.py has the figures). So the choice is one thread, unless the model is
big enough for more to pay and that many cores are idle now.
"""

from __future__ import annotations

import os
import time

import torch

# benchmarks/threads.py, an LSTM language-model step on a 2-core CPU, torch 2.13: on idle cores 2 threads
# ran it 1.03x (9.7k parameters), 1.12x (22k), 1.24x (46k), 1.47x (119k), 1.64x (362k) and 1.67x (1.2M)
# as fast as 1; beside one spinning process 0.53-0.85x at every size. So the idle cores decide, and a
# model below this size, which a second thread speeds by 3% at most, keeps one and leaves the core free.
PARAMS_FOR_MORE_THREADS = 20_000
SAMPLES, SAMPLE_SECONDS = 8, 0.005  # how often, and how far apart, the runnable tasks are counted


def usable_cores(samples: list[str] | None = None, cores: int | None = None) -> int:
    """Cores this process may use that nothing else is using now, at least 1: the cores of its affinity
    mask, less the other tasks the kernel has runnable, averaged over SAMPLES readings of /proc/loadavg
    SAMPLE_SECONDS apart (the 1-minute load average lags: a minute after a test suite ended it still
    counted one core busy). `samples` and `cores` stand in for those readings and the mask (tests)."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        if samples is None:
            samples = []
            for index in range(SAMPLES):
                with open("/proc/loadavg") as handle:
                    samples.append(handle.read())
                if index + 1 < SAMPLES:
                    time.sleep(SAMPLE_SECONDS)
        # "0.52 0.40 0.31 2/345 6789": averages, runnable/all tasks, last pid; this process is one runnable
        others = [int(sample.split()[3].split("/")[0]) - 1 for sample in samples]
        busy = sum(others) / len(others)
    except (OSError, ValueError, IndexError, ZeroDivisionError):
        try:
            busy = os.getloadavg()[0]  # no /proc (macOS): the average it has
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
