"""WebDataset export of a corpus, and the export bookkeeping takedowns rely on.

:class:`ExportsMixin` gives :class:`skyloom.corpus.Corpus` its export methods: tar shards of one shard's
rows at a time (``iter_records``), ``index.json`` per export folder (per split: shards and the clip id ->
shard map, and the owning corpus), ``exports.json`` (every export folder, relative to the corpus), and
the shard rewrite a takedown runs on every export this corpus can prove is its own.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skyloom.fsutil import atomic_path, atomic_write_json, now_iso
from skyloom.manifest import CORPUS_FORMAT_VERSION, SPLITS, ClipRecord, CorpusError

if TYPE_CHECKING:
    from skyloom.corpus import Corpus

EXPORTS = "exports.json"


class ExportsMixin:
    """Export methods of :class:`skyloom.corpus.Corpus` (which provides ``root``, ``_lock``,
    ``corpus_id`` and ``iter_records``)."""

    if TYPE_CHECKING:  # provided by Corpus
        root: Path

        def _lock(self) -> AbstractContextManager[Any]: ...

        @property
        def corpus_id(self) -> str: ...

        def iter_records(self, batch_size: int = 1024, *, split: str | None = None, source_kind: str | None = None,
                         columns: Sequence[str] | None = None) -> Iterator[list[ClipRecord]]: ...

    def export_webdataset(self, out_dir: str | os.PathLike | None = None, shard_size: int = 1000,
                          split: str | None = None) -> list[Path]:
        """Write WebDataset tar shards: per clip ``<id>.mp4``, ``<id>.json`` (row), ``<id>.txt``.

        Shards land in ``CORPUS/shards`` by default, named ``<split or 'all'>-<n>.tar``. The
        folder's ``index.json`` lists, per split, the shards and the clip id -> shard map; an
        export replaces the earlier shards of the same split in that folder (no stale shard is
        left behind) and leaves the other splits' alone. Every export folder is recorded in
        ``exports.json``, so a takedown rewrites the shards of every export, ``--out`` ones included.
        """
        if shard_size < 1:
            raise CorpusError(f"shard_size must be >= 1, got {shard_size}")
        if split is not None and split not in SPLITS:
            raise CorpusError(f"split {split!r} is not one of: {', '.join(SPLITS)}")
        out = Path(out_dir) if out_dir else self.root / "shards"
        owned, why = self.export_owner(out)
        if not owned and _index_owner(out):  # another corpus's (or a copy's) export: never overwritten
            raise CorpusError(f"{out}: cannot export there: {why}; choose an empty folder or one this corpus wrote")
        out.mkdir(parents=True, exist_ok=True)
        prefix = split or "all"
        with self._lock():
            self._register_export(out)
            index = read_wds_index(out)
            index["owner"] = self._owner_stamp(out)
            shards: list[Path] = []
            clips: dict[str, str] = {}
            for n, chunk in enumerate(self.iter_records(shard_size, split=split)):  # one shard's rows at a time
                dest = out / f"{prefix}-{n:06d}.tar"
                _write_shard(self, dest, chunk)  # type: ignore[arg-type]  # self is a Corpus
                shards.append(dest)
                clips.update({r.id: dest.name for r in chunk})
            new = {p.name for p in shards}
            stale = set(index["exports"].get(prefix, {}).get("shards", []))
            if owned:  # shards of ours an interrupted export left unlisted; a fresh folder's files are not ours
                stale |= {p.name for p in out.glob(f"{prefix}-*.tar")
                          if re.fullmatch(rf"{prefix}-\d{{6}}\.tar", p.name)}
            for name in stale - new:
                (out / name).unlink(missing_ok=True)
            index["exports"][prefix] = {"shards": sorted(new), "clips": clips, "created_at": now_iso(),
                                        "shard_size": shard_size}
            _write_wds_index(out, index)
        return shards

    def exports(self) -> list[Path]:
        """Every WebDataset export folder this corpus has written (``CORPUS/shards`` first).

        ``exports.json`` records each folder relative to the corpus root (``../exports/wds`` for one
        beside it), so a corpus copied or moved together with its exports finds its own copies,
        never the originals; entries of older corpora may be absolute."""
        p = self.root / EXPORTS
        listed = json.loads(p.read_text()).get("exports", []) if p.exists() else []
        dirs = [Path("shards"), *(Path(d) for d in listed)]
        return list(dict.fromkeys(d if d.is_absolute() else Path(os.path.normpath(self.root / d)) for d in dirs))

    def _owner_stamp(self, folder: Path) -> dict[str, str]:
        """What an export's ``index.json`` says about who wrote it: this corpus's id and the path
        from the export folder back to the corpus root."""
        return {"corpus_id": self.corpus_id,
                "corpus": os.path.relpath(self.root.resolve(), Path(folder).resolve())}

    def export_owner(self, folder: Path) -> tuple[bool, str]:
        """Whether this corpus may rewrite ``folder``, and why not.

        A folder inside the corpus is its own. One outside is ours only when its ``index.json``
        carries this corpus's id *and* its path back to the corpus leads here: a copy of the corpus
        (same id, another place) never rewrites the original's exports, nor the original a copy's.
        """
        folder = Path(folder)
        root = self.root.resolve()
        real = folder.resolve()
        if real == root or real.is_relative_to(root):
            return True, ""
        if not (folder / "index.json").is_file():
            return False, "no index.json"
        try:
            owner = json.loads((folder / "index.json").read_text()).get("owner") or {}
        except (OSError, json.JSONDecodeError, AttributeError) as e:
            return False, f"unreadable index.json ({type(e).__name__})"
        if not owner:
            return False, "its index.json names no owning corpus (written before exports carried one; re-export it)"
        if owner.get("corpus_id") != self.corpus_id:
            return False, f"it belongs to corpus {owner.get('corpus_id')}, not {self.corpus_id}"
        back = (real / str(owner.get("corpus", ""))).resolve()
        if back != root:
            return False, f"it was written by the copy of this corpus at {back}, not by {root}"
        return True, ""

    def _register_export(self, out: Path) -> None:
        p = self.root / EXPORTS
        listed = json.loads(p.read_text()).get("exports", []) if p.exists() else []
        real = Path(out).resolve()
        entry = os.path.relpath(real, self.root.resolve())
        # an older absolute entry for the same folder is replaced by the relative one
        kept = [e for e in listed if not (Path(e).is_absolute() and Path(e).resolve() == real)]
        if entry != "shards" and entry not in kept:
            kept.append(entry)
        if kept != listed:
            atomic_write_json(p, {"exports": kept})

    def remove_from_exports(self, ids: Iterable[str], prefixes: Iterable[str] = ()) -> dict[str, list[str]]:
        """Drop ``ids`` (and ids starting with one of ``prefixes``) from the shards of every export,
        under the corpus lock; see :meth:`_remove_from_shards`."""
        with self._lock():
            return self._remove_from_shards(set(ids), tuple(prefixes))

    def _remove_from_shards(self, ids: set[str], prefixes: tuple[str, ...] = ()) -> dict[str, list[str]]:
        """Rewrite every shard of every export this corpus owns that holds one of ``ids``.

        Returns ``{"rewritten": [shard paths], "missing_exports": [folders not found],
        "foreign_exports": ["folder: why"] (not provably ours: left alone), "skipped": ["file: why"]
        (files in an export folder that are not readable tar shards: left alone)}``. Idempotent."""
        done: dict[str, list[str]] = {"rewritten": [], "missing_exports": [], "foreign_exports": [], "skipped": []}
        if not ids and not prefixes:
            return done

        def gone(cid: str) -> bool:
            return cid in ids or (bool(prefixes) and cid.startswith(prefixes))

        for folder in self.exports():
            if not folder.is_dir():
                if folder != self.root / "shards":
                    done["missing_exports"].append(str(folder))
                continue
            owned, why = self.export_owner(folder)
            if not owned:
                done["foreign_exports"].append(f"{folder}: {why}")
                continue
            for shard in sorted(folder.glob("*.tar")):
                try:
                    if not any(gone(i) for i in shard_ids(shard)):
                        continue
                    with atomic_path(shard, suffix=".tar") as tmp:
                        with tarfile.open(shard) as src, tarfile.open(tmp, "w") as dst:
                            for m in src.getmembers():
                                if gone(m.name.split(".", 1)[0]):
                                    continue
                                dst.addfile(m, src.extractfile(m))
                except (tarfile.TarError, OSError, EOFError) as e:
                    done["skipped"].append(f"{shard}: not a readable tar shard ({type(e).__name__}); left alone")
                    continue
                done["rewritten"].append(str(shard))
            index = read_wds_index(folder)
            for exp in index["exports"].values():
                exp["clips"] = {i: sh for i, sh in exp.get("clips", {}).items() if not gone(i)}
            _write_wds_index(folder, index)
        return done


def read_wds_index(folder: Path) -> dict[str, Any]:
    """``index.json`` of a WebDataset export folder, in the per-split form (older ones converted)."""
    p = Path(folder) / "index.json"
    index = json.loads(p.read_text()) if p.exists() else {}
    if "exports" not in index:  # the single-map form: {"clips": {id: shard}}
        by_prefix: dict[str, dict[str, Any]] = {}
        for cid, shard in (index.get("clips") or {}).items():
            exp = by_prefix.setdefault(shard.rsplit("-", 1)[0], {"shards": [], "clips": {}})
            exp["clips"][cid] = shard
            if shard not in exp["shards"]:
                exp["shards"].append(shard)
        index = {"exports": by_prefix}
    return {"format": "webdataset", "corpus_version": CORPUS_FORMAT_VERSION, **index}


def _index_owner(folder: Path) -> dict[str, Any]:
    """The ``owner`` an export folder's ``index.json`` names (empty: none, or no index)."""
    try:
        owner = json.loads((Path(folder) / "index.json").read_text()).get("owner")
    except (OSError, json.JSONDecodeError, AttributeError):
        return {}
    return owner if isinstance(owner, dict) else {}


def _write_wds_index(folder: Path, index: dict[str, Any]) -> None:
    index = {k: v for k, v in index.items() if k != "clips"}
    index["clips"] = {cid: shard for exp in index["exports"].values() for cid, shard in exp.get("clips", {}).items()}
    atomic_write_json(Path(folder) / "index.json", index)


def shard_ids(shard: Path) -> set[str]:
    """Clip ids with a member in a WebDataset tar shard."""
    with tarfile.open(shard) as t:
        return {m.name.split(".", 1)[0] for m in t.getmembers()}


def _write_shard(corpus: Corpus, dest: Path, recs: Sequence[ClipRecord]) -> None:
    with atomic_path(dest, suffix=".tar") as tmp, tarfile.open(tmp, "w") as tar:
        for r in recs:
            row = r.to_row()
            row["quality"] = dict(r.quality)
            row["meta"] = r.meta
            text = (r.caption("dense") or r.caption() or "").encode()
            members = [(f"{r.id}.mp4", (corpus.root / r.path).read_bytes()),
                       (f"{r.id}.json", json.dumps(row, default=str).encode()),
                       (f"{r.id}.txt", text)]
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = 0  # reproducible shards
                tar.addfile(info, io.BytesIO(data))


