"""DDP ranks that exist before the data is read: ``forecast-train trainer=ddp`` starts them
with torchrun, so that each reads only its share of the series (``forecast.data.shards``);
Lightning's own launcher would start them from inside ``fit``, after this process had read
the whole table."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections.abc import Iterator

import torch
from hydra.core.hydra_config import HydraConfig
from lightning_fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment
from omegaconf import DictConfig
from torch import distributed as dist

from forecast.config import in_multirun


def torchrun_command(cfg: DictConfig) -> list[str] | None:
    """torchrun's arguments that start this run's ranks on this machine, None where they are
    started already (by torchrun, SLURM or Lightning), or where Lightning starts them (a
    sweep's trial, ``devices`` that are not a number, a strategy other than DDP's)."""
    trainer = cfg.trainer
    strategy = trainer.get("strategy")
    target = strategy.get("_target_", "") if isinstance(strategy, DictConfig) else str(strategy)
    ddp = target == "ddp" or (
        target.endswith("DDPStrategy") and strategy.get("start_method", "popen") == "popen"
    )
    devices, nodes = trainer.get("devices"), trainer.get("num_nodes") or 1
    started = TorchElasticEnvironment.detect() or SLURMEnvironment.detect()
    if not ddp or not isinstance(devices, int) or devices * nodes < 2 or in_multirun():
        return None
    if started or "LOCAL_RANK" in os.environ:
        return None
    hydra = HydraConfig.get()
    sources = [s["path"] for s in hydra.runtime.config_sources if s["provider"] == "command-line"]
    return [
        f"--nproc-per-node={devices}", f"--nnodes={nodes}",
        f"--node-rank={os.environ.get('NODE_RANK', 0)}",
        f"--master-addr={os.environ.get('MASTER_ADDR', '127.0.0.1')}",
        f"--master-port={os.environ.get('MASTER_PORT') or free_port()}",
        "--no-python", sys.executable, "-m", "forecast.train",
        f"--config-name={hydra.job.config_name}",
        *(f"--config-dir={path.removeprefix('file://')}" for path in sources),
        *hydra.overrides.task,
        f'hydra.run.dir="{cfg.paths.output_dir}"',  # one run folder for all, quoted for Hydra
        "hydra.output_subdir=null",  # .hydra/ is this process's
    ]  # fmt: skip


def run_ranks(arguments: list[str]) -> None:
    """Run torchrun's agent here with ``arguments`` and wait for the ranks. A rank that fails
    has said why already (one line, as any command does): its exit status becomes this
    process's, without the agent's report of it. Each rank's torch threads default to its
    share of the cores, as OMP_NUM_THREADS says."""
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    for name in ("torch.distributed.run", "torch.distributed.elastic"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    args = torchrun.parse_args(arguments)
    share = (os.cpu_count() or 1) // int(args.nproc_per_node)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, share)))
    try:
        torchrun.run(args)
    except ChildFailedError as err:
        failure = min(err.failures.values(), key=lambda f: f.timestamp)
        raise SystemExit(failure.exitcode if failure.exitcode > 0 else 1) from None


@contextlib.contextmanager
def joined_ranks(accelerator: str) -> Iterator[None]:
    """A rank that torchrun started joins the others before the data is read, so that it
    can read only its series (Lightning's DDP then finds the process group joined), and
    leaves with the group's threads ended: left to the interpreter's exit, they can abort
    it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world < 2 or not TorchElasticEnvironment.detect() or dist.is_initialized():
        yield
        return
    gpu = accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available()
    if gpu:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl" if gpu else "gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
