"""The corpus's journals: the quarantine (rejected or broken inputs, one entry per stage and item) and the
takedown journal (a ``started`` line, the intent, then a ``done`` line per takedown).

:class:`JournalMixin` gives :class:`skyloom.corpus.Corpus` these methods; both files are JSON lines,
small next to the manifest (one line per failure or takedown, not per clip).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skyloom.fsutil import append_jsonl, atomic_write_text, file_lock, now_iso, read_jsonl


class JournalMixin:
    """Quarantine and takedown-journal methods of :class:`skyloom.corpus.Corpus` (which provides ``root``)."""

    if TYPE_CHECKING:  # provided by Corpus
        root: Path

    def quarantine(self, stage: str, item: str, reason: str, **extra: Any) -> dict[str, Any]:
        """Record a rejected or broken input with its reason (``quarantine.jsonl``).

        The file keeps one current entry per ``(stage, item)``: a repeated failure replaces the
        entry and counts ``attempts`` (``first_time`` is kept); :meth:`clear_quarantine` drops it.
        """
        with file_lock(self.root / ".quarantine.lock"):
            entries = self._quarantine_entries()
            prev = entries.get((stage, item))
            entry = {"stage": stage, "item": item, "reason": reason, "time": now_iso(),
                     "first_time": (prev or {}).get("first_time") or (prev or {}).get("time") or now_iso(),
                     "attempts": int((prev or {}).get("attempts", 0)) + 1, **extra}
            entries.pop((stage, item), None)
            entries[(stage, item)] = entry
            self._write_quarantine(entries)
            return entry

    def clear_quarantine(self, stage: str, items: Iterable[str]) -> int:
        """Drop the entries of ``items`` (they succeeded since); returns how many were dropped."""
        keys = {(stage, i) for i in items}
        with file_lock(self.root / ".quarantine.lock"):
            entries = self._quarantine_entries()
            gone = [k for k in entries if k in keys]
            for k in gone:
                del entries[k]
            if gone:
                self._write_quarantine(entries)
            return len(gone)

    def _quarantine_entries(self) -> dict[tuple[str, str], dict[str, Any]]:
        # Older corpora appended a line per failure: fold them (last wins, lines counted as attempts).
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for r in read_jsonl(self.root / "quarantine.jsonl"):
            key = (str(r.get("stage")), str(r.get("item")))
            prev = out.pop(key, None)
            if "attempts" not in r:
                r = {**r, "attempts": int((prev or {}).get("attempts", 0)) + 1,
                     "first_time": (prev or {}).get("first_time") or r.get("time")}
            out[key] = r
        return out

    def _write_quarantine(self, entries: dict[tuple[str, str], dict[str, Any]]) -> None:
        text = "".join(json.dumps(e, default=str) + "\n" for e in entries.values())
        atomic_write_text(self.root / "quarantine.jsonl", text)

    def quarantined(self, stage: str | None = None) -> list[dict[str, Any]]:
        """Current quarantine entries (one per stage and item), optionally of one stage."""
        return [r for r in self._quarantine_entries().values() if stage is None or r.get("stage") == stage]

    def log_takedown(self, entry: dict[str, Any]) -> None:
        """Append one line to the takedown journal ``takedowns.jsonl`` (fsynced)."""
        append_jsonl(self.root / "takedowns.jsonl", {"time": now_iso(), **entry})

    def takedowns(self, pending: bool | None = None) -> list[dict[str, Any]]:
        """One entry per takedown, in order. The journal holds a ``started`` line (the intent,
        written first) and a ``done`` line per takedown; a takedown with no ``done`` line is
        unfinished (``pending=True`` lists only those, ``False`` only finished ones). Lines of
        older corpora (one line per takedown, no ``id``) count as finished."""
        out: dict[str, dict[str, Any]] = {}
        for n, line in enumerate(read_jsonl(self.root / "takedowns.jsonl")):
            tid = str(line.get("id") or f"legacy-{n}")
            out[tid] = {**out.get(tid, {}), **line, "state": line.get("state", "done")}
        entries = list(out.values())
        if pending is None:
            return entries
        return [e for e in entries if (e["state"] != "done") == pending]

    def takedown_keys(self) -> set[str]:
        """Every source spelling and content sha256 named by ``takedowns.jsonl``, finished or not
        (ingest refuses them from the moment a takedown's intent is logged)."""
        keys: set[str] = set()
        for t in self.takedowns():
            keys.update(str(x) for x in [*t.get("source_urls", []), *t.get("source_sha256", []),
                                         *t.get("spellings", [])] if x)
        return keys

    def taken_down_clips(self) -> tuple[set[str], tuple[str, ...]]:
        """Ids of every clip ever taken down, and the id prefixes (``lic-<sha[:16]>-``) of every
        taken-down source: no export may hold one."""
        ids: set[str] = set()
        prefixes: set[str] = set()
        for t in self.takedowns():
            ids.update(str(c) for c in t.get("clips", []))
            prefixes.update(f"lic-{s[:16]}-" for s in t.get("source_sha256", []) if s)
        return ids, tuple(sorted(prefixes))
