"""Regenerate ``units.csv`` and ``units_meta.json`` from the ``vietnam-provinces`` package.

Build-time tool only; rasoat never imports ``vietnam_provinces`` at runtime. Run from the repository root:

    pip install 'vietnam-provinces==2025.10.1'
    python -m rasoat.core.data.make_units            # rewrites core/data/units.csv and units_meta.json

Cleaning applied (so names are consistent and the CSV is stable under diffs):
- Unicode NFC, runs of spaces collapsed ("Xã  Bắc Đông Quan" → "Xã Bắc Đông Quan");
- every name carries its type prefix: provinces of type "tỉnh" get "Tỉnh " (the package ships
  "Thái Nguyên" but "Thành phố Hà Nội"); communes already start with "Xã"/"Phường"/"Đặc khu";
- codes are zero-padded strings: province 2 digits, commune 5 digits;
- rows sorted by province code, then commune code.
If a future release changes codes, do NOT just regenerate: see docs/licence.md ("code drift").
"""

from __future__ import annotations

import csv
import json
import re
import sys
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
CSV_PATH = HERE / "units.csv"
META_PATH = HERE / "units_meta.json"
COLUMNS = ["code", "name", "level", "parent_code", "division_type", "name_ascii"]
# The administrative era these codes belong to: units after the 1 July 2025 reorganisation.
ERA = "2025"

PREFIX = {
    "tỉnh": "Tỉnh", "thành phố trung ương": "Thành phố", "xã": "Xã", "phường": "Phường", "đặc khu": "Đặc khu",
}


def clean(name: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", name)).strip()


def with_prefix(name: str, division_type: str) -> str:
    prefix = PREFIX[division_type]
    return name if name.startswith(prefix + " ") else f"{prefix} {name}"


def ascii_fold(text: str) -> str:
    """"Xã Phượng Tiến" → "Xa Phuong Tien" (đ/Đ become d/D, other marks dropped)."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def build_rows() -> tuple[list[dict[str, str]], dict[str, str]]:
    import vietnam_provinces as vp

    data = json.loads(vp.NESTED_DIVISIONS_JSON_PATH.read_text(encoding="utf-8"))
    rows: list[dict[str, str]] = []
    for prov in sorted(data, key=lambda p: p["code"]):
        pcode = f"{prov['code']:02d}"
        pname = with_prefix(clean(prov["name"]), prov["division_type"])
        rows.append({"code": pcode, "name": pname, "level": "province", "parent_code": "",
                     "division_type": prov["division_type"], "name_ascii": ascii_fold(pname)})
        for ward in sorted(prov["wards"], key=lambda w: w["code"]):
            wname = with_prefix(clean(ward["name"]), ward["division_type"])
            rows.append({"code": f"{ward['code']:05d}", "name": wname, "level": "commune",
                         "parent_code": pcode, "division_type": ward["division_type"],
                         "name_ascii": ascii_fold(wname)})
    meta = {
        "era": ERA,
        "source": "Danh mục hành chính Việt Nam (danhmuchanhchinh.gso.gov.vn / danhmuchanhchinh.nso.gov.vn), "
        "via the vietnam-provinces Python package",
        "package": f"vietnam-provinces=={vp.__version__}",
        "data_version": vp.__data_version__,
        "provinces": sum(r["level"] == "province" for r in rows),
        "communes": sum(r["level"] == "commune" for r in rows),
    }
    return rows, meta


def main() -> int:
    rows, meta = build_rows()
    with CSV_PATH.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    META_PATH.write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"{CSV_PATH}: {meta['provinces']} provinces, {meta['communes']} communes "
          f"({meta['package']}, data {meta['data_version']})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
