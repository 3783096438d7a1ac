"""Probes: each one checked against a quantity known independently."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rnnlab import config, store
from rnnlab.models import TaskSpec, build_model
from rnnlab.models.unrolled import unrolled_forward
from rnnlab.probes.flow import gate_saturation, gradient_flow, gradient_groups
from rnnlab.probes.spectra import jacobian_spectra, matrix_spectrum, recurrent_blocks
from rnnlab.train import Trainer, prepare

from tiny import tiny_config

SPEC = TaskSpec(input_size=7, output_size=7, vocab_size=7)


def model_for(arch, hidden=6, layers=1, **extra):
    sets = [f"model.arch={arch}", f"model.hidden={hidden}", f"model.layers={layers}", "model.embed=4"]
    sets += [f"model.{k}={v}" for k, v in extra.items()]
    torch.manual_seed(0)
    return build_model(config.load(None, sets).model, SPEC).double().eval()


def elman_with_radius(radius: float, hidden=6, steps=12, nonlinearity="tanh"):
    """An Elman net whose W_hh is `radius` times an orthogonal matrix (all |eigenvalues| = radius)."""
    model = model_for("elman", hidden=hidden)
    q, _ = torch.linalg.qr(torch.randn(hidden, hidden, dtype=torch.float64))
    with torch.no_grad():
        model.rnn.weight_hh_l0.copy_(radius * q)
    model.options.nonlinearity = nonlinearity  # the unrolled form honours 'linear'
    return model, torch.randint(0, 7, (3, steps))


def test_matrix_spectrum_of_a_known_matrix():
    m = torch.tensor([[0.0, -1.0], [2.0, 0.0]])  # eigenvalues ±i√2, singular values 2 and 1
    s = matrix_spectrum(m)
    assert s["radius"] == pytest.approx(2 ** 0.5) and s["sv_max"] == pytest.approx(2.0) and s["sv_min"] == pytest.approx(1.0)
    pairs = sorted(zip(s["eig_re"], s["eig_im"]))  # events keep 5 significant digits
    assert pairs == [(0.0, pytest.approx(-(2 ** 0.5), rel=1e-4)), (0.0, pytest.approx(2 ** 0.5, rel=1e-4))]
    diag = matrix_spectrum(torch.diag(torch.tensor([0.5, -3.0, 2.0])))
    assert diag["radius"] == 3.0 and sorted(diag["eig_re"]) == [-3.0, 0.5, 2.0]


def test_gate_blocks_are_split_out():
    lstm = model_for("lstm", layers=2)
    blocks = recurrent_blocks(lstm)
    assert sorted(blocks) == sorted(f"layer{l}.{g}" for l in (0, 1) for g in ("input", "forget", "cell", "output"))
    torch.testing.assert_close(blocks["layer1.forget"], lstm.rnn.weight_hh_l1[6:12])
    assert set(recurrent_blocks(model_for("gru"))) == {"layer0.reset", "layer0.update", "layer0.new"}


def test_gradient_flow_equals_autograd_on_a_hand_built_elman():
    model, x = elman_with_radius(0.9)
    y = torch.randint(0, 7, x.shape)
    trace = unrolled_forward(model, x)
    per_token = F.cross_entropy(trace.output.transpose(1, 2), y, reduction="none")  # (B, T)
    flow = gradient_flow(trace, per_token.mean(), per_token[:, -1].mean())["layer0"]
    # Independent computation: an explicit loop with the hidden states as leaves we perturb.
    W, U = model.rnn.weight_ih_l0, model.rnn.weight_hh_l0
    b = model.rnn.bias_ih_l0 + model.rnn.bias_hh_l0
    e = model.embed(x)  # (B, T, E)
    hs, h = [], torch.zeros(3, 6, dtype=torch.float64)
    for t in range(x.shape[1]):
        h = torch.tanh(e[:, t] @ W.T + h @ U.T + b)
        h.retain_grad()
        hs.append(h)
    logits = model.head(torch.stack(hs, 1))
    F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean().backward()
    expected = [float(h.grad.norm()) for h in hs]
    assert flow["total"] == pytest.approx(expected, rel=1e-4)
    assert flow["last"][-1] > 0 and flow["last"][0] > 0


@pytest.mark.parametrize("radius,grows", [(0.5, False), (2.0, True)])
def test_gradient_flow_decays_or_grows_geometrically_with_the_radius(radius, grows):
    model, x = elman_with_radius(radius, steps=10, nonlinearity="linear")
    trace = unrolled_forward(model, x)
    last = trace.output[:, -1].sum()  # a loss at the last step only
    flow = gradient_flow(trace, last, last)["layer0"]["last"]
    # Linear units, W_hh = r Q: dL/dh_t = (r Q^T)^(T-t) dL/dh_T, so each step back multiplies the norm by r.
    ratios = [flow[t - 1] / flow[t] for t in range(1, len(flow))]
    assert ratios == pytest.approx([radius] * len(ratios), rel=1e-4)  # 5 significant digits kept
    assert (flow[0] > flow[-1]) == grows


def test_jacobian_spectrum_of_a_linear_elman_is_the_scaled_identity_spectrum():
    model, x = elman_with_radius(0.8, steps=9, nonlinearity="linear")
    trace = unrolled_forward(model, x)
    jac = jacobian_spectra(model, trace, layer=0, steps=5, top=3)
    assert jac["t"] == [4, 5, 6, 7, 8]
    for row in jac["sv"]:  # J_t = W_hh = 0.8 Q: every singular value 0.8
        assert row == pytest.approx([0.8] * 3, rel=1e-4)
    expected = [(k + 1) * math.log(0.8) for k in range(5)]
    assert jac["log_product_norm"] == pytest.approx(expected, rel=1e-4)


def test_lstm_jacobian_matches_finite_differences():
    model = model_for("lstm", hidden=4)
    x = torch.randint(0, 7, (2, 6))
    trace = unrolled_forward(model, x)
    jac = jacobian_spectra(model, trace, layer=0, steps=1, top=8)
    from rnnlab.models.unrolled import cell_step, layer_weights

    w = layer_weights(model, 0)
    h, c = trace.hidden[0][4][0:1], trace.cells[0][4][0:1]
    inp = trace.inputs[0:1, 5]
    s0 = torch.cat([h, c], -1).detach()
    eps, cols = 1e-6, []
    for k in range(8):
        d = torch.zeros_like(s0)
        d[0, k] = eps
        plus = torch.cat(cell_step("lstm", w, inp, ((s0 + d)[:, :4], (s0 + d)[:, 4:]))[1], -1)
        minus = torch.cat(cell_step("lstm", w, inp, ((s0 - d)[:, :4], (s0 - d)[:, 4:]))[1], -1)
        cols.append(((plus - minus) / (2 * eps))[0])
    numeric = torch.linalg.svdvals(torch.stack(cols, 1).detach())
    assert jac["sv"][0] == pytest.approx(numeric.tolist(), rel=1e-5, abs=1e-9)


def test_subspace_iteration_finds_the_leading_singular_values():
    from rnnlab.probes.spectra import top_singular_values

    mats = torch.randn(3, 60, 60, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    exact = torch.linalg.svdvals(mats)[:, :4]
    torch.testing.assert_close(top_singular_values(mats, 4), exact, rtol=1e-3, atol=0)
    state = torch.get_rng_state()
    top_singular_values(mats, 2)
    assert torch.equal(state, torch.get_rng_state())  # the training RNG is untouched


def test_gate_saturation_with_forced_biases():
    model = model_for("lstm", hidden=5)
    with torch.no_grad():
        bias = model.rnn.bias_ih_l0
        bias.zero_()
        bias[0:5] = 50.0  # input gate forced open
        bias[5:10] = -50.0  # forget gate forced shut
    trace = unrolled_forward(model, torch.randint(0, 7, (4, 8)))
    stats = gate_saturation(trace, "lstm")["layer0"]
    assert stats["input"] == {"mean": 1.0, "low": 0.0, "high": 1.0}
    assert stats["forget"] == {"mean": 0.0, "low": 1.0, "high": 0.0}
    assert 0 < stats["output"]["mean"] < 1


def test_gradient_groups_add_up_to_the_global_norm():
    model = model_for("gru", layers=2)
    out, _ = model(torch.randint(0, 7, (2, 5)))
    out.sum().backward()
    groups = gradient_groups(model)
    global_norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    parts = [groups["embed"], groups["head"], groups["layer0"], groups["layer1"]]
    assert math.sqrt(sum(v * v for v in parts)) == pytest.approx(float(global_norm), rel=1e-4)
    assert groups["layer1.hh.update"] == pytest.approx(float(model.rnn.weight_hh_l1.grad[6:12].norm()), rel=1e-4)


def run_probed(tmp_path, name, **extra):
    cfg = tiny_config(tmp_path, model__layers=2, model__arch="lstm", model__dropout=0.1, **extra)
    prepared = prepare(cfg)
    run = store.create_run(tmp_path / "runs", name)
    assert Trainer(prepared, run).train().state == "finished"
    return run.read_events()


def test_probes_write_events_and_never_change_training(tmp_path):
    on = run_probed(tmp_path, "on", probes__every=4, probes__jacobian_every=8, probes__jacobian_steps=4)
    off = run_probed(tmp_path, "off", probes__every=0)
    losses = lambda events: [(e["step"], e["loss"]) for e in events if e["kind"] in ("train", "eval")]
    assert losses(on) == losses(off)
    kinds = [e["kind"] for e in on]
    assert kinds.count("gradflow") == kinds.count("gates") == kinds.count("spectrum") == kinds.count("gradnorm") == 3
    assert not {"gradflow", "gates", "spectrum", "gradnorm"} & set(e["kind"] for e in off)
    spectra = [e for e in on if e["kind"] == "spectrum"]
    assert ["jacobian" in e for e in spectra] == [False, True, False]
    flow = next(e for e in on if e["kind"] == "gradflow")
    assert flow["steps"] == 16 and len(flow["layers"]["layer1"]["total"]) == 16
    norms = next(e for e in on if e["kind"] == "gradnorm")
    train = next(e for e in on if e["kind"] == "train" and e["step"] == norms["step"])
    parts = [norms["groups"][k] for k in ("embed", "head", "layer0", "layer1")]
    assert math.sqrt(sum(v * v for v in parts)) == pytest.approx(train["grad_norm"], rel=1e-4)  # pre-clip


def test_unit_activations_are_the_hidden_states_and_surprisal_the_model_loss(tmp_path):
    from rnnlab.probes.activations import load_activations, most_variable_unit, save_activations, unit_activations
    from rnnlab.tasks.tokenizers import Vocabulary

    model = model_for("lstm", hidden=5, layers=2).float()
    vocab = Vocabulary(list("abcdefg"))
    record = unit_activations(model, vocab, "abcabcgg")
    assert record["hidden"].shape == record["cells"].shape == (2, 8, 5)
    assert record["hidden"].dtype == torch.float16
    out, _ = model.rnn(model.embed(vocab.encode("abcabcgg")[None]))
    torch.testing.assert_close(record["hidden"][1].float(), out[0], atol=2e-3, rtol=0)
    logits, _ = model(vocab.encode("abcabcgg")[None])
    loss = F.cross_entropy(logits[0, :-1], vocab.encode("abcabcgg")[1:], reduction="none")
    torch.testing.assert_close(record["surprisal"][1:], loss / math.log(2), atol=1e-5, rtol=1e-5)
    run = store.create_run(tmp_path, "act")
    path = save_activations(run, "best-step3", record)
    again = load_activations(path)
    assert again["text"] == "abcabcgg" and torch.equal(again["hidden"], record["hidden"])
    assert 0 <= most_variable_unit(record) < 5
