"""The encoder-decoder: equal to hand-written equations, gradchecked, blind to padding, decoding as trained."""

from __future__ import annotations

import pytest
import torch

from rnnlab import config, store
from rnnlab.errors import ConfigError
from rnnlab.models import TaskSpec, build_model
from rnnlab.models.seq2seq import PAD, Decoded
from rnnlab.train import Trainer, prepare

EOS = 1
SPEC = TaskSpec(input_size=7, output_size=6, vocab_size=7, eos=EOS)  # source ids 1..6, targets 2..5 + EOS
# two sources of different lengths, right-padded; targets end in EOS then PAD
X = torch.tensor([[3, 5, 2, 6], [4, 1, 0, 0]])
Y = torch.tensor([[2, 5, 3, EOS], [4, EOS, 0, 0]])


def build(attention="bahdanau", cell="gru", hidden=3, layers=1, embed=2, bidirectional=True, spec=SPEC, **extra):
    sets = [f"model.{k}={v}" for k, v in dict(arch="seq2seq", attention=attention, cell=cell, hidden=hidden,
                                                   layers=layers, embed=embed, **extra).items()]
    sets.append(f"model.bidirectional_encoder={'true' if bidirectional else 'false'}")
    torch.manual_seed(0)
    return build_model(config.load(None, sets).model, spec).double().eval()


# -- a hand-written reference: one sentence at a time, no padding, no packing, no fused kernels -------
def cell_step(kind, x, state, w_ih, w_hh, b_ih, b_hh):
    """torch's equations for one step of one layer; state is h, or (h, c) for an LSTM."""
    h = state[0] if kind == "lstm" else state
    gi, gh = w_ih @ x + b_ih, w_hh @ h + b_hh
    if kind == "elman":
        return torch.tanh(gi + gh)
    if kind == "gru":
        (ir, iz, in_), (hr, hz, hn) = gi.chunk(3), gh.chunk(3)
        r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
        return (1 - z) * torch.tanh(in_ + r * hn) + z * h
    i, f, g, o = (gi + gh).chunk(4)
    c = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def weights(rnn, suffix):
    return [getattr(rnn, f"{name}_l0{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def reference(model, source: list[int], target: list[int]):
    """Logits (U, V) and attention weights (U, n) of one real source of n tokens, teacher-forced."""
    kind, hidden = model.options.cell, model.options.hidden
    zero = torch.zeros(hidden, dtype=torch.float64)
    start = (zero, zero) if kind == "lstm" else zero
    top = (lambda s: s[0]) if kind == "lstm" else (lambda s: s)
    embedded = model.source_embed.weight[source]  # (n, E)
    forward, backward, state = [], [], start
    for e in embedded:
        state = cell_step(kind, e, state, *weights(model.encoder, ""))
        forward.append(top(state))
    state = start
    for e in embedded.flip(0):
        state = cell_step(kind, e, state, *weights(model.encoder, "_reverse"))
        backward.insert(0, top(state))
    states = [torch.cat([f, b]) for f, b in zip(forward, backward)]  # h_j, (2H,) each
    summary = torch.cat([forward[-1], backward[0]])
    s = torch.tanh(model.bridge.weight @ summary + model.bridge.bias)  # s_0
    state = (s, zero) if kind == "lstm" else s
    attention = model.attention
    logits, attended, previous = [], [], model.bos
    for token in target:
        e = model.target_embed.weight[previous]
        if attention is None:
            context = summary
        else:  # e_j = v . tanh(W s_{t-1} + U h_j + b), softmax over the n real positions only
            scores = torch.stack([attention.score.weight[0] @ torch.tanh(
                attention.query.weight @ top(state) + attention.key.weight @ h + attention.key.bias) for h in states])
            a = scores.exp() / scores.exp().sum()
            context = sum(a_j * h for a_j, h in zip(a, states))
            attended.append(a)
        state = cell_step(kind, torch.cat([e, context]), state, *weights(model.decoder, ""))
        logits.append(model.head.weight @ torch.cat([top(state), context, e]) + model.head.bias)
        previous = token
    return torch.stack(logits), (torch.stack(attended) if attended else None)


@pytest.mark.parametrize("cell", ["gru", "lstm", "elman"])
@pytest.mark.parametrize("attention", ["bahdanau", "none"])
def test_model_equals_the_hand_written_equations(attention, cell):
    model = build(attention, cell)
    with torch.no_grad():
        logits, _ = model(X, targets=Y)  # (B, U, V)
    for row in range(X.shape[0]):
        source = [t for t in X[row].tolist() if t != PAD]
        target = [t for t in Y[row].tolist() if t != PAD]
        expected, attended = reference(model, source, target)
        torch.testing.assert_close(logits[row, :len(target)], expected, atol=1e-12, rtol=0)
        if attention == "none":
            assert model.last_attention is None
            continue
        weights_ = model.last_attention[row, :len(target)]  # (U, S)
        torch.testing.assert_close(weights_[:, :len(source)], attended, atol=1e-12, rtol=0)
        assert bool((weights_[:, len(source):] == 0).all())  # PAD: exactly 0, not just small
        torch.testing.assert_close(weights_.sum(-1), torch.ones(len(target), dtype=torch.float64), atol=1e-12, rtol=0)


@pytest.mark.parametrize("attention", ["bahdanau", "none"])
def test_gradcheck(attention):
    """Autograd through packing, attention and both decoder paths against finite differences."""
    model = build(attention, "gru", layers=2)
    names = [name for name, _ in model.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in model.parameters()]

    def run(*values):
        return torch.func.functional_call(model, dict(zip(names, values)), (X,), {"targets": Y})[0]

    assert torch.autograd.gradcheck(run, params, eps=1e-6, atol=1e-6, fast_mode=True)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("attention", ["bahdanau", "none"])
def test_outputs_do_not_depend_on_the_padding_length(attention, cell):
    model = build(attention, cell, hidden=4, layers=2)
    padded = torch.cat([X, torch.zeros(2, 3, dtype=torch.long)], dim=1)  # (B, S + 3)
    with torch.no_grad():
        short, _ = model(X, targets=Y)
        attention_short = model.last_attention
        long, _ = model(padded, targets=Y)
    torch.testing.assert_close(long, short, atol=1e-12, rtol=0)
    if attention == "bahdanau":
        assert model.last_attention.shape == (2, 4, 7) and not model.last_attention.requires_grad
        torch.testing.assert_close(model.last_attention[:, :, :4], attention_short, atol=1e-12, rtol=0)
        assert bool((model.last_attention[:, :, 4:] == 0).all())


@pytest.mark.parametrize("attention", ["bahdanau", "none"])
def test_decoding_steps_as_teacher_forcing_does(attention):
    """decode's first logits are forward's at step 0; fed the targets, `step` reproduces every step."""
    model = build(attention, "lstm", hidden=4, layers=2)
    with torch.no_grad():
        logits, _ = model(X, targets=Y)  # (B, U, V)
        decoded = model.decode(X, max_len=6)
        torch.testing.assert_close(decoded.logits[:, 0], logits[:, 0], atol=1e-12, rtol=0)
        assert torch.equal(decoded.ids[:, 0], logits[:, 0].argmax(-1))
        memory = model.encode(X)
        carry, tokens = model.initial_carry(memory), torch.full((2,), model.bos)
        for t in range(Y.shape[1]):
            step_logits, carry, _ = model.step(tokens, carry, memory)
            torch.testing.assert_close(step_logits, logits[:, t], atol=1e-12, rtol=0)
            tokens = Y[:, t]
    if attention == "bahdanau":
        assert model.last_attention.shape == (2, decoded.ids.shape[1], 4)  # decode keeps its weights too


@pytest.mark.parametrize("attention", ["bahdanau", "none"])
def test_scheduled_sampling_feeds_the_truth_or_the_models_own_samples(attention):
    model = build(attention, "gru", hidden=4, layers=2).train()  # dropout 0: training mode changes nothing else
    with torch.no_grad():
        forced, _ = model(X, targets=Y)
        model.teacher_forcing = 1.0 - 1e-12  # every coin says truth: the stepped path equals the forced one
        torch.testing.assert_close(model(X, targets=Y)[0], forced, atol=1e-12, rtol=0)
        model.teacher_forcing = 0.0  # always its own sample: make that token 3 whatever the input
        model.head.bias[3] = 60.0
        own, _ = model(X, targets=Y)
        model.teacher_forcing = 1.0
        fed_threes, _ = model(X, targets=torch.full_like(Y, 3))  # what it read: BOS, then 3, 3, ...
    torch.testing.assert_close(own, fed_threes, atol=1e-12, rtol=0)
    assert not torch.allclose(own, model(X, targets=Y)[0].detach())


def test_greedy_stops_at_eos_and_pads_finished_rows():
    model = build()
    script = iter([[EOS, 3], [2, EOS], [4, 4]])  # row 0 ends at once, row 1 after one token

    def scripted_step(tokens, carry, memory):
        logits = torch.full((2, SPEC.output_size), -5.0, dtype=torch.float64)
        logits[[0, 1], next(script)] = 5.0
        return logits, carry, torch.full((2, 4), 0.25, dtype=torch.float64)

    model.step = scripted_step
    decoded = model.decode(X, max_len=5)
    assert isinstance(decoded, Decoded)
    assert decoded.ids.tolist() == [[EOS, PAD], [3, EOS]]  # stopped after 2 of 5 steps
    assert decoded.attention[0, 1].abs().sum() == 0  # a finished row attends to nothing
    never_ends = build()
    with torch.no_grad():
        never_ends.head.bias[EOS] = -1e3
    assert never_ends.decode(X, max_len=3).ids.shape == (2, 3)


def test_refusals():
    model = build()
    with pytest.raises(ValueError, match="carry no state"):
        model(X, torch.zeros(1), targets=Y)
    with pytest.raises(ValueError, match="needs the targets"):
        model(X)
    with pytest.raises(ConfigError, match="model.arch = 'seq2seq': needs a sequence-to-sequence task"):
        build(spec=TaskSpec(input_size=7, output_size=6, vocab_size=7))
    with pytest.raises(ConfigError, match="model.attention = 'luong': not one of the choices"):
        build(attention="luong")
    assert model.carries_state is False and model.takes_targets is True and model.init_state(2) is None


def test_recurrent_matrices_and_options():
    model = build(cell="lstm", layers=2, bidirectional=False, attention_size=5)
    assert list(model.recurrent_matrices()) == ["encoder.layer0", "encoder.layer1", "decoder.layer0", "decoder.layer1"]
    assert model.attention.query.weight.shape == (5, 3) and model.attention.key.weight.shape == (5, 3)
    assert list(build().recurrent_matrices()) == ["encoder.layer0", "encoder.layer0.reverse", "decoder.layer0"]
    assert float(model.decoder.bias_ih_l0.detach()[3:6].min()) == 1.0  # the LSTM forget gates start open


def seq2seq_config(**extra):
    values = {"device": "cpu", "model.arch": "seq2seq", "model.hidden": 8, "model.layers": 1, "model.embed": 4,
              "task.name": "reverse", "task.max_len": 5, "train.steps": 6, "train.batch_size": 8,
              "train.eval_every": 3, "train.eval_batches": 2, "train.checkpoint_every": 3, **extra}
    return config.load(None, [f"{k}={v}" for k, v in values.items()])


@pytest.mark.parametrize("schedule", ["none", "linear"])
def test_trains_and_evaluates_with_free_running_decoding(tmp_path, schedule):
    prepared = prepare(seq2seq_config(**{"train.scheduled_sampling": schedule, "train.ss_k": 4}))
    outcome = Trainer(prepared, store.create_run(tmp_path / "runs", "s2s")).train()
    assert outcome.state == "finished" and 0 <= outcome.final["token_acc"] <= 1
    task, model = prepared.task, prepared.model
    totals, right = {}, 0
    for x, y, mask in task.eval_batches(8, 2):  # what the trainer's evaluation adds up, batch by batch
        for key, value in task.free_running_stats(model, x, y, mask).items():
            totals[key] = totals.get(key, 0.0) + value
        guesses = model.decode(x, max_len=y.shape[1] + 4).ids
        right += sum(task.target_tokens(g) == task.target_tokens(a) for g, a in zip(guesses.tolist(), y.tolist()))
    summary = task.eval_summary(totals)
    assert summary["exact"] == right / 16 and 0 <= summary["bleu"] <= 100
    assert {key for key in summary if key.startswith("exact@")} <= {"exact@3", "exact@4", "exact@5"}


def test_a_task_without_eos_is_refused_before_a_run_exists():
    with pytest.raises(ConfigError, match="needs a sequence-to-sequence task"):
        prepare(config.load(None, ["model.arch=seq2seq", "task.name=latch", "device=cpu"]))
