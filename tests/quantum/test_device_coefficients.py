"""Circuit features measured on a PennyLane device: exact on default.qubit, shot error ~ 1/sqrt(shots), and the
executions counted by PennyLane's tracker (per model, whatever the resolution)."""
import numpy as np
import pennylane as qml
import pytest
import torch

from qiren_gen.data import image_grid
from qiren_gen.models import FeatureSynthesisDecoder
from qiren_gen.models.device_features import device_point_features, feature_executions, measure_decoder_features
from qiren_gen.pipelines.generation import QirenGenerationPipeline, bundled_pipeline_dir
from qiren_gen.quantum.device_coefficients import measure_head_series
from qiren_gen.quantum.device_mitigation import check_mitigation, fold_tape, readout_correct, richardson_extrapolate
from qiren_gen.quantum.spectrum import head_series


def _features(decoder, coords):
    with torch.no_grad():
        return decoder.coordinate_features(coords)


@pytest.mark.slow
def test_bundled_decoder_measured_on_default_qubit_equals_simulator_in_800_executions():
    decoder = QirenGenerationPipeline.from_pretrained(bundled_pipeline_dir()).decoder.double()
    heads, terms = decoder.config.n_heads, 5 ** decoder.config.n_qubits  # (2L+1)^n, L = 2 uploads
    device = qml.device("default.qubit", wires=decoder.config.n_qubits)
    with qml.Tracker(device) as tracker:
        run = measure_decoder_features(decoder, device)
    assert tracker.totals["executions"] == heads * terms == 800 == run.executions
    assert tracker.totals["batches"] == 1 == run.jobs
    coords = image_grid(37, 29).to(torch.float64)  # any resolution from the same 800 executions
    measured = _features(decoder, coords)
    decoder.set_measured_series(None)
    exact_series = _features(decoder, coords)
    decoder.set_feature_evaluation("simulate")
    simulated = _features(decoder, coords)
    assert measured.dtype == torch.float64
    assert (measured - exact_series).abs().max() < 1e-10
    assert (measured - simulated).abs().max() < 1e-10
    assert feature_executions(decoder, 128 * 128) == (800, 524_288)


def test_measured_series_renders_scattered_points_and_refuses_changed_weights():
    decoder = FeatureSynthesisDecoder(n_heads=3, hidden_features=8, hidden_layers=1).double()
    measure_decoder_features(decoder, "default.qubit")
    coords = torch.rand(11, 2, dtype=torch.float64) * 2 - 1  # not a grid: the series summed point by point
    measured = _features(decoder, coords)
    decoder.set_measured_series(None)
    assert (measured - _features(decoder, coords)).abs().max() < 1e-10
    measure_decoder_features(decoder, "default.qubit")
    with torch.no_grad():
        decoder.circuits.weights.add_(0.1)
    with pytest.raises(ValueError, match="other circuit weights"):
        _features(decoder, coords)


def test_per_point_path_counts_heads_times_points_and_matches():
    decoder = FeatureSynthesisDecoder(n_heads=2, hidden_features=8, hidden_layers=1).double()
    coords = torch.rand(4, 2, dtype=torch.float64) * 2 - 1
    device = qml.device("default.qubit", wires=2)
    with qml.Tracker(device) as tracker:
        values, totals = device_point_features(decoder, coords, device)
    assert tracker.totals["executions"] == totals["executions"] == 2 * 4
    decoder.set_feature_evaluation("simulate")
    assert (values - _features(decoder, coords)).abs().max() < 1e-10


def test_shot_error_falls_as_one_over_sqrt_shots():
    """RMS error of the 4 heads x 25 x 2 = 200 fitted coefficients around exact: ratio 10 from 100 to 10,000
    shots, within 20% (the RMS of 200 values is known to about 5%, the ratio to about 7%; these seeds read 9.77)."""
    torch.manual_seed(0)
    heads = FeatureSynthesisDecoder(n_heads=4, hidden_features=8, hidden_layers=1).circuits.double()
    exact = head_series(heads).real_coefficients
    errors = {}
    for shots in (100, 10_000):
        device = qml.device("default.qubit", wires=2, seed=shots)
        series, run = measure_head_series(heads, device, shots)
        assert run.shots == shots and run.executions == 100
        errors[shots] = float((series.real_coefficients - exact).pow(2).mean().sqrt())
    assert 10 / 1.2 < errors[100] / errors[10_000] < 10 * 1.2


def test_mitigation_steps():
    assert check_mitigation("zne, readout") == ("readout", "zne")
    assert check_mitigation(None) == () == check_mitigation("none")
    with pytest.raises(ValueError, match="unknown mitigation 'twirl'"):
        check_mitigation("readout,twirl")
    # readout: flip probabilities p(1|0) = 0.1, p(0|1) = 0.2 -> <Z>_0 = 0.8, <Z>_1 = -0.6; a true 0.5 reads 0.45
    assert np.allclose(readout_correct(np.array([[0.45]]), np.array([[0.8], [-0.6]])), 0.5)
    # Richardson at scales 1, 3 is the line through them at 0
    assert np.allclose(richardson_extrapolate(np.array([0.8, 0.6]), (1, 3)), 0.9)
    tape = qml.tape.QuantumScript([qml.RX(0.3, 0), qml.CNOT([0, 1])], [qml.expval(qml.PauliZ(1))])
    folded = fold_tape(tape, 3)
    assert [op.name for op in folded.operations] == ["RX", "CNOT", "Barrier", "CNOT", "RX", "Barrier", "RX", "CNOT"]
    assert np.isclose(qml.execute([folded], qml.device("default.qubit"))[0],
                      qml.execute([tape], qml.device("default.qubit"))[0])
