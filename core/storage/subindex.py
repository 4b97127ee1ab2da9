"""The submission index of the embedded store: small append-only segments, one line per submission.

Layout: ``index/subs/<form>/<YYYY-MM>/<commune>/<NNNNNN>.jsonl`` — a partition per form, month of
receipt (UTC) and commune (the unit code before ``-``), cut into segments of at most
``SEG_MAX_LINES`` lines, so saving costs one append whatever the number stored, and a query reads only
the partitions its form, months and units can touch.

A line is ``received<TAB>id<TAB>state<TAB>current<TAB>version<TAB>round<TAB>unit<TAB>collector<TAB>json``:
the tab-separated prefix lets filters and counts skip the JSON entirely; the JSON is the submission
(``Submission.model_validate_json`` reads it directly). A segment holds one line per submission:
updates (review, attachments, an edit making it not current) rewrite the segment atomically; new
submissions are appended. A reader ignores a last line without its newline (a writer killed mid-append).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from rasoat.core.models import Submission
from rasoat.core.storage.base import SubmissionQuery
from rasoat.core.storage.files import atomic_write, pct, read_bytes, safe_name

SEG_MAX_LINES = 128
SEG_MAX_BYTES = 512 * 1024
SEG_SUFFIX = ".jsonl"
NO_COMMUNE = "%none"  # never produced by safe_name ('%' is always followed by two hex digits)

# prefix columns
C_TS, C_ID, C_STATE, C_CURRENT, C_VERSION, C_ROUND, C_UNIT, C_COLLECTOR, C_JSON = range(9)


def utc(dt: datetime) -> datetime:
    """Aware UTC (naive times are taken as UTC)."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def ts(dt: datetime) -> str:
    """A fixed-width UTC timestamp that sorts as text."""
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_q = pct


def _opt(value: str | None) -> str:
    return "" if value is None else "=" + _q(value)


def commune_key(unit_code: str | None) -> str:
    return NO_COMMUNE if not unit_code else safe_name(unit_code.split("-", 1)[0], "unit code")


def partition_of(sub: Submission) -> str:
    """``<form>/<YYYY-MM>/<commune>``, relative to ``index/subs``."""
    month = utc(sub.received_at).strftime("%Y-%m")
    return f"{safe_name(sub.form_id, 'form id')}/{month}/{commune_key(sub.unit_code)}"


def seg_name(segno: int) -> str:
    return f"{segno:06d}{SEG_SUFFIX}"


def encode_line(sub: Submission) -> bytes:
    prefix = (
        ts(sub.received_at),
        _q(sub.instance_id),
        sub.review_state.value,
        "1" if sub.current else "0",
        _q(sub.form_version),
        _opt(sub.round_id),
        _opt(sub.unit_code),
        _opt(sub.collector_id),
        sub.model_dump_json(),
    )
    return ("\t".join(prefix) + "\n").encode()


def line_id(sub: Submission) -> str:
    return _q(sub.instance_id)


def read_segment(path: Path) -> list[list[str]]:
    """The lines of a segment, split into columns; one per submission (the last one written wins)."""
    return parse_segment(read_bytes(path))


def parse_segment(raw: bytes | None) -> list[list[str]]:
    """``read_segment`` on bytes already read (a torn last line and damaged lines are skipped)."""
    if not raw:
        return []
    end = raw.rfind(b"\n")
    if end < 0:
        return []
    out: dict[str, list[str]] = {}
    for line in raw[:end].decode("utf-8", "replace").split("\n"):
        parts = line.split("\t", C_JSON)
        if len(parts) == C_JSON + 1:
            out[parts[C_ID]] = parts
    return list(out.values())


def list_segments(pdir: Path) -> list[str]:
    try:
        names = os.listdir(pdir)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.endswith(SEG_SUFFIX) and n[: -len(SEG_SUFFIX)].isdigit())


class LineFilter:
    """A SubmissionQuery evaluated on the line prefix (no JSON parsing)."""

    def __init__(self, q: SubmissionQuery) -> None:
        self.version = _q(q.form_version) if q.form_version is not None else None
        self.round = _opt(q.round_id) if q.round_id is not None else None
        self.units = {_opt(u) for u in q.unit_codes} if q.unit_codes is not None else None
        self.collector = _opt(q.collector_id) if q.collector_id is not None else None
        self.states = {s.value for s in q.review_states} if q.review_states is not None else None
        self.ts_from = ts(q.received_from) if q.received_from is not None else None
        self.ts_to = ts(q.received_to) if q.received_to is not None else None
        self.current_only = q.current_only

    def __call__(self, p: list[str]) -> bool:
        t = p[C_TS]
        return not (
            (self.current_only and p[C_CURRENT] != "1")
            or (self.states is not None and p[C_STATE] not in self.states)
            or (self.units is not None and p[C_UNIT] not in self.units)
            or (self.version is not None and p[C_VERSION] != self.version)
            or (self.round is not None and p[C_ROUND] != self.round)
            or (self.collector is not None and p[C_COLLECTOR] != self.collector)
            or (self.ts_from is not None and t < self.ts_from)
            or (self.ts_to is not None and t >= self.ts_to)
        )

    def key_ok(self, key: list[str] | tuple[str, ...]) -> bool:
        """The filter without the time range, on (state, current, version, round, unit, collector)."""
        state, current, version, rnd, unit, collector = key
        return not (
            (self.current_only and current != "1")
            or (self.states is not None and state not in self.states)
            or (self.units is not None and unit not in self.units)
            or (self.version is not None and version != self.version)
            or (self.round is not None and rnd != self.round)
            or (self.collector is not None and collector != self.collector)
        )

    def time_covers(self, lo: str, hi: str) -> bool | None:
        """True: every time in [lo, hi] matches; False: none does; None: some may."""
        if (self.ts_from is not None and hi < self.ts_from) or (self.ts_to is not None and lo >= self.ts_to):
            return False
        if (self.ts_from is None or lo >= self.ts_from) and (self.ts_to is None or hi < self.ts_to):
            return True
        return None


def partitions(subs_dir: Path, q: SubmissionQuery) -> dict[str, list[str]]:
    """Partitions (relative paths) that may hold matches, grouped by month."""
    if q.form_id is not None:
        forms = [safe_name(q.form_id, "form id")]
    else:
        try:
            forms = sorted(n for n in os.listdir(subs_dir) if not n.startswith("."))
        except FileNotFoundError:
            return {}
    m_from = utc(q.received_from).strftime("%Y-%m") if q.received_from else None
    m_to = utc(q.received_to).strftime("%Y-%m") if q.received_to else None
    communes = {commune_key(u) for u in q.unit_codes} if q.unit_codes is not None else None
    out: dict[str, list[str]] = {}
    for form in forms:
        try:
            months = os.listdir(subs_dir / form)
        except FileNotFoundError:
            continue
        for month in months:
            if month.startswith(".") or (m_from and month < m_from) or (m_to and month > m_to):
                continue
            try:
                names = os.listdir(subs_dir / form / month)
            except FileNotFoundError:
                continue
            for commune in names:
                if commune.startswith(".") or (communes is not None and commune not in communes):
                    continue
                out.setdefault(month, []).append(f"{form}/{month}/{commune}")
    return {m: sorted(out[m]) for m in sorted(out)}


def partition_lines(
    pdir: Path, flt: LineFilter, descending: bool = False, names: list[str] | None = None
) -> Iterator[list[str]]:
    """Matching lines of one partition, segment by segment (one segment in memory at a time); last
    written first with ``descending``; only the segments ``names`` when given."""
    names = list_segments(pdir) if names is None else names
    for name in reversed(names) if descending else names:
        lines = read_segment(pdir / name)
        for parts in reversed(lines) if descending else lines:
            if flt(parts):
                yield parts


STATS_NAME = "stats.json"


def segment_summary(path: Path) -> dict:
    """Counts per (state, current, version, round, unit, collector) and the time span of a segment."""
    counts: dict[str, int] = {}
    lo = hi = ""
    for p in read_segment(path):
        key = "\t".join(p[C_STATE : C_COLLECTOR + 1])
        counts[key] = counts.get(key, 0) + 1
        t = p[C_TS]
        if not lo or t < lo:
            lo = t
        if t > hi:
            hi = t
    return {"n": counts, "lo": lo, "hi": hi}


class Counter:
    """Counts from per-segment summaries kept in ``stats.json`` beside the segments.

    A summary is trusted only while its segment's (inode, size, mtime) is unchanged, so the file is a
    pure cache: any process may rewrite it (atomically, without a lock) and a stale one is recomputed.
    Counting a million submissions reads a few thousand small summaries instead of every line.
    """

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[tuple[int, int, int], dict]] = {}

    def _load(self, path: Path) -> dict:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return {}
        sig = (st.st_ino, st.st_size, st.st_mtime_ns)
        hit = self._cache.get(path)
        if hit is not None and hit[0] == sig:
            return hit[1]
        try:
            data = json.loads(read_bytes(path) or b"{}")
        except ValueError:
            data = {}
        self._cache[path] = (sig, data)
        return data

    def entries(self, pdir: Path) -> dict[str, dict]:
        """Each segment's summary, recomputed where its file changed (and the cache file rewritten)."""
        stats_path = pdir / STATS_NAME
        stored = self._load(stats_path)
        fresh: dict[str, dict] = {}
        changed = False
        for name in list_segments(pdir):
            try:
                st = os.stat(pdir / name)
            except FileNotFoundError:
                continue
            sig = [st.st_ino, st.st_size, st.st_mtime_ns]
            entry = stored.get(name)
            if entry is None or entry.get("sig") != sig:
                entry = {**segment_summary(pdir / name), "sig": sig}
                changed = True
            fresh[name] = entry
        if changed or len(fresh) != len(stored):
            # a read-only data dir still counts, only slower
            with contextlib.suppress(OSError):
                atomic_write(stats_path, json.dumps(fresh, separators=(",", ":")).encode(), sync=False)
        return fresh

    def count(self, pdir: Path, flt: LineFilter) -> int:
        total = 0
        for name, entry in self.entries(pdir).items():
            if not entry["n"]:
                continue
            covers = flt.time_covers(entry["lo"], entry["hi"])
            if covers:
                total += sum(n for k, n in entry["n"].items() if flt.key_ok(k.split("\t")))
            elif covers is None:
                total += sum(1 for p in read_segment(pdir / name) if flt(p))
        return total

    def segments_in_time(self, pdir: Path, flt: LineFilter) -> list[str]:
        """The segments that may hold a line inside the filter's time range (all, without one): keyset
        pages skip the segments before their key without reading them."""
        if flt.ts_from is None and flt.ts_to is None:
            return list_segments(pdir)
        return [name for name, e in self.entries(pdir).items()
                if e["n"] and flt.time_covers(e["lo"], e["hi"]) is not False]
