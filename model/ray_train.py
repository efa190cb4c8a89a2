"""Scale-out: the same training loop under Ray Train's ``TorchTrainer`` (DDP, or FSDP).

``skyloom train CORPUS --out RUN --ray-address ray://head:10001 --num-workers 8 --gpu`` runs
:func:`skyloom.model.train.train` on every worker. Ray Train sets up the process group;
``ray.train.torch.prepare_model`` wraps the trainable module (DDP, or FSDP with
``--set fsdp=true``) and moves it to the worker's device. Each worker draws batches from its own
shard of the data with the deterministic bucket sampler, and its own noise (seeded by
rank); rank 0 writes metrics and checkpoints into RUN, which must be on storage every node sees
(NFS, a mounted bucket) for multi-node runs. Resume works as in-process: rerun the command.

Data: the driver builds the training index once (:func:`skyloom.model.data_index.build_index`, a
batched columnar scan of the manifest) and writes it to ``RUN/data/index.parquet`` with one row
group per worker; each worker reads only its own row group
(:func:`~skyloom.model.data_index.read_index_shard`): its shard, each bucket's clips dealt
round-robin over the workers, never the manifest. With ``data.source=wds`` each worker streams its
own tar shards instead (:mod:`skyloom.model.wds`).

Without ``--ray-address`` and with ``--num-workers 1`` the CLI trains in-process (no Ray).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from skyloom.errors import InvalidInputError, require_extra
from skyloom.model.config import TrainConfig
from skyloom.model.train import TrainResult

logger = logging.getLogger(__name__)


def _worker_loop(config: dict[str, Any]) -> None:
    require_extra("ray", what="train --num-workers")
    import ray.train
    import ray.train.torch

    from skyloom.config import from_dict
    from skyloom.model.train import Dist, train

    cfg = from_dict(TrainConfig, config["cfg"])
    ctx = ray.train.get_context()
    strategy = "fsdp" if cfg.fsdp else "ddp"

    def prepare(module):
        return ray.train.torch.prepare_model(module, parallel_strategy=strategy)

    dist = Dist(rank=ctx.get_world_rank(), world_size=ctx.get_world_size(), prepare=prepare,
                data_index=config.get("index"))
    device = ray.train.torch.get_device()
    res = train(cfg, config["corpus"], config["out"], resume=config["resume"], fresh=config["fresh"],
                device=device, dist=dist, progress_bar=False)
    ray.train.report({"step": res.step, "loss": res.losses[-1][1] if res.losses else float("nan"),
                      "stopped": res.stopped})


def write_worker_index(cfg: TrainConfig, corpus: str | Path, out: Path, num_workers: int) -> str | None:
    """Build the training index once on the driver and write it for ``num_workers`` workers
    (``RUN/data/index.parquet``); None for ``data.source=wds`` (workers read their own tar shards)."""
    if cfg.data.source != "corpus":
        return None
    from skyloom.model.data_index import build_index, write_index

    corpus = Path(corpus).resolve()
    return str(write_index(build_index(corpus, cfg.data), out / "data" / "index.parquet", num_workers, cfg.data,
                           corpus=str(corpus)))


def run_ray(cfg: TrainConfig, corpus: str | Path, out: str | Path, *, num_workers: int = 1, use_gpu: bool = False,
            address: str | None = None, resume: bool = True, fresh: bool = False) -> TrainResult:
    """Train with ``num_workers`` Ray Train workers; returns the run's final state (read from RUN)."""
    require_extra("ray", what="train --num-workers")
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from skyloom.config import to_dict
    from skyloom.raytools import init_ray
    from skyloom.rundir import RunDir

    if num_workers < 1:
        raise InvalidInputError(f"--num-workers must be >= 1, got {num_workers}")
    out = Path(out).resolve()
    index = write_worker_index(cfg, corpus, out, num_workers)
    init_ray(address)
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={"cfg": to_dict(cfg), "corpus": str(Path(corpus).resolve()), "out": str(out),
                           "resume": resume, "fresh": fresh, "index": index},
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu,
                                     resources_per_worker=None if use_gpu else {"CPU": 1}),
        run_config=RunConfig(name=f"skyloom-{out.name}", storage_path=str(out / "ray")),
    )
    result = trainer.fit()
    if result.error:
        raise result.error
    rd = RunDir(out)
    losses = [(m["step"], m["loss"]) for m in rd.metrics("train")]
    last = rd.latest_checkpoint()
    step = int(last.name.split("-")[1]) if last else 0
    return TrainResult(run=out, step=step, last_checkpoint=last, losses=losses,
                       stopped=str((result.metrics or {}).get("stopped", "steps")))
