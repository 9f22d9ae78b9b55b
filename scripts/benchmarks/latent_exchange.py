"""The latent table's share of a data-parallel stage-1 step, dense (the whole table's gradient concatenated with
the models', all-reduced, and one Adam over the table: the update the trainer used before) against row-wise (the
batch's (row, gradient) pairs all-gathered, row-wise Adam on those rows: ``qiren_gen.training.latent_rows``).

Both run in the same processes under ``accelerate launch --multi_gpu`` (gloo on CPU), alternating step by step, on
the same random batch rows and gradients; the decoder's forward / backward (the same in both) is left out, its
gradient (the bundled pipeline's 63,809 parameters) is exchanged in both. Reports the median seconds of each and
the payload per rank and step.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from socket import socket

import torch

from qiren_gen.training.gradient_sync import sync_gradients
from qiren_gen.training.latent_rows import LatentTable, exchange_bytes, gather_row_gradients, rowwise_adam_step
from qiren_gen.training.launch import make_accelerator

REPO = Path(__file__).resolve().parents[2]
MODEL_PARAMETERS = 63_809
"""Decoder + modulator of the bundled pipeline (42,945 + 20,864)."""


def _worker(rows: int, dim: int, batch: int, steps: int, out: str) -> None:
    """One rank: ``steps`` dense and ``steps`` row-wise table updates, alternating; rank 0 writes the figures."""
    torch.set_num_threads(1)
    accelerator = make_accelerator()
    rank, world = accelerator.process_index, accelerator.num_processes
    model = torch.nn.Parameter(torch.zeros(MODEL_PARAMETERS))
    dense_table = torch.nn.Parameter(torch.randn(rows, dim, generator=torch.Generator().manual_seed(0)) * 0.01)
    dense_adam = torch.optim.Adam([dense_table], lr=1e-2)
    table = LatentTable(rows, dim, torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(1)
    timings = {"dense": [], "rowwise": []}
    for step in range(steps + 2):  # two warm-up steps
        order = torch.randperm(rows, generator=generator)[: batch * world]
        local = order[rank * batch : (rank + 1) * batch]
        grads = torch.randn(batch, dim, generator=generator)
        model_grad = torch.randn(MODEL_PARAMETERS, generator=generator)
        for kind in (("dense", "rowwise") if step % 2 else ("rowwise", "dense")):
            accelerator.wait_for_everyone()
            start = time.perf_counter()
            if kind == "dense":
                dense_table.grad = torch.zeros_like(dense_table).index_put_((local,), grads)  # what autograd left
                model.grad = model_grad.clone()
                sync_gradients([model, dense_table], accelerator, batch)
                dense_adam.step()
                dense_adam.zero_grad(set_to_none=True)
            else:
                model.grad = model_grad.clone()
                total = sync_gradients([model], accelerator, batch)
                all_rows, all_grads = gather_row_gradients(local, grads, batch, accelerator)
                rowwise_adam_step(table, all_rows, all_grads / total, 1e-2)
            if step >= 2:
                timings[kind].append(time.perf_counter() - start)
    if rank == 0:
        median = {k: sorted(v)[len(v) // 2] for k, v in timings.items()}
        report = {
            "table": [rows, dim], "processes": world, "batch_per_rank": batch, "steps": steps,
            "median_seconds": median, "speedup": median["dense"] / median["rowwise"],
            "table_bytes_per_rank_and_step": {"dense_all_reduce": rows * dim * 4,
                                              "rowwise_all_gather_received": exchange_bytes(world, batch, dim),
                                              "rowwise_all_gather_sent": batch * (8 + 4 * dim)},
            "model_gradient_bytes": MODEL_PARAMETERS * 4,
            "load_average": os.getloadavg(),
        }
        Path(out).write_text(json.dumps(report, indent=2))


def benchmark_latent_exchange(rows: int = 70_000, dim: int = 64, batch: int = 16, steps: int = 30,
                              processes: int = 2, out: str = "/tmp/latent-exchange.json") -> dict:
    """Launch ``processes`` ranks with ``accelerate launch --multi_gpu`` and print the report rank 0 writes."""
    with socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
           str(port), __file__, "--worker", str(rows), str(dim), str(batch), str(steps), out]
    subprocess.run(cmd, env=env, check=True)
    report = json.loads(Path(out).read_text())
    b = report["table_bytes_per_rank_and_step"]
    m = report["median_seconds"]
    print(json.dumps(report, indent=2))
    print(f"table {rows} x {dim}, {processes} processes, batch {batch} per rank, median of {steps} steps:")
    received = b["rowwise_all_gather_received"]
    print(f"  bytes per rank and step: dense all-reduce {b['dense_all_reduce'] / 1e6:.1f} MB, row-wise all-gather "
          f"{received / 1e3:.1f} KB received ({b['dense_all_reduce'] / max(1, received):.0f}x less)")
    print(f"  seconds per step (table update + the models' gradient exchange): dense {m['dense'] * 1e3:.1f} ms, "
          f"row-wise {m['rowwise'] * 1e3:.1f} ms ({report['speedup']:.1f}x)")
    return report


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--worker":
    rows_, dim_, batch_, steps_ = (int(v) for v in sys.argv[2:6])
    _worker(rows_, dim_, batch_, steps_, sys.argv[6])
