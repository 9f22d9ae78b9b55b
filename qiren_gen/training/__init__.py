"""Training loops (full-batch fitting, functa meta-learning, the diffusion prior) shared by scripts and tests."""
from .fitting import (
    DEFAULT_LEARNING_RATES,
    DEFAULT_STEPS,
    FitResult,
    build_fitting_model,
    calibrate_batchnorm,
    default_learning_rate,
    default_schedule,
    fit_inr,
    render,
)

__all__ = [
    "DEFAULT_LEARNING_RATES",
    "DEFAULT_STEPS",
    "FitResult",
    "build_fitting_model",
    "calibrate_batchnorm",
    "default_learning_rate",
    "default_schedule",
    "fit_inr",
    "render",
]
