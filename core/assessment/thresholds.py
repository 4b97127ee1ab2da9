"""The QĐ 28/2025 numbers, read from the same file F10 reads with ``pulldata`` (forms/qd28_thresholds.csv):
a later decision that changes a number changes that file, and phone and server agree."""

from __future__ import annotations

import csv
from dataclasses import dataclass, fields
from pathlib import Path

DEFAULT_FILE = Path(__file__).resolve().parent.parent.parent / "forms" / "qd28_thresholds.csv"


@dataclass(frozen=True)
class Thresholds:
    """Art. 4 (commune types I–III) and Art. 5 (province); percentages are of the resident population."""

    t1_r_pct: float = 0.5
    t2_r_pct: float = 0.1
    t1_p: float = 2
    t2_p: float = 1
    t1_a_pct: float = 0.1
    t2_a_pct: float = 0.05
    t1_plants: float = 3000
    t1_area: float = 750
    t2_plants: float = 500
    t2_area: float = 125
    t1_min: int = 3
    t2_min: int = 3
    t3_min: int = 1
    route_min: int = 2
    prov_r_pct: float = 0.2
    prov_p: float = 5
    prov_a_pct: float = 0.05
    prov_t12_pct: float = 3
    prov_plants: float = 8000
    prov_area: float = 2000
    prov_min: int = 4


def load_thresholds(path: str | Path = DEFAULT_FILE) -> Thresholds:
    """The thresholds in ``path`` (``name,value,label``); a name the file lacks keeps its default, an
    unknown name or a value that is not a number is an error naming the row."""
    known = {f.name: f.type for f in fields(Thresholds)}
    values: dict[str, float | int] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            name = (row.get("name") or "").strip()
            if name not in known:
                raise ValueError(f"{path}, dòng {line}: tên ngưỡng lạ '{name}' / line {line}: unknown name")
            try:
                number = float(row.get("value") or "")
            except ValueError:
                raise ValueError(
                    f"{path}, dòng {line}: '{row.get('value')}' không phải số / line {line}: not a number"
                ) from None
            values[name] = int(number) if known[name] in ("int", int) else number
    return Thresholds(**values)  # type: ignore[arg-type]
