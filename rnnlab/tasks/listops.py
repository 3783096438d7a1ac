"""ListOps (Nangia & Bowman 2018): nested list operations over digits, each evaluated to a class 0-9.

    [MAX 2 [MIN 4 7 ] 0 ]  = 4        MIN, MAX, MED (the median, rounded down), SM (the sum mod 10)

Each expression is drawn from a seed with exactly n operators (n = task.operators, or one n per batch
from train_lengths), each taking 2..max_args arguments; its shape says where the n - 1 other
operators go among an operator's arguments:
  balanced  spread as evenly as possible: depth about log_k n, the O(log N) of a recursive net
  left      all in the first argument: [MAX [MIN [SM 3 1 ] 4 ] 0 ], a left-branching chain of depth n
  random    a random split: depths in between
The same expression reaches a model in one of three forms (task.input), so a tree model and an LSTM
compare on the same expressions (the same seed draws the same ones in every form):
  flat    its tokens, (B, T) padded at the end: a sequence model reads them and is judged at the last
          token, "]" (the mask), once it has seen the whole expression
  tree    the n-ary tree as a node table (models/tree_table.py): an operator node reads its operator
          token and its arguments as children, in order; leaves are digits (child-sum Tree-LSTM)
  binary  the tree binarised (for TreeRNN and the binary Tree-LSTM): [OP a1 .. ak] becomes the
          left-branching chain ((((OP a1) a2) ..) ak), the operator a leaf of its own and the inner
          nodes tokenless, as the gold binary parse of the bracketing (Nangia & Bowman's tree models)
A tree model's output is judged at each tree's root (the mask), so the three forms share one loss:
cross-entropy of the judged position's 10 logits. Depth is what differs: an LSTM always runs the
whole string (O(N) steps), a tree model runs the tree's height (binary: each argument of an operator
adds a level). by_length (lengths.py) scores by n; with shape = "left" n is the depth itself.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..models.base import TaskSpec
from ..models.tree_table import CHILD, DEPTH, HEIGHT, TOKEN
from ..options import opt
from .base import GeneratedTask, TaskOptions, error_rate_summary
from .lengths import VariableLength, check_lengths, eval_lengths_opt, length_batches_opt, train_lengths_opt
from .registry import TASKS

OPS = ("MIN", "MAX", "MED", "SM")
DIGITS = 10  # the leaves, and the classes
OP0 = DIGITS  # operator o is token OP0 + o
CLOSE = OP0 + len(OPS)  # "]" (flat form only)
NO_TOKEN = CLOSE + 1  # an inner node of a binarised tree
PAD = NO_TOKEN + 1  # after a flat string's end, and on a node table's padding rows
VOCAB = PAD + 1
MAX_OPERATORS = 200  # Python recursion builds and evaluates an expression: a left chain of n is n deep
NAMES = [str(d) for d in range(DIGITS)] + [f"[{op}" for op in OPS] + ["]", "·", "_"]


def evaluate(expr) -> int:
    """The value of an expression: a digit (int), or (operator index, [arguments])."""
    if isinstance(expr, int):
        return expr
    op, args = expr
    values = sorted(evaluate(a) for a in args)
    if OPS[op] == "MIN":
        return values[0]
    if OPS[op] == "MAX":
        return values[-1]
    if OPS[op] == "MED":  # an even count: the mean of the middle two, rounded down (int(np.median))
        middle = len(values) // 2
        return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) // 2
    return sum(values) % DIGITS  # SM


def draw(n: int, rng: random.Random, shape: str, max_args: int):
    """An expression with exactly n operators (n = 0: a digit)."""
    if n == 0:
        return rng.randrange(DIGITS)
    op, k = rng.randrange(len(OPS)), rng.randint(2, max_args)
    rest = n - 1  # the operators below this one
    if shape == "left":
        shares = [rest] + [0] * (k - 1)
    elif shape == "balanced":
        shares = [rest // k + (i < rest % k) for i in range(k)]
    else:  # random: k - 1 cuts in [0, rest]
        cuts = sorted(rng.randint(0, rest) for _ in range(k - 1))
        shares = [b - a for a, b in zip([0] + cuts, cuts + [rest])]
    return op, [draw(s, rng, shape, max_args) for s in shares]


def depth(expr) -> int:
    """Operators on the longest path from the root (a digit: 0)."""
    return 0 if isinstance(expr, int) else 1 + max(depth(a) for a in expr[1])


def flat_tokens(expr) -> list[int]:
    if isinstance(expr, int):
        return [expr]
    op, args = expr
    return [OP0 + op] + [t for a in args for t in flat_tokens(a)] + [CLOSE]


def text(tokens) -> str:
    """Token ids as the expression's string ("[MAX 2 [MIN 4 7 ] 0 ]"); padding left out."""
    return " ".join(NAMES[int(t)] for t in tokens if int(t) != PAD)


def node_rows(expr, binary: bool) -> list[tuple[int, list[int]]]:
    """(token, child rows) per node in post-order, the root last."""
    rows: list[tuple[int, list[int]]] = []

    def add(token: int, children: list[int]) -> int:
        rows.append((token, children))
        return len(rows) - 1

    def visit(e) -> int:
        if isinstance(e, int):
            return add(e, [])
        op, args = e
        if not binary:
            return add(OP0 + op, [visit(a) for a in args])
        node = add(OP0 + op, [])  # the operator is a leaf; each argument joins the chain
        for a in args:
            node = add(NO_TOKEN, [node, visit(a)])
        return node

    visit(expr)
    return rows


def node_table(rows: list[tuple[int, list[int]]], nodes: int, arity: int) -> torch.Tensor:
    """(nodes, CHILD + arity) long: one tree's rows (tree_table.py's layout), padded to `nodes` rows."""
    table = torch.full((nodes, CHILD + arity), -1, dtype=torch.long)
    table[:, TOKEN] = PAD
    heights, depths = [0] * len(rows), [0] * len(rows)
    for i, (token, children) in enumerate(rows):  # children come first: their heights are known
        heights[i] = 1 + max((heights[c] for c in children), default=-1)
        table[i, TOKEN], table[i, HEIGHT] = token, heights[i]
        table[i, CHILD:CHILD + len(children)] = torch.tensor(children, dtype=torch.long)
    for i in reversed(range(len(rows))):  # the root is last: parents before children
        for c in rows[i][1]:
            depths[c] = depths[i] + 1
    table[:len(rows), DEPTH] = torch.tensor(depths, dtype=torch.long)
    return table


@dataclass
class ListOpsOptions(TaskOptions):
    name: str = opt("listops", "task (`rnnlab list tasks`)")
    input: str = opt("binary", "what the model reads: binary (binarised trees: treernn, treelstm_binary, "
                     "treelstm) | tree (n-ary trees: treelstm) | flat (token strings: sequence models)",
                     choices=["binary", "tree", "flat"])
    shape: str = opt("random", "where an operator's sub-expressions go: balanced (depth ~ log n) | left "
                     "(a left-branching chain, depth n) | random", choices=["random", "balanced", "left"])
    operators: int = opt(6, "n: operators in each expression", min=1, max=MAX_OPERATORS)
    max_args: int = opt(3, "arguments of an operator: 2 .. max_args", min=2, max=9)
    train_lengths: list[int] = train_lengths_opt("n (operators)")
    eval_lengths: list[int] = eval_lengths_opt("n (operators)")
    length_batches: int = length_batches_opt()

    def check(self, section: str) -> None:
        check_lengths(self, section, floor=1)
        for key in ("train_lengths", "eval_lengths"):  # as task.operators: the recursion stays shallow
            if any(n > MAX_OPERATORS for n in getattr(self, key)):
                raise ConfigError(f"{section}.{key}", getattr(self, key), f"an expression has at most "
                                  f"{MAX_OPERATORS} operators", f"integers <= {MAX_OPERATORS}")


@TASKS.register("listops", "ListOps (Nangia & Bowman 2018): nested MIN/MAX/MED/SM over digits; trees or strings")
class ListOpsTask(VariableLength, GeneratedTask):
    Options = ListOpsOptions
    main_metric = "error_rate"
    loss_unit, baseline_label = "nats/expression", "chance"

    def __init__(self, options: ListOpsOptions, seed: int = 0):
        self.options = options
        tree = {"binary": "binary", "tree": "nary", "flat": None}[options.input]
        self.spec = TaskSpec(input_size=VOCAB, output_size=DIGITS, vocab_size=VOCAB, tree=tree,
                             pad=PAD if tree is None else None)

    def fixed_length(self) -> int:
        return self.options.operators

    def expressions(self, batch_size: int, generator: torch.Generator, n: int) -> list:
        """The batch's expressions: a Python RNG seeded from the run's generator, so the stream is the
        generator's (reproducible, resumable) whatever form the expressions then take."""
        rng = random.Random(int(torch.randint(0, 2**62, (1,), generator=generator)))
        o = self.options
        return [draw(n, rng, o.shape, o.max_args) for _ in range(batch_size)]

    def batch_at(self, batch_size, generator, n):
        exprs = self.expressions(batch_size, generator, n)
        if self.options.input == "flat":
            return self.encode_flat(exprs)
        return self.encode_trees(exprs, binary=self.options.input == "binary")

    def encode_flat(self, exprs):
        strings = [flat_tokens(e) for e in exprs]
        length = max(len(s) for s in strings)
        x = torch.full((len(exprs), length), PAD, dtype=torch.long)  # (B, T)
        y = torch.zeros_like(x)
        mask = torch.zeros(x.shape, dtype=torch.bool)  # judged at each string's last token, "]"
        for b, (expr, tokens) in enumerate(zip(exprs, strings)):
            x[b, :len(tokens)] = torch.tensor(tokens)
            y[b, len(tokens) - 1], mask[b, len(tokens) - 1] = evaluate(expr), True
        return x, y, mask

    def encode_trees(self, exprs, binary: bool):
        trees = [node_rows(e, binary) for e in exprs]
        nodes = max(len(rows) for rows in trees)
        arity = 2 if binary else self.options.max_args
        x = torch.stack([node_table(rows, nodes, arity) for rows in trees])  # (B, N, CHILD + K)
        y = torch.zeros(x.shape[:2], dtype=torch.long)  # (B, N)
        mask = torch.zeros(x.shape[:2], dtype=torch.bool)  # judged at each tree's root, its last row
        for b, (expr, rows) in enumerate(zip(exprs, trees)):
            y[b, len(rows) - 1], mask[b, len(rows) - 1] = evaluate(expr), True
        return x, y, mask

    def loss(self, output, y, mask):
        return F.cross_entropy(output[mask][:, :DIGITS], y[mask])  # one judged position per expression

    def step_losses(self, output, y, mask):
        losses = torch.zeros(output.shape[:2], device=output.device, dtype=output.dtype)  # (B, T or N)
        losses[mask] = F.cross_entropy(output[mask][:, :DIGITS], y[mask], reduction="none")
        return losses

    def batch_stats(self, output, y, mask):
        wrong = (output[mask][:, :DIGITS].argmax(-1) != y[mask]).sum()
        return {"wrong": float(wrong), "count": float(mask.sum())}

    def eval_summary(self, totals):
        summary = error_rate_summary(totals)
        return {"accuracy": 1.0 - summary["error_rate"], **summary}

    def metrics(self, mean_loss):
        return {"loss": mean_loss, "baseline": math.log(DIGITS)}
