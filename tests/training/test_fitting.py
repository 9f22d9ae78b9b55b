"""The full-batch fit loop, BatchNorm calibration and chunked rendering."""
import copy

import pytest
import torch

from qiren_gen.data.grids import image_grid
from qiren_gen.data.signals import load_image
from qiren_gen.metrics import psnr
from qiren_gen.metrics.signals import mse
from qiren_gen.training import build_fitting_model, calibrate_batchnorm, fit_inr, render

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def camera8():
    coords = image_grid(8, 8, align_corners=True)
    return coords, torch.tensor(load_image("camera", 8), dtype=torch.float32).reshape(-1, 1)


@pytest.mark.parametrize("name", ["qiren", "siren", "relu_rff"])
def test_fit_reduces_error(camera8, name):
    coords, y = camera8
    model = build_fitting_model(name, 2, seed=0)
    result = fit_inr(model, coords, y, steps=40, learning_rate=0.03 if name != "siren" else 3e-3, progress=False)
    assert len(result.losses) == 40 and result.seconds > 0
    final = mse(render(model, coords), y)
    assert final < 0.5 * result.losses[0]


def test_same_seed_same_fit(camera8):
    coords, y = camera8
    a, b = (build_fitting_model("qiren", 2, seed=3) for _ in range(2))
    ra = fit_inr(a, coords, y, steps=5, progress=False)
    rb = fit_inr(b, coords, y, steps=5, progress=False)
    assert ra.losses == rb.losses
    c = build_fitting_model("qiren", 2, seed=4)
    assert fit_inr(c, coords, y, steps=5, progress=False).losses[0] != ra.losses[0]


def test_calibrated_eval_matches_training_forward(camera8):
    """After calibration, eval mode on the training grid computes what training mode computed."""
    coords, y = camera8
    model = build_fitting_model("qiren", 2, seed=1)
    fit_inr(model, coords, y, steps=10, progress=False)
    probe = copy.deepcopy(model).train()
    with torch.no_grad():
        train_out = probe(coords)
    calibrate_batchnorm(model, coords)
    assert not model.training
    torch.testing.assert_close(render(model, coords), train_out, atol=1e-5, rtol=1e-5)


def test_render_is_chunk_and_resolution_consistent(camera8):
    coords, y = camera8
    model = build_fitting_model("qiren", 2, seed=2)
    fit_inr(model, coords, y, steps=5, progress=False)
    fine = image_grid(16, 16, align_corners=True)
    whole = render(model, fine)
    torch.testing.assert_close(render(model, fine, chunk_size=7), whole)
    # the 8x8 linspace grid is a subset of the 15x15 one: same function, same values there
    sub = image_grid(15, 15, align_corners=True).reshape(15, 15, 2)[::2, ::2].reshape(-1, 2)
    torch.testing.assert_close(render(model, sub), render(model, coords), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kwargs", [{"steps": 0}, {"steps": 2.5}, {"learning_rate": 0.0}])
def test_bad_fit_arguments(camera8, kwargs):
    coords, y = camera8
    with pytest.raises(ValueError):
        fit_inr(build_fitting_model("tanh", 2), coords, y, progress=False, **kwargs)


def test_psnr_of_known_error():
    expected = 10 * torch.log10(torch.tensor(4 / 0.04)).item()
    assert float(psnr(torch.zeros(4), torch.full((4,), 0.2), data_range=2.0)) == pytest.approx(expected)
    with pytest.raises(ValueError):
        mse(torch.zeros(3), torch.zeros(4))


def test_cosine_schedule_anneals_the_steps(camera8):
    """With the cosine schedule the last updates are tiny (the loss stops moving); with a constant rate they are not."""
    coords, y = camera8
    moves = {}
    for schedule in ("constant", "cosine"):
        model = build_fitting_model("tanh", 2, seed=0)
        result = fit_inr(model, coords, y, steps=20, learning_rate=0.03, progress=False, schedule=schedule)
        moves[schedule] = abs(result.losses[-1] - result.losses[-2])
    assert moves["cosine"] < 0.2 * moves["constant"]
    with pytest.raises(ValueError, match="schedule must be one of"):
        fit_inr(build_fitting_model("tanh", 2), coords, y, steps=2, progress=False, schedule="linear")
