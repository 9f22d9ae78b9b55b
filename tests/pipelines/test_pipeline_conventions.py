"""QirenGenerationPipeline behaves like diffusers' own unconditional pipelines.

Modelled on what diffusers' generic pipeline tests (``PipelineTesterMixin``, ``tests/pipelines/ddim/``) check for an
unconditional pipeline: exact save/load round trips, dict vs tuple output, batch vs single determinism with a list of
generators, progress-bar config, step callbacks, ``from_pipe``, ``components``, ``to(dtype)``, float16 / bfloat16,
variants, dtype dicts, ``device_map`` and every scheduler in ``scheduler.compatibles``. Written for this project
(tiny components, CPU), not copied.
"""
from __future__ import annotations

import inspect
import json
import shutil

import diffusers
import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler, ImagePipelineOutput
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from qiren_gen.pipelines import QirenGenerationPipeline, QirenSuperResolutionPipeline
from qiren_gen.pipelines.schedulers import DETERMINISTIC_SAMPLERS, make_scheduler
from testing_utils import tiny_pipeline

CALL = dict(batch_size=2, height=6, width=5, num_inference_steps=4, output_type="np")


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _run(pipe, seed: int = 0, **overrides):
    return pipe(generator=_gen(seed), **{**CALL, **overrides}).images


@pytest.fixture()
def pipe():
    return tiny_pipeline()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("conventions")
    tiny_pipeline().save_pretrained(folder)
    return folder


def _compatible_schedulers() -> list[type]:
    """Every class in ``compatibles`` whose optional backend is installed (DPMSolverSDE needs torchsde)."""
    classes = []
    for cls in tiny_pipeline().scheduler.compatibles:
        try:
            cls.from_config(DDIMScheduler().config)
        except ImportError:
            continue
        classes.append(cls)
    return classes


COMPATIBLE = _compatible_schedulers()


# ------------------------------------------------------------------------------------------------- schedulers
def test_compatibles_are_many_and_all_load():
    assert len(COMPATIBLE) >= 13 and DPMSolverMultistepScheduler in COMPATIBLE


@pytest.mark.parametrize("cls", COMPATIBLE, ids=lambda c: c.__name__)
def test_every_compatible_scheduler_samples_repeatably_and_round_trips(cls, tmp_path):
    pipe = tiny_pipeline()
    pipe.scheduler = cls.from_config(pipe.scheduler.config)
    first = _run(pipe)
    np.testing.assert_array_equal(first, _run(pipe))  # same seed, same images on every call
    _run(pipe, num_inference_steps=6)  # (PNDM's PRK warm-up fails below 4 steps, KDPM2-a makes NaN at 2: theirs)
    np.testing.assert_array_equal(first, _run(pipe))  # also after a call with another step count
    assert np.isfinite(first).all()
    pipe.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "model_index.json").read_text())["scheduler"] == ["diffusers", cls.__name__]
    loaded = QirenGenerationPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert type(loaded.scheduler) is cls
    np.testing.assert_array_equal(first, _run(loaded))


def test_a_scheduler_given_at_construction_and_at_load(pipe, saved):
    dpm = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    built = QirenGenerationPipeline(pipe.decoder, pipe.modulator, pipe.prior, dpm)
    assert built.scheduler is dpm
    loaded = QirenGenerationPipeline.from_pretrained(saved, scheduler=dpm)
    assert loaded.scheduler is dpm


def test_the_first_call_after_a_swap_uses_the_timesteps_of_that_call(pipe):
    """Sigma-space schedulers (Euler, LMS, Heun) know init_noise_sigma only after set_timesteps."""
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    seen = []
    pipe(batch_size=1, num_inference_steps=10, output_type="latent", generator=_gen(),
         callback_on_step_end=lambda p, i, t, kw: seen.append(p.scheduler.init_noise_sigma) or kw)
    pipe.scheduler.set_timesteps(10)
    assert seen[0] == pytest.approx(float(pipe.scheduler.init_noise_sigma))


@pytest.fixture(scope="module")
def bundled():
    from qiren_gen.pipelines import bundled_pipeline_dir

    pipe = QirenGenerationPipeline.from_pretrained(bundled_pipeline_dir())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _bundled_images(pipe, name: str, steps: int) -> np.ndarray:
    pipe.scheduler = make_scheduler(name, pipe.scheduler.config)
    return pipe(batch_size=3, height=12, width=12, num_inference_steps=steps, output_type="np",
                generator=_gen(3)).images


@pytest.mark.parametrize("name", [n for n in DETERMINISTIC_SAMPLERS if n != "ddim"])
def test_deterministic_schedulers_match_ddim_at_50_steps_on_the_bundled_pipeline(bundled, name):
    original = bundled.scheduler
    try:
        reference = _bundled_images(bundled, "ddim", 50)
        diff = float(np.abs(_bundled_images(bundled, name, 50) - reference).mean())
    finally:
        bundled.scheduler = original
    assert diff < 0.01, f"{name}: mean abs difference {diff:.4f} from DDIM's 50-step images"


def test_a_stochastic_scheduler_differs_from_ddim(bundled):
    """The check above can fail: DDPM's fresh noise per step moves the images far more than 0.01."""
    original = bundled.scheduler
    try:
        diff = float(np.abs(_bundled_images(bundled, "ddpm", 50) - _bundled_images(bundled, "ddim", 50)).mean())
    finally:
        bundled.scheduler = original
    assert diff > 0.02


class OutsideScheduler(DDIMScheduler):
    """A scheduler class from outside diffusers / qiren_gen (this test module)."""


def test_a_scheduler_from_outside_diffusers_samples_but_is_not_saved(pipe, tmp_path):
    pipe.scheduler = OutsideScheduler.from_config(pipe.scheduler.config)
    assert np.isfinite(_run(pipe)).all()
    with pytest.raises(ValueError, match="not a diffusers or qiren_gen class"):
        pipe.save_pretrained(tmp_path / "out")
    assert not (tmp_path / "out" / "model_index.json").exists()


def test_a_folder_naming_a_foreign_or_non_scheduler_class_is_refused(saved, tmp_path):
    for spec, match in ((["test_pipeline_conventions", "OutsideScheduler"], "only diffusers and qiren_gen"),
                        (["diffusers", "UNet2DModel"], "scheduler slot must be a diffusers scheduler")):
        folder = shutil.copytree(saved, tmp_path / spec[1])
        index = json.loads((folder / "model_index.json").read_text())
        index["scheduler"] = spec
        (folder / "model_index.json").write_text(json.dumps(index))
        with pytest.raises(ValueError, match=match) as err:
            QirenGenerationPipeline.from_pretrained(folder)
        assert len(str(err.value).splitlines()) == 1


def test_a_non_scheduler_is_refused_at_construction_and_at_call(pipe):
    with pytest.raises(ValueError, match="must be a diffusers scheduler"):
        QirenGenerationPipeline(pipe.decoder, pipe.modulator, pipe.prior, object())
    pipe.scheduler = None
    with pytest.raises(ValueError, match="must be a diffusers scheduler"):
        _run(pipe)


# ------------------------------------------------------------------------------- call conventions
def test_call_signature_has_diffusers_optional_parameters():
    params = inspect.signature(QirenGenerationPipeline.__call__).parameters
    for name in ("batch_size", "num_inference_steps", "generator", "latents", "output_type", "return_dict",
                 "callback_on_step_end", "callback_on_step_end_tensor_inputs"):
        assert params[name].default is not inspect.Parameter.empty, name


def test_dict_and_tuple_outputs_are_equivalent(pipe):
    out = pipe(generator=_gen(), **CALL)
    assert isinstance(out, ImagePipelineOutput)
    (tup,) = pipe(generator=_gen(), return_dict=False, **CALL)
    np.testing.assert_array_equal(out.images, tup)


def test_batch_of_generators_matches_single_calls(pipe):
    batch = pipe(**{**CALL, "batch_size": 3}, generator=[_gen(i) for i in range(3)]).images
    assert batch.shape[0] == 3
    for i in range(3):
        single = pipe(**{**CALL, "batch_size": 1}, generator=_gen(i)).images
        assert np.abs(batch[i] - single[0]).max() < 1e-4


def test_given_latents_make_the_generator_irrelevant(pipe):
    z = torch.randn(2, pipe.prior.config.latent_dim, generator=_gen(7))
    np.testing.assert_array_equal(_run(pipe, 1, latents=z), _run(pipe, 2, latents=z))


def test_progress_bar_config(pipe, capsys):
    pipe.set_progress_bar_config(disable=False, desc="sampling")
    _run(pipe)
    assert "sampling" in capsys.readouterr().err
    pipe.set_progress_bar_config(disable=True)
    _run(pipe)
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------------------------------------------- callbacks
def test_callback_gets_exactly_the_tensors_asked_for(pipe):
    seen = []

    def subset(p, i, t, kwargs):
        assert set(kwargs) == {"latents"} and set(kwargs) <= set(p._callback_tensor_inputs)
        seen.append((i, int(t)))
        return kwargs

    pipe(batch_size=1, num_inference_steps=5, output_type="latent", callback_on_step_end=subset,
         callback_on_step_end_tensor_inputs=["latents"])
    assert [i for i, _ in seen] == list(range(5)) and pipe.num_timesteps == 5
    assert [t for _, t in seen] == [int(t) for t in pipe.scheduler.timesteps]
    pipe(batch_size=1, num_inference_steps=3, output_type="latent", callback_on_step_end=subset,
         callback_on_step_end_tensor_inputs=pipe._callback_tensor_inputs)
    assert pipe.num_timesteps == 3


def test_callback_can_replace_the_latents(pipe):
    def zero_last(p, i, t, kwargs):
        if i == p.num_timesteps - 1:
            kwargs["latents"] = torch.zeros_like(kwargs["latents"])
        return kwargs

    z = pipe(batch_size=2, num_inference_steps=4, output_type="latent", callback_on_step_end=zero_last).images
    torch.testing.assert_close(z, pipe.prior.denormalize(torch.zeros_like(z)))  # zero x_0 -> the latent mean


def test_interrupt_stops_denoising(pipe):
    calls = []

    def stop_after_two(p, i, t, kwargs):
        calls.append(i)
        if i == 1:
            p._interrupt = True
        return kwargs

    stopped = pipe(batch_size=1, num_inference_steps=6, output_type="latent", generator=_gen(),
                   callback_on_step_end=stop_after_two).images
    assert calls == [0, 1] and pipe.interrupt and pipe.num_timesteps == 6
    full = pipe(batch_size=1, num_inference_steps=6, output_type="latent", generator=_gen()).images
    assert not pipe.interrupt and not torch.equal(stopped, full)


def test_a_diffusers_pipeline_callback_object_is_accepted(pipe):
    from diffusers.callbacks import PipelineCallback

    class ZeroAtCutoff(PipelineCallback):
        tensor_inputs = ["latents"]

        def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
            if step_index == self.config.cutoff_step_index:
                callback_kwargs["latents"] = torch.zeros_like(callback_kwargs["latents"])
            return callback_kwargs

    z = pipe(batch_size=1, num_inference_steps=3, output_type="latent",
             callback_on_step_end=ZeroAtCutoff(cutoff_step_ratio=None, cutoff_step_index=2)).images
    torch.testing.assert_close(z, pipe.prior.denormalize(torch.zeros_like(z)))


@pytest.mark.parametrize("callback, names, match", [
    (lambda p, i, t, kw: kw, ["noise"], "not in _callback_tensor_inputs"),
    (lambda p, i, t, kw: {"latents": kw["latents"][:1]}, None, "of shape \\(1, 6\\); expected \\(2, 6\\)"),
    (lambda p, i, t, kw: {"prompt_embeds": kw["latents"]}, None, "returned 'prompt_embeds', not in"),
    (lambda p, i, t, kw: None, None, "must return its callback_kwargs dict"),
    ("not callable", None, "must be callable"),
])
def test_bad_callbacks_are_one_line_errors(pipe, callback, names, match):
    with pytest.raises(ValueError, match=match) as err:
        pipe(batch_size=2, num_inference_steps=2, output_type="latent", callback_on_step_end=callback,
             callback_on_step_end_tensor_inputs=names)
    assert len(str(err.value).splitlines()) == 1


# --------------------------------------------------------------------------------- components, from_pipe, dtype
def test_components_are_the_init_arguments(pipe):
    init = set(inspect.signature(QirenGenerationPipeline.__init__).parameters) - {"self"}
    assert set(pipe.components) == init == {"decoder", "modulator", "prior", "scheduler"}


def test_from_pipe_shares_modules_and_gives_the_same_images(pipe):
    same = QirenGenerationPipeline.from_pipe(pipe)
    same.set_progress_bar_config(disable=True)
    assert all(same.components[k] is pipe.components[k] for k in ("decoder", "modulator", "prior"))
    np.testing.assert_array_equal(_run(same), _run(pipe))
    dpm = QirenGenerationPipeline.from_pipe(pipe, scheduler=DPMSolverMultistepScheduler.from_config(
        pipe.scheduler.config))
    assert isinstance(dpm.scheduler, DPMSolverMultistepScheduler) and isinstance(pipe.scheduler, DDIMScheduler)
    superres = QirenSuperResolutionPipeline.from_pipe(pipe)
    assert superres.mode == "prior" and superres.decoder is pipe.decoder and superres.model is None


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_to_dtype_and_half_precision_inference(pipe, dtype):
    reference = _run(pipe)
    half = tiny_pipeline().to(dtype=dtype)
    assert all(m.dtype == dtype for m in (half.decoder, half.modulator, half.prior))
    images = _run(half)
    assert np.isfinite(images).all() and np.abs(images - reference).mean() < 0.05


def test_save_load_float16(saved, tmp_path):
    half = QirenGenerationPipeline.from_pretrained(saved, dtype=torch.float16)
    half.set_progress_bar_config(disable=True)
    half.save_pretrained(tmp_path)
    loaded = QirenGenerationPipeline.from_pretrained(tmp_path, dtype=torch.float16)
    loaded.set_progress_bar_config(disable=True)
    assert all(m.dtype == torch.float16 for m in (loaded.decoder, loaded.modulator, loaded.prior))
    assert np.abs(_run(half) - _run(loaded)).max() < 1e-2


def test_dtype_dict_and_alias(saved):
    mixed = QirenGenerationPipeline.from_pretrained(saved, dtype={"prior": torch.bfloat16, "default": torch.float16})
    assert (mixed.prior.dtype, mixed.decoder.dtype, mixed.modulator.dtype) == (torch.bfloat16,) + (torch.float16,) * 2
    mixed.set_progress_bar_config(disable=True)
    assert np.isfinite(_run(mixed)).all()  # components of different dtypes work together
    old = QirenGenerationPipeline.from_pretrained(saved, torch_dtype={"decoder": torch.bfloat16})
    assert (old.decoder.dtype, old.prior.dtype) == (torch.bfloat16, torch.float32)
    assert QirenGenerationPipeline.from_pretrained(saved, torch_dtype="float16").prior.dtype == torch.float16


@pytest.mark.parametrize("kwargs, match", [
    (dict(torch_dtype={"unet": torch.float16}), "torch_dtype dict names 'unet', not a component"),
    (dict(dtype={"default": torch.int8}), "must be a floating torch dtype"),
    (dict(dtype=torch.float16, torch_dtype=torch.bfloat16), "not both"),
    (dict(device_map="auto"), "device_map='auto' is not supported"),
    (dict(device_map="cpu", low_cpu_mem_usage=False), "cannot be combined"),
    (dict(variant="ema"), "variant=ema`, but .* has no variant='ema' weights"),
    (dict(use_safetensors=False), "use_safetensors=False is refused.*can run code"),
    (dict(custom_pipeline="x.py"), "never run code"),
    (dict(unet=None, foo=1), "unsupported argument"),
])
def test_bad_loading_arguments_are_one_line_errors(saved, kwargs, match):
    with pytest.raises(ValueError, match=match) as err:
        QirenGenerationPipeline.from_pretrained(saved, **kwargs)
    assert len(str(err.value).splitlines()) == 1


def test_device_map_low_cpu_mem_usage_and_trust_remote_code_load_the_same_pipeline(saved):
    reference = QirenGenerationPipeline.from_pretrained(saved)
    reference.set_progress_bar_config(disable=True)
    for kwargs in (dict(device_map="cpu"), dict(device_map="balanced"), dict(low_cpu_mem_usage=False),
                   dict(low_cpu_mem_usage=True, trust_remote_code=True)):
        pipe = QirenGenerationPipeline.from_pretrained(saved, **kwargs)
        pipe.set_progress_bar_config(disable=True)
        assert pipe.device.type == "cpu"
        np.testing.assert_array_equal(_run(pipe), _run(reference))
    pipe.to("cpu")  # a one-device map leaves .to() allowed, as in diffusers


def test_variants_save_and_load(pipe, tmp_path):
    pipe.save_pretrained(tmp_path, variant="fp16")
    for comp in ("decoder", "modulator", "prior"):
        assert [p.name for p in (tmp_path / comp).glob("*.safetensors")] == ["diffusion_pytorch_model.fp16.safetensors"]
    for kwargs in (dict(variant="fp16"), {}):  # with no variant asked, the folder's only variant is used
        loaded = QirenGenerationPipeline.from_pretrained(tmp_path, **kwargs)
        for name in ("decoder", "modulator", "prior"):
            for (key, a), b in zip(pipe.components[name].named_parameters(),
                                   loaded.components[name].parameters(), strict=True):
                assert torch.equal(a, b), (name, key)


def test_pickle_saves_are_refused_with_the_reason(pipe, tmp_path):
    with pytest.raises(ValueError, match="safe_serialization=False is refused.*can run code") as err:
        pipe.save_pretrained(tmp_path / "pickled", safe_serialization=False)
    assert len(str(err.value).splitlines()) == 1 and not (tmp_path / "pickled" / "model_index.json").exists()


def test_optional_components_stay_absent_through_save_and_load(tmp_path):
    fit = QirenSuperResolutionPipeline.from_model_name("siren")
    prior = QirenSuperResolutionPipeline.from_pipe(tiny_pipeline())
    for name, sr, absent in (("fit", fit, ("decoder", "modulator")), ("prior", prior, ("model",))):
        sr.save_pretrained(tmp_path / name)
        loaded = QirenSuperResolutionPipeline.from_pretrained(tmp_path / name, dtype=torch.float32, variant=None,
                                                              device_map="cpu", trust_remote_code=True)
        assert loaded.mode == name and all(getattr(loaded, c) is None for c in absent)


def test_fitting_pipelines_take_the_same_loader_arguments(tmp_path):
    from qiren_gen.pipelines import QirenSignalFittingPipeline

    fit = QirenSignalFittingPipeline.from_model_name("siren", 2, 1)
    fit.save_pretrained(tmp_path / "fit", variant="fp16")
    loaded = QirenSignalFittingPipeline.from_pretrained(tmp_path / "fit", variant="fp16", dtype=torch.float16,
                                                        low_cpu_mem_usage=True, device_map="cpu",
                                                        trust_remote_code=True)
    assert loaded.model.dtype == torch.float16
    with pytest.raises(ValueError, match="names 'prior', not a component of QirenSignalFittingPipeline"):
        QirenSignalFittingPipeline.from_pretrained(tmp_path / "fit", dtype={"prior": torch.float16})
    assert QirenSignalFittingPipeline.from_pipe(fit).model is fit.model


def test_every_loadable_class_is_a_diffusers_scheduler():
    """What the loader accepts in the scheduler slot: diffusers' scheduler classes, which all have the methods."""
    for cls in COMPATIBLE:
        assert issubclass(cls, SchedulerMixin) and cls.__module__.startswith("diffusers.")
        assert getattr(diffusers, cls.__name__) is cls


def test_the_sampler_benchmark_compares_side_by_side(pipe):
    from benchmarks.sampling import compare_samplers

    original = pipe.scheduler
    result = compare_samplers(pipe, [("ddim", 6), ("dpm++", 3), ("ddim", 12)], runs=1, num_images=2, resolution=4)
    assert pipe.scheduler is original  # the pipeline's own scheduler is put back
    ddim, dpm, fine = result["rows"]
    assert (ddim["sampler"], dpm["sampler"], dpm["steps"]) == ("ddim", "dpm++", 3)
    assert ddim["mean_abs_diff_vs_reference"] == 0 and fine["mean_abs_diff_vs_ddim_12"] == 0
    assert dpm["mean_abs_diff_vs_reference"] > 0 and ddim["call_speedup_vs_reference"] == 1
    assert all(row["median_call_s"] > 0 and row["median_denoise_s"] > 0 for row in result["rows"])
