"""Tree models: level-by-level batching against node-by-node recursion of the papers' equations (float64),
gradcheck on tiny trees, the tree-depth gradient probe, and the models' refusals of the wrong task."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

from rnnlab import config
from rnnlab.errors import ConfigError
from rnnlab.models import build_model
from rnnlab.models.tree_table import CHILD, DEPTH, HEIGHT, TOKEN
from rnnlab.probes.trees import tree_gradient_flow
from rnnlab.tasks import build_task
from rnnlab.train.loop import prepare

FORMS = {"treernn": "binary", "treelstm": "tree", "treelstm_binary": "binary"}


def setup(arch: str, form: str | None = None, hidden: int = 5, embed: int = 4, operators: int = 4, batch: int = 3,
          shape: str = "random", seed: int = 0):
    """A float64 model, its task, and one batch of trees."""
    form = form or FORMS[arch]
    cfg = config.load(None, [f"model.arch={arch}", f"model.hidden={hidden}", f"model.embed={embed}",
                             "task.name=listops", f"task.input={form}", f"task.operators={operators}",
                             f"task.shape={shape}"])
    task = build_task(cfg.task, 0)
    torch.manual_seed(seed)
    model = build_model(cfg.model, task.spec).double()
    x, y, mask = task.train_batch(batch, torch.Generator().manual_seed(seed))
    return model, task, (x, y, mask)


# -- the papers' equations, one node at a time -----------------------------------------------------
def tree_rnn_node(model, token, kids):
    if not kids:
        return (model.embed.weight[token],)
    W, b = model.compose_layer.weight, model.compose_layer.bias  # (H, 2H), (H,)
    return (torch.tanh(W @ torch.cat([kids[0][0], kids[1][0]]) + b),)


def child_sum_node(model, token, kids):
    """Tai et al. (2015) eqs. 2-8, written out with each gate's own slice of the weights."""
    H = model.hidden
    x = model.embed.weight[token]  # (E,)
    W, b = model.input.weight, model.input.bias  # (4H, E): i, o, u, f
    W_i, W_o, W_u, W_f = (W[k * H:(k + 1) * H] for k in range(4))
    b_i, b_o, b_u, b_f = (b[k * H:(k + 1) * H] for k in range(4))
    U = model.iou.weight  # (3H, H)
    U_i, U_o, U_u, U_f = U[:H], U[H:2 * H], U[2 * H:], model.forget.weight
    h_tilde = sum((h for h, _ in kids), torch.zeros(H, dtype=W.dtype))
    i = torch.sigmoid(W_i @ x + U_i @ h_tilde + b_i)
    o = torch.sigmoid(W_o @ x + U_o @ h_tilde + b_o)
    u = torch.tanh(W_u @ x + U_u @ h_tilde + b_u)
    c = i * u
    for h_k, c_k in kids:
        f_k = torch.sigmoid(W_f @ x + U_f @ h_k + b_f)
        c = c + f_k * c_k
    return o * torch.tanh(c), c


def binary_node(model, token, kids):
    """Tai et al. eqs. 9-14 with N = 2: U^left and U^right per gate; each forget gate reads both children."""
    H = model.hidden
    x = model.embed.weight[token]
    zero = torch.zeros(H, dtype=x.dtype)
    (h_l, c_l), (h_r, c_r) = kids if kids else ((zero, zero), (zero, zero))
    W, b, U = model.input.weight, model.input.bias, model.children_layer.weight  # (5H, E), (5H,), (5H, 2H)

    def gate(k):
        rows = slice(k * H, (k + 1) * H)
        return W[rows] @ x + U[rows, :H] @ h_l + U[rows, H:] @ h_r + b[rows]

    i, f_l, f_r, o, u = (gate(k) for k in range(5))
    c = torch.sigmoid(i) * torch.tanh(u) + torch.sigmoid(f_l) * c_l + torch.sigmoid(f_r) * c_r
    return torch.sigmoid(o) * torch.tanh(c), c


REFERENCE = {"treernn": tree_rnn_node, "treelstm": child_sum_node, "treelstm_binary": binary_node}


def recursive_states(model, x, arch):
    """{(b, row): the node's states}, each node computed from its children by recursion from the root."""
    states = {}

    def visit(b, row):
        kids = [visit(b, int(c)) for c in x[b, row, CHILD:] if c >= 0]
        states[(b, row)] = REFERENCE[arch](model, int(x[b, row, TOKEN]), kids)
        return states[(b, row)]

    for b in range(x.shape[0]):
        visit(b, int((x[b, :, HEIGHT] >= 0).sum()) - 1)  # the root is the tree's last row
    return states


@pytest.mark.parametrize("arch", list(FORMS))
def test_level_batching_equals_node_by_node_recursion(arch):
    model, task, (x, y, mask) = setup(arch, operators=5, batch=4)
    assert x.shape[1] > 10 and len({int(h) for h in x[..., HEIGHT].max(1).values}) > 1  # unequal trees, padded
    batched = model.node_states(x)[0]  # (B, N, H)
    recursive = recursive_states(model, x, arch)
    for (b, row), states in recursive.items():
        torch.testing.assert_close(batched[b, row], states[0], rtol=0, atol=1e-10)
    padding = x[..., HEIGHT] < 0
    assert padding.any() and batched[padding].abs().max() == 0  # padding rows are never composed
    output, state = model(x)
    assert state is None and output.shape == (*x.shape[:2], 10)


def test_child_sum_reads_any_arity_and_ignores_child_order():
    model, task, (x, y, mask) = setup("treelstm", operators=3, batch=2)
    opened = x.clone()
    nodes = (x[..., CHILD:] >= 0).sum(-1)  # children per row
    b, row = (nodes >= 3).nonzero()[0].tolist() if (nodes >= 3).any() else (nodes >= 2).nonzero()[0].tolist()
    kids = opened[b, row, CHILD:CHILD + int(nodes[b, row])]
    opened[b, row, CHILD:CHILD + len(kids)] = kids.flip(0)  # the same children, in another order
    torch.testing.assert_close(model(opened)[0], model(x)[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("arch", list(FORMS))
def test_gradcheck_on_tiny_trees(arch):
    model, task, (x, y, mask) = setup(arch, hidden=3, embed=2, operators=2, batch=2)
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for _, p in model.named_parameters())

    def judged(*values):
        output, _ = functional_call(model, dict(zip(names, values)), (x,))
        return output[mask]  # (B, 10): the roots' logits

    assert torch.autograd.gradcheck(judged, params, eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("arch", list(FORMS))
def test_depth_probe_is_the_mean_node_gradient_at_each_depth(arch):
    model, task, (x, y, mask) = setup(arch, operators=4, batch=3)
    flow = tree_gradient_flow(model, task, x, y, mask)
    recursive = recursive_states(model, x, arch)
    keys = list(recursive)
    hs = [recursive[k][0] for k in keys]
    logits = {b: model.head(recursive[(b, int(mask[b].nonzero()))][0]) for b in range(x.shape[0])}
    loss = sum(torch.nn.functional.cross_entropy(logits[b][None, :10], y[b][mask[b]]) for b in logits)
    grads = torch.autograd.grad(loss, hs)
    by_depth: dict[int, list[float]] = {}
    for (b, row), g in zip(keys, grads):
        by_depth.setdefault(int(x[b, row, DEPTH]), []).append(float(g.norm()))
    expected = [sum(v) / len(v) for _, v in sorted(by_depth.items())]
    assert flow["axis"] == "depth" and flow["steps"] == len(expected) == int(x[..., DEPTH].max()) + 1
    assert flow["layers"]["tree"]["last"] == pytest.approx(expected, rel=1e-4)


def test_left_branching_trees_push_the_gradient_deeper_than_balanced():
    """The O(N) against O(log N) argument on one model: the same operator count, deeper trees when left."""
    depths = {}
    for shape in ("balanced", "left"):
        model, task, (x, y, mask) = setup("treelstm", operators=12, batch=4, shape=shape)
        depths[shape] = tree_gradient_flow(model, task, x, y, mask)["steps"]
    assert depths["left"] >= 2 * depths["balanced"]


def refusal(arch: str, form: str) -> str:
    cfg = config.load(None, [f"model.arch={arch}", "task.name=listops", f"task.input={form}", "device=cpu"])
    with pytest.raises(ConfigError) as info:
        prepare(cfg)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_models_refuse_the_wrong_input():
    assert "treelstm" in refusal("lstm", "binary") and 'task.input = "flat"' in refusal("gru", "tree")
    assert "gives token sequences" in refusal("treelstm", "flat")
    assert 'task.input = "binary"' in refusal("treernn", "tree") and "n-ary" in refusal("treelstm_binary", "tree")
    cfg = config.load(None, ["model.arch=treernn", "task.name=latch", "device=cpu"])
    with pytest.raises(ConfigError, match="composes trees"):
        prepare(cfg)
