"""The first architectures: shapes, state carrying, registry, options."""

from __future__ import annotations

import pytest
import torch

from rnnlab import config
from rnnlab.models import ARCHS, TaskSpec, build_model

SPEC = TaskSpec(input_size=11, output_size=11, vocab_size=11)


def model_for(arch, **extra):
    sets = [f"model.arch={arch}", "model.hidden=12", "model.layers=2", "model.embed=5"]
    sets += [f"model.{k}={v}" for k, v in extra.items()]
    return build_model(config.load(None, sets).model, SPEC).double().eval()


def test_registry_lists_the_first_architectures():
    assert {"elman", "lstm", "gru"} <= set(ARCHS.names())
    assert all(cls.summary for _, cls in ARCHS.items())


@pytest.mark.parametrize("arch", ["elman", "lstm", "gru"])
def test_forward_shapes_and_chunked_state(arch):
    model = model_for(arch)
    x = torch.randint(0, 11, (3, 10))  # (B, T)
    y, state = model(x)
    assert y.shape == (3, 10, 11)
    first, mid = model(x[:, :4])
    second, _ = model(x[:, 4:], mid)  # carrying the state == one long pass
    torch.testing.assert_close(torch.cat([first, second], 1), y, rtol=1e-12, atol=1e-12)
    zero = model.init_state(3)
    again, _ = model(x, tuple(s.double() for s in zero) if isinstance(zero, tuple) else zero.double())
    torch.testing.assert_close(again, y)
    assert [tuple(w.shape) for w in model.recurrent_matrices().values()][0][1] == 12


def test_elman_relu_and_lstm_forget_bias():
    relu = model_for("elman", nonlinearity="relu")
    assert relu.rnn.nonlinearity == "relu"
    lstm = model_for("lstm", forget_bias=2.0)
    bias = lstm.rnn.bias_ih_l1 + lstm.rnn.bias_hh_l1
    assert torch.all(bias[12:24] == 2.0)


def test_unknown_arch_is_a_config_error():
    with pytest.raises(Exception, match="model.arch = 'transformer': unknown architecture; allowed: birnn, clockwork, deep, delay, elman, "):
        config.load(None, ["model.arch=transformer"])


@pytest.mark.parametrize("arch,extra", [("elman", {}), ("elman", {"nonlinearity": "relu"}), ("lstm", {}), ("gru", {})])
def test_unrolled_layers_equal_the_fused_kernels(arch, extra):
    from rnnlab.models.unrolled import unrolled_forward

    model = model_for(arch, **extra)
    x = torch.randint(0, 11, (3, 9))  # (B, T)
    fused, _ = model(x)
    trace = unrolled_forward(model, x)
    torch.testing.assert_close(trace.output, fused, rtol=0, atol=1e-10)
    assert len(trace.hidden) == 2 and len(trace.hidden[0]) == 9


@pytest.mark.parametrize("arch", ["elman", "lstm", "gru"])
def test_recurrent_initialisations(arch):
    gates = {"elman": 1, "lstm": 4, "gru": 3}[arch]
    blocks = lambda model: model.rnn.weight_hh_l1.detach().double().chunk(gates, 0)
    for block in blocks(model_for(arch, init="orthogonal")):
        torch.testing.assert_close(torch.linalg.svdvals(block), torch.ones(12, dtype=torch.float64), atol=1e-5, rtol=0)
    for block in blocks(model_for(arch, init="identity")):
        assert torch.equal(block, torch.eye(12, dtype=torch.float64))
    for block in blocks(model_for(arch, init="radius", init_radius=0.9)):
        assert float(torch.linalg.eigvals(block).abs().max()) == pytest.approx(0.9, rel=1e-5)
    torch.manual_seed(0)
    big = build_model(config.load(None, [f"model.arch={arch}", "model.hidden=400", "model.layers=1",
                                         "model.init=gain", "model.init_gain=1.5"]).model, SPEC)
    assert float(big.rnn.weight_hh_l0[:400].detach().std()) == pytest.approx(1.5 / 400 ** 0.5, rel=0.02)
