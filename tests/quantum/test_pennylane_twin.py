"""One PennyLane twin for every circuit class, and one list of entanglers that they all name."""
from __future__ import annotations

import pytest
import torch

from qiren_gen.quantum import ENTANGLERS, DataReuploadingCircuit, MultiHeadReuploadingCircuit, export, gates


def _forward(layer, x):
    out = layer(x)
    return torch.stack(list(out), -1) if isinstance(out, (list, tuple)) else out


def test_the_package_exports_the_one_entangler_list_every_circuit_checks():
    assert ENTANGLERS is gates.ENTANGLERS == ("cz_ring", "cnot_ring", "cnot_chain")
    for entangler in ENTANGLERS:
        assert DataReuploadingCircuit(3, entangler=entangler).entangler == entangler
    from qiren_gen.cli._fitting_args import ENTANGLER_CHOICES

    assert ENTANGLER_CHOICES == ENTANGLERS  # the CLI spells them out to keep --help free of torch


def test_heads_refuse_the_ring_of_cnots_in_one_sentence():
    with pytest.raises(ValueError, match=r"^entangler 'cnot_ring' is not simulated per head .*DataReuploadingCircuit"):
        MultiHeadReuploadingCircuit(2, 3, entangler="cnot_ring")
    with pytest.raises(ValueError, match="entangler must be one of"):
        export.reuploading_qfunc(2, 1, 1, entangler="cz_chain")


@pytest.mark.parametrize("entangler", ["cz_ring", "cnot_chain"])
def test_a_head_and_a_circuit_with_its_weights_export_the_same_layer(entangler):
    """Both classes go through ``export.reuploading_qfunc`` and ``export.torch_layer``: same weights, same twin."""
    torch.manual_seed(0)
    heads = MultiHeadReuploadingCircuit(2, 3, 2, 2, entangler=entangler, encoding_scale=[[1.0], [3.0]]).double()
    single = DataReuploadingCircuit(3, 2, 2, entangler=entangler, encoding_scale=[[1.0], [3.0]]).double()
    with torch.no_grad():
        single.weights.copy_(heads.weights[1])
    x = torch.randn(4, 3, dtype=torch.float64)
    theirs_head, theirs_single = _forward(heads.to_pennylane(1), x), _forward(single.to_pennylane(), x)
    assert torch.allclose(theirs_head, theirs_single, atol=1e-12)
    assert torch.allclose(theirs_single, single(x), atol=1e-10)


def test_noiseless_rings_keep_the_template_and_noise_writes_the_gates():
    circuit = DataReuploadingCircuit(2, 1, 1)
    assert "StronglyEntanglingLayers" in circuit.draw(level="top")
    noisy = circuit.to_pennylane("default.mixed", noise=0.01)
    import pennylane as qml

    drawing = qml.draw(noisy.qnode, level="top")(torch.zeros(2), noisy.weights.detach())
    assert "StronglyEntanglingLayers" not in drawing and "DepolarizingChannel" in drawing
