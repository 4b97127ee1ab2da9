"""Every collected field earns its place (issue 19, item 4): each field of every form in the catalogue
(F1–F13 and the built-in plugins' forms) is read by an indicator or listed, with its reason, in
docs/forms.md's "Fields no indicator reads"."""

from __future__ import annotations

import re
from pathlib import Path

from rasoat.core.formreg import FormCatalogue
from rasoat.core.indicators.describe import fields_read
from rasoat.core.indicators.loading import collect
from rasoat.core.plugins import build_manager

DOCS = Path(__file__).resolve().parent.parent / "docs" / "forms.md"
SHARED = {"province", "commune", "hamlet", "admin_data_version", "enumerator_role", "ref_date", "notes"}
METADATA = {"start", "end", "today", "deviceid", "username", "note"}


def _fields(children: list[dict], prefix: str = "") -> list[str]:
    out = []
    for child in children:
        if child.get("type") in METADATA or (child.get("type") == "group" and child["name"] == "meta"):
            continue
        name = prefix + child["name"]
        out.append(name)
        if child.get("children") and child.get("type") in ("repeat", "group"):
            out += _fields(child["children"], name + "/")
    return out


def _listed() -> dict[str, set[str]]:
    section = DOCS.read_text(encoding="utf-8").split("## Fields no indicator reads")[1]
    out: dict[str, set[str]] = {}
    for block in re.split(r"\n- \*\*", section)[1:]:
        form = re.match(r"`([a-z0-9_]+)`", block)
        assert form, block[:40]
        out[form.group(1)] = set(re.findall(r"`([a-z0-9_/]+)`", block)[1:])
    return out


def test_every_field_is_read_by_an_indicator_or_listed_with_its_reason() -> None:
    pm = build_manager()
    read = fields_read(collect(pm))
    listed = _listed()
    unaccounted = {}
    for entry in FormCatalogue(pm):
        form = entry.form.form_id
        fields = _fields(entry.form.schema["children"])
        missing = [f for f in fields if f not in SHARED and f not in read.get(form, set())
                   and f not in listed.get(form, set())]
        if missing:
            unaccounted[form] = missing
    assert unaccounted == {}
