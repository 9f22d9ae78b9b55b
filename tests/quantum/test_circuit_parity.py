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
    for a, b in zip(g, g_ref, strict=True):
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


# Options beyond the paper's circuit: every one against PennyLane, both engines, values and all gradients.
OPTIONS = [
    {"entangler": "cnot_ring"},
    {"entangler": "cnot_chain"},
    {"observables": "zz"},
    {"observables": "z+zz"},
    {"observables": [[0, 2], [1], [0, 1, 2]]},
    {"encoding_scale": 2.5},
    {"encoding_scale": [0.5, 1.0, 4.0]},
    {"encoding_scale": [[0.5, 1.0, 4.0], [3.0, 2.0, 1.0]], "learnable_scale": True},
    {"learnable_scale": True},
    {"entangler": "cnot_chain", "observables": "z+zz", "encoding_scale": 3.0, "learnable_scale": True},
    {"observables": "zzz"},
    {"observables": "z+zz+zzz"},
    {"encoding_scale": "ternary"},
    {"encoding_scale": "ternary:1.5", "learnable_scale": True},
    {"encoding_scale": [[2.0], [6.0]]},
    {"encoding_scale": [[2.0], [6.0]], "observables": "z+zz+zzz", "entangler": "cnot_chain"},
]


@pytest.mark.parametrize("engine", ["fused", "autograd"])
@pytest.mark.parametrize("n_qubits", [3, 4])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_options_match_pennylane(options, n_qubits, engine):
    torch.manual_seed(n_qubits)
    scale = options.get("encoding_scale")
    per_qubit = isinstance(scale, list) and torch.as_tensor(scale).shape[-1] > 1
    if n_qubits == 4 and per_qubit:  # the per-qubit lists are written for 3 qubits
        options = {**options, "encoding_scale": 1.5}
    ours = DataReuploadingCircuit(n_qubits, 2, 2, engine=engine, **options).double()
    theirs = ours.to_pennylane("default.qubit")
    x = torch.randn(5, n_qubits, dtype=torch.float64) * 2
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_a, out_b = ours(xa), _pennylane_forward(theirs, xb)
    assert out_a.shape == (5, ours.n_outputs) == out_b.shape
    probe = torch.randn_like(out_a)
    (out_a * probe).mean().backward()
    (out_b * probe).mean().backward()
    assert (out_a - out_b).abs().max().item() <= 1e-10
    assert (xa.grad - xb.grad).abs().max().item() <= 1e-10
    assert (ours.weights.grad - theirs.weights.grad).abs().max().item() <= 1e-10
    if options.get("learnable_scale"):
        assert (ours.encoding_scales.grad - theirs.scales.grad).abs().max().item() <= 1e-10


@pytest.mark.parametrize("engine", ["fused", "autograd"])
def test_four_ternary_reuploads_with_triple_readout_match_pennylane(engine):
    """Four re-uploads at scales 0.5 * 3**r, read through every <Z>, <ZZ> and <ZZZ>: values and gradients."""
    torch.manual_seed(4)
    ours = DataReuploadingCircuit(4, 4, 2, engine=engine, encoding_scale="ternary:0.5", observables="z+zz+zzz").double()
    assert ours.encoding_scales[:, 0].tolist() == [0.5, 1.5, 4.5, 13.5] and ours.n_outputs == 4 + 6 + 4
    theirs = ours.to_pennylane("default.qubit")
    x = torch.randn(5, 4, dtype=torch.float64)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_a, out_b = ours(xa), _pennylane_forward(theirs, xb)
    probe = torch.randn_like(out_a)
    (out_a * probe).sum().backward()
    (out_b * probe).sum().backward()
    assert (out_a - out_b).abs().max().item() <= 1e-10
    assert (xa.grad - xb.grad).abs().max().item() <= 1e-10
    assert (ours.weights.grad - theirs.weights.grad).abs().max().item() <= 1e-10


def test_ternary_preset_and_per_reupload_lists():
    from qiren_gen.quantum.circuit import encoding_scales

    assert encoding_scales("ternary", 3, 2).tolist() == [[1, 1], [3, 3], [9, 9]]
    assert encoding_scales("ternary:2", 2, 3).tolist() == [[2, 2, 2], [6, 6, 6]]
    assert torch.equal(encoding_scales([[2.0], [6.0]], 2, 3), encoding_scales("ternary:2", 2, 3))
    for bad in ("binary", "ternary:x", "ternary:-1", [[1.0], [2.0], [3.0]]):
        with pytest.raises(ValueError, match="encoding_scale"):
            encoding_scales(bad, 2, 3)


def test_scale_changes_the_circuit_and_learnable_scale_trains():
    torch.manual_seed(0)
    plain = DataReuploadingCircuit(3).double()
    scaled = DataReuploadingCircuit(3, encoding_scale=3.0).double()
    scaled.weights.data.copy_(plain.weights.data)
    x = torch.randn(4, 3, dtype=torch.float64)
    assert torch.allclose(scaled(x), plain(3 * x))  # a uniform scale equals scaling the input
    learn = DataReuploadingCircuit(3, learnable_scale=True)
    assert [n for n, _ in learn.named_parameters()] == ["weights", "encoding_scales"]
    assert "encoding_scales" in dict(scaled.named_buffers())


@pytest.mark.parametrize("options", [OPTIONS[1], OPTIONS[4], OPTIONS[7]], ids=["cnot", "obs", "scales"])
def test_fused_engine_with_options_is_chunk_invariant(monkeypatch, options):
    """Forced small chunks with each option: same values and gradients as the autograd engine."""
    torch.manual_seed(3)
    ref = DataReuploadingCircuit(3, 2, 2, engine="autograd", **options).double()
    fast = DataReuploadingCircuit(3, 2, 2, engine="fused", **options).double()
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(23, 3, dtype=torch.float64)
    monkeypatch.setattr(fused, "CPU_CHUNK_AMPLITUDES", 4 * 2**3)
    grads = []
    for circuit in (ref, fast):
        xi = x.clone().requires_grad_(True)
        out = circuit(xi)
        params = [xi] + list(circuit.parameters())
        probe = torch.linspace(-1, 1, out.numel()).reshape(out.shape)
        grads.append((out, torch.autograd.grad((out * probe).sum(), params)))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-12)
    for a, b in zip(grads[0][1], grads[1][1], strict=True):
        assert torch.allclose(a, b, atol=1e-12)


def test_fused_gradcheck_with_options():
    torch.manual_seed(0)
    from qiren_gen.quantum.gates import resolve_observables

    weights = torch.rand(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    scales = (torch.rand(2, 3, dtype=torch.float64) + 0.5).requires_grad_(True)
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    obs = resolve_observables("z+zz", 3)
    assert torch.autograd.gradcheck(
        lambda a, w, s: simulate_reuploading(a, w, engine="fused", entangler="cnot_ring", observables=obs,
                                             encoding_scales=s), (x, weights, scales))
