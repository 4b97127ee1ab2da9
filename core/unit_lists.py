"""Registers of the units in each commune, loaded by officers: hamlets (thôn, xóm, tổ dân phố), schools,
enterprises and industrial zones (khu, cụm công nghiệp).

An officer fills the template of a register (``template``: .xlsx or .csv, Vietnamese headers with English
alongside); ``read_file`` checks every row, and any problem (each naming its row) refuses the whole file;
``preview`` says per commune what would change (added, renamed, removed); ``apply`` replaces the lists of
the communes in the file (other communes keep theirs) as a new version of the register (who, when, file
name, rows, SHA-256), audited. Everything lives in the store's kv (both backends; the CLI and every server
process share it): namespace ``unit_lists``, key ``<kind>`` = the current lists, ``<kind>:v<N>`` = what
version N was, ``<kind>:version`` = N (a cheap stamp readers check before reading the lists).

Readers: ``units_for(store)`` is the unit registry with the loaded hamlets in place of a plugin's for
those communes (phones' hamlets.csv, ingest, progress, indicators); ``sites(store, kind)`` the schools,
enterprises or zones per commune (loaded, else a plugin's); ``sites_media`` their CSV for phones. Where
nothing was loaded the plugins' lists (often samples) stay, and ``list_status`` says which list each commune
has; a round records it when it opens.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import threading
import unicodedata
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rasoat.core.audit import record
from rasoat.core.models import utcnow
from rasoat.core.plugins import get_manager, results_by_plugin
from rasoat.core.problems import Problem, Words
from rasoat.core.storage.base import Store
from rasoat.core.units import UnitRegistry, fold, get_units

NAMESPACE = "unit_lists"
OTHER_SITE = "other"  # the choice that lets a collector name a site not on the list (F3, F4)
MAX_ROWS = 100_000


@dataclass(frozen=True)
class Column:
    key: str
    vi: str
    en: str
    required: bool = True
    aliases: tuple[str, ...] = ()  # other headers accepted (the CSV shape earlier versions read)

    @property
    def header(self) -> str:
        return f"{self.vi} / {self.en}"


@dataclass(frozen=True)
class ListKind:
    key: str
    vi: str
    en: str
    columns: tuple[Column, ...]
    media: str  # the form medium phones choose from
    example: tuple[str, ...] = ()

    @property
    def label(self) -> Words:
        return self.vi, self.en


_COMMUNE = Column("commune", "Mã xã", "Commune code", aliases=("commune_code",))
_HAMLET = Column("hamlet", "Mã thôn", "Hamlet code", required=False)
KINDS: dict[str, ListKind] = {
    k.key: k
    for k in (
        ListKind("hamlets", "Thôn, xóm, tổ dân phố", "Hamlets", (
            _COMMUNE, Column("code", "Mã thôn", "Hamlet code"),
            Column("name", "Tên thôn, xóm, tổ dân phố", "Hamlet name"),
            Column("households", "Số hộ", "Households", required=False),
        ), "hamlets.csv", ("05563", "05563-01", "Xóm Na Hoa", "120")),
        ListKind("schools", "Trường học", "Schools", (
            _COMMUNE, Column("code", "Mã trường", "School code", aliases=("id",)),
            Column("name", "Tên trường", "School name"), _HAMLET,
        ), "schools.csv", ("05563", "TH-PT1", "Trường Tiểu học Phượng Tiến", "05563-01")),
        ListKind("enterprises", "Doanh nghiệp, cơ sở", "Enterprises", (
            _COMMUNE, Column("code", "Mã cơ sở", "Enterprise code", aliases=("id",)),
            Column("name", "Tên doanh nghiệp, cơ sở", "Enterprise name"), _HAMLET,
            Column("zone", "Mã khu, cụm công nghiệp", "Industrial zone code", required=False),
        ), "enterprises.csv", ("05563", "DN-001", "Công ty TNHH Chè Phượng Tiến", "05563-02", "")),
        ListKind("zones", "Khu, cụm công nghiệp", "Industrial zones", (
            _COMMUNE, Column("code", "Mã khu, cụm công nghiệp", "Zone code", aliases=("id",)),
            Column("name", "Tên khu, cụm công nghiệp", "Zone name"),
            Column("zone_type", "Loại", "Type", required=False),
        ), "zones.csv", ("05563", "KCN-01", "Cụm công nghiệp Phượng Tiến", "industrial_cluster")),
    )
}
# What the zone type column accepts (folded Vietnamese, or the value the F4 form's ``zone`` question uses).
ZONE_TYPES = {"industrial park": "industrial_park", "khu cong nghiep": "industrial_park",
              "industrial cluster": "industrial_cluster", "cum cong nghiep": "industrial_cluster",
              "petrochemical": "petrochemical", "khu to hop hoa dau": "petrochemical"}
_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,40}$")
_HAMLET_CODE = re.compile(r"^(\d{1,5})-(\d{1,3})$")


@dataclass(frozen=True)
class Refusal:
    """One reason a file is refused: its row as the officer sees it (the header is row 1; None: the whole
    file), the reason (a ``unit_list.*`` Problem), and the row's cells as typed (shown back on the page)."""

    row: int | None
    reason: Problem
    typed: tuple[str, ...] = ()

    @property
    def problem(self) -> Problem:
        """The reason naming its row ("dòng 3: …" / "row 3: …")."""
        if self.row is None:
            return self.reason
        return Problem("unit_list.row", row=self.row, problem=self.reason)

    def __str__(self) -> str:
        return self.problem.message


class UnitListError(Problem, ValueError):
    """A file refused whole (or a stale preview); ``problems`` says why, one per row."""

    def __init__(self, problems: list[Refusal]) -> None:
        self.problems = problems
        super().__init__("unit_list.refused", rows=[p.problem for p in problems])


def _refused(code: str, row: int | None = None, **params: Any) -> UnitListError:
    """A file refused for one reason (the whole file's, or one row's)."""
    return UnitListError([Refusal(row, Problem(code, **params))])


def kind_of(name: str) -> ListKind:
    kind = KINDS.get(name)
    if kind is None:
        raise _refused("unit_list.unknown_kind", name=name, kinds=", ".join(KINDS))
    return kind


# --- the template ---------------------------------------------------------------------------------------


def template(kind_name: str, fmt: str = "xlsx") -> bytes:
    """An empty register to fill: the bilingual header row (and, in .xlsx, a sheet explaining the columns
    with an example). CSV carries a BOM so Excel opens the Vietnamese correctly."""
    kind = kind_of(kind_name)
    headers = [c.header for c in kind.columns]
    if fmt == "csv":
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerow(headers)
        return ("\ufeff" + buf.getvalue()).encode("utf-8")
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Danh sách"
    ws.append(headers)
    for n, (cell, col) in enumerate(zip(ws[1], kind.columns, strict=True), 1):
        cell.font = Font(bold=True)
        dim = ws.column_dimensions[get_column_letter(n)]
        dim.width = max(16, len(col.header) + 2)
        dim.number_format = "@"  # text: Excel must not turn "05563" into 5563
    help_ws = wb.create_sheet("Hướng dẫn")
    help_ws.append(["Cột / Column", "Bắt buộc / Required", "Ví dụ / Example"])
    for col, example in zip(kind.columns, kind.example, strict=False):
        help_ws.append([col.header, "Có / Yes" if col.required else "Không / No", example])
    help_ws.append([])
    help_ws.append(["Mỗi dòng một đơn vị; danh sách của mỗi xã trong tệp thay cả danh sách cũ của xã đó. / "
                    "One row per unit; each commune in the file gets exactly these rows as its new list."])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# --- reading a file ------------------------------------------------------------------------------------


@dataclass
class Parsed:
    """A checked file: rows per commune (codes normalised, text NFC), and where it came from."""

    kind: str
    source: str
    sha256: str
    lists: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(len(v) for v in self.lists.values())


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(unicodedata.normalize("NFC", str(value)).split())


def _table(data: bytes, source: str, kind: ListKind) -> list[tuple[int, list[str]]]:
    """(row number as the officer sees it, cells) of the first sheet or the CSV; the header is row 1."""
    if data[:4] == b"PK\x03\x04":
        from openpyxl import load_workbook

        try:
            wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for a damaged workbook
            raise _refused("unit_list.unreadable_excel", source=source, reason=exc) from exc
        ws = wb.worksheets[0]
        rows = [(n, [_cell(v) for v in row]) for n, row in enumerate(ws.iter_rows(values_only=True), 1)]
        wb.close()
        return rows
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise _refused("unit_list.old_xls", source=source)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _refused("unit_list.encoding", data[: exc.start].count(b"\n") + 1, source=source) from exc
    # Excel in a Vietnamese locale writes ";": the delimiter is the one that makes the most known headers
    names = _names(kind)
    first = text.lstrip("\r\n").split("\n", 1)[0]

    def known(delimiter: str) -> int:
        return sum(fold(c) in names for c in next(csv.reader([first], delimiter=delimiter)))

    delimiter = max(",;\t", key=known)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    return [(reader.line_num, [_cell(v) for v in row]) for row in reader]


def _names(kind: ListKind) -> dict[str, Column]:
    """Every header a column answers to, folded (no case, accents or punctuation)."""
    return {fold(v): col for col in kind.columns for v in (col.key, col.vi, col.en, col.header, *col.aliases)}


def _header(kind: ListKind, row: int, cells: list[str]) -> list[Column | None]:
    names = _names(kind)
    found = [names.get(fold(c)) if c else None for c in cells]
    unknown = [c for c, col in zip(cells, found, strict=True) if c and col is None]
    missing = [c for c in kind.columns if c.required and c not in found]
    if unknown or missing:  # each part said only when it has names: Words in both languages, or nothing
        none: Words | str = ""
        missed = (f"; thiếu: {', '.join(c.vi for c in missing)}",
                  f"; missing: {', '.join(c.en for c in missing)}") if missing else none
        listed = ", ".join(unknown)
        strange = (f"; không biết: {listed}", f"; unknown: {listed}") if unknown else none
        expected = (", ".join(c.vi for c in kind.columns), ", ".join(c.en for c in kind.columns))
        reason = Problem("unit_list.bad_header", missing=missed, unknown=strange, expected=expected)
        raise UnitListError([Refusal(row, reason, tuple(cells))])
    return found


def read_file(
    store: Store, kind_name: str, data: bytes, source: str, scope: Iterable[str] | None = None
) -> Parsed:
    """Check a filled template. ``scope``: the officer's units (None: everything). Any problem raises
    UnitListError with every problem found, one per row; nothing is stored either way."""
    kind = kind_of(kind_name)
    source = Path(source).name or "tệp"
    table = _table(data, source, kind)
    while table and not any(table[0][1]):
        table.pop(0)
    if not table:
        raise _refused("unit_list.empty_file", source=source)
    columns = _header(kind, *table[0])
    units = units_for(store)
    allowed = units.expand(scope) if scope is not None else None
    taken = {s["code"]: c for c, rows in sites(store, kind.key, loaded_only=True).items() for s in rows}
    problems: list[Refusal] = []
    seen: dict[str, int] = {}
    parsed = Parsed(kind.key, source, hashlib.sha256(data).hexdigest())
    body = [(n, cells) for n, cells in table[1:] if any(cells)]
    if len(body) > MAX_ROWS:
        raise _refused("unit_list.too_many_rows", source=source, max=MAX_ROWS)
    typed = {n: tuple(cells[: max(i + 1 for i, c in enumerate(cells) if c)]) for n, cells in body}
    for n, cells in body:
        row = {col.key: (cells[i] if i < len(cells) else "") for i, col in enumerate(columns) if col}
        try:
            commune, entry = _check_row(kind, row, units, allowed)
        except Problem as exc:
            problems.append(Refusal(n, exc, typed[n]))
            continue
        code = entry["code"]
        if code in seen:
            problems.append(Refusal(n, Problem("unit_list.duplicate_code", code=code, first=seen[code]),
                                    typed[n]))
            continue
        seen[code] = n
        parsed.lists.setdefault(commune, []).append(entry)
    for commune, rows in parsed.lists.items():  # a code another commune's list keeps (not replaced here)
        for entry in rows:
            other = taken.get(entry["code"])
            if other is not None and other != commune and other not in parsed.lists:
                n = seen[entry["code"]]
                problems.append(Refusal(n, Problem("unit_list.code_taken", code=entry["code"], commune=other),
                                        typed[n]))
    if not body:
        problems.append(Refusal(None, Problem("unit_list.no_rows", source=source)))
    if problems:
        raise UnitListError(sorted(problems, key=lambda p: p.row or 0))
    return parsed


def _check_row(
    kind: ListKind, row: dict[str, str], units: UnitRegistry, allowed: set[str] | None
) -> tuple[str, dict[str, Any]]:
    given = row.get("commune", "")
    if not given:
        raise Problem("unit_list.no_commune")
    commune = given.zfill(5) if given.isdigit() else given
    unit = units.get(commune)
    if unit is None or unit.level != "commune":
        named = units.get(given)
        province = named is not None and named.level == "province"
        raise Problem("unit_list.province_code" if province else "unit_list.unknown_commune",
                      commune=given, era=units.era)
    if allowed is not None and commune not in allowed:
        raise Problem("unit_list.outside_units", commune=commune, name=unit.name)
    name = row.get("name", "")
    if not name:
        raise Problem("unit_list.no_name")
    code = row.get("code", "")
    if not code:
        raise Problem("unit_list.no_code")
    if kind.key == "hamlets":
        code = _hamlet_code(code, commune)
    elif code == OTHER_SITE or not _CODE.match(code):
        raise Problem("unit_list.bad_code", code=code)
    entry: dict[str, Any] = {"code": code, "name": name}
    if row.get("households"):
        if not row["households"].isdigit():
            raise Problem("unit_list.households", value=row["households"])
        entry["households"] = int(row["households"])
    if row.get("hamlet"):
        entry["hamlet"] = _hamlet_code(row["hamlet"], commune)
    if row.get("zone"):
        if not _CODE.match(row["zone"]):
            raise Problem("unit_list.bad_zone", zone=row["zone"])
        entry["zone"] = row["zone"]
    if row.get("zone_type"):
        zone_type = ZONE_TYPES.get(fold(row["zone_type"]))
        if zone_type is None:
            raise Problem("unit_list.bad_zone_type", value=row["zone_type"])
        entry["zone_type"] = zone_type
    return commune, entry


def _hamlet_code(given: str, commune: str) -> str:
    """``05563-01``; a bare number is the hamlet's number in its commune ("1" → "05563-01")."""
    if given.isdigit() and len(given) <= 3:
        return f"{commune}-{int(given):02d}"
    match = _HAMLET_CODE.match(given)
    if not match:
        raise Problem("unit_list.bad_hamlet_code", code=given, commune=commune)
    code = f"{match.group(1).zfill(5)}-{int(match.group(2)):02d}"
    if not code.startswith(commune + "-"):
        raise Problem("unit_list.hamlet_wrong_commune", code=given, commune=commune)
    return code


# --- preview and apply ---------------------------------------------------------------------------------


@dataclass
class Change:
    """What a commune's list would become: codes added, (code, old, new) renamed, removed, unchanged."""

    commune: str
    name: str
    before: list[str]  # where the current list comes from (list_source), [Việt, English]
    added: list[tuple[str, str]] = field(default_factory=list)
    renamed: list[tuple[str, str, str]] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)
    unchanged: int = 0


@dataclass
class Preview:
    parsed: Parsed
    base_version: int  # the register's version the preview compared against
    changes: list[Change]


def _current(store: Store, kind: str) -> dict[str, Any]:
    return store.kv_get(NAMESPACE, kind) or {"version": 0, "communes": {}}


def preview(store: Store, parsed: Parsed) -> Preview:
    """Per commune of the file: how its list (the loaded one, else the plugin's) would change."""
    current = _current(store, parsed.kind)
    units = units_for(store)
    changes = []
    for commune, rows in sorted(parsed.lists.items()):
        old = {r["code"]: r["name"] for r in _effective(store, parsed.kind, commune, units)}
        new = {r["code"]: r["name"] for r in rows}
        before = list_source(store, parsed.kind, commune)["source"]
        change = Change(commune, units.require(commune).name, before)
        for code, name in new.items():
            if code not in old:
                change.added.append((code, name))
            elif old[code] != name:
                change.renamed.append((code, old[code], name))
            else:
                change.unchanged += 1
        change.removed = [(code, name) for code, name in old.items() if code not in new]
        changes.append(change)
    return Preview(parsed, int(current["version"]), changes)


def apply(store: Store, pv: Preview, actor: str) -> dict[str, Any]:
    """Replace the lists of the previewed communes as version N+1 of the register; refused when the
    register changed since the preview (someone else loaded a list: preview again). Returns the version."""
    kind = pv.parsed.kind
    current = _current(store, kind)
    if int(current["version"]) != pv.base_version:
        now = current["version"]
        raise _refused("unit_list.changed_since", kind=kind, version=now)
    version = pv.base_version + 1
    info = {
        "kind": kind, "version": version, "actor": actor, "at": utcnow().isoformat(),
        "source": pv.parsed.source, "rows": pv.parsed.rows, "sha256": pv.parsed.sha256,
        "communes": {c.commune: len(pv.parsed.lists[c.commune]) for c in pv.changes},
        "changes": {c.commune: {"added": len(c.added), "renamed": len(c.renamed), "removed": len(c.removed)}
                    for c in pv.changes},
    }
    lists = dict(current["communes"])
    lists.update({c: {"version": version, "rows": rows} for c, rows in pv.parsed.lists.items()})
    store.kv_put(NAMESPACE, f"{kind}:v{version}", info)  # an unused record is overwritten by the next try
    if not store.kv_cas(NAMESPACE, kind, current if current["version"] else None,
                        {"version": version, "communes": lists}):
        raise _refused("unit_list.changed_meanwhile", kind=kind)
    store.kv_put(NAMESPACE, f"{kind}:version", version)
    details = {k: v for k, v in info.items() if k not in ("kind", "actor")}
    record(store, actor, "units.import", kind, **details)
    return info


def load(
    store: Store, kind: str, data: bytes, source: str, actor: str, scope: Iterable[str] | None = None
) -> dict[str, Any]:
    """``read_file``, ``preview`` and ``apply`` in one step (scripts, tests); the new version's record."""
    return apply(store, preview(store, read_file(store, kind, data, source, scope)), actor)


def versions(store: Store, kind: str) -> list[dict[str, Any]]:
    """Every version of a register, oldest first."""
    last = int(_current(store, kind_of(kind).key)["version"])
    return [v for n in range(1, last + 1) if (v := store.kv_get(NAMESPACE, f"{kind}:v{n}")) is not None]


# --- reading the lists ---------------------------------------------------------------------------------


def loaded(store: Store, kind: str) -> dict[str, dict[str, Any]]:
    """commune → {"version": N, "rows": [...]} for the communes with a loaded list."""
    return dict(_current(store, kind)["communes"])


def plugin_sites(kind: str) -> dict[str, list[dict[str, Any]]]:
    """Schools, enterprises or zones from the plugins' ``checklists`` (``sites``; ``csv`` or ``rows``)."""

    out: dict[str, list[dict[str, Any]]] = {}
    for _name, items in results_by_plugin(get_manager(), "checklists"):
        for item in items:
            if item.sites != kind:
                continue
            rows = item.rows
            if item.csv is not None:
                with Path(item.csv).open(encoding="utf-8-sig", newline="") as fh:
                    rows = list(csv.DictReader(fh))
            for row in rows:
                commune = str(row.get("commune") or row.get("commune_code") or "").strip()
                code = str(row.get("id") or row.get("code") or "").strip()
                if commune and code and code != OTHER_SITE:
                    out.setdefault(commune.zfill(5) if commune.isdigit() else commune, []).append(
                        {"code": code, "name": str(row.get("name") or code).strip(),
                         "hamlet": str(row.get("hamlet") or "").strip()})
    return out


def sites(store: Store, kind: str, loaded_only: bool = False) -> dict[str, list[dict[str, Any]]]:
    """commune → the schools / enterprises / zones it must audit: the loaded list, else a plugin's."""
    out = {} if loaded_only else plugin_sites(kind)
    out.update({c: list(v["rows"]) for c, v in loaded(store, kind).items()})
    return out


def _effective(store: Store, kind: str, commune: str, units: UnitRegistry) -> list[dict[str, Any]]:
    if kind == "hamlets":
        return [{"code": h.code, "name": h.name} for h in units.hamlets(commune)]
    return sites(store, kind).get(commune, [])


def list_source(
    store: Store,
    kind: str,
    commune: str,
    plugins: dict[str, list[dict[str, Any]]] | None = None,
    lists: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Where a commune's list comes from: {"version": N or None, "count": rows, "source": [Việt, English]}
    (a list, as a round's history keeps it in JSON; ``problems.said`` says it in one language).
    ``plugins`` (``plugin_sites(kind)``) and ``lists`` (``loaded(store, kind)``): when asking for many."""
    entry = (loaded(store, kind) if lists is None else lists).get(commune)
    if entry is not None:
        info = store.kv_get(NAMESPACE, f"{kind}:v{entry['version']}") or {}
        file = info.get("source", "?")
        return {"version": entry["version"], "count": len(entry["rows"]),
                "source": [f"phiên bản {entry['version']} ({file})", f"version {entry['version']} ({file})"]}
    if kind == "hamlets":
        hamlets = get_units().hamlets(commune)
        origin = ", ".join(sorted({f"plugin {h.source}" for h in hamlets}))
        sample, rows = any(h.sample for h in hamlets), len(hamlets)
    else:
        rows, sample = len((plugin_sites(kind) if plugins is None else plugins).get(commune, [])), False
        origin = "plugin" if rows else ""
    if not origin:
        return {"version": None, "count": 0, "source": ["chưa có", "none"]}
    vi, en = (f"{origin} (mẫu)", f"{origin} (sample)") if sample else (origin, origin)
    return {"version": None, "count": rows, "source": [vi, en]}


def list_status(store: Store, communes: Iterable[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """kind → commune → ``list_source``: what a round records when it opens."""
    communes = sorted(communes)
    out = {}
    for kind in KINDS:
        plugins, lists = (plugin_sites(kind) if kind != "hamlets" else {}), loaded(store, kind)
        out[kind] = {c: list_source(store, kind, c, plugins, lists) for c in communes}
    return out


_cache: weakref.WeakKeyDictionary[Any, tuple[Any, Any, UnitRegistry]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def units_for(store: Store) -> UnitRegistry:
    """The unit registry with the store's loaded hamlet lists in place of the plugins' for those communes.
    Rebuilt when the hamlets register gets a new version (one small kv read per call)."""
    base = get_units()
    stamp = store.kv_get(NAMESPACE, "hamlets:version")
    if not stamp:
        return base
    with _lock:
        cached = _cache.get(store)
        if cached is not None and cached[0] is base and cached[1] == stamp:
            return cached[2]
    lists = {c: v["rows"] for c, v in loaded(store, "hamlets").items()}
    registry = base.with_hamlets(lists, source=f"{NAMESPACE} v{stamp}")
    with _lock:
        _cache[store] = (base, stamp, registry)
    return registry
