"""Sampler names a user knows (``ddim``, ``dpm++``, ``euler-a`` ...) -> diffusers schedulers, and the check every
pipeline applies to the scheduler it is given.

Any diffusers ``SchedulerMixin`` with ``set_timesteps`` / ``step`` samples; a new scheduler is always built from the
pipeline's own scheduler config (``Cls.from_config(pipe.scheduler.config)``), so the training noise schedule
(betas, ``prediction_type``, timestep count) is kept.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import diffusers
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from ..runtime.suggestions import did_you_mean


@dataclass(frozen=True)
class SamplerSpec:
    """One user-facing sampler: the diffusers class, config overrides, and whether it draws fresh noise per step."""

    class_name: str
    overrides: dict = field(default_factory=dict)
    stochastic: bool = False


SAMPLERS: dict[str, SamplerSpec] = {
    "ddim": SamplerSpec("DDIMScheduler"),
    "ddpm": SamplerSpec("DDPMScheduler", stochastic=True),
    "dpm++": SamplerSpec("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "dpm++-single": SamplerSpec("DPMSolverSinglestepScheduler",
                                {"algorithm_type": "dpmsolver++", "lower_order_final": True}),
    "unipc": SamplerSpec("UniPCMultistepScheduler"),
    "euler": SamplerSpec("EulerDiscreteScheduler"),
    "euler-a": SamplerSpec("EulerAncestralDiscreteScheduler", stochastic=True),
    "heun": SamplerSpec("HeunDiscreteScheduler"),
    "kdpm2": SamplerSpec("KDPM2DiscreteScheduler"),
    "kdpm2-a": SamplerSpec("KDPM2AncestralDiscreteScheduler", stochastic=True),
    "lms": SamplerSpec("LMSDiscreteScheduler"),
    "pndm": SamplerSpec("PNDMScheduler", {"skip_prk_steps": True}),
    "deis": SamplerSpec("DEISMultistepScheduler"),
}
"""Every sampler name ``qiren-gen sample --scheduler`` and the demo accept (aliases in ``ALIASES``)."""

ALIASES = {"dpmsolver": "dpm++", "dpmsolver++": "dpm++", "dpm-solver": "dpm++", "dpm-solver++": "dpm++",
           "euler_a": "euler-a", "euler-ancestral": "euler-a", "k-lms": "lms"}

DETERMINISTIC_SAMPLERS = tuple(name for name, spec in SAMPLERS.items() if not spec.stochastic)
"""Samplers that solve the probability-flow ODE: no noise after the first draw, so they converge to DDIM's images."""


def canonical_sampler_name(name: str) -> str:
    """The ``SAMPLERS`` key for ``name`` (case-insensitive, aliases resolved); ``ValueError`` listing the known ones."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in SAMPLERS:
        known = ", ".join([*SAMPLERS, *ALIASES])
        raise ValueError(f"unknown scheduler '{name}'{did_you_mean(key, [*SAMPLERS, *ALIASES])}; known: {known}")
    return key


def make_scheduler(name: str, config) -> SchedulerMixin:
    """A fresh diffusers scheduler for sampler ``name`` on the noise schedule of ``config`` (a scheduler config)."""
    spec = SAMPLERS[canonical_sampler_name(name)]
    cls = getattr(diffusers, spec.class_name)
    return cls.from_config(config, **spec.overrides)


def sampler_name_of(scheduler) -> str:
    """The ``SAMPLERS`` name of a scheduler object (its class name when no name maps to it)."""
    cls_name = type(scheduler).__name__
    for name, spec in SAMPLERS.items():
        if spec.class_name == cls_name and all(scheduler.config.get(k) == v for k, v in spec.overrides.items()):
            return name
    return cls_name


def check_scheduler(scheduler, name: str = "scheduler") -> None:
    """``ValueError`` (one line) unless ``scheduler`` is a diffusers-style scheduler: a ``SchedulerMixin`` with
    ``set_timesteps``, ``step`` and ``scale_model_input``."""
    missing = [m for m in ("set_timesteps", "step", "scale_model_input") if not callable(getattr(scheduler, m, None))]
    if not isinstance(scheduler, SchedulerMixin) or missing:
        why = f"lacks {', '.join(missing)}" if missing and isinstance(scheduler, SchedulerMixin) else \
            f"got {type(scheduler).__name__}"
        raise ValueError(f"pipeline component '{name}' must be a diffusers scheduler (a SchedulerMixin with "
                         f"set_timesteps and step), {why}")


__all__ = ["ALIASES", "DETERMINISTIC_SAMPLERS", "SAMPLERS", "SamplerSpec", "canonical_sampler_name",
           "check_scheduler", "make_scheduler", "sampler_name_of"]
