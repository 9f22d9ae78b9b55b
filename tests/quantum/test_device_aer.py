"""A fake IBM backend's calibrated qubits on Qiskit Aer through PennyLane-Qiskit, end to end (the ``qpu`` extra)."""
import pytest
import torch

from qiren_gen.data import image_grid
from qiren_gen.models import FeatureSynthesisDecoder
from qiren_gen.models.device_features import measure_decoder_features
from qiren_gen.quantum.ibm_backends import best_qubits, calibrated_qubits, fake_backend, sub_target
from qiren_gen.quantum.pennylane_devices import open_device


@pytest.mark.slow
def test_small_fake_backend_on_aer_end_to_end():
    torch.manual_seed(0)
    decoder = FeatureSynthesisDecoder(n_heads=2, hidden_features=8, hidden_layers=1).double()
    coords = image_grid(9, 7).to(torch.float64)
    with torch.no_grad():
        exact = decoder.coordinate_features(coords)
    run = measure_decoder_features(decoder, "qiskit.aer", "FakeManilaV2", shots=4000, mitigation="readout", seed=0)
    assert run.executions == 2 * 25 + 2 and run.jobs == 1  # the heads' sample angles and 2 calibration circuits
    assert run.backend == "fake_manila" and len(run.physical_qubits) == 2
    assert run.two_qubit_gates == 6  # a CNOT per block: 3 layers x 2 blocks, each one native CX on this backend
    assert run.depth >= 6 and 0 < run.circuit_seconds < 1e-4
    assert run.device_seconds == pytest.approx(52 * 4000 * (run.circuit_seconds + 250e-6), rel=0.5)
    assert any("estimated device time" in line for line in run.lines())
    with torch.no_grad():
        measured = decoder.coordinate_features(coords)
    error = (measured - exact).abs()
    assert 0 < error.mean() < 0.1 and error.max() < 0.4  # shot noise and the backend's gate errors


def test_calibrated_qubits_keep_the_backends_calibration():
    source = fake_backend("fake_manila")  # the backend name works as well as the class name
    pair = best_qubits(source.target, 2)
    target = sub_target(source.target, pair)
    gate = "cx"
    edge = next(q for q in target[gate])
    original = source.target[gate][tuple(pair[i] for i in edge)]
    assert target[gate][edge].error == original.error and target[gate][edge].duration == original.duration
    assert target["measure"][(0,)].error == source.target["measure"][(pair[0],)].error
    assert target.qubit_properties[1].t1 == source.target.qubit_properties[pair[1]].t1
    device = calibrated_qubits("FakeManilaV2", 3)
    assert len(device.physical_qubits) == 3 and device.simulator.options.noise_model is not None


def test_bad_names_are_one_clear_error():
    with pytest.raises(ValueError, match="unknown fake IBM backend 'FakeNowhere'"):
        fake_backend("FakeNowhere")
    with pytest.raises(ValueError, match="runs on the 'qiskit.aer' device"):
        open_device("default.qubit", 2, backend="FakeManilaV2")
    with pytest.raises(ValueError, match="unknown PennyLane device 'no.such.device'"):
        open_device("no.such.device", 2)
