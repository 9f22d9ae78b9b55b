"""The fast simulator against PennyLane (outputs and gradients) and against itself (engines, chunking)."""
from __future__ import annotations

import pytest
import torch

from qiren_gen.quantum import DataReuploadingCircuit, fused, simulate_reuploading

TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}
SHAPES = [(1, 1, 1), (1, 2, 2), (2, 1, 3), (3, 2, 2), (5, 3, 1), (8, 2, 2)]


def _pennylane_forward(layer, x):
    out = layer(x)
    return torch.stack(list(out), -1) if isinstance(out, (list, tuple)) else out


@pytest.mark.parametrize("engine", ["fused", "autograd"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n_qubits,n_reuploads,n_blocks", SHAPES)
def test_matches_pennylane(n_qubits, n_reuploads, n_blocks, dtype, engine):
    torch.manual_seed(n_qubits * 100 + n_reuploads * 10 + n_blocks)
    ours = DataReuploadingCircuit(n_qubits, n_reuploads, n_blocks, engine=engine).to(dtype)
    theirs = ours.to_pennylane("default.qubit")
    x = torch.randn(6, n_qubits, dtype=dtype) * 3
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    probe = torch.randn(6, n_qubits, dtype=dtype)  # a random linear functional of the outputs

    out_a, out_b = ours(xa), _pennylane_forward(theirs, xb)
    (out_a * probe).mean().backward()
    (out_b * probe).mean().backward()

    tol = TOLERANCE[dtype]
    assert out_a.dtype == dtype
    assert (out_a - out_b).abs().max().item() <= tol
    assert (xa.grad - xb.grad).abs().max().item() <= tol
    assert (ours.weights.grad - theirs.weights.grad).abs().max().item() <= tol


def test_pennylane_twin_holds_a_copy_of_the_weights():
    circuit = DataReuploadingCircuit(3)
    layer = circuit.to_pennylane()
    assert torch.equal(layer.weights, circuit.weights)
    with torch.no_grad():
        layer.weights.add_(1.0)
    assert not torch.equal(layer.weights, circuit.weights)


def test_runs_on_another_pennylane_device():
    """A trained layer's twin runs on any PennyLane device, here the density-matrix simulator."""
    circuit = DataReuploadingCircuit(2, 1, 2).double()
    layer = circuit.to_pennylane("default.mixed")
    x = torch.randn(4, 2, dtype=torch.float64)
    assert torch.allclose(_pennylane_forward(layer, x), circuit(x), atol=1e-10)


@pytest.mark.parametrize("n_qubits", [1, 4, 8])
def test_fused_engine_is_chunk_invariant(monkeypatch, n_qubits):
    """Many small chunks (forced) give the same values and gradients as the plain autograd engine."""
    torch.manual_seed(n_qubits)
    weights = torch.rand(3, 2, n_qubits, 3, dtype=torch.float64, requires_grad=True)
    x = torch.randn(37, n_qubits, dtype=torch.float64, requires_grad=True)
    probe = torch.randn(37, n_qubits, dtype=torch.float64)

    out_ref = simulate_reuploading(x, weights, engine="autograd")
    g_ref = torch.autograd.grad((out_ref * probe).sum(), (x, weights))
    monkeypatch.setattr(fused, "CPU_CHUNK_AMPLITUDES", 5 * 2**n_qubits)  # 5 rows per chunk -> 8 chunks
    out = simulate_reuploading(x, weights, engine="fused")
    g = torch.autograd.grad((out * probe).sum(), (x, weights))
    assert torch.allclose(out, out_ref, atol=1e-12)
    for a, b in zip(g, g_ref):
        assert torch.allclose(a, b, atol=1e-12)


def test_fused_gradcheck():
    torch.manual_seed(0)
    weights = torch.rand(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, w: simulate_reuploading(a, w, engine="fused"), (x, weights))


def test_autograd_engine_has_second_order_gradients():
    torch.manual_seed(1)
    weights = torch.rand(2, 1, 2, 3, dtype=torch.float64, requires_grad=True)
    x = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda a, w: simulate_reuploading(a, w, engine="autograd"), (x, weights))


def test_fused_engine_refuses_double_backward():
    weights = torch.rand(2, 1, 2, 3, requires_grad=True)
    x = torch.randn(3, 2, requires_grad=True)
    (g,) = torch.autograd.grad(simulate_reuploading(x, weights).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):
        g.sum().backward()


def test_leading_dimensions_and_range():
    circuit = DataReuploadingCircuit(4)
    x = torch.randn(2, 3, 5, 4)
    out = circuit(x)
    assert out.shape == (2, 3, 5, 4)
    assert out.abs().max() <= 1 + 1e-6
    assert torch.allclose(out.reshape(-1, 4), circuit(x.reshape(-1, 4)))


def test_mixed_precision_promotes():
    circuit = DataReuploadingCircuit(2)  # float32 weights
    assert circuit(torch.randn(3, 2, dtype=torch.float64)).dtype == torch.float64


def test_shape_helper_and_drawing():
    assert DataReuploadingCircuit.shape(8, 2, 2) == (3, 2, 8, 3)
    circuit = DataReuploadingCircuit(2, 1, 1)
    assert circuit.weights.shape == (2, 1, 2, 3)
    drawing = circuit.draw(decimals=None)
    assert "RZ" in drawing and "Rot" in drawing
