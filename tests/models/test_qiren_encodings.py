"""QIREN's exponential-encoding options end to end: Fourier front end, last-circuit readout, presets, round trip."""
from __future__ import annotations

import pytest
import torch

from qiren_gen.models import QIREN
from qiren_gen.models.fourier_front import FourierFeatures, fourier_frequencies

OPTIONS = [
    {"fourier_features": 2, "encoding_scale": [[2.0], [6.0]]},
    {"final_observables": "z+zz+zzz", "observables": "z+zz", "encoding_scale": "ternary:1.5", "n_reuploads": 3},
    {"fourier_features": 3, "fourier_radii": [0.5, 1.5], "final_observables": "z+zz+zzz", "n_reuploads": 4,
     "encoding_scale": "ternary:0.5"},
]


def _pennylane_forward(model: QIREN, x: torch.Tensor) -> torch.Tensor:
    """The same model with every circuit replaced by its PennyLane twin (same weights)."""
    h = x if model.front is None else model.front(x)
    for layer in model.hybrid_layers:
        twin = layer.circuit.to_pennylane("default.qubit")
        out = twin(layer.norm(layer.linear(h)))
        h = torch.stack(list(out), -1) if isinstance(out, (list, tuple)) else out
    return model.output(h)


@pytest.mark.parametrize("engine", ["fused", "autograd"])
@pytest.mark.parametrize("options", OPTIONS, ids=["fourier", "zzz-ternary", "all"])
def test_qiren_options_match_pennylane(options, engine):
    torch.manual_seed(0)
    model = QIREN(in_features=2, n_qubits=3, hidden_layers=1, **options).double()
    model.set_engine(engine)
    x = torch.rand(7, 2, dtype=torch.float64) * 2 - 1
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ours, theirs = model(xa), _pennylane_forward(model, xb)
    assert (ours - theirs).abs().max().item() <= 1e-10
    ours.sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    theirs.sum().backward()  # the twins hold copies of the circuit weights: compare the classical layers' grads
    assert (xa.grad - xb.grad).abs().max().item() <= 1e-10
    for (name, p), g in zip(model.named_parameters(), grads, strict=True):
        if not name.endswith("circuit.weights"):
            assert (p.grad - g).abs().max().item() <= 1e-10, name


def test_final_readout_only_on_the_last_circuit():
    model = QIREN(n_qubits=4, hidden_layers=2, observables="z+zz", final_observables="z+zz+zzz")
    outs = [layer.out_features for layer in model.hybrid_layers]
    assert outs == [10, 10, 14] and model.output.in_features == 14


def test_fourier_front_frequencies():
    freqs = fourier_frequencies(2, 4, [1.0, 3.0, 9.0])
    assert freqs.shape == (12, 2)
    assert torch.allclose(freqs.norm(dim=-1), torch.tensor([1.0] * 4 + [3.0] * 4 + [9.0] * 4))
    assert torch.equal(fourier_frequencies(1, 2, [1.0])[:, 0], torch.tensor([1.0, 3.0**0.5]))
    front = FourierFeatures(2, 4)
    out = front(torch.zeros(5, 2))
    assert out.shape == (5, 2 + 24) and torch.equal(out[:, 2:14], torch.zeros(5, 12))  # sin 0 = 0, cos 0 = 1
    assert "frequencies" in dict(front.named_buffers()) and not list(front.parameters())
    with pytest.raises(ValueError, match="radii"):
        fourier_frequencies(2, 4, [1.0, -3.0])
    with pytest.raises(ValueError, match="fourier_features"):
        QIREN(fourier_features=-1)


def test_round_trip(tmp_path):
    torch.manual_seed(1)
    model = QIREN(n_qubits=3, hidden_layers=1, observables="z+zz", final_observables="z+zz+zzz",
                  encoding_scale="ternary:1.5", n_reuploads=3, fourier_features=2)
    model.eval()
    x = torch.rand(6, 2)
    model.save_pretrained(tmp_path)
    loaded = QIREN.from_pretrained(tmp_path).eval()
    assert loaded.config.encoding_scale == "ternary:1.5" and loaded.config.final_observables == "z+zz+zzz"
    assert torch.allclose(loaded(x), model(x), atol=1e-6)
