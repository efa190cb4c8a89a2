"""Nonsense is refused before any work starts (issue 27): counts below 1, an output inside (or equal to) an
input, flags that contradict each other, empty inputs, a text model on a corpus without captions, and a
read-only command asked to read something that does not exist.

Each case is the installed ``skyloom`` in a subprocess: exit 2, one ``error:`` line that names the input,
nothing on stdout, no traceback, and nothing created in the workspace (the refusal comes before the work).
"""

from __future__ import annotations

import os
import shlex
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.core.test_cli_contract import ENV, run


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A captioned corpus, an uncaptioned one, a run, a folder of videos, an empty folder and empty files."""
    from skyloom.rundir import RunDir
    from tests.model.helpers import make_square_corpus

    root = tmp_path_factory.mktemp("cli-nonsense")
    make_square_corpus(root / "corpus", n=2, T=4, size=16, captions=True)
    make_square_corpus(root / "uncaptioned", n=2, T=4, size=16, captions=False)
    RunDir.create(root / "runs" / "run-a", preset="vdit-tiny")
    (root / "vids").mkdir()
    for name in ("a-s0", "b-s0"):  # a submission folder: any .mp4 will do for the checks before scoring
        (root / "vids" / f"{name}.mp4").write_bytes((root / "corpus" / "clips" / "sq000.mp4").read_bytes())
    (root / "empty").mkdir()
    (root / "empty.jsonl").write_text("")
    (root / "blank.jsonl").write_text("\n  \n")
    (root / "empty.csv").write_text("url,license,author\n")
    (root / "nothing.jsonl").write_text("")
    (root / "sources.csv").write_text("url,license\nclip.mp4,CC0-1.0\n")
    (root / "notes.txt").write_text("not a results store\n")
    return root


# (arguments, what the one error line must mention, extra environment). Beyond tests/core/test_cli_contract.py.
NONSENSE: list[tuple[str, str, dict[str, str] | None]] = [
    # counts, steps and frames below 1
    ("train corpus --out o --steps -5", "-5", None),
    ("train corpus --out o --steps 0", "steps", None),
    ("train corpus --out o --set steps=0", "steps", None),
    ("train corpus --out o --set log_every=0", "log_every", None),
    ("train corpus --out o --set ckpt_every=-1", "ckpt_every", None),
    ("train corpus --out o --set sampler.steps=0", "sampler.steps", None),
    ("train corpus --out o --set optim.lr=0", "optim.lr", None),
    ("train corpus --out o --set data.buckets[0].batch_size=0", "data.buckets[0].batch_size", None),
    ("train corpus --out o --set data.buckets[0].num_frames=-2", "data.buckets[0].num_frames", None),
    ("train corpus --out o --set data.buckets=[]", "data.buckets", None),
    ("train corpus --out o --max-minutes -1", "max_minutes", None),
    ("train corpus --out o --num-workers 0", "--num-workers", None),
    ("train corpus --out o --set data.cache_mb=-1", "data.cache_mb", None),
    ("train corpus --out o --set data.shuffle_buffer=0", "data.shuffle_buffer", None),
    ("train corpus --out o --set data.source=tar", "data.source", None),
    ("sample --ckpt runs/run-a --prompt x --out a.mp4 --num-frames 0", "--num-frames", None),
    ("sample --ckpt runs/run-a --prompt x --out a.mp4 --steps 0", "--steps", None),
    ("sample --ckpt runs/run-a --prompt x --out a.mp4 --steps -3", "--steps", None),
    ("sample --ckpt runs/run-a --prompt x --out a.mp4 --prefix-frames 0", "--prefix-frames", None),
    ("sample --ckpt runs/run-a --prompt x --out a.mp4 --seed -1", "--seed", None),
    ("sample --ckpt runs/run-a --prompt x --out a.mp4 --guidance -1", "--guidance", None),
    ("datagen render --out o -n 0", "--num-scenes", None),
    ("datagen render --out o -n -4", "--num-scenes", None),
    ("datagen render --out o --set num_scenes=0", "--num-scenes", None),
    ("datagen render --out o --seed -1", "--seed", None),
    ("datagen render --out o --set scenes_per_task=0", "scenes_per_task", None),
    ("eval --suite smoke --ckpt runs/run-a --set suite.generation.num_frames=0", "generation.num_frames", None),
    ("eval --suite smoke --ckpt runs/run-a --set suite.generation.steps=-1", "generation.steps", None),
    ("eval --suite smoke --ckpt runs/run-a --max-failures -1", "--max-failures", None),
    ("eval train-evaluator corpus --out ev --set steps=0", "steps", None),
    ("dashboard --runs runs --max-clips 0", "--max-clips", None),
    ("report --runs runs --out r.html --max-video-mb -1", "--max-video-mb", None),
    # an output inside or equal to an input
    ("train corpus --out corpus", "is the corpus", None),
    ("train corpus --out corpus/run", "inside the corpus", None),
    ("sample --ckpt runs/run-a --prompt x --out runs/run-a/x.mp4", "inside the --ckpt", None),
    ("datagen ingest sources.csv --out sources.csv", "source manifest", None),
    ("eval --suite smoke --ckpt runs/run-a --out runs/run-a", "--ckpt", None),
    ("eval --suite smoke --videos vids --name m --out vids/scores", "inside the --videos folder", None),
    ("eval train-evaluator corpus --out corpus/evaluator", "inside the corpus", None),
    ("eval score --metric temporal_flickering --videos vids --out vids/r.json", "--videos folder", None),
    ("report --runs runs --corpus corpus --out corpus/report.html", "--corpus folder", None),
    ("report --runs runs --out empty", "is a folder", None),
    ("report --runs runs --out r.txt", ".html", None),
    ("eval export --suite smoke --out notes.txt", "notes.txt", None),
    # flags that contradict each other, or cannot work
    ("eval --suite smoke --videos vids --name m --ckpt runs/run-a", "--videos", None),
    ("eval --suite smoke --ckpt runs/run-a --executor magic", "magic", None),
    ("datagen render --out o --executor rey", "rey", None),
    ("datagen ingest sources.csv --out o --executor cluster", "cluster", None),
    ("caption corpus --executor threads", "threads", None),
    ("eval --suite smoke --videos vids --name m --mismatch maybe", "maybe", None),
    ("eval --suite smoke --videos vids --name m --meta nokey", "nokey", None),
    # empty inputs
    ("datagen render --out o --specs empty.jsonl", "empty.jsonl", None),
    ("datagen render --out o --specs blank.jsonl", "blank.jsonl", None),
    ("datagen render --out o --specs /nonexistent.jsonl", "/nonexistent.jsonl", None),
    ("datagen ingest empty.csv --out o", "empty.csv", None),
    ("datagen ingest nothing.jsonl --out o", "nothing.jsonl", None),
    ("datagen ingest vids --out o", "vids", None),
    ("eval --suite smoke --videos empty --name m", "empty", None),
    ("caption upsample ''", "PROMPT", None),
    # a text-to-video model on a corpus with no caption
    ("train uncaptioned --out o", "--allow-uncaptioned", None),
    # read-only commands never create what they were asked to read
    ("leaderboard --db typo.sqlite", "typo.sqlite", None),
    ("leaderboard", "/nonexistent/x.sqlite", {"SKYLOOM_RESULTS_DB": "/nonexistent/x.sqlite"}),
    ("leaderboard --db runs/nope", "runs/nope", None),
    ("leaderboard --runs /nonexistent", "/nonexistent", None),
    ("compare a b --db typo.sqlite", "typo.sqlite", None),
    ("dashboard --runs runs --db typo.sqlite", "typo.sqlite", None),
    ("report --runs runs --out r.html --db typo.sqlite", "typo.sqlite", None),
]


@pytest.mark.slow
def test_nonsense_is_refused_before_any_work(ws):
    """Over 50 cases: exit 2 with one ``error:`` line naming the input, and the workspace is left as it was."""
    assert len(NONSENSE) >= 40
    before = _snapshot(ws)

    def one(case):
        args, _, env = case
        return run(shlex.split(args), ws, timeout=300, env={**ENV, **env} if env else None)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(one, NONSENSE))
    problems = []
    for (args, needle, _), r in zip(NONSENSE, results):
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
        ok = (r.returncode == 2 and "Traceback" not in r.stderr + r.stdout and r.stdout == ""
              and len(errors) == 1 and needle in errors[0])
        if not ok:
            problems.append(f"skyloom {args}: rc={r.returncode} stdout={r.stdout[-200:]!r} stderr={r.stderr[-400:]!r}")
    assert not problems, "\n".join(problems)
    created = _snapshot(ws) - before
    assert not created, f"refused commands created {sorted(created)}"
    assert not Path("/nonexistent").exists()


def test_allow_uncaptioned_is_the_explicit_way_to_train_without_captions(ws, tmp_path):
    """The refusal names its way out, and that way works (one training step on the uncaptioned corpus)."""
    r = run(["train", str(ws / "uncaptioned"), "--out", str(tmp_path / "run"), "--steps", "1",
             "--set", "data.buckets=[{height: 16, width: 16, num_frames: 4, batch_size: 2}]",
             "--set", "dit.patch=[1, 4, 4]", "--allow-uncaptioned"], tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "run" / "checkpoints").is_dir()


def test_out_check_follows_symlinks_and_relative_paths(tmp_path):
    """``--out`` compared resolved: through a symlink or ``..`` it is still the same folder."""
    from skyloom.cli_common import check_out_apart
    from skyloom.errors import UserError

    (tmp_path / "corpus").mkdir()
    os.symlink(tmp_path / "corpus", tmp_path / "link")
    for out in (tmp_path / "link" / "run", tmp_path / "other" / ".." / "corpus"):
        with pytest.raises(UserError):
            check_out_apart(out, {"corpus": tmp_path / "corpus"})
    check_out_apart(tmp_path / "corpus-run", {"corpus": tmp_path / "corpus"})  # a sibling is fine


def test_corpus_info_reads_without_writing(ws):
    """``corpus info`` on a real corpus leaves every file as it was (no lock, no snapshot rewrite)."""
    root = ws / "corpus"
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    r = run(["corpus", "info", "corpus", "--json"], ws)
    assert r.returncode == 0 and '"clips": 2' in r.stdout, r.stderr
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before
