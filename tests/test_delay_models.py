"""Delay RNN and clockwork RNN: Elman reproduced, gradchecked, arcs and clocks where the equations put them."""

from __future__ import annotations

import math

import pytest
import torch

from rnnlab import config, store
from rnnlab.errors import ConfigError
from rnnlab.models import TaskSpec, build_model
from rnnlab.models.clockwork import clockwork_loop
from rnnlab.models.delay import backoff_delays, delay_backward_loop, delay_loop, scripted
from rnnlab.train import Trainer, prepare

from model_checks import assert_compiled_loop_equals_eager
from tiny import tiny_config

FEATURES = TaskSpec(input_size=3, output_size=2)  # float inputs: no embedding in front of the recurrence


def build(arch, hidden=4, layers=2, spec=FEATURES, **extra):
    sets = [f"model.arch={arch}", f"model.hidden={hidden}", f"model.layers={layers}", "model.embed=4"]
    sets += [f"model.{k}={v}" for k, v in extra.items()]
    torch.manual_seed(0)
    return build_model(config.load(None, sets).model, spec).double()


def random_state(model, batch, t0=0):
    """A nonzero starting state: zeros would hide a wrong read of the history (or of h_{-1})."""
    state = model.init_state(batch)
    if isinstance(state, tuple):  # clockwork: (h, steps so far)
        return torch.randn_like(state[0]), torch.tensor(t0)
    return torch.randn_like(state)


def h_of(state):
    return state[0] if isinstance(state, tuple) else state


VARIANTS = [("delay", {}), ("delay", {"delays": "[2,3]", "activation": "relu"}), ("clockwork", {}),
            ("clockwork", {"periods": "[1,3,4]", "activation": "softsign"})]
IDS = ["delay-backoff", "delay-2-3-relu", "clockwork-1-2-4-8", "clockwork-1-3-4"]


@pytest.mark.parametrize("arch,extra,t0", [(*variant, 0) for variant in VARIANTS] + [(*VARIANTS[3], 5)],
                         ids=IDS + ["clockwork-1-3-4-from-t5"])
def test_gradcheck(arch, extra, t0):
    """Gradients (the delay net's hand-written backward, autograd through the clockwork loop) against finite
    differences: inputs, initial state, every weight; t0 = 5 starts the clock mid-sequence."""
    # one layer: the layers' gradients chain through autograd (held to it at two layers below)
    model = build(arch, hidden=3 if arch == "delay" else 4, layers=1, **extra)  # clockwork: 4 groups, 4 units
    names = [n for n, _ in model.named_parameters() if not n.startswith("head")]
    params = [p.detach().clone().requires_grad_() for n, p in model.named_parameters() if n in names]
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    start = random_state(model, 2, t0)
    h0 = h_of(start).requires_grad_()

    def run(x, h0, *weights):
        state = (h0, start[1]) if isinstance(start, tuple) else h0
        y, final = torch.func.functional_call(model, dict(zip(names, weights)), (x, state))
        return y, h_of(final)

    assert torch.autograd.gradcheck(run, (x, h0, *params), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("arch,extra", [("delay", {"delays": "[1]"}), ("clockwork", {"periods": "[1]"})])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_a_single_delay_of_one_or_period_one_is_elman(arch, extra, activation):
    model = build(arch, hidden=5, layers=2, activation=activation, **extra)
    elman = build("elman_act", hidden=5, layers=2, activation=activation)
    with torch.no_grad():
        for layer, (ours, cell) in enumerate(zip(model.stack, elman.cells)):
            cell.weight_ih.copy_(ours.weight_ih)
            cell.weight_hh.copy_(model.recurrent_matrices()[f"layer{layer}" + (".d1" if arch == "delay" else "")])
            cell.bias_ih.copy_(ours.bias_ih)
            cell.bias_hh.copy_(ours.bias_hh)
        elman.head.load_state_dict(model.head.state_dict())
    x = torch.randn(3, 7, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 3, 5, dtype=torch.float64)  # (L, B, H)
    y, final = model(x, (h0, torch.tensor(0)) if arch == "clockwork" else h0[:, :, None])
    y_elman, final_elman = elman(x, h0)
    torch.testing.assert_close(y, y_elman, atol=1e-10, rtol=0)
    torch.testing.assert_close(h_of(final).reshape(2, 3, 5), final_elman, atol=1e-10, rtol=0)
    weights = torch.randn_like(y)
    grad, = torch.autograd.grad((y * weights).sum(), x)
    grad_elman, = torch.autograd.grad((y_elman * weights).sum(), x)
    torch.testing.assert_close(grad, grad_elman, atol=1e-10, rtol=0)


def reachable_lags(delays, horizon):
    """Lags s >= 0 that are sums of delays (repeats allowed): the only paths from x_{t-s} to h_t."""
    reach = {0}
    for lag in range(1, horizon + 1):
        if any(lag - d in reach for d in delays):
            reach.add(lag)
    return reach


@pytest.mark.parametrize("delays,layers", [("[3]", 2), ("[2,3]", 1), ("[1,4]", 1)])
def test_delay_arcs_carry_exactly_the_lags_they_should(delays, layers):
    """h_t depends on x_{t-s} iff s is a sum of delays: with D = [2, 3], x_{t-1} leaves h_t untouched.

    Checked on the forward pass alone (perturb x_s, compare h_{T-1}): gradients would come from the
    hand-written backward, which gradcheck already holds to the forward."""
    model = build("delay", hidden=4, layers=layers, delays=delays)
    steps = 12
    x = torch.randn(1, steps, 3, dtype=torch.float64)
    last = model.hidden_sequence(x)[0][0, -1]  # (H,)
    reach = reachable_lags(model.delays, steps)
    for s in range(steps):
        moved = x.clone()
        moved[0, s] += 0.5
        change = (model.hidden_sequence(moved)[0][0, -1] - last).abs().max()
        lag = steps - 1 - s
        if lag in reach:
            assert change > 1e-8, f"x at lag {lag} should reach h_t"
        else:
            assert change == 0, f"x at lag {lag} reached h_t through an arc that does not exist"


@pytest.mark.parametrize("delays", ["[3]", "[1,3]"])
def test_delay_state_is_the_history_oldest_first(delays):
    """state[:, :, -d] is h_{-d}: h_0 reads exactly the slots of the listed delays, and the new state shifts."""
    model = build("delay", hidden=3, layers=1, delays=delays)
    state = random_state(model, 2)  # (L, B, Dmax, H)
    x = torch.randn(2, 1, 3, dtype=torch.float64)
    h, new = model.hidden_sequence(x, state)
    read = []
    for k in range(state.shape[2]):
        moved = state.clone()
        moved[:, :, k] += 0.5
        if (model.hidden_sequence(x, moved)[0] != h).any():
            read.append(k)
    assert read == sorted(state.shape[2] - d for d in model.delays)
    torch.testing.assert_close(new[:, :, :-1], state[:, :, 1:], atol=0, rtol=0)  # the window moved one step
    torch.testing.assert_close(new[0, :, -1], h[:, 0], atol=0, rtol=0)


def test_recurrent_inits_apply_to_the_sum_of_the_delay_blocks():
    """init = identity with nD delays: each U_d = I / nD, so a constant state is carried unchanged (IRNN)."""
    model = build("delay", hidden=3, layers=1, delays="[1,2,4]", init="identity")
    for block in model.recurrent_matrices().values():
        torch.testing.assert_close(block, torch.eye(3, dtype=torch.float64) / 3, atol=1e-7, rtol=0)  # set in float32
    clockwork = build("clockwork", hidden=7, layers=1, periods="[1,2,4]", init="radius", init_radius=0.9)
    radius = torch.linalg.eigvals(clockwork.recurrent_matrices()["layer0"].detach()).abs().max()
    assert float(radius) == pytest.approx(0.9)  # the masked matrix's spectrum, not the full one's


def test_backoff_delays_and_state_shape():
    assert backoff_delays(1) == [1] and backoff_delays(8) == [1, 2, 4, 8] and backoff_delays(10) == [1, 2, 4, 8]
    model = build("delay", hidden=3, layers=2)  # defaults: back-off up to 8
    assert model.delays == [1, 2, 4, 8]
    assert model.init_state(5).shape == (2, 5, 8, 3)
    assert set(model.recurrent_matrices()) == {f"layer{i}.d{d}" for i in range(2) for d in (1, 2, 4, 8)}
    assert all(m.shape == (3, 3) for m in model.recurrent_matrices().values())
    assert build("delay", hidden=3, delays="[4,1]").delays == [1, 4]


@pytest.mark.parametrize("periods,t0", [("[1,2,4]", 0), ("[1,2,4]", 3), ("[1,3,4]", 0), ("[2,5]", 7)])
@pytest.mark.parametrize("compiled", [True, False])
def test_clockwork_groups_tick_exactly_on_schedule(periods, t0, compiled):
    """Group g changes at t iff t mod T_g == 0 (t counted from the start of the sequence, here from t0)."""
    model = build("clockwork", hidden=7, layers=1, periods=periods)
    model.compiled = compiled
    layer = model.stack[0]
    state = random_state(model, 3, t0)
    h, final = model.hidden_sequence(torch.randn(3, 13, 3, dtype=torch.float64), state)
    previous = torch.cat([state[0][0][:, None], h[:, :-1]], 1)  # (B, T, H): h_{t-1}
    for g, period in enumerate(model.periods):
        units = slice(layer.bounds[g], layer.bounds[g + 1])
        for i in range(13):
            changed = h[:, i, units] != previous[:, i, units]
            ticks = (t0 + i) % period == 0
            assert bool(changed.all()) if ticks else not bool(changed.any()), (period, t0 + i)
    assert int(final[1]) == t0 + 13


def test_clockwork_connections_run_from_slow_groups_to_fast_ones():
    """U is nonzero exactly where the source's period >= the destination's (block-upper-triangular), and
    one step's Jacobian dh_0/dh_{-1} has the same zero pattern: the forward pass uses only those arcs."""
    model = build("clockwork", hidden=7, layers=1, periods="[1,2,4]")  # groups of 2, 2, 3 units
    period = torch.tensor([1, 1, 2, 2, 4, 4, 4])
    allowed = period[None, :] >= period[:, None]  # [destination i, source j]
    matrix = model.recurrent_matrices()["layer0"]
    assert torch.equal(matrix != 0, allowed)
    assert matrix[0, 6] != 0 and matrix[6, 0] == 0  # the slowest unit feeds the fastest, never the reverse
    assert not matrix[2:4, :2].any() and not matrix[4:, :4].any()  # zero below the diagonal blocks
    assert sum(p.numel() for p in model.stack[0].weight_hh) == int(allowed.sum())  # no masked parameter
    h0 = random_state(model, 1)[0]
    x = torch.randn(1, 1, 3, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(
        lambda h: model.hidden_sequence(x, (h, torch.tensor(0)))[0][0, 0], h0)[:, 0, 0]  # (H, H) at t = 0
    assert torch.equal(jacobian != 0, allowed)


@pytest.mark.parametrize("arch,extra", VARIANTS, ids=IDS)
@pytest.mark.parametrize("chunks", [[5, 4, 4], [1, 6, 2, 3, 1]])
def test_chunks_with_carried_state_equal_one_pass(arch, extra, chunks):
    """Truncated BPTT's forward: a sequence cut into chunks, state carried (and detached), is one long pass."""
    model = build(arch, **extra)
    x = torch.randn(2, sum(chunks), 3, dtype=torch.float64)
    whole, final = model(x)
    outputs, state, start = [], None, 0
    for size in chunks:
        y, state = model(x[:, start:start + size], state)
        state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        outputs.append(y)
        start += size
    torch.testing.assert_close(torch.cat(outputs, 1), whole, atol=1e-12, rtol=0)
    for a, b in zip(state if isinstance(state, tuple) else (state,), final if isinstance(final, tuple) else (final,)):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


@pytest.mark.parametrize("activation", ["tanh", "relu", "relu6", "elu", "softplus", "softsign", "linear"])
def test_hand_written_backward_equals_autograd(activation):
    """DelayRecurrence.backward against autograd through the same loop: inputs, state, every weight."""
    model = build("delay", hidden=4, layers=2, delays="[1,2,5]", activation=activation)
    x = torch.randn(3, 9, 3, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        model.stack[0].bias_ih.add_(3.0)  # push some pre-activations past relu6's 6 and near softplus's 20
    state = (random_state(model, 3) * 8).requires_grad_()
    results = []
    for manual in (True, False):
        model.manual_backward = manual
        y, final = model(x, state)
        weights = torch.randn_like(y, generator=torch.Generator().manual_seed(1))
        loss = (y * weights).sum() + final.square().sum()  # the carried state's gradient path too
        results.append((y, torch.autograd.grad(loss, [x, state, *model.parameters()])))
    torch.testing.assert_close(results[0][0], results[1][0], atol=0, rtol=0)
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


@pytest.mark.parametrize("arch,extra", VARIANTS, ids=IDS)
def test_scripted_loop_equals_eager(arch, extra):
    model = build(arch, **extra)
    x = torch.randn(3, 9, 3, dtype=torch.float64)
    assert_compiled_loop_equals_eager(model, x)
    for loop in (delay_loop, delay_backward_loop, clockwork_loop):
        assert isinstance(scripted(loop), torch.jit.ScriptFunction)


@pytest.mark.parametrize("sets,key", [
    (["model.arch=delay", "model.delays=[1,2,1]"], "model.delays"),
    (["model.arch=delay", "model.delays=[0]"], "model.delays"),
    (["model.arch=clockwork", "model.periods=[1,4,2]"], "model.periods"),
    (["model.arch=clockwork", "model.hidden=3"], "model.groups"),  # 4 groups of 3 units
    (["model.arch=clockwork", "model.hidden=2", "model.periods=[1,2,3]"], "model.periods"),
])
def test_bad_options_are_config_errors(sets, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config.load(None, sets)


@pytest.mark.parametrize("arch,extra", [("delay", {"model__delays": "[1,3]"}), ("clockwork", {"model__groups": 3})])
def test_trains_on_charlm_with_truncated_bptt(tmp_path, arch, extra):
    cfg = tiny_config(tmp_path, model__arch=arch, model__layers=2, model__dropout=0.1, train__lr=0.01,
                      train__algorithm="tbptt", train__tbptt_k1=6, train__tbptt_k2=10, probes__every=2, **extra)
    run = store.create_run(tmp_path / "runs", arch)
    assert Trainer(prepare(cfg), run).train().state == "finished"
    losses = [e["loss"] for e in run.read_events() if e["kind"] == "train"]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
