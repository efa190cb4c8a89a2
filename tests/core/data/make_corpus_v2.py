"""Write ``corpus_v2/``: a corpus of manifest format 2, by the skyloom of commit 8cd5571 (before issue 29).

Run with that commit's checkout first on the path (its ``skyloom`` package, format 2)::

    git worktree add /tmp/sky-v2 8cd5571 && PYTHONPATH=/tmp/sky-v2 python tests/core/data/make_corpus_v2.py

It writes the corpus (appends, captions, a quality score, a split change, a deletion: five parts and the
snapshot) and ``corpus_v2.json``: the records that skyloom read back, which the migration must keep.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from skyloom.corpus import CORPUS_FORMAT_VERSION, Caption, ClipRecord, Corpus

HERE = Path(__file__).parent
assert CORPUS_FORMAT_VERSION == 2, "run with the skyloom of commit 8cd5571 (format 2)"


def rec(i: int) -> ClipRecord:
    return ClipRecord(id=f"old-{i}", path=f"clips/old-{i}.mp4", source_kind="synthetic" if i % 2 else "licensed",
                      duration_s=1.0, fps=8.0, width=32, height=32, num_frames=8, license_id="CC0-1.0",
                      source_url=f"https://example.org/s{i % 3}.mp4", author="a", attribution="",
                      sha256=f"{i:064d}", source_sha256=f"src{i % 3}")


out = HERE / "corpus_v2"
shutil.rmtree(out, ignore_errors=True)
c = Corpus.create(out, name="v2")
c.append([rec(i) for i in range(6)])
c.add_captions({"old-1": [Caption("t", "short", "one")], "old-2": [Caption("t", "dense", "two")]})
c.set_quality({"old-3": {"motion": 0.5}})
c.update([dataclasses.replace(c.get("old-4"), split="val")])
c.delete(["old-5"], reason="test")
(out / ".lock").unlink(missing_ok=True)
rows = [{**dataclasses.asdict(r), "captions": [dataclasses.asdict(x) for x in r.captions]} for r in c.records()]
(HERE / "corpus_v2.json").write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
