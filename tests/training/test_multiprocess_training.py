"""Training as ``accelerate launch --multi_gpu --num_processes 2`` runs it (two CPU processes over gloo): kill and
resume bitwise in both stages, 1 x batch 4 against 2 x batch 2, streams with unreadable images, stopping by signal.

Each worker runs in its own session (torchrun), so a kill must reach every worker, not only the launcher."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from qiren_gen.training.checkpointing import list_checkpoints
from testing_utils import free_port, tiny_auto_decoded_pipeline, write_parquet_shards

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TINY = ["--resolution", "8", "--n_qubits", "3", "--hidden_layers", "1", "--latent_dim", "4",
        "--encoding", "auto_decode", "--learning_rate", "0.03", "--seed", "4"]


def _write_images(folder: Path, count: int, unreadable: tuple[int, ...] = ()) -> Path:
    """``count`` smooth 8x8 grayscale PNGs named by position, ``unreadable`` ones replaced by garbage bytes."""
    (folder / "train").mkdir(parents=True)
    y, x = np.mgrid[0:8, 0:8]
    for i in range(count):
        path = folder / "train" / f"{i:02d}.png"
        if i in unreadable:
            path.write_bytes(b"not an image")
        else:
            Image.fromarray((127 + 100 * np.sin(x * (0.3 + 0.1 * i) + y * 0.2 * i)).astype(np.uint8)).save(path)
    return folder


def _launch(script: str, args: list[str], log: Path, processes: int = 2) -> subprocess.Popen:
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
                str(free_port())] if processes > 1 else [sys.executable]
    with open(log, "w") as handle:  # files, not pipes: tqdm's output must never block the children
        return subprocess.Popen([*launcher, str(REPO / "scripts" / script), *args], env=ENV, cwd=REPO,
                                stdout=handle, stderr=subprocess.STDOUT)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def _wait_for_checkpoint(proc: subprocess.Popen, folder: Path, log: Path, timeout: float = 400) -> None:
    deadline = time.monotonic() + timeout
    while not list_checkpoints(folder):
        assert proc.poll() is None, f"training exited ({proc.returncode}) early: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)


def _kill_every_process(proc: subprocess.Popen) -> None:
    """SIGKILL the launcher's workers (each in its own session) and the launcher."""
    workers = _children(proc.pid)
    for pid in [*workers, proc.pid]:
        os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=60)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)


def _finish(proc: subprocess.Popen, log: Path, timeout: float = 600) -> str:
    assert proc.wait(timeout=timeout) == 0, log.read_text()[-3000:]
    return log.read_text()


SAVED = ("decoder/diffusion_pytorch_model.safetensors", "modulator/diffusion_pytorch_model.safetensors",
         "prior/diffusion_pytorch_model.safetensors", "stage1/latents.safetensors")


def _kill_in_each_stage_resume_and_compare(common: list[str], tmp_path: Path,
                                           check_stage1_checkpoint: Callable[[Path], None] = lambda _: None) -> None:
    """``train_pipeline.py common`` on 2 processes: an uninterrupted run, and one SIGKILLed (every worker) after its
    first stage-1 checkpoint (handed to ``check_stage1_checkpoint``), resumed, SIGKILLed again after its first prior
    checkpoint, resumed; every file of ``SAVED`` bitwise equal."""
    full, part = tmp_path / "full", tmp_path / "part"
    reference = _launch("train_pipeline.py", [*common, "--output_dir", str(full)], tmp_path / "full.log")
    _finish(reference, tmp_path / "full.log")

    victim = _launch("train_pipeline.py", [*common, "--output_dir", str(part)], tmp_path / "a.log")
    _wait_for_checkpoint(victim, part / "stage1", tmp_path / "a.log")
    _kill_every_process(victim)
    stage1_step = int(list_checkpoints(part / "stage1")[-1].name.split("-")[1])
    assert not (part / "stage1" / "train_summary.json").exists() and not (part / "stage2").exists()
    check_stage1_checkpoint(part / "stage1" / f"checkpoint-{stage1_step}")

    resume = [*common, "--output_dir", str(part), "--resume_from_checkpoint", "latest"]
    again = _launch("train_pipeline.py", resume, tmp_path / "b.log")
    _wait_for_checkpoint(again, part / "stage2", tmp_path / "b.log")
    _kill_every_process(again)
    prior_step = int(list_checkpoints(part / "stage2")[-1].name.split("-")[1])
    assert not (part / "model_index.json").exists()
    assert f"at step {stage1_step}" in (tmp_path / "b.log").read_text()

    log = _finish(_launch("train_pipeline.py", resume, tmp_path / "c.log"), tmp_path / "c.log")
    assert f"at step {prior_step}" in log
    for name in SAVED:
        a, b = load_file(part / name), load_file(full / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f"{name} differs"


@pytest.mark.slow
def test_two_processes_killed_in_stage1_then_in_stage2_resume_to_the_uninterrupted_files(tmp_path):
    """A pipeline from scratch on 2 processes, SIGKILLed (every worker) in stage 1, resumed, SIGKILLed again in
    stage 2, resumed: decoder, modulator, latent table and prior are bitwise an uninterrupted 2-process run's."""
    data = _write_images(tmp_path / "data", 8)
    _kill_in_each_stage_resume_and_compare(
        ["--train_data_dir", str(data), *TINY, "--train_batch_size", "2", "--max_train_steps", "24",
         "--checkpointing_steps", "4", "--prior_max_train_steps", "400", "--prior_checkpointing_steps", "20",
         "--prior_train_batch_size", "8", "--prior_hidden_dim", "16", "--prior_num_blocks", "1",
         "--prior_dropout", "0.1", "--prior_lr_warmup_steps", "5", "--validation_steps", "100000",
         "--validation_images", "0", "--psnr_images", "2"], tmp_path)


@pytest.mark.slow
def test_two_processes_fine_tuning_killed_in_stage1_then_in_stage2_resume_to_the_uninterrupted_files(tmp_path):
    """Fine-tuning a pretrained auto-decoded pipeline (``--latent_init encode``: each image's latent is encoded on
    its first visit, gathered across ranks) on 2 processes, killed in each stage and resumed: bitwise the
    uninterrupted run's files. 24 images, 4 a step, a checkpoint every 2 steps: the kill comes before every image
    was visited, so the resumed run must still encode the rest on their first visit."""
    tiny_auto_decoded_pipeline().save_pretrained(tmp_path / "pretrained")
    data = _write_images(tmp_path / "data", 24)
    def images_left_to_encode(checkpoint: Path) -> None:
        assert not load_file(checkpoint / "latents.safetensors")["visited"].all()

    _kill_in_each_stage_resume_and_compare(
        ["--pretrained_model_name_or_path", str(tmp_path / "pretrained"), "--train_data_dir", str(data),
         "--latent_init", "encode", "--latent_init_steps", "3", "--learning_rate", "0.03", "--seed", "4",
         "--train_batch_size", "2", "--max_train_steps", "12", "--checkpointing_steps", "2",
         "--prior_max_train_steps", "400", "--prior_checkpointing_steps", "20", "--prior_train_batch_size", "8",
         "--validation_steps", "100000", "--validation_images", "0", "--psnr_images", "2",
         "--eval_encode_steps", "2"], tmp_path, images_left_to_encode)


@pytest.mark.slow
def test_one_process_batch_4_and_two_processes_batch_2_take_the_same_steps(tmp_path):
    """The same global batches: losses within 1e-5 at every step, and the same latent table (row-wise updates
    exchanged between ranks as (row, gradient) pairs)."""
    data = _write_images(tmp_path / "data", 8)
    common = ["--train_data_dir", str(data), *TINY, "--max_train_steps", "6", "--checkpointing_steps", "6",
              "--logging_steps", "1"]
    one = _launch("train_functa.py", [*common, "--train_batch_size", "4", "--output_dir", str(tmp_path / "one")],
                  tmp_path / "one.log", processes=1)
    _finish(one, tmp_path / "one.log")
    _finish(_launch("train_functa.py", [*common, "--train_batch_size", "2", "--output_dir", str(tmp_path / "two")],
                    tmp_path / "two.log"), tmp_path / "two.log")
    losses = [[json.loads(line)["loss"] for line in (tmp_path / run / "train_log.jsonl").read_text().splitlines()]
              for run in ("one", "two")]
    assert len(losses[0]) == len(losses[1]) == 6
    assert max(abs(a - b) for a, b in zip(*losses, strict=True)) < 1e-5
    summary = json.loads((tmp_path / "two" / "train_summary.json").read_text())
    assert summary["num_processes"] == 2 and summary["max_rank_parameter_difference"] == 0.0
    tables = [load_file(tmp_path / run / "latents.safetensors") for run in ("one", "two")]
    torch.testing.assert_close(tables[0]["latents"], tables[1]["latents"], rtol=0, atol=1e-5)
    assert torch.equal(tables[0]["visited"], tables[1]["visited"])


@pytest.mark.slow
def test_streamed_unreadable_images_lose_no_readable_one_on_two_processes(tmp_path):
    """Twelve stream positions in 4 parquet shards of 4, 2, 4, 2 (rank 0 reads shards 0 and 2, 8 positions; rank 1
    shards 1 and 3, 4 positions), four unreadable (first, middle, neighbours, last): after exactly two epochs every
    readable image's latent row took exactly two Adam steps, the unreadable ones none."""
    unreadable = (0, 5, 6, 11)
    data = write_parquet_shards(tmp_path / "data", [4, 2, 4, 2], unreadable)
    out = tmp_path / "run"
    # batches of 2: rank 0 has 4 per epoch, rank 1 two (then joins with none) -> 8 steps are two epochs
    log = _finish(_launch("train_functa.py", ["--dataset_name", str(data), *TINY, "--streaming",
                                              "--max_train_samples", "12", "--shuffle_buffer_size", "4",
                                              "--train_batch_size", "2", "--max_train_steps", "8",
                                              "--checkpointing_steps", "8", "--output_dir", str(out)],
                          tmp_path / "run.log"), tmp_path / "run.log")
    assert "reads the whole stream" not in log  # each rank read its own shards
    table = load_file(out / "checkpoint-8" / "latents.safetensors")
    expected = torch.tensor([0 if i in unreadable else 2 for i in range(12)])
    assert torch.equal(table["row_steps"], expected)
    assert json.loads((out / "train_summary.json").read_text())["max_rank_parameter_difference"] == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("signum, processes", [(signal.SIGTERM, 2), (signal.SIGINT, 1)])
def test_a_signal_to_the_launcher_stops_every_worker_after_a_checkpoint(tmp_path, signum, processes):
    data = _write_images(tmp_path / "data", 8)
    out = tmp_path / "run"
    proc = _launch("train_functa.py", ["--train_data_dir", str(data), *TINY, "--train_batch_size", "2",
                                       "--max_train_steps", "100000", "--checkpointing_steps", "100000",
                                       "--logging_steps", "1", "--output_dir", str(out)], tmp_path / "run.log",
                   processes)
    deadline = time.monotonic() + 300
    while not ((out / "train_log.jsonl").is_file() and len((out / "train_log.jsonl").read_text().splitlines()) >= 3):
        assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "run.log").read_text()[-2000:]
        time.sleep(0.05)
    workers = _children(proc.pid) if processes > 1 else []
    sent = time.monotonic()
    proc.send_signal(signum)
    code = proc.wait(timeout=60)
    while any(_alive(pid) for pid in workers) and time.monotonic() < sent + 60:
        time.sleep(0.05)
    seconds = time.monotonic() - sent
    assert not any(_alive(pid) for pid in workers) and seconds < 25  # torchrun would SIGKILL them at 30 s
    assert code != 0 and "stopped by a signal at step" in (tmp_path / "run.log").read_text()
    checkpoints = list_checkpoints(out)
    assert len(checkpoints) == 1 and 3 <= int(checkpoints[0].name.split("-")[1]) < 100000  # the stop's checkpoint


def _launch_two_machines(script: str, args: list[str], logs: Path) -> list[subprocess.Popen]:
    """``--num_machines 2 --machine_rank 0/1`` on this host, one process each, over loopback: one launcher per
    machine, each stopping only its own worker (as on a real cluster); logs in ``logs/machine<rank>.log``."""
    port, procs = free_port(), []
    for rank in (0, 1):
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_machines", "2",
               "--num_processes", "2", "--machine_rank", str(rank), "--main_process_ip", "127.0.0.1",
               "--main_process_port", str(port), "--mixed_precision", "no", "--dynamo_backend", "no",
               str(REPO / "scripts" / script), *args]
        with open(logs / f"machine{rank}.log", "w") as handle:
            procs.append(subprocess.Popen(cmd, env=ENV, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT))
    return procs


@pytest.mark.slow
def test_two_machines_on_one_host_train_a_pipeline_and_evaluate_once(tmp_path):
    """``--num_machines 2 --machine_rank 0/1``, one process each, over loopback and a shared output folder: both
    exit 0, parameters and latent tables equal across machines, evaluation and the report on machine 0 only."""
    data = _write_images(tmp_path / "data", 8)
    out = tmp_path / "out"
    procs = _launch_two_machines("train_pipeline.py", [
        "--train_data_dir", str(data), "--output_dir", str(out), *TINY, "--train_batch_size", "2",
        "--max_train_steps", "4", "--checkpointing_steps", "2", "--prior_max_train_steps", "10",
        "--prior_checkpointing_steps", "5", "--prior_train_batch_size", "8", "--prior_hidden_dim", "16",
        "--prior_num_blocks", "1", "--validation_steps", "100000", "--validation_images", "0", "--psnr_images", "2"],
        tmp_path)
    logs = [_finish(proc, tmp_path / f"machine{rank}.log") for rank, proc in enumerate(procs)]
    summary = json.loads((out / "stage1" / "train_summary.json").read_text())
    assert summary["num_processes"] == 2 and summary["max_rank_parameter_difference"] == 0.0
    assert (out / "model_index.json").is_file()
    assert "reconstruction PSNR" in logs[0] and "reconstruction PSNR" not in logs[1]


@pytest.mark.slow
def test_a_checkpoint_write_failing_on_one_rank_stops_every_rank_with_one_line(tmp_path):
    """Rank 0 cannot publish checkpoint 8 (a file stands where its folder must go) while rank 1 has written its part:
    on two machines, whose launchers each stop only their own worker, both workers exit with code 2 and the same
    line naming rank 0's failure (none waits for the other, none dies of a lost connection); checkpoint 4 stays the
    complete, latest one and nothing half-written is left."""
    data = _write_images(tmp_path / "data", 8)
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint-8").write_text("")  # a file where checkpoint 8's folder must go
    procs = _launch_two_machines("train_functa.py", [
        "--train_data_dir", str(data), *TINY, "--train_batch_size", "2", "--max_train_steps", "12",
        "--checkpointing_steps", "4", "--output_dir", str(out)], tmp_path)
    try:
        codes = [proc.wait(timeout=240) for proc in procs]  # a rank left waiting in a barrier fails here
    finally:
        for proc in procs:
            if proc.poll() is None:
                _kill_every_process(proc)
    line = f"train_functa: error: cannot write checkpoint 8 to {out} on rank 0: Not a directory"
    for rank in (1, 0):  # the rank that had to learn of the failure first
        code, log = codes[rank], (tmp_path / f"machine{rank}.log").read_text()
        assert code != 0 and "exitcode  : 2" in log, log[-3000:]  # the worker's own code, as torchrun reports it
        assert log.count(line) == 1 and "the earlier checkpoints are intact" in log, log[-3000:]
    assert list_checkpoints(out) == [out / "checkpoint-4"] and (out / "checkpoint-8").is_file()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".tmp")]
