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
from rasoat.core.problems import Problem

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


class HamletCSVError(Problem, ValueError):
    """A hamlet CSV with bad rows; ``problems`` holds one message per row, naming file and row."""

    default_code = "unit.hamlet_list"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = problems[:20]
        extra = len(problems) - len(shown)
        more = f"\n… và {extra} lỗi khác / and {extra} more" if extra else ""
        super().__init__("\n".join(shown) + more)


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
        self._origin: dict[str, str] = {}  # hamlet code → "plugin 'x', file.csv row 3"
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
        problems: list[str] = []
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
                    raise HamletCSVError([
                        f"{path}: tiêu đề cột sai / bad header"
                        + (f"; thiếu / missing: {', '.join(missing)}" if missing else "")
                        + (f"; không biết / unknown: {', '.join(unknown)}" if unknown else "")
                        + f" (cần / expected: {', '.join(HAMLET_COLUMNS + HAMLET_OPTIONAL_COLUMNS)})"
                    ])
                for row in reader:
                    line = reader.line_num
                    where = f"{path} dòng/row {line}"
                    try:
                        unit = self._hamlet_from_row(row, source)
                    except ValueError as exc:
                        problems.append(f"{where}: {exc}")
                        continue
                    if unit.code in seen:
                        problems.append(
                            f"{where}: mã thôn '{unit.code}' trùng với dòng {seen[unit.code]} / "
                            f"duplicate hamlet code '{unit.code}', also on row {seen[unit.code]}"
                        )
                        continue
                    if unit.code in self._units:
                        other = self._origin.get(unit.code, "danh mục quốc gia / national list")
                        problems.append(
                            f"{where} (plugin '{source}'): mã thôn '{unit.code}' đã có từ {other} / "
                            f"hamlet code '{unit.code}' already comes from {other}"
                        )
                        continue
                    seen[unit.code] = line
                    new.append(unit)
        except UnicodeDecodeError as exc:
            raise HamletCSVError([f"{path}: không phải UTF-8 / not UTF-8 ({exc.reason})"]) from exc
        except OSError as exc:
            raise HamletCSVError([f"{path}: không đọc được / cannot read ({exc.strerror or exc})"]) from exc
        if problems:
            raise HamletCSVError(problems)
        for unit in new:
            self._add(unit)
            self._origin[unit.code] = f"plugin '{source}', {path} dòng/row {seen[unit.code]}"
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
            raise ValueError("thừa cột / more cells than header columns")
        values = {k: (v or "").strip() for k, v in row.items()}
        given = values.get("commune_code", "")
        if not given:
            raise ValueError("thiếu commune_code / commune_code is empty")
        # Spreadsheets drop leading zeros ("5563"); pad back to the 5-digit code.
        commune_code = given.zfill(5) if given.isdigit() else given
        commune = self._units.get(commune_code)
        if commune is None or commune.level != "commune":
            hint = ""
            if given in self._units and self._units[given].level == "province":
                hint = f" ('{given}' là mã tỉnh / is a province code)"
            raise ValueError(
                f"mã xã '{given}' không có trong danh mục {self.era} / "
                f"unknown commune code '{given}' (units of {self.era}){hint}"
            )
        match = _HAMLET_CODE.match(values.get("code", ""))
        if not match:
            raise ValueError(
                f"mã thôn '{values.get('code', '')}' sai dạng, cần <mã xã>-<2–3 chữ số> "
                f"như '{commune_code}-01' / "
                f"hamlet code must be <commune code>-<2-3 digits>, e.g. '{commune_code}-01'"
            )
        code = f"{match.group(1).zfill(5)}-{match.group(2)}"
        if not code.startswith(commune_code + "-"):
            raise ValueError(
                f"mã thôn '{code}' không thuộc xã '{commune_code}' / hamlet code '{code}' does not start "
                f"with its commune code '{commune_code}'"
            )
        name = " ".join(unicodedata.normalize("NFC", values.get("name", "")).split())
        if not name:
            raise ValueError("thiếu tên / name is empty")
        households: int | None = None
        if values.get("households"):
            if not values["households"].isdigit():
                raise ValueError(
                    f"số hộ '{values['households']}' phải là số nguyên ≥ 0 / "
                    "households must be a whole number"
                )
            households = int(values["households"])
        sample_text = values.get("sample", "").lower()
        if sample_text not in _TRUE | _FALSE:
            raise ValueError(f"sample '{values['sample']}' phải là 1/0 / sample must be 1 or 0 (true/false)")
        term = values.get("term", "").lower() or _term_of(name)
        legacy = values.get("legacy_commune_code") or None
        if legacy is not None:
            if not legacy.isdigit() or len(legacy) > 5:
                raise ValueError(f"legacy_commune_code '{legacy}' phải là mã số / must be a numeric code")
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
