"""Bad input to the circuit gives a clear ValueError naming the problem."""
from __future__ import annotations

import pytest
import torch

from qiren_gen.quantum import MAX_QUBITS, DataReuploadingCircuit


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"n_qubits": 0}, "n_qubits must be >= 1"),
        ({"n_qubits": -3}, "n_qubits must be >= 1"),
        ({"n_qubits": MAX_QUBITS + 1}, "too large"),
        ({"n_qubits": 2.5}, "must be an int"),
        ({"n_qubits": 2, "n_reuploads": 0}, "n_reuploads must be >= 1"),
        ({"n_qubits": 2, "n_blocks": 0}, "n_blocks must be >= 1"),
        ({"n_qubits": 2, "engine": "magic"}, "engine must be one of"),
        ({"n_qubits": 2, "entangler": "swap"}, "entangler must be one of"),
        ({"n_qubits": 1, "observables": "zz"}, "observables='zz' needs at least 2 qubits"),
        ({"n_qubits": 3, "observables": [[0, 3]]}, r"observable on wires \[0, 3\] does not fit a circuit of 3"),
        ({"n_qubits": 3, "observables": [[1, 1]]}, "wires must be distinct"),
        ({"n_qubits": 3, "observables": []}, "non-empty"),
        ({"n_qubits": 3, "observables": "xx"}, "observables must be one of"),
        ({"n_qubits": 3, "encoding_scale": 0.0}, "encoding_scale must be finite and > 0"),
        ({"n_qubits": 3, "encoding_scale": [1.0, -2.0, 1.0]}, "encoding_scale must be finite and > 0"),
        ({"n_qubits": 3, "encoding_scale": float("nan")}, "encoding_scale must be finite and > 0"),
        ({"n_qubits": 3, "encoding_scale": [1.0, 2.0]}, "encoding_scale must be a float, a list of 3"),
    ],
)
def test_bad_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DataReuploadingCircuit(**kwargs)


@pytest.mark.parametrize(
    "x,match",
    [
        (torch.randn(4, 3), r"shape \(\.\.\., 2\)"),
        (torch.randn(5), r"shape \(\.\.\., 2\)"),
        (torch.tensor(1.0), r"shape \(\.\.\., 2\)"),
        (torch.ones(3, 2, dtype=torch.int64), "floating"),
        (torch.ones(3, 2, dtype=torch.complex64), "floating"),
        (torch.tensor([[0.0, float("nan")]]), "NaN or inf"),
        (torch.tensor([[float("inf"), 0.0]]), "NaN or inf"),
        ([[0.0, 1.0]], "torch.Tensor"),
    ],
)
def test_bad_inputs(x, match):
    with pytest.raises(ValueError, match=match):
        DataReuploadingCircuit(2)(x)


def test_absurd_batch_is_refused_before_allocating():
    circuit = DataReuploadingCircuit(MAX_QUBITS)
    with pytest.raises(ValueError, match="split the batch into chunks"):
        circuit(torch.zeros(4096, MAX_QUBITS))


def test_empty_batch_is_fine():
    assert DataReuploadingCircuit(3)(torch.zeros(0, 3)).shape == (0, 3)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"n_reuploads": 0}, "n_reuploads must be >= 1"),
        ({"linear_scale": 0.0}, "linear_scale must be finite and > 0"),
        ({"hidden_encoding_scale": -1.0}, "encoding_scale must be finite and > 0"),
        ({"n_qubits": 4, "observables": [[0, 7]]}, "does not fit a circuit of 4 qubits"),
    ],
)
def test_bad_qiren_options(kwargs, match):
    from qiren_gen.models import QIREN

    with pytest.raises(ValueError, match=match):
        QIREN(**kwargs)
