"""The API reference's examples run: every public class and function of the documented modules has an Example
section (``>>>`` lines) and its examples pass under the doctest module, offline and in seconds."""
from __future__ import annotations

import doctest
import inspect

import pytest


def documented_objects() -> dict[str, object]:
    """``qualified name -> object`` for what the API reference renders: the pipelines, the decoders (and their
    modulator), the circuit classes, functa and the training calls the scripts are made of."""
    import qiren_gen.functa as functa
    import qiren_gen.metrics as metrics
    import qiren_gen.models as models
    import qiren_gen.pipelines as pipelines
    import qiren_gen.quantum as quantum
    import qiren_gen.training as training
    from qiren_gen.quantum import export
    from qiren_gen.training import functa_trainer, prior

    objects = [getattr(pipelines, name) for name in pipelines.__all__]
    objects += [*models.DECODER_CLASSES, models.LatentModulator]
    objects += [quantum.DataReuploadingCircuit, quantum.MultiHeadReuploadingCircuit]
    objects += [getattr(functa, name) for name in functa.__all__]
    objects += [getattr(training, name) for name in training.__all__]
    objects += [functa_trainer.FunctaTrainingConfig, functa_trainer.build_models, functa_trainer.train_functa,
                prior.PriorTrainingConfig, prior.train_prior]
    objects += [metrics.psnr, metrics.psnr_from_mse, export.reuploading_qfunc]  # the one PSNR, the one twin
    callables = [o for o in objects if inspect.isclass(o) or inspect.isfunction(inspect.unwrap(o))]
    return {f"{o.__module__}.{o.__qualname__}": o for o in callables}


OBJECTS = documented_objects()


def test_the_reference_covers_each_documented_package():
    for package in ("qiren_gen.pipelines", "qiren_gen.models", "qiren_gen.quantum", "qiren_gen.functa",
                    "qiren_gen.training"):
        assert sum(name.startswith(package + ".") for name in OBJECTS) >= 2, package


@pytest.fixture
def fresh_accelerate():
    """The training examples make an Accelerator: start and leave accelerate's process-wide state clean."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)
    yield
    AcceleratorState._reset_state(True)


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_public_object_has_a_passing_example(name, tmp_path, monkeypatch, fresh_accelerate):
    obj = OBJECTS[name]
    doc = inspect.getdoc(obj) or ""
    assert "\nExample" in doc and ">>>" in doc, f"{name} has no Example section with >>> lines"
    if inspect.isfunction(inspect.unwrap(obj)) or inspect.isclass(obj):
        assert "Args:" in doc or not inspect.signature(obj).parameters, f"{name} has no Args section"
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    finder = doctest.DocTestFinder(recurse=False)
    tests = finder.find(obj, name, globs={})
    assert tests and tests[0].examples, f"{name}: doctest found no examples"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} example lines failed (output above)"
