"""QIREN, its hybrid layer and the classical baselines: shapes, sizes, learning and save/load round trips."""
from __future__ import annotations

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
    public = lambda config: {k: v for k, v in config.items() if not k.startswith("_")}  # noqa: E731
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
