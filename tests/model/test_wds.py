"""Training from WebDataset shards (``data.source=wds``): the reader agrees with the webdataset package,
frames equal the corpus source's, workers read disjoint covering shards, resume continues the stream,
and `skyloom train --set data.source=wds` trains from an export."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skyloom.corpus import CorpusError
from skyloom.model.config import Bucket, DataConfig
from skyloom.model.data import load_frames, make_loader
from skyloom.model.data_index import build_index
from skyloom.model.wds import WdsLoader, iter_shard, read_member
from tests.model.helpers import make_square_corpus, tiny_cfg

SKYLOOM = shutil.which("skyloom", path=str(Path(sys.executable).parent)) or shutil.which("skyloom")
CFG = DataConfig(buckets=(Bucket(16, 16, 4, 2),), source="wds", shuffle_buffer=4)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    c = make_square_corpus(tmp_path_factory.mktemp("wds") / "c", n=10, T=8, size=16)
    c.export_webdataset(shard_size=3)  # all-0..3: 3 + 3 + 3 + 1 clips
    c.export_webdataset(shard_size=4, split="train")
    return c


def test_shard_reader_yields_what_the_webdataset_package_reads(exported):
    wds = pytest.importorskip("webdataset")
    shards = sorted((exported.root / "shards").glob("all-*.tar"))
    ref = list(wds.WebDataset([str(p) for p in shards], shardshuffle=False, empty_check=False))
    ours = [s for p in shards for s in iter_shard(p)]
    assert [s.key for s in ours] == [r["__key__"] for r in ref] and len(ours) == 10
    for s, r in zip(ours, ref):
        assert read_member(s) == r["mp4"] and s.row == json.loads(r["json"])


def test_stream_frames_equal_the_corpus_source_frames(exported):
    b = CFG.buckets[0]
    for s in iter_shard(sorted((exported.root / "shards").glob("train-*.tar"))[0]):
        assert np.array_equal(load_frames(read_member(s), b, 1), load_frames(exported.root / s.row["path"], b, 1))


@pytest.mark.parametrize("world", [1, 2, 3])
def test_workers_read_disjoint_shards_that_cover_the_split(exported, world):
    loaders = [WdsLoader(exported.root, CFG, seed=0, rank=r, world_size=world) for r in range(world)]
    shard_sets = [set(ld.shards) for ld in loaders]
    assert sum(map(len, shard_sets)) == len(set.union(*shard_sets)) == 3  # train-0..2: 4 + 4 + 2 clips
    keys = [[s.key for s in ld.samples(0)] for ld in loaders]
    flat = [k for ks in keys for k in ks]
    assert sorted(flat) == sorted(build_index(exported, dataclasses.replace(CFG, source="corpus")).ids.to_pylist())
    for ld in loaders:  # every batch: one bucket, its batch size, clips of this worker's shards
        mine = {s.key for s in ld.samples(0)}
        for _ in range(6):
            batch = next(ld)
            assert batch.video.shape == (2, 4, 16, 16, 3) and set(batch.ids) <= mine


def test_stream_is_deterministic_and_resumes_where_it_stopped(exported):
    whole = make_loader(exported.root, CFG, seed=4)
    ref = [next(whole) for _ in range(9)]  # crosses epochs (5 batches of 2 per epoch at most)
    assert whole.epoch >= 1
    head = make_loader(exported.root, CFG, seed=4)
    for _ in range(4):
        next(head)
    resumed = make_loader(exported.root, CFG, seed=4)
    resumed.sampler.load_state_dict(head.sampler.state_dict())
    for want in ref[4:]:
        got = next(resumed)
        assert got.ids == want.ids and got.captions == want.captions and np.array_equal(got.video, want.video)
    other = make_loader(exported.root, CFG, seed=5)
    assert [next(other).ids for _ in range(5)] != [b.ids for b in ref[:5]]
    # two workers: each resumes from rank 0's count of drawn batches
    w = [make_loader(exported.root, CFG, 4, r, 2) for r in range(2)]
    seq = [[next(w[r]).ids for _ in range(7)] for r in range(2)]
    first = make_loader(exported.root, CFG, 4, 0, 2)
    for _ in range(3):
        next(first)
    for r in range(2):
        ld = make_loader(exported.root, CFG, 4, r, 2)
        ld.sampler.load_state_dict(first.sampler.state_dict())
        assert [next(ld).ids for _ in range(4)] == seq[r][3:]


def test_all_export_is_filtered_to_the_split_and_missing_exports_are_user_errors(exported, tmp_path):
    train_ids = set(build_index(exported, DataConfig(split="train")).ids.to_pylist())
    ld = WdsLoader(exported.root, dataclasses.replace(CFG, wds_dir="shards"), seed=0)
    assert not ld.mixed  # the train export is preferred
    shutil.copytree(exported.root / "shards", tmp_path / "only-all")
    idx = json.loads((tmp_path / "only-all" / "index.json").read_text())
    idx["exports"].pop("train")
    (tmp_path / "only-all" / "index.json").write_text(json.dumps(idx))
    mixed = WdsLoader(exported.root, dataclasses.replace(CFG, wds_dir=str(tmp_path / "only-all")), seed=0)
    assert mixed.mixed and {s.key for s in mixed.samples(0)} == train_ids
    shutil.copytree(exported.root / "shards", tmp_path / "only-train")
    idx = json.loads((tmp_path / "only-train" / "index.json").read_text())
    idx["exports"].pop("all")
    (tmp_path / "only-train" / "index.json").write_text(json.dumps(idx))
    with pytest.raises(CorpusError, match="no WebDataset export of split 'val'"):
        WdsLoader(exported.root, dataclasses.replace(CFG, split="val", wds_dir=str(tmp_path / "only-train")), seed=0)
    no_val = WdsLoader(exported.root, dataclasses.replace(CFG, split="val"), seed=0)  # the all export has none
    with pytest.raises(CorpusError, match="no clips of split 'val'"):
        next(no_val)
    with pytest.raises(CorpusError, match="no index.json"):
        WdsLoader(exported.root, dataclasses.replace(CFG, wds_dir=str(tmp_path)), seed=0)
    with pytest.raises(CorpusError, match="cannot feed 4 workers"):
        WdsLoader(exported.root, CFG, seed=0, rank=3, world_size=4)


def test_cli_trains_a_few_steps_from_an_exported_corpus(exported, tmp_path):
    from skyloom.config import save_resolved

    assert SKYLOOM
    preset = save_resolved(tiny_cfg(steps=3, ckpt_every=2), tmp_path / "tiny.yaml")
    env = {**os.environ, "SKYLOOM_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    args = [SKYLOOM, "train", str(exported.root), "--out", str(tmp_path / "run"), "--preset", str(preset),
            "--set", "data.source=wds", "--set", "data.shuffle_buffer=4"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    from skyloom.rundir import RunDir

    rd = RunDir(tmp_path / "run")
    assert [m["step"] for m in rd.metrics("train")] == [1, 2, 3] and [s for s, _ in rd.checkpoints()] == [0, 2, 3]
    state = json.loads((rd.latest_checkpoint() / "state" / "trainer.json").read_text())["sampler"]
    assert state["source"] == "wds" and state["drawn"] == 3
    bad = subprocess.run([*args[:4], str(tmp_path / "run2"), *args[5:], "--set", "data.split=val"],
                         capture_output=True, text=True, timeout=600, env=env, stdin=subprocess.DEVNULL)
    assert bad.returncode == 2 and "no clips of split 'val'" in bad.stderr
    assert "Traceback" not in bad.stderr and bad.stdout.strip() == ""
