"""Benchmark: what a second torch thread buys a training step, by model size, idle and beside a busy process.

The numbers behind `threads = 0` (auto, rnnlab/train/threads.py): for each LSTM width, a character-LM
training step (embed 64, batch 32 x 128, Adam) timed with 1 thread and with every core, alternated in one
process (best of --repeats after a warm-up), first on the machine as it is, then with one process per core
but one spinning beside it (what a sweep worker, a second run or any other job is). The speed-up column is
time(1 thread) / time(all cores): above 1 a second thread pays, below 1 it fights the neighbour.

    python benchmarks/threads.py [--widths 64,128,256,512] [--repeats 5]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time

import torch
import torch.nn.functional as F
from torch import nn

from rnnlab.train.threads import usable_cores

VOCAB, EMBED, BATCH, SEQ_LEN = 100, 64, 32, 128


class CharLSTM(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, EMBED)
        self.rnn = nn.LSTM(EMBED, hidden, batch_first=True)
        self.head = nn.Linear(hidden, VOCAB)

    def forward(self, x):
        return self.head(self.rnn(self.embed(x))[0])  # (B, T, V)


def step_seconds(model, optimizer, x, y) -> float:
    began = time.perf_counter()
    loss = F.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return time.perf_counter() - began


def speed_up(hidden: int, cores: int, repeats: int) -> tuple[float, float, int]:
    """(best step seconds with 1 thread, with `cores`, parameters) for an LSTM of this width."""
    torch.manual_seed(0)
    model = CharLSTM(hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randint(0, VOCAB, (2, BATCH, SEQ_LEN))  # (B, T) each
    best = {1: float("inf"), cores: float("inf")}
    for threads in (1, cores):  # warm-up
        torch.set_num_threads(threads)
        step_seconds(model, optimizer, x, y)
    for _ in range(repeats):
        for threads in (1, cores):
            torch.set_num_threads(threads)
            best[threads] = min(best[threads], step_seconds(model, optimizer, x, y))
    return best[1], best[cores], sum(p.numel() for p in model.parameters())


def spin(stop) -> None:
    while not stop.is_set():
        pass


def table(widths: list[int], cores: int, repeats: int, label: str) -> None:
    print(f"\n{label}")
    print(f"{'width':>6}{'params':>10}{'1 thread':>12}{f'{cores} threads':>12}{'speed-up':>10}")
    for hidden in widths:
        one, many, params = speed_up(hidden, cores, repeats)
        print(f"{hidden:>6}{params:>10,}{one * 1000:>10.1f}ms{many * 1000:>10.1f}ms{one / many:>10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="64,128,256,512")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if cores < 2:
        raise SystemExit("one core: there is no second thread to measure")
    print(f"torch {torch.__version__}, {cores} cores; usable now (rnnlab/train/threads.py): {usable_cores()}")
    table(widths, cores, args.repeats, "the machine as it is")
    stop = multiprocessing.Event()
    neighbour = multiprocessing.Process(target=spin, args=(stop,), daemon=True)
    neighbour.start()
    time.sleep(1.0)
    try:
        table(widths, cores, args.repeats, f"beside one spinning process (usable cores now: {usable_cores()})")
    finally:
        stop.set()
        neighbour.join()


if __name__ == "__main__":
    main()
