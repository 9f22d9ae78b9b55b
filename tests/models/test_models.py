"""QIREN, its hybrid layer and the classical baselines: shapes, sizes, learning and save/load round trips."""
from __future__ import annotations

import json

import pytest
import torch

from qiren_gen.models import MODEL_BUILDERS, QIREN, HybridLayer, build_inr, parameter_table


def _all_models():
    for name in MODEL_BUILDERS:
        yield name, build_inr(name, in_features=2, out_features=3)
    yield "hybrid", HybridLayer(in_features=2, n_qubits=4)


@pytest.mark.parametrize("name,model", list(_all_models()), ids=lambda v: v if isinstance(v, str) else "")
def test_save_pretrained_round_trip(tmp_path, name, model):
    torch.manual_seed(0)
    coords = torch.rand(2, 5, 2) * 2 - 1
    if name in ("qiren", "hybrid"):  # give BatchNorm non-trivial running statistics, then compare in eval mode
        model.train()
        model(coords)
    model.eval()
    expected = model(coords)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").exists()
    loaded = type(model).from_pretrained(tmp_path).eval()

    def public(config):
        return {k: v for k, v in config.items() if not k.startswith("_")}

    assert public(loaded.config) == public(model.config)
    assert torch.equal(loaded(coords), expected)


def test_paper_parameter_counts():
    # Linear(2, 8) + BN(8) + circuit (3 x 2 x 8 x 3) = 184; two hidden layers of 232; Linear(8, 1) = 9.
    assert QIREN().num_parameters() == 657
    assert QIREN(in_features=1).num_parameters() == 649
    table = parameter_table(2)
    assert set(table) == set(MODEL_BUILDERS) and table["qiren"] == 657


def test_output_shapes():
    model = QIREN(in_features=2, out_features=3, n_qubits=4, hidden_layers=1)
    assert model(torch.rand(7, 2)).shape == (7, 3)
    assert model(torch.rand(2, 4, 5, 2)).shape == (2, 4, 5, 3)
    assert len(model.hybrid_layers) == 2


@pytest.mark.parametrize("name", list(MODEL_BUILDERS))
def test_wrong_coordinate_dimension(name):
    with pytest.raises(ValueError, match=r"expected input of shape \(\.\.\., 2\)"):
        build_inr(name, in_features=2)(torch.rand(4, 3))


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model 'vit'"):
        build_inr("vit", in_features=2)


def test_qiren_learns_a_signal():
    """Full-batch Adam at the paper's lr fits a 1-D two-tone signal far below its variance."""
    torch.manual_seed(0)
    t = torch.linspace(-1, 1, 200).unsqueeze(-1)
    y = torch.sin(3 * torch.pi * t) * 0.6 + 0.3 * torch.cos(7 * t)
    model = QIREN(in_features=1, n_qubits=4, hidden_layers=1)
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = torch.mean((model(t) - y) ** 2)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * y.var().item()


def test_engines_agree_inside_the_model():
    torch.manual_seed(0)
    model = QIREN(n_qubits=3, hidden_layers=1).double()
    coords = torch.rand(10, 2, dtype=torch.float64)
    fused = model(coords)
    model.set_engine("autograd")
    assert torch.allclose(model(coords), fused, atol=1e-12)


VARIANT = dict(n_qubits=3, hidden_layers=1, entangler="cnot_chain", observables="z+zz", encoding_scale=[1.0, 2.0, 4.0],
               hidden_encoding_scale=0.5, learnable_scale=True, batch_norm=False, linear_scale=3.0)


def test_qiren_variant_round_trips(tmp_path):
    """Every option at once survives save_pretrained / from_pretrained (config and weights, scales included)."""
    torch.manual_seed(0)
    model = QIREN(**VARIANT).eval()
    assert model.hybrid_layers[0].out_features == 6 and model.output.in_features == 6  # 3 <Z_i> + 3 <Z_i Z_j>
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules())
    with torch.no_grad():
        model.hybrid_layers[0].circuit.encoding_scales.mul_(1.7)  # a trained scale, not the initial one
    coords = torch.rand(9, 2) * 2 - 1
    model.save_pretrained(tmp_path)
    loaded = QIREN.from_pretrained(tmp_path).eval()
    assert loaded.config.encoding_scale == [1.0, 2.0, 4.0] and loaded.config.entangler == "cnot_chain"
    assert torch.equal(loaded(coords), model(coords))


def test_qiren_defaults_are_the_paper_and_old_configs_load(tmp_path):
    """A folder saved before the options existed (no option keys in config.json) loads as the paper's QIREN."""
    torch.manual_seed(0)
    model = QIREN(n_qubits=3, hidden_layers=1)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    old = {k: v for k, v in config.items() if k in ("_class_name", "in_features", "out_features", "n_qubits",
                                                      "hidden_layers", "n_reuploads", "n_blocks")}
    (tmp_path / "config.json").write_text(json.dumps(old))
    loaded = QIREN.from_pretrained(tmp_path).eval()
    circuit = loaded.hybrid_layers[0].circuit
    assert circuit.entangler == "cz_ring" and circuit.observables == "z" and circuit.encoding_scales is None
    coords = torch.rand(5, 2)
    assert torch.equal(loaded(coords), model.eval()(coords))


def test_encoding_scale_sets_the_first_circuit_only():
    model = QIREN(n_qubits=2, hidden_layers=2, encoding_scale=3.0)
    first, *rest = [layer.circuit.encoding_scales for layer in model.hybrid_layers]
    assert torch.equal(first, torch.full((2, 2), 3.0)) and all(s is None for s in rest)
    assert [n for n, _ in model.named_parameters() if "scale" in n] == []  # fixed: a buffer


def test_qiren_plus_preset():
    from qiren_gen.models import QIREN_PLUS, is_qiren_plus
    from qiren_gen.training import default_learning_rate, default_schedule
    from qiren_gen.training.fitting import DEFAULT_LEARNING_RATES, DEFAULT_SCHEDULES

    plus = build_inr("qiren_plus", 2)
    assert is_qiren_plus(plus) and not is_qiren_plus(QIREN())
    assert all(plus.config[k] == v for k, v in QIREN_PLUS.items())
    assert plus.num_parameters(only_trainable=True) <= build_inr("siren", 2).num_parameters()  # the search's budget
    assert default_learning_rate(plus) == DEFAULT_LEARNING_RATES["qiren_plus"]
    assert default_schedule(plus) == DEFAULT_SCHEDULES["qiren_plus"] and default_schedule(QIREN()) == "constant"
