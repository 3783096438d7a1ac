"""Benchmark: rnnlab's training path against a plain hand-written PyTorch loop.

The same 2-layer LSTM character model is trained two ways in this process:

  rnnlab  prepare() + store.create_run() + Trainer.train(): the real path, with
          status.json, events.jsonl, the probes at their default cadence, the final
          evaluation and checkpoints;
  plain   Embedding -> LSTM -> Linear and a bare Adam loop in the style of
          pytorch/examples word_language_model.

Both start from identical weights, draw identical random-window batches and are
judged on identical validation windows, so any gap is the cost of rnnlab's machinery.

--mode interleaved (the default): one plain step after each rnnlab step, from the
Trainer's own train event. Both sides then run on the same machine state (the
allocator, the caches, whatever else the machine runs), which the sequential mode
cannot give: there whichever side ran first came out 3-6% slower. rnnlab's cost of
a step is everything between two plain steps: its loop, the step, the events,
status.json, the probes. Target: tokens/s ratio >= 0.97 in both orders, and the
losses equal step for step.

--mode sequential: each side trains for --seconds of wall time, one after the
other; the validation losses are then the outcome of a fixed time budget.
Targets there: ratio >= 0.95, val loss difference <= 0.02 nats/char.

    python benchmarks/charlm_vs_plain.py --seconds 120 [--order plain] [--mode sequential] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rnnlab import config, store
from rnnlab.train.loop import Trainer, prepare

ROOT = Path(__file__).resolve().parent.parent  # the repository root
DEFAULT_CORPUS = ROOT / ".." / "shared" / "data" / "tinyshakespeare.txt"
HIDDEN, LAYERS, EMBED, SEQ_LEN, BATCH, LR, CLIP = 256, 2, 64, 128, 32, 2e-3, 5.0


def build_config(corpus: str, seconds: float, eval_batches: int, seed: int, probes: bool = True) -> config.Config:
    """The rnnlab side, expressed as a config like any user's experiment."""
    raw = {
        "name": "bench-charlm", "seed": seed, "device": "cpu",
        "model": {"arch": "lstm", "hidden": HIDDEN, "layers": LAYERS, "embed": EMBED, "dropout": 0.0},
        "task": {"name": "charlm", "corpus": corpus, "seq_len": SEQ_LEN},
        "train": {
            "steps": 10**12,  # never reached: the time limit ends the run
            "batch_size": BATCH, "optimizer": "adam", "lr": LR, "schedule": "none",
            "clip": CLIP, "clip_mode": "norm", "time_limit": seconds,
            "eval_every": 0, "checkpoint_every": 0,  # only the final evaluation and checkpoint
            "eval_batches": eval_batches,
        },
        "probes": {} if probes else {"every": 0},  # default cadence, or none (--no-probes: their share)
    }
    return config.resolve(raw)


class PlainLSTM(nn.Module):
    """word_language_model's RNNModel, reduced to what this benchmark needs.

    Submodules are named and created in the same order as rnnlab's fused model
    (embed, rnn, head), so one torch seed gives the same initial weights.
    """

    def __init__(self, vocab: int, forget_bias: float):
        super().__init__()
        self.embed = nn.Embedding(vocab, EMBED)
        self.rnn = nn.LSTM(EMBED, HIDDEN, LAYERS, batch_first=True)
        self.head = nn.Linear(HIDDEN, vocab)
        with torch.no_grad():  # rnnlab's LSTM init: forget gate bias (2nd block) = forget_bias
            for layer in range(LAYERS):
                getattr(self.rnn, f"bias_ih_l{layer}")[HIDDEN:2 * HIDDEN].fill_(forget_bias)
                getattr(self.rnn, f"bias_hh_l{layer}")[HIDDEN:2 * HIDDEN].zero_()

    def forward(self, x, state=None):
        hidden, state = self.rnn(self.embed(x), state)  # (B, T, E) -> (B, T, H)
        return self.head(hidden), state  # (B, T, V)


@torch.no_grad()
def evaluate(model: nn.Module, task, count: int) -> float:
    """Mean nats/char over the first `count` batches of fixed validation windows."""
    model.eval()
    total, tokens = 0.0, 0
    for x, y, _ in task.eval_batches(BATCH, count):  # x, y: (B, T)
        logits, _ = model(x)  # (B, T, V)
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum"))
        tokens += y.numel()
    return total / tokens


def run_rnnlab(cfg: config.Config, prepared, eval_batches: int) -> dict:
    with tempfile.TemporaryDirectory() as runs_dir:
        run = store.create_run(Path(runs_dir), cfg.name)
        store.atomic_write(run.config_path, cfg.to_toml().encode())
        began = time.perf_counter()
        outcome = Trainer(prepared, run).train()
        total = time.perf_counter() - began  # includes the final evaluation and checkpoints
        if outcome.state != "finished":
            raise SystemExit(f"rnnlab run ended {outcome.state}: {outcome.error}")
        # Read the events afterwards rather than through on_event: nothing added to the loop.
        events = [e for e in run.read_events() if e["kind"] == "train"]
    tokens_per_step = BATCH * SEQ_LEN
    return {
        "steps": len(events), "tokens": len(events) * tokens_per_step,
        # Trainer times each step itself (set_lr .. optimizer.step) and logs tokens/s.
        "step_time": sum(tokens_per_step / e["tokens_per_s"] for e in events),
        "wall": events[-1]["t"],  # seconds since train() began, at the last step's event
        "val": evaluate(prepared.model, prepared.task, eval_batches),
        "own_val": outcome.final.get("loss"), "total": total, "losses": [e["loss"] for e in events],
    }


class PlainLoop:
    """The hand-written loop, one step at a time: its model, Adam, and the Trainer's batch generator."""

    def __init__(self, task, seed: int, initial: dict | None):
        torch.manual_seed(seed)  # as prepare() does, just before building the model
        self.model = PlainLSTM(len(task.vocab), forget_bias=1.0)
        state = self.model.state_dict()
        if initial is not None and (state.keys() != initial.keys()
                                    or not all(torch.equal(state[k], v) for k, v in initial.items())):
            raise SystemExit("plain model does not start from rnnlab's initial weights")
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LR)
        self.generator = torch.Generator().manual_seed(seed + 1)  # Trainer's batch generator
        self.data = task.train_data  # (N,) ids: the same split rnnlab trains on
        self.offsets = torch.arange(SEQ_LEN + 1)  # (T+1,)
        self.losses: list[float] = []
        self.step_time = 0.0
        self.model.train()

    def step(self) -> None:
        began = time.perf_counter()
        starts = torch.randint(0, len(self.data) - SEQ_LEN, (BATCH,), generator=self.generator)  # (B,)
        window = self.data[starts[:, None] + self.offsets]  # (B, T+1)
        x, y = window[:, :-1], window[:, 1:]  # (B, T) each
        logits, _ = self.model(x)  # (B, T, V); zero initial state, full backprop
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), CLIP)
        self.losses.append(loss.item())  # what any loop that logs its loss pays each step
        self.optimizer.step()
        self.step_time += time.perf_counter() - began


def run_plain(task, seed: int, seconds: float, eval_batches: int, initial: dict | None) -> dict:
    plain = PlainLoop(task, seed, initial)
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        plain.step()
    wall = time.perf_counter() - started
    return {"steps": len(plain.losses), "tokens": len(plain.losses) * BATCH * SEQ_LEN,
            "step_time": plain.step_time, "wall": wall, "val": evaluate(plain.model, task, eval_batches),
            "losses": plain.losses}


def run_interleaved(cfg: config.Config, prepared, seconds: float, eval_batches: int, initial: dict,
                    plain_first: bool) -> tuple[dict, dict]:
    """rnnlab's Trainer with one plain step run from each of its train events (and one before it starts
    when plain_first): rnnlab's cost of a step is the wall time between two plain steps."""
    plain = PlainLoop(prepared.task, cfg.seed, initial)
    marks: list[tuple[float, float]] = []  # (a plain step's start, its end), one per rnnlab train event

    def after_event(event: dict) -> None:
        if event["kind"] == "train":
            began = time.perf_counter()
            plain.step()
            marks.append((began, time.perf_counter()))

    if plain_first:
        plain.step()
    cfg.train.time_limit = 2 * seconds  # both sides share the clock
    with tempfile.TemporaryDirectory() as runs_dir:
        run = store.create_run(Path(runs_dir), cfg.name)
        store.atomic_write(run.config_path, cfg.to_toml().encode())
        outcome = Trainer(prepared, run, on_event=after_event).train()
        if outcome.state != "finished":
            raise SystemExit(f"rnnlab run ended {outcome.state}: {outcome.error}")
        events = [e for e in run.read_events() if e["kind"] == "train"]
    # every rnnlab step after the first sits between two plain steps: from one's end to the next one's start
    rnnlab_time = sum(start - end for (_, end), (start, _) in zip(marks, marks[1:]))
    plain_time = sum(end - start for start, end in marks[1:])  # the same number of steps, the same batches
    steps = len(marks) - 1
    tokens = steps * BATCH * SEQ_LEN
    a = {"steps": len(events), "tokens": tokens, "step_time": rnnlab_time, "wall": rnnlab_time,
         "val": evaluate(prepared.model, prepared.task, eval_batches), "own_val": outcome.final.get("loss"),
         "losses": [e["loss"] for e in events]}
    b = {"steps": len(plain.losses), "tokens": tokens, "step_time": plain_time, "wall": plain_time,
         "val": evaluate(plain.model, prepared.task, eval_batches), "losses": plain.losses}
    return a, b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="training time of each run")
    parser.add_argument("--corpus", help="a text file, or stdlib "
                        "(default: ../shared/data/tinyshakespeare.txt if present, else stdlib)")
    parser.add_argument("--eval-batches", type=int, default=20, help="validation batches of 32 windows")
    parser.add_argument("--order", choices=["rnnlab", "plain"], default="rnnlab",
                        help="which runs first (interleaved: which takes the first step)")
    parser.add_argument("--mode", choices=["interleaved", "sequential"], default="interleaved",
                        help="one plain step after each rnnlab step, or each side for --seconds in turn")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-probes", action="store_true", help="rnnlab without its probes (their share of the gap)")
    parser.add_argument("--warmup", type=float, default=20.0,
                        help="seconds of throw-away plain training first: whichever run went first "
                        "was otherwise ~15%% slower (allocator and CPU warm-up), whatever its kind")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.corpus:  # "stdlib" names rnnlab's embedded corpus, anything else a file
        corpus = args.corpus if args.corpus == "stdlib" else str(Path(args.corpus).resolve())
    elif DEFAULT_CORPUS.is_file():
        corpus = str(DEFAULT_CORPUS.resolve())
    else:
        corpus = "stdlib"  # rnnlab's embedded corpus: Python stdlib source, always available

    cfg = build_config(corpus, args.seconds, args.eval_batches, args.seed, probes=not args.no_probes)
    prepared = prepare(cfg)  # seeds, builds the CharLM split and the model
    task = prepared.task
    initial = {k: v.clone() for k, v in prepared.model.state_dict().items()}  # before any training
    print(f"corpus: {corpus if corpus != 'stdlib' else 'stdlib (rnnlab embedded)'}; "
          f"{len(task.train_data):,} train / {len(task.val_data):,} val chars, vocab {len(task.vocab)}")
    print(f"lstm {LAYERS}x{HIDDEN}, embed {EMBED}, batch {BATCH}x{SEQ_LEN}, adam {LR:g}, clip {CLIP:g}; "
          f"{args.seconds:g}s each, {args.order} first, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")

    if args.warmup > 0:
        print(f"warming up for {args.warmup:g}s ...", flush=True)
        run_plain(task, args.seed + 1000, args.warmup, 1, None)
    results = {}
    if args.mode == "interleaved":
        print("training both, interleaved ...", flush=True)
        results["rnnlab"], results["plain"] = run_interleaved(cfg, prepared, args.seconds, args.eval_batches,
                                                              initial, plain_first=args.order == "plain")
    for which in ([args.order] + [o for o in ("rnnlab", "plain") if o != args.order]):
        if which in results:
            continue
        print(f"training {which} ...", flush=True)
        if which == "rnnlab":
            results[which] = run_rnnlab(cfg, prepared, args.eval_batches)
        else:
            results[which] = run_plain(task, args.seed, args.seconds, args.eval_batches, initial)

    print()
    print(f"{'':8}{'steps':>8}{'tokens':>12}{'tok/s step':>12}{'tok/s wall':>12}{'val nats':>10}")
    for which in ("rnnlab", "plain"):
        r = results[which]
        r["tps"], r["tps_wall"] = r["tokens"] / r["step_time"], r["tokens"] / r["wall"]
        print(f"{which:8}{r['steps']:>8}{r['tokens']:>12,}{r['tps']:>12.0f}{r['tps_wall']:>12.0f}{r['val']:>10.4f}")
    a, b = results["rnnlab"], results["plain"]
    ratio, ratio_wall, diff = a["tps"] / b["tps"], a["tps_wall"] / b["tps_wall"], a["val"] - b["val"]
    print()
    if args.mode == "interleaved":  # rnnlab's wall time per step, everything included, against plain's
        print(f"tokens/s rnnlab/plain, interleaved: {ratio_wall:.3f} "
              f"({'ok' if ratio_wall >= 0.97 else 'BELOW'} target >= 0.97)")
        if a["steps"] == b["steps"]:
            print(f"val loss rnnlab - plain after the same {a['steps']} steps: {diff:+.4f} nats/char")
        else:  # plain first: it took the step before rnnlab's first, and one after rnnlab's last
            print(f"val loss rnnlab - plain: {diff:+.4f} nats/char (plain took {b['steps'] - a['steps']} step more)")
    else:
        print(f"tokens/s rnnlab/plain: {ratio:.3f} step time, {ratio_wall:.3f} wall "
              f"({'ok' if ratio >= 0.95 else 'BELOW'} target >= 0.95)")
        print(f"val loss rnnlab - plain: {diff:+.4f} nats/char ({'ok' if diff <= 0.02 else 'ABOVE'} target <= 0.02)")
    # Same weights, batches and updates: the two loss curves should agree step for step, so
    # a val loss gap comes from the number of steps each got done, not from a different model.
    shared = min(a["steps"], b["steps"])
    gap = max((abs(x - y) for x, y in zip(a["losses"], b["losses"])), default=0.0)
    print(f"train loss, first {shared} steps: max |rnnlab - plain| = {gap:.2e}"
          f"{'' if gap < 1e-3 else '  (the two paths differ!)'}")
    if "total" in a:
        print(f"rnnlab's own final eval: {a['own_val']:.4f}; train() took {a['total']:.1f}s "
              f"({a['total'] - a['wall']:.1f}s after the last step: final eval + checkpoints)")


if __name__ == "__main__":
    main()
