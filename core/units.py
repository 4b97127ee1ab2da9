"""Administrative units: 34 provinces and 3,321 communes (July 2025), plus hamlets from plugins.

The national list ships as ``core/data/units.csv`` (see ``core/data/NOTICE.md``); hamlets come from each
plugin's ``hamlets`` hook as CSV files. Codes are strings: province "19", commune "05563", hamlet
"05563-01". Names carry their type prefix ("Tỉnh Thái Nguyên", "Xã Phượng Tiến", "Thôn Nà Kéo").
A code alone is ambiguous across reorganisations: store it with ``UnitRegistry.era`` (``"2025"``).

    units = get_units()
    units.require("05563").name            # "Xã Phượng Tiến"
    units.parent("05563").code             # "19"
    units.search("Phuong Tien")[0].code    # "05563"
    units.expand(["19"])                   # {"19", every commune and hamlet in it}
"""

from __future__ import annotations

import csv
import json
import os
import re
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from rasoat.core.plugins import get_manager, results_by_plugin
from rasoat.core.problems import Problem, Words

Level = Literal["province", "commune", "hamlet"]
LEVELS: tuple[str, ...] = ("province", "commune", "hamlet")
_LEVEL_ORDER = {level: i for i, level in enumerate(LEVELS)}

# the form answers that name the unit a record is filed under (core.ingest), most precise first
LOCATION_FIELDS = ("hamlet", "commune", "province")
HAMLET_COLUMNS = ("code", "name", "commune_code")
HAMLET_OPTIONAL_COLUMNS = ("households", "term", "sample", "legacy_commune_code")
# Local words for the level below the commune; the first ones are the common ones.
HAMLET_TERMS: tuple[str, ...] = (
    "thôn", "xóm", "bản", "tổ dân phố", "ấp", "khóm", "khu phố", "buôn", "làng", "plei", "bon", "sóc",
    "khu", "tổ", "tiểu khu", "đội",
)
HAMLET_DIVISION_TYPE = "thôn, tổ dân phố"  # the legal name of the level, when a hamlet's term is unknown
NATIONAL_SOURCE = "national"

_HAMLET_CODE = re.compile(r"^(\d{1,5})-(\d{2,3})$")
_TRUE = {"1", "true", "yes", "y", "x", "có", "co", "đúng", "dung"}
_FALSE = {"", "0", "false", "no", "n", "không", "khong", "sai"}


@dataclass(frozen=True, slots=True)
class Unit:
    """One administrative unit. Hamlet-only fields stay None/False for provinces and communes."""

    code: str
    name: str
    level: Level
    parent_code: str | None
    division_type: str
    name_ascii: str = ""
    households: int | None = None
    term: str | None = None
    sample: bool = False
    legacy_commune_code: str | None = None
    source: str = NATIONAL_SOURCE  # "national" or the plugin that supplied the hamlet


class UnknownUnit(Problem, KeyError):
    """A unit code that is not in the registry (``unit_code``)."""

    def __init__(self, code: str, era: str = "2025") -> None:
        super().__init__("unit.not_found", code=code, era=era)
        self.unit_code = code

    def __str__(self) -> str:  # KeyError would show the repr with quotes
        return self.message


class AmbiguousUnit(Problem, ValueError):
    """A name that matches several units equally well; the message lists them."""


class HamletRowError(Problem, ValueError):
    """One hamlet CSV row that cannot be read (``unit.hamlet_*``)."""


class HamletCSVError(Problem, ValueError):
    """A hamlet CSV with bad rows; ``problems`` holds one Problem per row, naming file and row."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        shown = problems[:20]
        extra = len(problems) - len(shown)
        more = (f"\n… và {extra} lỗi khác", f"\n… and {extra} more") if extra else ""
        super().__init__("unit.hamlet_list", rows=shown, more=more)


def fold(text: str) -> str:
    """Lower-case, no diacritics, đ→d, punctuation to single spaces: "Xã Phượng Tiến" → "xa phuong tien"."""
    text = text.replace("đ", "d").replace("Đ", "D")
    text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.lower()).split())


def ascii_name(text: str) -> str:
    """The name without diacritics, case kept: "Xã Phượng Tiến" → "Xa Phuong Tien"."""
    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


# Type words a user may type before a name (folded), longest first so "thanh pho" wins over "thanh".
_PREFIXES: tuple[str, ...] = tuple(
    sorted(
        {"tinh", "thanh pho", "tp", "xa", "phuong", "dac khu", "thi tran", "tt", "tdp", "kp"}
        | {fold(t) for t in HAMLET_TERMS},
        key=len,
        reverse=True,
    )
)
# The word each national division type puts before the name.
_TYPE_PREFIX = {"tỉnh": "Tỉnh ", "thành phố trung ương": "Thành phố ", "xã": "Xã ", "phường": "Phường ",
                "đặc khu": "Đặc khu "}
_HAMLET_TERMS_BY_LENGTH = sorted(HAMLET_TERMS, key=len, reverse=True)


def _strip_prefix(key: str) -> str:
    for prefix in _PREFIXES:
        if key.startswith(prefix + " ") and len(key) > len(prefix) + 1:
            return key[len(prefix) + 1 :]
    return key


def _term_of(name: str) -> str | None:
    """The hamlet term a name starts with ("Thôn Nà Kéo" → "thôn"), or None."""
    lowered = name.lower()
    for term in _HAMLET_TERMS_BY_LENGTH:
        if lowered.startswith(term + " "):
            return term
    return None


def _national_paths() -> tuple[Path, Path]:
    base = Path(str(files("rasoat.core.data")))
    return base / "units.csv", base / "units_meta.json"


class UnitRegistry:
    """All units, indexed by code and by parent. Build with ``UnitRegistry.national()`` or ``get_units()``."""

    def __init__(self, units: Iterable[Unit] = (), meta: dict[str, Any] | None = None) -> None:
        self.meta: dict[str, Any] = dict(meta or {})
        self._units: dict[str, Unit] = {}
        self._children: dict[str, list[str]] = {}
        self._origin: dict[str, Words] = {}  # hamlet code → "plugin 'x', file.csv row 3" in both languages
        self._index: list[tuple[Unit, str, str]] | None = None
        for unit in units:
            self._add(unit)

    @classmethod
    def national(cls) -> UnitRegistry:
        """Provinces and communes from the packaged CSV (no hamlets)."""
        csv_path, meta_path = _national_paths()
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        with csv_path.open(encoding="utf-8", newline="") as fh:
            units = [
                Unit(
                    code=row["code"],
                    name=row["name"],
                    level=row["level"],  # type: ignore[arg-type]
                    parent_code=row["parent_code"] or None,
                    division_type=row["division_type"],
                    name_ascii=row["name_ascii"],
                )
                for row in csv.DictReader(fh)
            ]
        return cls(units, meta)

    # --- facts about the data -------------------------------------------------------------------
    @property
    def era(self) -> str:
        """Which reorganisation the codes belong to ("2025"); store it next to every code."""
        return str(self.meta.get("era", "2025"))

    @property
    def data_version(self) -> str:
        """Source package and registry date, e.g. "vietnam-provinces==2025.10.1 (2025-10-18)"."""
        return f"{self.meta.get('package', '?')} ({self.meta.get('data_version', '?')})"

    # --- lookups --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._units)

    def __contains__(self, code: object) -> bool:
        return code in self._units

    def __iter__(self) -> Iterator[Unit]:
        return iter(self._units.values())

    def get(self, code: str) -> Unit | None:
        """The unit with this code, or None."""
        return self._units.get(code)

    def require(self, code: str) -> Unit:
        """The unit with this code; raises UnknownUnit (a KeyError) with a bilingual message."""
        unit = self._units.get(code)
        if unit is None:
            raise UnknownUnit(code, self.era)
        return unit

    def parent(self, code: str) -> Unit | None:
        """The unit directly above (None for a province)."""
        unit = self.require(code)
        return self._units[unit.parent_code] if unit.parent_code else None

    def ancestors(self, code: str) -> list[Unit]:
        """Units above, nearest first: hamlet → [commune, province]."""
        out: list[Unit] = []
        unit = self.parent(code)
        while unit is not None:
            out.append(unit)
            unit = self._units[unit.parent_code] if unit.parent_code else None
        return out

    def children(self, code: str) -> list[Unit]:
        """Units directly below, by code."""
        self.require(code)
        return [self._units[c] for c in self._children.get(code, [])]

    def descendants(self, code: str) -> list[Unit]:
        """Every unit below, depth first (a commune is followed by its hamlets)."""
        self.require(code)
        out: list[Unit] = []
        stack = list(reversed(self._children.get(code, [])))
        while stack:
            unit = self._units[stack.pop()]
            out.append(unit)
            stack.extend(reversed(self._children.get(unit.code, [])))
        return out

    def provinces(self) -> list[Unit]:
        """The 34 provinces, by code."""
        return [u for u in self._units.values() if u.level == "province"]

    def communes(self, province_code: str | None = None) -> list[Unit]:
        """Communes of one province, or all of them, by code."""
        if province_code is not None:
            return [u for u in self.children(province_code) if u.level == "commune"]
        return [u for u in self._units.values() if u.level == "commune"]

    def hamlets(self, commune_code: str | None = None) -> list[Unit]:
        """Hamlets of one commune (or of a whole province), or all hamlets."""
        if commune_code is not None:
            return [u for u in self.descendants(commune_code) if u.level == "hamlet"]
        return [u for u in self._units.values() if u.level == "hamlet"]

    def full_name(self, code: str, sep: str = ", ") -> str:
        """The unit and its ancestors: "Xã Phượng Tiến, Tỉnh Thái Nguyên"."""
        unit = self.require(code)
        return sep.join(u.name for u in [unit, *self.ancestors(code)])

    def expand(self, codes: str | Iterable[str]) -> set[str]:
        """The given codes plus everything below them (a round's or a user's scope); unknown codes raise."""
        if isinstance(codes, str):
            codes = [codes]
        out: set[str] = set()
        for code in codes:
            if code in out:
                continue
            self.require(code)
            out.add(code)
            out.update(u.code for u in self.descendants(code))
        return out

    def choice_rows(self, level: Level, scope: Iterable[str] | None = None) -> list[dict[str, str]]:
        """Rows for the form media CSVs: provinces.csv (name,label), communes.csv (name,label,province),
        hamlets.csv (name,label,commune). With ``scope``, only units in it, below it, or above it."""
        units = [u for u in self._units.values() if u.level == level]
        if scope is not None:
            scope = list(scope)
            keep = self.expand(scope)
            for code in scope:
                keep.update(u.code for u in self.ancestors(code))
            units = [u for u in units if u.code in keep]
        parent_col = {"province": None, "commune": "province", "hamlet": "commune"}[level]
        rows = []
        for u in units:
            row = {"name": u.code, "label": u.name}
            if parent_col:
                row[parent_col] = u.parent_code or ""
            rows.append(row)
        return rows

    # --- search ---------------------------------------------------------------------------------
    def search(
        self,
        name: str,
        level: Level | None = None,
        within: str | Iterable[str] | None = None,
        limit: int | None = None,
    ) -> list[Unit]:
        """Units whose name matches, ignoring case, diacritics (đ→d) and type words ("xa", "tinh", …).

        Order: exact code; exact name without its type word ("Phuong Tien" → Xã Phượng Tiến); exact
        full name; exact after dropping the query's type word; then starts with, whole words, word
        prefixes, substring (first for the whole query, then without its type word). Ties: province
        before commune before hamlet, then by code.
        ``within`` keeps the given unit(s) and everything below them."""
        units = [unit for _, unit in self._ranked(name, level, within)]
        return units[:limit] if limit is not None else units

    def _ranked(
        self, name: str, level: Level | None, within: str | Iterable[str] | None
    ) -> list[tuple[int, Unit]]:
        query = fold(name)
        if not query:
            return []
        stripped = _strip_prefix(query)
        allowed = self.expand(within) if within is not None else None
        ranked: list[tuple[int, int, str, Unit]] = []
        for unit, full, core in self._search_index():
            if level is not None and unit.level != level:
                continue
            if allowed is not None and unit.code not in allowed:
                continue
            tier = self._tier(unit, query, stripped, full, core)
            if tier is not None:
                ranked.append((tier, _LEVEL_ORDER[unit.level], unit.code, unit))
        ranked.sort(key=lambda t: t[:3])
        return [(t[0], t[3]) for t in ranked]

    @staticmethod
    def _tier(unit: Unit, query: str, stripped: str, full: str, core: str) -> int | None:
        """Lower is better; 0-3 are exact matches. The whole query is tried before the stripped one."""
        if query == unit.code:
            return 0
        if query == core:
            return 1
        if query == full:
            return 2
        if stripped == core:
            return 3
        for tier, q in ((4, query), (8, stripped)):
            if tier == 8 and q == query:
                break
            if core.startswith(q + " ") or full.startswith(q + " "):
                return tier
            if f" {q} " in f" {core} ":
                return tier + 1
            words = core.split()
            if all(any(w.startswith(t) for w in words) for t in q.split()):
                return tier + 2
            if q in core:
                return tier + 3
        return None

    def exact(
        self, name: str, level: Level | None = None, within: str | Iterable[str] | None = None
    ) -> list[Unit]:
        """Only the exact normalised matches: code, name with or without type word (tiers 0-3)."""
        return [unit for tier, unit in self._ranked(name, level, within) if tier <= 3]

    def resolve(
        self, text: str, level: Level | None = None, within: str | Iterable[str] | None = None
    ) -> Unit:
        """A code, or a name with exactly one exact match; otherwise a clear error listing candidates."""
        unit = self._units.get(text.strip())
        if unit is not None and (level is None or unit.level == level):
            return unit
        matches = self.exact(text, level, within)
        if len(matches) == 1:
            return matches[0]
        candidates = matches or self.search(text, level, within, limit=8)
        listed = "; ".join(f"{u.code} {self.full_name(u.code)}" for u in candidates[:8])
        if not candidates:
            raise UnknownUnit(text, self.era)
        raise AmbiguousUnit("unit.ambiguous" if matches else "unit.no_exact_match", text=text, units=listed)

    def _keys(self, unit: Unit) -> tuple[str, str]:
        full = fold(unit.name)
        if unit.level == "hamlet":
            term = _term_of(unit.name)
            core = fold(unit.name[len(term) :]) if term else full
        else:
            prefix = _TYPE_PREFIX.get(unit.division_type, "")
            core = fold(unit.name.removeprefix(prefix))
        return full, core or full

    def _search_index(self) -> list[tuple[Unit, str, str]]:
        # Built on first search, so loading stays fast for callers that never search.
        if self._index is None:
            self._index = [(u, *self._keys(u)) for u in self._units.values()]
        return self._index

    # --- hamlets --------------------------------------------------------------------------------
    def add_hamlets_csv(self, path: str | os.PathLike[str], source: str = "local") -> list[Unit]:
        """Add the hamlets in a CSV (code,name,commune_code[,households,term,sample,legacy_commune_code]).

        All rows are checked first; any problem raises HamletCSVError naming the file and row (line
        number, the header being line 1), and nothing is added. Commune codes that lost their leading
        zeros in a spreadsheet ("5563", "5563-01") are padded back."""
        path = Path(str(path))
        problems: list[Problem] = []
        new: list[Unit] = []
        seen: dict[str, int] = {}
        try:
            with path.open(encoding="utf-8-sig", newline="") as fh:
                reader = csv.DictReader(fh)
                header = [(h or "").strip().lower() for h in (reader.fieldnames or [])]
                reader.fieldnames = header
                missing = [c for c in HAMLET_COLUMNS if c not in header]
                unknown = [c for c in header if c not in HAMLET_COLUMNS + HAMLET_OPTIONAL_COLUMNS]
                if missing or unknown:
                    raise HamletCSVError([Problem(
                        "unit.hamlet_header", path=path, missing=", ".join(missing) or "—",
                        unknown=", ".join(unknown) or "—",
                        expected=", ".join(HAMLET_COLUMNS + HAMLET_OPTIONAL_COLUMNS),
                    )])
                for row in reader:
                    line = reader.line_num
                    try:
                        unit = self._hamlet_from_row(row, source)
                    except HamletRowError as exc:
                        problems.append(Problem("unit.hamlet_row", path=path, line=line, problem=exc))
                        continue
                    if unit.code in seen:
                        twice = Problem("unit.hamlet_twice", code=unit.code, first=seen[unit.code])
                        problems.append(Problem("unit.hamlet_row", path=path, line=line, problem=twice))
                        continue
                    if unit.code in self._units:
                        other = self._origin.get(unit.code, ("danh mục quốc gia", "national list"))
                        taken = Problem("unit.hamlet_taken", code=unit.code, plugin=source, other=other)
                        problems.append(Problem("unit.hamlet_row", path=path, line=line, problem=taken))
                        continue
                    seen[unit.code] = line
                    new.append(unit)
        except UnicodeDecodeError as exc:
            raise HamletCSVError([Problem("unit.hamlet_encoding", path=path, reason=exc.reason)]) from exc
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise HamletCSVError([Problem("unit.hamlet_unreadable", path=path, reason=reason)]) from exc
        if problems:
            raise HamletCSVError(problems)
        for unit in new:
            self._add(unit)
            row_no = seen[unit.code]
            where = f"plugin '{source}', {path}"
            self._origin[unit.code] = (f"{where} dòng {row_no}", f"{where} row {row_no}")
        self._index = None
        return new

    def with_hamlets(self, lists: dict[str, list[dict[str, Any]]], source: str) -> UnitRegistry:
        """A copy in which each commune of ``lists`` has exactly those hamlets (rows of ``code``, ``name``
        and optionally ``households``, already checked: ``core.unit_lists``) instead of the plugins'."""
        copy = UnitRegistry(
            (u for u in self._units.values() if u.level != "hamlet" or u.parent_code not in lists), self.meta
        )
        copy._origin = {c: o for c, o in self._origin.items() if c in copy._units}
        for commune, rows in lists.items():
            for row in rows:
                term = _term_of(row["name"])
                copy._add(Unit(
                    code=row["code"], name=row["name"], level="hamlet", parent_code=commune,
                    division_type=term or HAMLET_DIVISION_TYPE, name_ascii=ascii_name(row["name"]),
                    households=row.get("households"), term=term, source=source,
                ))
        return copy

    def _hamlet_from_row(self, row: dict[str, Any], source: str) -> Unit:
        if None in row:
            raise HamletRowError("unit.hamlet_extra_cells")
        values = {k: (v or "").strip() for k, v in row.items()}
        given = values.get("commune_code", "")
        if not given:
            raise HamletRowError("unit.hamlet_no_commune")
        # Spreadsheets drop leading zeros ("5563"); pad back to the 5-digit code.
        commune_code = given.zfill(5) if given.isdigit() else given
        commune = self._units.get(commune_code)
        if commune is None or commune.level != "commune":
            province = given in self._units and self._units[given].level == "province"
            code = "unit.hamlet_province_code" if province else "unit.hamlet_unknown_commune"
            raise HamletRowError(code, commune=given, era=self.era)
        match = _HAMLET_CODE.match(values.get("code", ""))
        if not match:
            raise HamletRowError("unit.hamlet_bad_code", code=values.get("code", ""), commune=commune_code)
        code = f"{match.group(1).zfill(5)}-{match.group(2)}"
        if not code.startswith(commune_code + "-"):
            raise HamletRowError("unit.hamlet_wrong_commune", code=code, commune=commune_code)
        name = " ".join(unicodedata.normalize("NFC", values.get("name", "")).split())
        if not name:
            raise HamletRowError("unit.hamlet_no_name")
        households: int | None = None
        if values.get("households"):
            if not values["households"].isdigit():
                raise HamletRowError("unit.hamlet_households", value=values["households"])
            households = int(values["households"])
        sample_text = values.get("sample", "").lower()
        if sample_text not in _TRUE | _FALSE:
            raise HamletRowError("unit.hamlet_sample", value=values["sample"])
        term = values.get("term", "").lower() or _term_of(name)
        legacy = values.get("legacy_commune_code") or None
        if legacy is not None:
            if not legacy.isdigit() or len(legacy) > 5:
                raise HamletRowError("unit.hamlet_legacy_code", value=legacy)
            legacy = legacy.zfill(5)
        return Unit(
            code=code,
            name=name,
            level="hamlet",
            parent_code=commune_code,
            division_type=term or HAMLET_DIVISION_TYPE,
            name_ascii=ascii_name(name),
            households=households,
            term=term or None,
            sample=sample_text in _TRUE,
            legacy_commune_code=legacy,
            source=source,
        )

    def _add(self, unit: Unit) -> None:
        self._units[unit.code] = unit
        if unit.parent_code:
            siblings = self._children.setdefault(unit.parent_code, [])
            siblings.append(unit.code)
            if len(siblings) > 1 and siblings[-2] > unit.code:
                siblings.sort()


_cached: tuple[Any, UnitRegistry] | None = None  # (the plugin manager it was built from, registry)
_lock = threading.Lock()


def get_units() -> UnitRegistry:
    """The process-wide registry: the national list plus every enabled plugin's hamlet CSVs.

    Built once per plugin manager: after ``core.plugins.set_manager`` it is rebuilt on next use."""
    global _cached

    pm = get_manager()
    with _lock:
        if _cached is None or _cached[0] is not pm:
            _cached = (pm, load_units(pm))
        return _cached[1]


def load_units(pm: Any = None) -> UnitRegistry:
    """A fresh registry with hamlets from the plugins of ``pm`` (default: the process-wide manager)."""

    registry = UnitRegistry.national()
    for plugin_name, paths in results_by_plugin(pm or get_manager(), "hamlets"):  # validated: list[Path]
        for path in paths:
            registry.add_hamlets_csv(path, source=plugin_name)
    return registry


def reset_units() -> None:
    """Forget the cached registry (tests, or after plugins change)."""
    global _cached
    with _lock:
        _cached = None
