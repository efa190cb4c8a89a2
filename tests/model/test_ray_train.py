"""The same training loop under Ray Train's TorchTrainer (1 CPU worker, DDP, gloo).

~24 s on an idle 2-core machine (mostly Ray Train start-up), ~150 s under heavy contention.
"""

import pytest

from skyloom.model.ray_train import run_ray
from skyloom.rundir import RunDir
from tests.model.helpers import make_square_corpus, tiny_cfg


@pytest.mark.slow
def test_ray_train_one_worker_writes_the_same_run_layout(ray_local, tmp_path):
    corpus = make_square_corpus(tmp_path / "c", n=4)
    res = run_ray(tiny_cfg(steps=2), corpus.root, tmp_path / "run", num_workers=1)
    rd = RunDir(tmp_path / "run")
    assert [s for s, _ in rd.checkpoints()] == [0, 2] and res.step == 2
    assert [m["step"] for m in rd.metrics("train")] == [1, 2]
    assert (rd.latest_checkpoint() / "dit" / "model.safetensors").exists()


@pytest.mark.slow
def test_ray_train_two_workers_read_their_own_shard_of_the_drivers_index(ray_local, tmp_path):
    from skyloom.model.data_index import read_index_shard

    corpus = make_square_corpus(tmp_path / "c", n=6)
    cfg = tiny_cfg(steps=2)
    res = run_ray(cfg, corpus.root, tmp_path / "run", num_workers=2)
    assert res.step == 2 and [m["step"] for m in RunDir(tmp_path / "run").metrics("train")] == [1, 2]
    index = tmp_path / "run" / "data" / "index.parquet"
    shards = [set(read_index_shard(index, r, 2, cfg.data)[0].ids.to_pylist()) for r in range(2)]
    assert not shards[0] & shards[1] and shards[0] | shards[1] == {r.id for r in corpus.records()}
