"""A training run's output folder: one run at a time (a second is refused at once, naming the holder), nothing
created for flags that cannot train, a final pipeline (and each stage folder) that a kill leaves old or absent but
never mixed, and a full
disk as one line with no temporary folder left."""
from __future__ import annotations

import importlib
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from qiren_gen.pipelines import QirenGenerationPipeline
from qiren_gen.training.checkpointing import list_checkpoints, save_checkpoint
from qiren_gen.training.outputs import LOCK_FILE, output_dir_lock, save_folder_atomically, save_pipeline_atomically
from testing_utils import tiny_pipeline
from train_pipeline import main

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
TINY = ["--max_train_steps", "2", "--train_batch_size", "2", "--checkpointing_steps", "2", "--prior_max_train_steps",
        "4", "--prior_train_batch_size", "4", "--prior_lr_warmup_steps", "1", "--prior_checkpointing_steps", "4",
        "--validation_steps", "2", "--validation_images", "1", "--psnr_images", "2", "--eval_encode_steps", "2"]


@pytest.fixture(scope="module")
def setting(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("outputs")
    tiny_pipeline().save_pretrained(root / "pipe")
    (root / "faces" / "train").mkdir(parents=True)
    y, x = np.mgrid[0:8, 0:8]
    for i in range(5):
        Image.fromarray((127 + 100 * np.sin(x * (0.3 + 0.1 * i) + y * 0.2)).astype(np.uint8)).save(
            root / "faces" / "train" / f"{i}.png")
    return {"pipe": root / "pipe", "data": root / "faces"}


def _args(setting: dict, out: Path, *extra: str) -> list[str]:
    return ["--pretrained_model_name_or_path", str(setting["pipe"]), "--train_data_dir", str(setting["data"]),
            "--output_dir", str(out), *TINY, *extra]


@pytest.mark.slow
def test_a_second_run_into_a_held_output_dir_is_refused_at_once_naming_the_holder(setting, tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom qiren_gen.training.outputs import output_dir_lock\n"
         "with output_dir_lock(sys.argv[1], 'holder'):\n    print('held', flush=True)\n    time.sleep(300)\n",
         str(out)], env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(_args(setting, out)) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and "is in use by another run" in err[0] and f"pid {holder.pid} on " in err[0], err
        assert [p.name for p in out.iterdir()] == [LOCK_FILE]  # the refused run wrote nothing
    finally:
        holder.kill()
        holder.wait()
    with output_dir_lock(out, "test"):  # the kernel dropped the killed holder's lock: the folder is free again
        pass
    assert not out.exists()  # a run that wrote nothing leaves no folder behind


@pytest.mark.parametrize("script", ["train_functa", "train_prior"])
def test_the_stage_scripts_refuse_a_held_output_dir_too(setting, tmp_path, capsys, script):
    out = tmp_path / "run"
    argv = {"train_functa": ["--train_data_dir", str(setting["data"]), "--resolution", "8", "--output_dir", str(out),
                             "--max_train_steps", "1"],
            "train_prior": ["--stage1_model", str(setting["pipe"]), "--train_data_dir", str(setting["data"]),
                            "--resolution", "8", "--output_dir", str(out), "--max_train_steps", "1"]}[script]
    with output_dir_lock(out, "holder"):
        assert importlib.import_module(script).main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and f"{script}: error: " in err[0] and "is in use by another run" in err[0], err
    assert not out.exists()  # nothing was written, and the holder's empty folder is gone again


@pytest.mark.parametrize("flag, value", [("--learning_rate", "inf"), ("--max_grad_norm", "nan"), ("--seed", "-1"),
                                         ("--train_batch_size", "100000000")])
def test_flags_that_cannot_train_create_no_folder(setting, tmp_path, capsys, flag, value):
    out = tmp_path / "run"
    assert main(_args(setting, out, flag, value)) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and flag in err[0], err
    assert not out.exists()


@pytest.mark.slow
def test_two_runs_started_together_into_one_output_dir_never_both_succeed(setting, tmp_path):
    out = tmp_path / "shared"
    procs = [subprocess.Popen([sys.executable, str(REPO / "scripts" / "train_pipeline.py"),
                               *_args(setting, out, "--seed", str(seed))], env=ENV, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "is in use by another run" in loser or "holds an earlier run" in loser, loser
    winner_seed = 1 if results[0][0] == 0 else 2
    assert json.loads((out / "train_pipeline_summary.json").read_text())["output_dir"] == str(out)
    command = (out / "README.md").read_text()
    assert f"--seed {winner_seed}" in command  # the pipeline in the folder is the winner's, whole
    QirenGenerationPipeline.from_pretrained(out)


def _state(pipe) -> dict[str, torch.Tensor]:
    return {f"{name}.{k}": v.detach().clone() for name in ("decoder", "modulator", "prior")
            for k, v in getattr(pipe, name).state_dict().items()}


def _in_a_child_killed_at(call: int, where: str, work) -> bool:
    """Run ``work`` in a forked child that SIGKILLs itself at its ``call``-th call of ``where`` (``os.replace`` or
    ``safetensors.torch.save_file``); True when the kill happened (False: ``work`` finished first)."""
    pid = os.fork()
    if pid == 0:  # the child: no pytest teardown, no return
        try:
            import safetensors.torch as st

            owner, name = (os, "replace") if where == "os.replace" else (st, "save_file")
            real, count = getattr(owner, name), [0]

            def dying(*args, **kwargs):
                count[0] += 1
                if count[0] == call:
                    os.kill(os.getpid(), signal.SIGKILL)
                return real(*args, **kwargs)

            setattr(owner, name, dying)
            work()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def test_a_kill_at_any_point_of_the_final_save_leaves_the_old_pipeline_or_none_never_a_mix(tmp_path, one_thread):
    old, new = tiny_pipeline(), tiny_pipeline()
    with torch.no_grad():
        for p in [*new.decoder.parameters(), *new.modulator.parameters(), *new.prior.parameters()]:
            p.add_(0.5)
    states = {"old": _state(old), "new": _state(new)}
    out = tmp_path / "run"
    seen = set()
    for where in ("safetensors.torch.save_file", "os.replace"):
        for call in range(1, 40):
            save_pipeline_atomically(old, out)
            (out / "train_log.jsonl").write_text("kept\n")  # run files beside the pipeline stay
            if not _in_a_child_killed_at(call, where, lambda: save_pipeline_atomically(new, out)):
                break
            if (out / "model_index.json").exists():
                loaded = _state(QirenGenerationPipeline.from_pretrained(out))
                match = [k for k, s in states.items() if all(torch.equal(loaded[n], s[n]) for n in s)]
                assert len(match) == 1, f"a mixed pipeline after a kill at {where} call {call}"
                seen.add(match[0])
            else:
                seen.add("none")
            assert (out / "train_log.jsonl").read_text() == "kept\n"
        else:
            pytest.fail(f"the save never finished within 40 calls of {where}")
    assert {"old", "none"} <= seen  # kills landed both before and inside the swap
    save_pipeline_atomically(new, out)  # the next save clears what a killed one left
    assert not any(p.name.startswith(".") and p.name != LOCK_FILE for p in out.iterdir())
    loaded = _state(QirenGenerationPipeline.from_pretrained(out))
    assert all(torch.equal(loaded[n], v) for n, v in states["new"].items())


def test_a_kill_while_saving_a_stage_folder_leaves_its_old_version_or_none_never_a_mix(tmp_path, one_thread):
    """The stage scripts' model folders (decoder, modulator, prior) and scheduler folder are replaced whole."""
    from qiren_gen.models import LatentDenoiser

    old, new = LatentDenoiser(latent_dim=6), LatentDenoiser(latent_dim=6)
    with torch.no_grad():
        for p in new.parameters():
            p.add_(0.5)
    states = {"old": old.state_dict(), "new": new.state_dict()}
    folder = tmp_path / "run" / "prior"
    seen = set()
    for where in ("safetensors.torch.save_file", "os.replace"):
        for call in range(1, 10):
            save_folder_atomically(old, folder)
            if not _in_a_child_killed_at(call, where, lambda: save_folder_atomically(new, folder)):
                break
            if folder.exists():
                loaded = LatentDenoiser.from_pretrained(folder).state_dict()
                match = [k for k, s in states.items() if all(torch.equal(loaded[n], s[n]) for n in s)]
                assert len(match) == 1, f"a mixed folder after a kill at {where} call {call}"
                seen.add(match[0])
            else:
                seen.add("none")
        else:
            pytest.fail(f"the save never finished within 10 calls of {where}")
    assert {"old", "none"} <= seen
    save_folder_atomically(new, folder)  # the next save clears what a killed one left
    assert sorted(p.name for p in folder.parent.iterdir()) == ["prior"]
    loaded = LatentDenoiser.from_pretrained(folder).state_dict()
    assert all(torch.equal(loaded[n], v) for n, v in states["new"].items())


def test_a_full_disk_while_checkpointing_or_saving_is_one_line_and_leaves_no_temporary_folder(tmp_path, one_thread):
    """The disk fills in a forked child: ``RLIMIT_FSIZE`` makes writes past 16 / 2 KiB fail (EFBIG), as ENOSPC would."""
    out = tmp_path / "run"
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            from accelerate import Accelerator

            accelerator = Accelerator(cpu=True)
            model = accelerator.prepare(torch.nn.Linear(64, 64))
            save_checkpoint(accelerator, out, 1, {"note": "before"}, models={"extra": torch.nn.Linear(64, 64)})
            save_pipeline_atomically(tiny_pipeline(), out)
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            messages = []
            for limit, attempt in ((16 * 1024, lambda: save_checkpoint(accelerator, out, 2, {"note": "after"},
                                                                       models={"extra": torch.nn.Linear(64, 64)})),
                                   (2 * 1024, lambda: save_pipeline_atomically(tiny_pipeline(latent_dim=7), out))):
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
                try:
                    attempt()
                    messages.append(None)
                except Exception as exc:  # noqa: BLE001 - reported to the parent as observed
                    messages.append(f"{type(exc).__name__}: {exc}")
            del model
            os.write(write, json.dumps(messages).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as handle:
        messages = json.loads(handle.read())
    for message in messages:
        assert message is not None, messages
        assert message.startswith(("OSError: cannot write", "WriteFailed: cannot write")), message
        assert len(message.splitlines()) == 1 and "File too large" in message, message
    assert "checkpoint 2" in messages[0] and "the earlier checkpoints are intact" in messages[0]
    assert [p.name for p in list_checkpoints(out)] == ["checkpoint-1"]  # latest is still the complete one
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], list(out.iterdir())
    assert QirenGenerationPipeline.from_pretrained(out).prior.config.latent_dim == 6  # the earlier pipeline, whole
