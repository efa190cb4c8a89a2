"""What takedown and ``corpus validate`` call so that the curation files follow the manifest.

* :func:`after_removal` (called by :func:`skyloom.datagen.ingest.takedown` after the clips are
  tombstoned): re-elects the representative of every near-duplicate group that lost a member
  (:func:`skyloom.datagen.curate.dedup.reelect`), then drops the removed clips' rows from
  ``annotations.parquet``, ``embeddings.parquet``, ``fingerprints.parquet`` and ``dedup.parquet``.
* :func:`check_curation` (called by :func:`skyloom.corpus_check.check_corpus`): every curation row
  belongs to a live clip and was made from its current file; a near-duplicate group has exactly
  one representative and it is live. With ``repair``, rows of clips that are gone are dropped and
  groups re-elected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from skyloom.corpus import Corpus
from skyloom.datagen.curate.store import DEDUP, TABLES, SideTable, check_side_tables, drop_clips


def after_removal(corpus: Corpus, removed: list[str]) -> dict[str, Any]:
    """Re-elect groups that lost ``removed`` clips, then drop their curation rows; returns what changed."""
    from skyloom.datagen.curate.dedup import reelect

    if not removed or not any(SideTable(corpus.root, t).exists() for t in TABLES):
        return {}
    reelected = reelect(corpus, removed)
    dropped = drop_clips(corpus.root, removed)
    return {"reelected": reelected, "rows_dropped": dropped}


class _HasSha256(Protocol):
    """What the curation checks need of a live clip: its content hash (a record or corpus_check's LiveClip)."""

    @property
    def sha256(self) -> str: ...


def check_curation(corpus: Corpus, live: Mapping[str, _HasSha256], repair: bool = False
                   ) -> tuple[list[tuple[str, str, str]], list[str]]:
    """``(problems as (kind, item, detail), repairs made)`` of the curation files."""
    repaired: list[str] = []
    problems = check_side_tables(corpus.root, {cid: r.sha256 for cid, r in live.items()})
    if repair:
        gone = sorted({p[1].split(":", 1)[1] for p in problems if p[0] == "curation row without clip"})
        if gone:
            res = after_removal(corpus, gone)
            repaired.append(f"dropped curation rows of {len(gone)} clip(s) not in the manifest "
                            f"({', '.join(sorted(res.get('rows_dropped', {})))})")
            problems = check_side_tables(corpus.root, {cid: r.sha256 for cid, r in live.items()})
    groups: dict[str, list[dict]] = {}
    for row in SideTable(corpus.root, DEDUP).rows().values():
        groups.setdefault(row["group"], []).append(row)
    for g, rows in sorted(groups.items()):
        kept = {r["kept"] for r in rows}
        reps = [r["id"] for r in rows if not r["duplicate"]]
        if len(kept) != 1 or len(reps) != 1 or reps[0] not in kept:
            problems.append(("bad dedup group", g, f"group must have one representative, found {sorted(reps)} "
                                                   f"(kept: {sorted(kept)}); rerun `skyloom corpus dedup`"))
        elif next(iter(kept)) not in live:
            problems.append(("bad dedup group", g, f"representative {next(iter(kept))} is not in the manifest"))
    return problems, repaired
