"""Each national form filled and sent the way ODK Collect sends it, through a real server (issue 11).

The instance XML is built from the primary instance of the XForm the server serves to the collector
(downloaded through the collector's form list, as Collect does): root element with the form's ``id`` and
``version``, every node of the instance in document order, the repeat template dropped and two rows
written, elements in no namespace with the ``jr``/``orx`` prefixes declared, as JavaRosa serialises it.
Leaves are filled by type (select_one a valid choice name, select_multiple two names, numbers, dates,
geopoints, file names with the files attached). Collect sends HEAD then the multipart POST; the stored
``Submission.fields`` must hold exactly what was sent, keyed per the brief (paths below the root; repeats
as lists of row dicts keyed relative to the repeat).

Every leaf is filled, whatever its relevance: the parser does not evaluate ``relevant`` and stores what
the phone wrote, so a fully filled instance checks every field's path and value at once. F1 is published
here without the project key (its plaintext parsing is what is under test; tests/test_encryption.py
covers Collect's encrypted envelope).
"""

from __future__ import annotations

import csv
import hashlib
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import defusedxml.ElementTree as DET
import pytest
from rasoat.core.collectors import create_collector
from rasoat.core.formreg import FormCatalogue, publish_form
from rasoat.core.models import Round, RoundState
from server_support import COMMUNE, CollectClient, opened_store, serving

NATIONAL = [
    "f1_person", "f2_pledge", "f3_school", "f4_enterprise", "f5_hamlet",
    "f6_hotspot", "f7_cultivation", "f8_activity", "f9_case", "f10_summary",
]  # fmt: skip
FORMS = Path(__file__).resolve().parents[1] / "forms"
XF = "http://www.w3.org/2002/xforms"
XFL = "{http://openrosa.org/xforms/xformsList}"
JR_TEMPLATE = "{http://openrosa.org/javarosa}template"
HAMLET = f"{COMMUNE}-01"
ROUND = "r-national"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01 test photo \xff\xd9"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """The ten national forms (with their media) in an open round for one collector in COMMUNE, served."""
    with opened_store(tmp_path_factory.mktemp("national-submissions") / "data") as store:
        catalogue = FormCatalogue()
        schemas = {}
        for form_id in NATIONAL:
            entry = catalogue[form_id]
            publish_form(store, entry.form, entry.media_bytes(), entry.plugin)  # no key: F1 in plaintext
            schemas[form_id] = entry.form.schema
        store.put_round(
            Round(
                id=ROUND,
                name="Rà soát quốc gia",
                period="2026",
                form_ids=NATIONAL,
                unit_codes=[COMMUNE],
                state=RoundState.open,
            )
        )
        user, token = create_collector(store, "Nguyễn Thị Thu", [COMMUNE], [ROUND])
        with serving(store) as server:
            client = CollectClient(f"{server.url}/v1/key/{token}/projects/1")
            try:
                listed = DET.fromstring(client.get("/formList").content)
                urls = {
                    xf.find(f"{XFL}formID").text: xf.find(f"{XFL}downloadUrl").text
                    for xf in listed.iter(f"{XFL}xform")
                }
                yield SimpleNamespace(store=store, client=client, user=user, schemas=schemas, urls=urls)
            finally:
                client.close()


# --- filling a form as a collector would ---------------------------------------------------------------


def first_row_name(csv_name: str) -> str:
    """A valid choice from a CSV the form reads (the placeholder copy the server cut from)."""
    with open(FORMS / csv_name, encoding="utf-8", newline="") as fh:
        return next(csv.DictReader(fh))["name"]


class Filler:
    """Values by the pyxform schema's question type; remembers what it wrote as the expected fields."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.choices: dict[str, list[dict[str, Any]]] = schema.get("choices", {})
        self.types: dict[str, dict[str, Any]] = {}
        self._index(schema["children"], "")
        self.files: dict[str, bytes] = {}

    def _index(self, children: list[dict[str, Any]], prefix: str) -> None:
        for child in children:
            path = prefix + child["name"]
            self.types[path] = child
            if child.get("children"):
                self._index(child["children"], path + "/")

    def value(self, path: str, row: int) -> str:
        """What Collect writes for the question at ``path`` (schema path, no root) in repeat row ``row``."""
        q = self.types.get(path, {"type": "calculate", "name": path.rsplit("/", 1)[-1]})
        kind, name = q["type"], q["name"]
        fixed = {"province": "19", "commune": COMMUNE, "hamlet": HAMLET, "mode": "list",
                 "entry_type": "new", "admin_data_version": "2025-07-01"}  # fmt: skip
        if path in fixed:
            return fixed[path]
        if path == "meta/instanceID":
            return f"uuid:{uuid.uuid4()}"
        if kind in ("start", "end"):
            return "2026-03-05T10:04:05.123+07:00"
        if kind == "today":
            return "2026-03-05"
        if kind == "deviceid":
            return "collect:Xy12AbCdEfGh3456"
        if kind == "username":
            return "nguyenthithu"
        if kind == "note":
            return ""  # Collect writes a note's node empty
        if kind in ("photo", "image", "audio", "video", "file") or name == "audit":
            file_name = f"1709608{row}{len(self.files):02d}.jpg" if name != "audit" else "audit.csv"
            self.files[file_name] = JPEG if name != "audit" else b"event,node,start,end\n"
            return file_name
        if kind == "select one" and q.get("itemset", "").endswith(".csv"):
            return first_row_name(q["itemset"])
        if kind in ("select one", "select all that apply"):
            names = [c["name"] for c in self.choices[q.get("list_name") or q["itemset"]]]
            if kind == "select one":
                return names[row % len(names)]
            usable = [n for n in names if n not in ("none", "other", "dont_know")] or names
            return " ".join(usable[row : row + 2]) if len(usable) > row + 1 else " ".join(usable[:2])
        if kind == "integer":
            return str(3 + row)
        if kind == "decimal":
            return f"{12.5 + row}"
        if kind == "date":
            return f"2026-03-0{1 + row}"
        if kind == "geopoint":
            return f"21.5{row}42 105.8{row}31 35.0 4.5"
        if path == "meta/instanceName":
            return f"{HAMLET} – 2026-03-01"
        if kind == "calculate" and "uuid()" in (q.get("bind") or {}).get("calculate", ""):
            return str(uuid.uuid4())
        if kind == "calculate":
            return f"calc-{name}"  # Collect's computed value; any string round-trips the same way
        return f"Nguyễn Văn Bình & <con> {name} {row}"  # text: escaping and Vietnamese must survive


def strip_ns(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def fill(
    el: ET.Element, filler: Filler, repeats: set[str], base: str, row: int
) -> tuple[str, dict[str, Any]]:
    """``el``'s children serialised as Collect would, filled; (XML, fields keyed relative to ``el``)."""
    out: list[str] = []
    fields: dict[str, Any] = {}
    for child in el:
        if child.get(JR_TEMPLATE) is not None:
            continue  # the repeat template is never submitted
        name = strip_ns(child.tag)
        path = base + name
        if path in repeats:
            if name in fields:
                continue  # the form's own first row: two rows are written below, once
            fields[name] = []
            for n in range(2):
                xml, row_fields = fill(child, filler, repeats, path + "/", n)
                out.append(f"<{name}>{xml}</{name}>")
                fields[name].append(row_fields)
        elif len(child):
            xml, inner = fill(child, filler, repeats, path + "/", row)
            out.append(f"<{name}>{xml}</{name}>")
            fields.update({f"{name}/{k}": v for k, v in inner.items()})
        else:
            value = filler.value(path, row)
            out.append(f"<{name}>{escape(value)}</{name}>" if value else f"<{name}/>")
            fields[name] = value
    return "".join(out), fields


def collect_instance(xform: bytes, schema: dict[str, Any]) -> tuple[bytes, dict[str, Any], dict[str, bytes]]:
    """(instance XML as Collect writes it, the fields it holds, the files to attach) for a served XForm."""
    html = DET.fromstring(xform)
    model = html.find(f".//{{{XF}}}model")
    assert model is not None
    primary = next(i for i in model.findall(f"{{{XF}}}instance") if i.get("id") is None)
    root = primary[0]
    root_name = strip_ns(root.tag)
    repeats = {
        r.get("nodeset", "").split("/", 2)[2] for r in html.iter(f"{{{XF}}}repeat")
    }  # "/data/household" → "household"
    filler = Filler(schema)
    body, fields = fill(root, filler, repeats, "", 0)
    xml = (
        f"<?xml version='1.0' ?><{root_name} xmlns:jr=\"http://openrosa.org/javarosa\" "
        f'xmlns:orx="http://openrosa.org/xforms" id={quoteattr(root.get("id", ""))} '
        f"version={quoteattr(root.get('version', ''))}>{body}</{root_name}>"
    )
    return xml.encode("utf-8"), fields, filler.files


# --- the tests -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sent(world: SimpleNamespace) -> dict[str, SimpleNamespace]:
    """Each form downloaded, filled and sent as Collect does: HEAD /submission, then the multipart POST."""
    out = {}
    for form_id in NATIONAL:
        served = world.client.get(world.urls[form_id])
        assert served.status_code == 200, served.text
        xml, expected, files = collect_instance(served.content, world.schemas[form_id])
        head = world.client.head("/submission")
        post = world.client.submit(xml, files)
        out[form_id] = SimpleNamespace(
            served=served.content, xml=xml, expected=expected, files=files, head=head, post=post
        )
    return out


def test_the_collector_is_offered_all_ten_forms(world: SimpleNamespace) -> None:
    assert sorted(world.urls) == sorted(NATIONAL)


@pytest.mark.parametrize("form_id", NATIONAL)
def test_form_filled_in_collect_comes_back_as_sent(
    world: SimpleNamespace, sent: dict[str, SimpleNamespace], form_id: str
) -> None:
    got = sent[form_id]
    form = world.store.get_form(form_id)
    assert form is not None and hashlib.md5(got.served).hexdigest() == form.md5
    assert got.head.status_code == 204, got.head.text
    assert got.post.status_code == 201, got.post.text

    instance_id = got.expected["meta/instanceID"]
    sub = world.store.get_submission(instance_id)
    assert sub is not None
    assert (sub.form_id, sub.form_version) == (form_id, form.version)
    assert sub.round_id == ROUND and sub.collector_id == world.user.id
    assert sub.unit_code == HAMLET  # the hamlet answer, known to the unit registry
    assert not sub.encrypted
    assert stored_plainly(world.store, sub) == got.expected
    assert sorted(sub.attachments) == sorted(got.files)
    for name, data in got.files.items():
        assert opened(world.store, instance_id, name, world.store.attachment(instance_id, name)) == data
    xml = world.store.submission_xml(instance_id)
    assert opened(world.store, instance_id, "submission.xml", xml) == got.xml


def stored_plainly(store, sub) -> dict[str, Any]:
    """A record's fields as sent: a form with identifying fields (core.protection) keeps them only sealed,
    so they are checked absent in clear, then revealed with the store's key."""
    from rasoat.core import protection

    declared = protection.stored_declaration(store, sub.form_id, sub.form_version)
    if not declared.identifying:
        assert not protection.is_protected(sub.fields)
        return sub.fields
    assert not declared.identifying & set(sub.fields)  # never in clear
    revealed = protection.reveal(protection.keyring(store, create=False), sub.instance_id, sub.fields)
    revealed.pop(protection.PSEUDONYM_FIELD, None)
    return revealed


def opened(store, instance_id: str, name: str, data: bytes | None) -> bytes | None:
    """Stored bytes in plaintext: a protected record's XML and files are sealed on disk."""
    from rasoat.core import protection

    if not protection.is_sealed(data):
        return data
    return protection.open_sealed(protection.keyring(store, create=False), instance_id, name, data or b"")


def is_multi(world: SimpleNamespace, form_id: str, path: str) -> bool:
    """Whether ``path`` (top level) is a select_multiple in ``form_id``."""
    return any(
        c["name"] == path and c["type"] == "select all that apply" for c in world.schemas[form_id]["children"]
    )


def test_repeats_come_back_as_two_rows_and_select_multiples_as_two_names(
    world: SimpleNamespace, sent: dict[str, SimpleNamespace]
) -> None:
    fields = {form_id: stored_plainly(world.store, world.store.get_submission(s.expected["meta/instanceID"]))
              for form_id, s in sent.items()}  # fmt: skip
    f2 = fields["f2_pledge"]
    assert f2["mode"] == "list"
    rows = f2["household"]
    assert len(rows) == 2 and all(set(r) >= {"head_name", "members", "pledged"} for r in rows)
    assert [r["members"] for r in rows] == ["3", "4"]
    assert rows[0]["head_name"].startswith("Nguyễn Văn Bình & <con>")
    assert "household/head_name" not in f2  # repeat rows are keyed relative to the repeat
    for form_id, repeat in (("f5_hamlet", "model"), ("f9_case", "offence")):
        assert len(fields[form_id][repeat]) == 2, form_id
    multi = [v for form_id, f in fields.items() for k, v in f.items()
             if isinstance(v, str) and is_multi(world, form_id, k)]  # fmt: skip
    assert len(multi) >= 3 and all(len(v.split(" ")) == 2 for v in multi)
    services = fields["f1_person"]["services"].split(" ")
    assert len(services) == 2 and "none" not in services
