"""Batched multi-head circuits against PennyLane per head, against a loop of single circuits, and layout against
layout."""
from __future__ import annotations

import pytest
import torch

from qiren_gen.quantum import DataReuploadingCircuit, MultiHeadReuploadingCircuit, fused, simulate_reuploading_heads
from qiren_gen.quantum.heads import DENSE_MAX_QUBITS

TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}
# (heads, qubits, re-uploads, blocks); 6 qubits is over DENSE_MAX_QUBITS, so it runs the factored layout.
SHAPES = [(3, 1, 1, 1), (4, 2, 2, 2), (2, 3, 1, 3), (2, 4, 2, 2), (2, 6, 1, 2)]


def _pennylane_forward(layer, x):
    out = layer(x)
    return torch.stack(list(out), -1) if isinstance(out, (list, tuple)) else out


@pytest.mark.parametrize("entangler", ["cz_ring", "cnot_chain"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n_heads,n_qubits,n_reuploads,n_blocks", SHAPES)
def test_every_head_matches_pennylane(n_heads, n_qubits, n_reuploads, n_blocks, dtype, entangler):
    """Outputs, input gradients and weight gradients of every head equal PennyLane default.qubit's."""
    torch.manual_seed(n_heads * 1000 + n_qubits * 100 + n_reuploads * 10 + n_blocks)
    ours = MultiHeadReuploadingCircuit(n_heads, n_qubits, n_reuploads, n_blocks, entangler=entangler).to(dtype)
    x = torch.randn(5, n_heads, n_qubits, dtype=dtype) * 3
    probe = torch.randn(5, n_heads, n_qubits, dtype=dtype)  # a random linear functional of the outputs
    xa = x.clone().requires_grad_(True)
    out = ours(xa)
    (out * probe).sum().backward()

    tol = TOLERANCE[dtype]
    assert out.dtype == dtype and out.shape == x.shape
    for head in range(n_heads):
        theirs = ours.to_pennylane(head, "default.qubit")
        xb = x[:, head].clone().requires_grad_(True)
        out_b = _pennylane_forward(theirs, xb)
        (out_b * probe[:, head]).sum().backward()
        assert (out[:, head] - out_b).abs().max().item() <= tol
        assert (xa.grad[:, head] - xb.grad).abs().max().item() <= tol
        assert (ours.weights.grad[head] - theirs.weights.grad).abs().max().item() <= tol


@pytest.mark.parametrize("n_qubits", [1, 2, 4, 6])
def test_heads_equal_a_loop_of_single_circuits(n_qubits):
    """CZ-ring heads are exactly DataReuploadingCircuit modules holding the same weights (values and gradients)."""
    torch.manual_seed(n_qubits)
    heads = MultiHeadReuploadingCircuit(5, n_qubits).double()
    singles = [DataReuploadingCircuit(n_qubits).double() for _ in range(5)]
    with torch.no_grad():
        for h, single in enumerate(singles):
            single.weights.copy_(heads.weights[h])
    x = torch.randn(2, 7, 5, n_qubits, dtype=torch.float64, requires_grad=True)
    probe = torch.randn(2, 7, 5, n_qubits, dtype=torch.float64)
    out = heads(x)
    ref = torch.stack([single(x[..., h, :]) for h, single in enumerate(singles)], -2)
    assert torch.allclose(out, ref, atol=1e-12)
    g_out = torch.autograd.grad((out * probe).sum(), (x, heads.weights))
    g_ref = torch.autograd.grad((ref * probe).sum(), (x, *[s.weights for s in singles]))
    assert torch.allclose(g_out[0], g_ref[0], atol=1e-12)
    assert torch.allclose(g_out[1], torch.stack(g_ref[1:]), atol=1e-12)


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("entangler", ["cz_ring", "cnot_chain"])
@pytest.mark.parametrize("n_qubits", [1, 2, 3, DENSE_MAX_QUBITS + 1])
def test_layouts_and_engines_agree(monkeypatch, n_qubits, entangler, chunked):
    """Dense and factored layouts, fused and autograd engines: same values and gradients, also in many chunks."""
    torch.manual_seed(n_qubits)
    weights = torch.rand(3, 3, 2, n_qubits, 3, dtype=torch.float64, requires_grad=True) * 6
    x = torch.randn(9, 3, n_qubits, dtype=torch.float64, requires_grad=True)
    probe = torch.randn(9, 3, n_qubits, dtype=torch.float64)
    if chunked:  # 2 rows per chunk -> 5 chunks
        monkeypatch.setattr(fused, "CPU_CHUNK_AMPLITUDES", 2 * 3 * 2**n_qubits)
    results = []
    for layout in ("dense", "factored"):
        for engine in ("fused", "autograd"):
            out = simulate_reuploading_heads(x, weights, entangler, layout=layout, engine=engine)
            results.append((out, *torch.autograd.grad((out * probe).sum(), (x, weights))))
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            assert torch.allclose(a, b, atol=1e-12)


def test_autograd_engine_has_second_order_gradients_and_fused_refuses_them():
    torch.manual_seed(1)
    weights = torch.rand(2, 2, 1, 2, 3, dtype=torch.float64, requires_grad=True)
    x = torch.randn(3, 2, 2, dtype=torch.float64, requires_grad=True)
    for layout in ("dense", "factored"):
        assert torch.autograd.gradgradcheck(
            lambda a, w, layout=layout: simulate_reuploading_heads(a, w, layout=layout, engine="autograd"), (x, weights)
        )
        (g,) = torch.autograd.grad(simulate_reuploading_heads(x, weights, layout=layout).sum(), x, create_graph=True)
        with pytest.raises(RuntimeError):
            g.sum().backward()


@pytest.mark.parametrize("entangler", ["cz_ring", "cnot_chain"])
@pytest.mark.parametrize("layout", ["dense", "factored"])
def test_fused_gradcheck_both_layouts(layout, entangler):
    torch.manual_seed(0)
    weights = torch.rand(2, 2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    x = torch.randn(3, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, w: simulate_reuploading_heads(a, w, entangler, layout=layout), (x, weights)
    )


def test_two_qubit_cz_ring_does_not_entangle_but_the_cnot_chain_does():
    """PennyLane's own SEL on 2 wires applies CZ(0,1) then CZ(1,0) = I: <Z_0> cannot depend on x_1 there."""
    import pennylane as qml

    sel = qml.StronglyEntanglingLayers(torch.zeros(2, 2, 3, dtype=torch.float64), wires=[0, 1], imprimitive=qml.CZ)
    assert torch.allclose(torch.as_tensor(qml.matrix(sel)).real, torch.eye(4, dtype=torch.float64))
    torch.manual_seed(3)
    for entangler, coupled in (("cz_ring", False), ("cnot_chain", True)):
        heads = MultiHeadReuploadingCircuit(4, 2, entangler=entangler).double()
        x = torch.randn(6, 4, 2, dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(heads(x)[..., 0].sum(), x)  # d<Z_0>/dx of every head
        theirs = heads.to_pennylane(1)
        xp = x[:, 1].detach().clone().requires_grad_(True)
        (grad_pl,) = torch.autograd.grad(_pennylane_forward(theirs, xp)[..., 0].sum(), xp)
        assert (grad[..., 1].abs().max().item() > 1e-3) == coupled
        assert (grad_pl[..., 1].abs().max().item() > 1e-3) == coupled


def test_leading_dimensions_range_and_precision():
    heads = MultiHeadReuploadingCircuit(3, 2, n_reuploads=1, n_blocks=1)
    x = torch.randn(2, 4, 3, 2)
    out = heads(x)
    assert out.shape == (2, 4, 3, 2) and out.abs().max() <= 1 + 1e-6
    assert torch.allclose(out.reshape(-1, 3, 2), heads(x.reshape(-1, 3, 2)))
    assert heads(x.double()).dtype == torch.float64  # float32 weights, float64 inputs: promoted
    assert heads(torch.zeros(0, 3, 2)).shape == (0, 3, 2)


def test_shape_helper_repr_and_pennylane_copy():
    assert MultiHeadReuploadingCircuit.shape(8, 2, 2, 2) == (8, 3, 2, 2, 3)
    heads = MultiHeadReuploadingCircuit(8, 2, entangler="cnot_chain")
    assert heads.weights.shape == (8, 3, 2, 2, 3)
    assert float(heads.weights.detach().min()) >= 0 and float(heads.weights.detach().max()) < 2 * torch.pi
    assert "n_heads=8" in repr(heads) and "cnot_chain" in repr(heads)
    layer = heads.to_pennylane(7)
    assert torch.equal(layer.weights, heads.weights[7])
    with torch.no_grad():
        layer.weights.add_(1.0)
    assert not torch.equal(layer.weights, heads.weights[7])
    drawing = heads.draw(7)
    assert drawing.count("RZ") == 2 * 2 and drawing.count("Rot") == 3 * 2 * 2 and "X" in drawing  # CNOT targets
