"""The fixed table of classes a pipeline folder may name, looked up among objects already imported.

A folder's ``model_index.json`` names each component as ``[library, class]``. Those two strings are only ever
compared against this table: no module is imported because a folder names it (an import runs the module's code:
``["qiren_gen.cli.__main__", "main"]`` would start the command line inside the loading program). The table holds
qiren-gen's own models and the diffusers schedulers they sample with (``KarrasDiffusionSchedulers``, the
``compatibles`` of every qiren-gen scheduler), each taken by name from the ``diffusers`` package object.
"""
from __future__ import annotations

import diffusers
from diffusers.schedulers.scheduling_utils import KarrasDiffusionSchedulers, SchedulerMixin

from .. import models

MODEL_CLASSES: dict[str, type] = {cls.__name__: cls for cls in (
    *models.DECODER_CLASSES, models.LatentModulator, models.LatentDenoiser,
    models.QIREN, models.SIREN, models.MLP, models.FourierFeatureMLP, models.QFGN, models.QVF,
)}
"""qiren-gen models a component slot may hold (decoders, the modulator and prior, the fitting pipelines' INRs)."""

SCHEDULER_NAMES: tuple[str, ...] = tuple(sorted({member.name for member in KarrasDiffusionSchedulers}
                                               | {"DDIMScheduler", "DDPMScheduler"}))
"""diffusers schedulers the scheduler slot may hold: every class qiren-gen schedulers list as ``compatibles``."""


def _is_package_path(library: str, module: str) -> bool:
    """``library`` is ``module`` or one of its parent packages (what diffusers may have written for the class)."""
    return module == library or module.startswith(library + ".")


def _scheduler_class(name: str) -> type | None:
    """The diffusers scheduler ``name`` (a table entry), or ``None`` when its optional backend is missing."""
    try:
        klass = getattr(diffusers, name)  # diffusers' own lazy table: a fixed diffusers module, never a folder's
    except (ImportError, AttributeError):
        return None
    return klass if isinstance(klass, type) and issubclass(klass, SchedulerMixin) else None


def component_class(spec: list, slot: str, where: str) -> type:
    """The class a ``[library, class]`` pair names, from the table; ``ValueError`` (one line) for anything else.

    ``slot`` is the component name: the ``scheduler`` slot takes a table scheduler, every other slot a table model.
    Nothing is imported for a name outside the table.
    """
    if not (isinstance(spec, list) and len(spec) == 2 and all(isinstance(s, str) for s in spec)):
        raise ValueError(f"{where}: component '{slot}' is not a [library, class] pair: {str(spec)[:80]}")
    library, name = spec
    if library.split(".")[0] not in ("diffusers", "qiren_gen"):
        raise ValueError(f"{where}: component '{slot}' comes from '{library[:80]}'; only diffusers and qiren_gen "
                         "classes are loaded")
    want_scheduler = slot == "scheduler"
    if library.split(".")[0] == "qiren_gen":
        klass = MODEL_CLASSES.get(name)
        if klass is None or not _is_package_path(library, klass.__module__):
            raise ValueError(f"{where}: component '{slot}' names an unknown class {library[:80]}.{name[:80]} (not "
                             "one of qiren-gen's models; made by a newer qiren-gen, or a damaged model_index.json)")
    elif name in SCHEDULER_NAMES:
        klass = _scheduler_class(name)
        if klass is None or not _is_package_path(library, klass.__module__):
            raise ValueError(f"{where}: component '{slot}' names {library[:80]}.{name}, which this installation of "
                             "diffusers cannot provide (an optional backend is missing)")
    else:
        raise ValueError(f"{where}: component '{slot}' names {library[:80]}.{name[:80]}, which is not a class a "
                         "qiren-gen pipeline may hold (the scheduler slot must be a diffusers scheduler and every "
                         "other slot a qiren-gen model)")
    if want_scheduler != issubclass(klass, SchedulerMixin):
        raise ValueError(f"{where}: component '{slot}' names {library}.{name}: the scheduler slot must be a "
                         "diffusers scheduler and every other slot a model")
    return klass


__all__ = ["MODEL_CLASSES", "SCHEDULER_NAMES", "component_class"]
