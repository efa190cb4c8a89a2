"""User mistakes exit 2 with one line naming the input, never "internal error ... a bug in skyloom" (issue 22).

Run as users run skyloom: the installed executable in a subprocess (like test_cli_contract.py). The first
group is the 13 mistakes a new user made that came back as exit 1 ("a bug in skyloom") before library
code raised typed errors; the second group is more of the same kind, over every stage.
"""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.core.test_cli_contract import ENV, SKYLOOM, run


def _no_gpu_device() -> str:
    """A --device this machine lacks: ``cuda`` without a GPU, else a GPU index past the last one."""
    import torch

    return "cuda:99" if torch.cuda.is_available() else "cuda"


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A corpus of 2 clips, a DiT run trained 1 step (runs/run-a), a folder, a file posing as a database,
    a file where folders are expected (``afile``), a folder of one video and one of broken videos."""
    import torch

    from skyloom.model.train import train
    from tests.model.helpers import make_square_corpus, tiny_cfg

    root = tmp_path_factory.mktemp("cli-user-errors")
    make_square_corpus(root / "corpus", n=2)
    torch.set_num_threads(1)
    train(tiny_cfg(steps=1, num_threads=1), root / "corpus", root / "runs" / "run-a", device="cpu")
    (root / "afolder").mkdir()
    (root / "notsqlite.db").write_text("this is not a database\n")
    (root / "afile").write_text("a file where a folder is expected\n")
    (root / "vids").mkdir()
    (root / "vids" / "a.mp4").write_bytes((root / "corpus" / "clips" / "sq000.mp4").read_bytes())
    return root


CUDA = _no_gpu_device()

# (arguments, what the one error line must mention). Before issue 22 each of these exited 1.
ISSUE_CASES: list[tuple[list[str], str]] = [
    # a --db that is not SQLite, from every command that reads a store
    (["leaderboard", "--db", "notsqlite.db"], "notsqlite.db"),
    (["compare", "a", "b", "--db", "notsqlite.db"], "notsqlite.db"),
    (["eval", "--suite", "smoke", "--ckpt", "runs/run-a", "--db", "notsqlite.db"], "notsqlite.db"),
    # an --out that cannot be written (a file is where the folder must go)
    (["datagen", "render", "-n", "1", "--out", "afile/corpus"], "afile"),
    (["train", "corpus", "--out", "afile/run", "--steps", "1"], "afile"),
    (["sample", "--ckpt", "runs/run-a", "--prompt", "x", "--out", "afile/a.mp4"], "afile"),
    (["eval", "--suite", "smoke", "--ckpt", "runs/run-a", "--out", "afile/e"], "afile"),
    (["corpus", "export-wds", "corpus", "--out", "afile/shards"], "afile"),
    # render -n -3
    (["datagen", "render", "-n", "-3", "--out", "o"], "--num-scenes"),
    # --device cuda without a GPU
    (["train", "corpus", "--out", "run-cuda", "--device", CUDA], "--device"),
    (["sample", "--ckpt", "runs/run-a", "--prompt", "x", "--out", "a.mp4", "--device", CUDA], "--device"),
    (["eval", "--suite", "smoke", "--ckpt", "runs/run-a", "--device", CUDA], "--device"),
    # report --out naming a folder
    (["report", "--runs", "runs", "--out", "afolder"], "afolder"),
    # a --preset vae run over a DiT run
    (["train", "corpus", "--out", "runs/run-a", "--preset", "vae"], "runs/run-a"),
]

MORE_CASES: list[tuple[list[str], str]] = [
    (["leaderboard", "--db", "nosuch://x"], "nosuch://x"),
    (["report", "--runs", "runs", "--out", "afile/r.html"], "afile"),
    (["train", "corpus", "--out", "o", "--set", "optim.lr=-1"], "optim.lr"),
    (["train", "corpus", "--out", "o", "--steps", "-1"], "steps"),
    (["train", "corpus", "--out", "o", "--set", "dit.heads=3"], "dit.heads"),
    (["train", "corpus", "--out", "o", "--set", "data.buckets=[]"], "data.buckets"),
    (["train", "corpus", "--out", "o", "--set", "num_threads=-5"], "num_threads"),
    (["train", "corpus", "--out", "o", "--device", "potato"], "potato"),
    # resuming a run with another model shape: the run's checkpoint refuses it, config.yaml is kept
    (["train", "corpus", "--out", "runs/run-a", "--set", "dit.patch=[1,8,8]"], "runs/run-a"),
    (["sample", "--ckpt", "runs/run-a", "--prompt", "x", "--out", "a.mp4", "--device", "potato"], "potato"),
    (["caption", "upsample", ""], "prompt"),
    (["caption", "corpus", "--set", "batch_size=0"], "batch_size"),
    (["datagen", "render", "-n", "1", "--out", "o", "--set", "executor=warp"], "warp"),
    (["datagen", "render", "-n", "1", "--out", "o", "--set", "scenes_per_task=0"], "scenes_per_task"),
    (["eval", "--suite", "smoke", "--ckpt", "runs/run-a", "--ckpt", "runs/run-a"], "twice"),
    (["eval", "--suite", "smoke", "--ckpt", "runs/run-a", "--set", "executor=warp"], "warp"),
    (["eval", "--suite", "smoke", "--ckpt", "runs/run-a", "--db", "nosuch://x"], "nosuch://x"),
    (["eval", "score", "--metric", "warping_error", "--videos", "vids", "--option", "flow=magic"], "magic"),
    (["eval", "score", "--metric", "temporal_flickering", "--videos", "vids", "--option", "protocol=nosuch"],
     "nosuch"),
    (["dashboard", "--runs", "runs", "--allow-host", "http://x"], "http://x"),
    (["corpus", "export-wds", "corpus", "--split", "nosuch"], "nosuch"),
]


@pytest.mark.slow  # 35 processes that each import torch: ~1 min idle, 13 min under a load of 15 on 2 cores
def test_user_mistakes_exit_2_with_one_line_naming_the_input(ws):
    """35 mistakes: exit 2, nothing on stdout, one ``error:`` line naming the input, no traceback."""
    assert len(ISSUE_CASES) >= 13 and len(MORE_CASES) >= 20
    cases = ISSUE_CASES + MORE_CASES
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda c: run(c[0], ws, timeout=300), cases))
    problems = []
    for (args, needle), r in zip(cases, results):
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
        ok = (r.returncode == 2 and r.stdout == "" and len(errors) == 1 and needle in errors[0]
              and "Traceback" not in r.stderr and "bug in skyloom" not in r.stderr)
        if not ok:
            problems.append(f"skyloom {' '.join(args)}: rc={r.returncode} stdout={r.stdout[-200:]!r} "
                            f"stderr={r.stderr[-400:]!r}")
    assert not problems, "\n".join(problems)
    # what the mistakes left behind: the DiT run is still a DiT run with its own config, nothing under afile
    run_dir = ws / "runs" / "run-a"
    assert '"stage": "dit"' in (run_dir / "run.json").read_text()
    cfg = (run_dir / "config.yaml").read_text()
    assert "stage: dit" in cfg and "- 8\n  - 8" not in cfg
    assert not (ws / "run-cuda").exists()  # the device is checked before the run folder is made


@pytest.mark.parametrize("args", [["eval", "suites"], ["corpus", "info", "corpus"],
                                  ["corpus", "info", "corpus", "--json"]])
def test_closed_stdout_pipe_exits_quietly(ws, args):
    """``skyloom ... | head``: the reader closes the pipe before skyloom writes; exit 0 or 141, nothing on stderr."""
    assert SKYLOOM
    p = subprocess.Popen([SKYLOOM, *args], cwd=ws, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    p.stdout.close()  # before skyloom's first write: every write meets a closed pipe
    err = p.stderr.read().decode()
    p.wait(timeout=300)
    assert p.returncode in (0, 141), err
    assert err == "", err


def test_os_errors_about_paths_are_user_errors(tmp_path):
    """The mapping behind "an unwritable --out": permission, a file in the way, a full disk -> OutputError."""
    import errno

    from skyloom.errors import OutputError, UserError, user_error_from_os
    from skyloom.fsutil import atomic_write_text, make_dir

    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="a file is in the way"):
        make_dir(tmp_path / "f" / "sub", "--out")
    with pytest.raises(OutputError, match="is a folder"):
        atomic_write_text(tmp_path, "x")
    e = user_error_from_os(PermissionError(errno.EACCES, "Permission denied", "/srv/x"), "--out")
    assert isinstance(e, UserError) and str(e) == "--out /srv/x: permission denied"
    assert user_error_from_os(OSError(errno.ENOSPC, "No space left on device", "/d")) is not None
    assert user_error_from_os(OSError(errno.ECONNREFUSED, "refused")) is None  # not about a path: stays a bug
    assert user_error_from_os(PermissionError(errno.EACCES, "Permission denied")) is None  # no path named
    if os.geteuid() != 0:  # a read-only folder stops only a non-root user
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        with pytest.raises(OutputError, match="permission denied"):
            make_dir(ro / "sub")


def test_typed_errors_are_still_value_errors():
    """Library callers that catch ValueError keep working: every typed bad-input error is one."""
    import numpy as np

    from skyloom.config import ConfigError
    from skyloom.errors import InvalidInputError, UserError
    from skyloom.optical_flow import dense_flow

    f = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(InvalidInputError) as e:
        dense_flow(f, f, "magic")
    assert isinstance(e.value, ValueError) and isinstance(e.value, UserError) and "magic" in str(e.value)
    assert issubclass(ConfigError, ValueError) and issubclass(ConfigError, UserError)
