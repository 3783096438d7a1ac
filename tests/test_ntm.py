"""Neural Turing machine: each addressing stage against hand-computed values, gradients, chunking, training."""

from __future__ import annotations

import json
import math

import pytest
import torch

from rnnlab import config, store
from rnnlab.errors import ConfigError
from rnnlab.models import TaskSpec, build_model, detach_state
from rnnlab.models.ntm_memory import address, circular_shift, content_weights, read, sharpen, write
from rnnlab.probes.heads import MAX_CELLS, heads_event
from rnnlab.train import Trainer, prepare

FEATURES = TaskSpec(input_size=3, output_size=2)
CONTROLLERS = ["lstm", "feedforward"]


@pytest.fixture(autouse=True)
def one_thread():
    """The NTM runs many tiny ops per step; softmax and friends still wake a second OpenMP thread for them,
    and on a busy 2-core box each wake-up waits for a core: 10x slower (gradcheck: 5 s -> 55 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build(controller="lstm", spec=FEATURES, dtype=torch.float64, **extra):
    values = {"hidden": 3, "layers": 1, "memory_slots": 4, "memory_width": 3, "shift_range": 1, **extra}
    sets = ["model.arch=ntm", f"model.controller={controller}"] + [f"model.{k}={v}" for k, v in values.items()]
    torch.manual_seed(0)
    return build_model(config.load(None, sets).model, spec).to(dtype)


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_every_weighting_is_a_distribution_at_every_step(controller):
    model = build(controller, hidden=8, memory_slots=7, memory_width=5, read_heads=2, write_heads=3,
                  shift_range=2, layers=2, dtype=torch.float32).eval()
    with torch.no_grad():  # large head weights drive the heads into saturation: the clip and eps must hold
        model.head_params.weight.mul_(30.0)
    x = torch.randn(4, 12, 3) * 3
    model(x)
    shapes = {"read": (4, 12, 2, 7), "write": (4, 12, 3, 7)}
    for kind, weights in model.last_addressing.items():
        assert weights.shape == shapes[kind] and weights.device.type == "cpu" and not weights.requires_grad
        assert bool((weights >= 0).all()) and bool(weights.isfinite().all())
        torch.testing.assert_close(weights.sum(-1), torch.ones(shapes[kind][:3]), atol=1e-6, rtol=0)


def test_training_mode_keeps_no_addressing_copy():
    model = build().train()
    model(torch.randn(2, 3, 3, dtype=torch.float64))
    assert model.last_addressing is None


def test_content_addressing_is_a_softmax_of_scaled_cosines():
    memory = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-2.0, 0.0]]], dtype=torch.float64)  # (1, 4, 2)
    key = torch.tensor([[[3.0, 0.0]]], dtype=torch.float64)  # (1, 1, 2): the norm of the key must not matter
    beta = torch.tensor([[2.0]], dtype=torch.float64)
    cosines = [1.0, 0.0, 1 / math.sqrt(2), -1.0]
    exps = [math.exp(2.0 * c) for c in cosines]
    expected = torch.tensor([[[e / sum(exps) for e in exps]]], dtype=torch.float64)
    torch.testing.assert_close(content_weights(memory, key, beta), expected, atol=1e-8, rtol=0)


@pytest.mark.parametrize("slot", [0, 3, 4])  # slot 4 wraps around to 0
@pytest.mark.parametrize("by", [1, -1, 2])
def test_a_one_hot_shift_moves_a_one_hot_weighting(slot, by):
    weights = torch.zeros(1, 1, 5, dtype=torch.float64)
    weights[..., slot] = 1.0
    shift = torch.zeros(1, 1, 5, dtype=torch.float64)  # S = 2: shifts -2..2
    shift[..., 2 + by] = 1.0
    expected = torch.zeros_like(weights)
    expected[..., (slot + by) % 5] = 1.0
    torch.testing.assert_close(circular_shift(weights, shift), expected, atol=0, rtol=0)


@pytest.mark.parametrize("span", [0, 1, 3])
def test_circular_shift_is_the_papers_convolution(span):
    generator = torch.Generator().manual_seed(1)
    weights = torch.rand(2, 3, 7, dtype=torch.float64, generator=generator).softmax(-1)
    shift = torch.rand(2, 3, 2 * span + 1, dtype=torch.float64, generator=generator).softmax(-1)
    expected = torch.zeros_like(weights)  # eq. (8): w~(i) = sum_j w(j) s(i - j), s indexed -S..S modulo N
    for i in range(7):
        for j in range(7):
            for k in range(-span, span + 1):
                if (i - j - k) % 7 == 0:
                    expected[..., i] += weights[..., j] * shift[..., k + span]
    torch.testing.assert_close(circular_shift(weights, shift), expected, atol=1e-14, rtol=0)


def test_sharpening_renormalises_powers_and_tends_to_argmax():
    weights = torch.tensor([[[0.1, 0.5, 0.3, 0.1]]], dtype=torch.float64)
    for gamma in (1.0, 2.5):
        powered = weights ** gamma
        torch.testing.assert_close(sharpen(weights, torch.tensor([[gamma]], dtype=torch.float64)),
                                   powered / powered.sum(-1, keepdim=True), atol=1e-10, rtol=0)
    argmax = torch.tensor([[[0.0, 1.0, 0.0, 0.0]]], dtype=torch.float64)
    torch.testing.assert_close(sharpen(weights, torch.tensor([[100.0]], dtype=torch.float64)), argmax,
                               atol=1e-10, rtol=0)
    tiny = torch.tensor([[[0.0, 1e-300, 1.0, 0.0]]], dtype=torch.float64)  # underflowing entries stay finite
    assert bool(sharpen(tiny, torch.tensor([[50.0]], dtype=torch.float64)).isfinite().all())


def test_one_whole_addressing_step_against_plain_arithmetic():
    """Eqs. (5)-(9) in order, in plain Python on 4 slots: content, interpolation, shift by +1 mostly, sharpening."""
    memory = [[1.0, 0.0], [0.0, 2.0], [-1.0, 1.0], [0.5, 0.5]]
    key, beta, g, shifts, gamma = [1.0, 1.0], 3.0, 0.7, [0.1, 0.2, 0.7], 2.0  # shifts: s(-1), s(0), s(+1)
    previous = [0.1, 0.6, 0.2, 0.1]
    cos = [sum(k * m for k, m in zip(key, row)) / (math.hypot(*key) * math.hypot(*row)) for row in memory]
    exps = [math.exp(beta * c) for c in cos]
    gated = [g * e / sum(exps) + (1 - g) * p for e, p in zip(exps, previous)]
    shifted = [sum(gated[(i - k) % 4] * shifts[k + 1] for k in (-1, 0, 1)) for i in range(4)]
    powered = [w ** gamma for w in shifted]
    expected = torch.tensor([[[w / sum(powered) for w in powered]]], dtype=torch.float64)
    def batched(values, dims):  # one batch, one head: (1, 1, ...) or (1, N, M) for the memory
        tensor = torch.tensor(values, dtype=torch.float64)
        return tensor.reshape((1,) * (dims - tensor.dim()) + tuple(tensor.shape))

    got = address(batched(memory, 3), batched(previous, 3), batched(key, 3), batched(beta, 2), batched(g, 2),
                  batched(shifts, 3), batched(gamma, 2))
    torch.testing.assert_close(got, expected, atol=1e-7, rtol=0)  # the cosine's eps: ~1e-8 relative


def test_erase_clears_the_addressed_slot_and_add_writes_there():
    generator = torch.Generator().manual_seed(2)
    memory = torch.randn(1, 4, 3, dtype=torch.float64, generator=generator)
    one_hot = torch.tensor([[[0.0, 0.0, 1.0, 0.0]]], dtype=torch.float64)  # (B, W, N)
    ones, zeros = torch.ones(1, 1, 3, dtype=torch.float64), torch.zeros(1, 1, 3, dtype=torch.float64)
    added = torch.tensor([[[0.5, -0.25, 0.75]]], dtype=torch.float64)
    erased = write(memory, one_hot, ones, zeros)
    assert torch.equal(erased[0, 2], torch.zeros(3))
    assert torch.equal(erased[0, [0, 1, 3]], memory[0, [0, 1, 3]])
    rewritten = write(memory, one_hot, ones, added)  # erase then add in one step: the slot holds a
    assert torch.equal(rewritten[0, 2], added[0, 0]) and torch.equal(rewritten[0, [0, 1, 3]], memory[0, [0, 1, 3]])
    assert torch.equal(read(rewritten, one_hot), added)


def test_two_write_heads_multiply_their_erasures_and_sum_their_additions():
    generator = torch.Generator().manual_seed(3)
    memory = torch.randn(2, 5, 3, dtype=torch.float64, generator=generator)
    weights = torch.rand(2, 2, 5, dtype=torch.float64, generator=generator).softmax(-1)
    erase = torch.rand(2, 2, 3, dtype=torch.float64, generator=generator)
    add = torch.randn(2, 2, 3, dtype=torch.float64, generator=generator)
    w, e, a = weights[..., None], erase[:, :, None, :], add[:, :, None, :]  # (B, W, N, 1), (B, W, 1, M)
    expected = memory * (1 - w[:, 0] * e[:, 0]) * (1 - w[:, 1] * e[:, 1]) + w[:, 0] * a[:, 0] + w[:, 1] * a[:, 1]
    torch.testing.assert_close(write(memory, weights, erase, add), expected, atol=1e-14, rtol=0)
    swapped = write(memory, weights.flip(1), erase.flip(1), add.flip(1))
    torch.testing.assert_close(swapped, expected, atol=1e-14, rtol=0)


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_gradcheck_through_the_whole_machine(controller):
    """Autograd against finite differences for inputs, initial memory and every parameter, over 3 steps."""
    model = build(controller)
    names = [name for name, _ in model.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in model.parameters()]
    x = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)
    state = model.init_state(2)
    memory = (torch.randn_like(state[0]) * 0.5).requires_grad_()

    def run(x, memory, *params):
        y, final = torch.func.functional_call(model, dict(zip(names, params)), (x, (memory, *state[1:])))
        return y, final[0], final[2], final[3]  # outputs, memory and both weightings

    assert torch.autograd.gradcheck(run, (x, memory, *params), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_chunks_with_carried_state_equal_one_pass(controller):
    model = build(controller, read_heads=2, write_heads=2).eval()
    x = torch.randn(2, 9, 3, dtype=torch.float64)
    whole, whole_state = model(x)
    first, state = model(x[:, :4])
    second, chunked_state = model(x[:, 4:], detach_state(state))
    torch.testing.assert_close(torch.cat([first, second], 1), whole, atol=1e-12, rtol=0)
    assert len(chunked_state) == len(whole_state) == (6 if controller == "lstm" else 4)
    for a, b in zip(chunked_state, whole_state):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_recurrent_matrices_are_the_controllers():
    lstm, feedforward = build("lstm", layers=2), build("feedforward")
    assert {k: tuple(v.shape) for k, v in lstm.recurrent_matrices().items()} == {"layer0": (12, 3), "layer1": (12, 3)}
    assert lstm.recurrent_matrices()["layer1"] is lstm.controller[1].weight_hh
    assert feedforward.recurrent_matrices() == {}


@pytest.mark.parametrize("sets,key", [
    (["model.memory_slots=4", "model.shift_range=2"], "model.shift_range"),
    (["model.controller=feedforward", "model.init=orthogonal"], "model.init"),
    (["model.read_heads=0"], "model.read_heads"),
    (["model.memory_init_value=nan"], "model.memory_init_value"),
    (["model.memory_init=zeros"], "model.memory_init"),
    (["model.controller=feedforward", "model.forget_bias=0.5"], "model.forget_bias"),
])
def test_bad_options_are_config_errors(sets, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config.load(None, ["model.arch=ntm", *sets])


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_trains_on_the_copy_task(tmp_path, controller):
    sets = ["device=cpu", "model.arch=ntm", f"model.controller={controller}", "model.hidden=12", "model.embed=4",
            "model.memory_slots=6", "model.memory_width=4", "task.name=copy", "task.length=3", "task.copy_len=2",
            "train.steps=12", "train.batch_size=8", "train.lr=0.01", "train.eval_every=6", "train.eval_batches=1",
            "train.checkpoint_every=6", "probes.every=4"]
    prepared = prepare(config.load(None, sets))
    run = store.create_run(tmp_path / "runs", "ntm")
    assert Trainer(prepared, run).train().state == "finished"
    events = run.read_events()
    losses = [e["loss"] for e in events if e["kind"] == "train"]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    assert "error_rate" in [e for e in events if e["kind"] == "eval"][-1]
    assert prepared.model.last_addressing["read"].shape == (8, 7, 1, 6)  # the last evaluation batch: T = 3 + 2*2
    heads = [e for e in events if e["kind"] == "heads"]
    assert [e["step"] for e in heads] == [4, 8, 12] and heads[-1]["steps"] == 7 and heads[-1]["slots"] == 6
    assert len(heads[-1]["read"][0]) == 7 and len(heads[-1]["output"]) == 7


def test_constant_memory_init_fills_memory_and_first_reads():
    default = build().init_state(2)
    assert bool((default[0] == 1e-6).all()) and bool((default[1] == 1e-6).all())  # Collier & Beel's constant
    first = torch.zeros(2, 1, 4, dtype=torch.float64)
    first[..., 0] = 1.0
    assert torch.equal(default[2], first) and torch.equal(default[3], first)  # one-hot on slot 0
    model = build(memory_init_value=0.5).eval()
    memory, reads = model.init_state(3)[:2]
    assert bool((memory == 0.5).all()) and bool((reads == 0.5).all())
    _, after = model(torch.randn(3, 1, 3, dtype=torch.float64))
    # the first step reads M_0 (reads come before writes): any distribution over constant slots reads the constant
    torch.testing.assert_close(after[1], torch.full((3, 1, 3), 0.5, dtype=torch.float64), atol=1e-12, rtol=0)


def test_learned_initial_state_gets_gradients_and_is_what_init_state_uses():
    model = build(memory_init="learned", initial_reads="learned", initial_weights="learned", read_heads=2)
    memory, reads, read_w, write_w, *_ = model.init_state(2)
    torch.testing.assert_close(memory[1], torch.tanh(model.memory_bias), atol=0, rtol=0)
    torch.testing.assert_close(reads[0], torch.tanh(model.reads_bias), atol=0, rtol=0)
    torch.testing.assert_close(torch.cat([read_w, write_w], 1)[0], model.weights_bias.softmax(-1), atol=0, rtol=0)
    torch.testing.assert_close(read_w.sum(-1), torch.ones(2, 2, dtype=torch.float64), atol=1e-12, rtol=0)
    y, _ = model(torch.randn(2, 4, 3, dtype=torch.float64))
    y.square().sum().backward()
    for name in ("memory_bias", "reads_bias", "weights_bias"):
        grad = getattr(model, name).grad
        assert grad is not None and bool(grad.isfinite().all()) and float(grad.abs().max()) > 0, name


def test_random_memory_is_drawn_once_saved_and_draws_no_rng():
    model = build(memory_init="random")
    assert "random_memory" in model.state_dict() and "memory_bias" not in model.state_dict()
    rng = torch.get_rng_state()
    a, b = model.init_state(2)[0], model.init_state(2)[0]
    assert torch.equal(torch.get_rng_state(), rng)  # probes and evaluations must not move the training RNG
    assert torch.equal(a, b) and torch.equal(a[0], a[1]) and float(a.std()) > 0.1  # not constant, same each time
    torch.manual_seed(7)
    other = build_model(model.options, FEATURES).to(torch.float64)  # another draw ...
    assert not torch.equal(other.init_state(1)[0][0], a[0])
    other.load_state_dict(model.state_dict())  # ... until the checkpoint's memory is loaded
    assert torch.equal(other.init_state(1)[0][0], a[0])


def test_default_initial_state_has_no_parameters_so_old_checkpoints_load():
    names = {name for name, _ in build().named_parameters()}
    assert not names & {"memory_bias", "reads_bias", "weights_bias"}
    assert not any(name.startswith("random") for name, _ in build().named_buffers())


def test_heads_event_is_the_first_examples_addressing_rounded():
    model = build(spec=TaskSpec(input_size=5, output_size=5, vocab_size=5), read_heads=2, embed=4).train()
    x, y = torch.randint(0, 5, (3, 6)), torch.randint(0, 5, (3, 6))
    event = heads_event(model, x, y)
    assert model.training  # the mode it found
    with torch.no_grad():
        out, _ = model.eval()(x)
    expected = model.last_addressing  # (B, T, R, N) and (B, T, W, N)
    assert event["steps"] == 6 and event["slots"] == 4
    for kind in ("read", "write"):
        mine = torch.tensor(event[kind])  # (heads, T, N), whole percent
        assert mine.dtype == torch.int64 and bool(((mine >= 0) & (mine <= 100)).all())
        torch.testing.assert_close(mine / 100, expected[kind][0].transpose(0, 1).float(), atol=0.005 + 1e-6, rtol=0)
    assert len(event["read"]) == 2 and len(event["write"]) == 1
    assert event["input"] == x[0].tolist() and event["target"] == y[0].tolist()
    assert event["output"] == out[0].argmax(-1).tolist()


def test_heads_event_keeps_every_step_of_the_presets_machine():
    model = build(memory_slots=64, memory_width=8, hidden=4)  # ntm-copy: 64 slots, one head each
    event = heads_event(model, torch.randn(1, 30, 3, dtype=torch.float64), torch.randn(1, 30, 2))
    assert len(event["read"][0]) == len(event["write"][0]) == 30 and len(json.dumps(event)) < 12_000


def test_heads_event_stays_a_few_kilobytes_for_a_large_machine():
    model = build(memory_slots=200, read_heads=6, write_heads=5, hidden=4)
    event = heads_event(model, torch.randn(1, 300, 3, dtype=torch.float64), torch.randn(1, 300, 2))
    cells = sum(len(row) for kind in ("read", "write") for head in event[kind] for row in head)
    assert len(event["read"]) == len(event["write"]) == 4 and len(event["read"][0][0]) == 128
    assert cells <= MAX_CELLS and len(json.dumps(event)) < 16_000
    assert event["steps"] == 300 and event["slots"] == 200 and "input" not in event and "target" not in event


def test_lstm_controller_starts_with_the_forget_bias():
    """As the LSTM arch and Collier & Beel's controller: the forget gate's biases sum to forget_bias at build."""
    for value in (1.0, 0.0):
        model = build(hidden=5, layers=2, forget_bias=value)
        for cell in model.controller:
            torch.testing.assert_close(cell.bias_ih[5:10] + cell.bias_hh[5:10],
                                       torch.full((5,), value, dtype=torch.float64), atol=0, rtol=0)
            assert not torch.equal(cell.bias_ih[:5], torch.zeros(5, dtype=torch.float64))  # other gates: torch's init


def test_trained_constant_memory_starts_at_the_constant_and_breaks_the_slots_symmetry():
    """Frozen constant memory gives every slot the same content, so only the weightings tell slots apart;
    trained, each slot's start gets its own gradient (the one-hot start weights slot 0 first)."""
    model = build(memory_init_trained="true", memory_init_value=0.25)
    memory = model.init_state(2)[0]  # (B, N, M)
    torch.testing.assert_close(memory, torch.full((2, 4, 3), 0.25, dtype=torch.float64), atol=0, rtol=0)
    output, _ = model(torch.randn(2, 5, 3, dtype=torch.float64))
    output.square().sum().backward()
    grads = model.memory_start.grad  # (N, M)
    assert bool(grads.isfinite().all()) and not torch.allclose(grads[0], grads[1])
    assert "memory_start" not in dict(build().named_parameters())  # off by default: old checkpoints load
    with pytest.raises(ConfigError, match="memory_init_trained"):
        build(memory_init="random", memory_init_trained="true")
