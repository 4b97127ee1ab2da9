"""Reading identities is a permission (issue 18, items 2 and 4), on both backends.

Three persons are registered in Xã Phượng Tiến (05563) with F1, sent as Collect sends them through a real
server, in the 2025 census; 2026 opens. Then: the 2026 roster reaches a Phượng Tiến phone with their
names and a phone of Xã Tân Cương (05503) with none of them; ``rasoat export f1_person
--include-personal`` gives an allowed officer the names and ID numbers and refuses a viewer; the web pages
show the names to the commune officer and not to the viewer. Every read is in the audit log, which never
holds a name or an ID number.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote
from xml.sax.saxutils import escape

import openpyxl
import pytest
from rasoat.core.collectors import create_collector
from rasoat.core.formreg import compile_cached, find_media
from rasoat.core.round_lifecycle import close_round, open_round
from rasoat.core.rounds import create_round
from rasoat.core.users import create_user
from rasoat.core.xlsform import publish_form
from server_support import CollectClient, opened_store, run_cli, serving
from web_support import ACCOUNTS, csrf_of, http_login

PT, TC = "05563", "05503"  # Xã Phượng Tiến, Xã Tân Cương (Thái Nguyên)
F1 = Path(__file__).resolve().parents[1] / "forms" / "f1_person.xlsx"
# key, full name, other name, birth date, ID number, hamlet, category
PERSONS = [
    ("0a000000-0000-4000-8000-000000000001", "Nguyễn Văn An", "An Gầy", "1990-03-15", "019090001234",
     "05563-01", "user"),
    ("0b000000-0000-4000-8000-000000000002", "Trần Thị Bình", "Bình Béo", "1985-07-02", "019185004321",
     "05563-02", "addict"),
    ("0c000000-0000-4000-8000-000000000003", "Lý Văn Cường", "Cường Râu", "1979-11-30", "019079005678",
     "05563-03", "post_rehab"),
]
NAMES = [p[1] for p in PERSONS]
SECRETS = [s for p in PERSONS for s in (p[1], p[2], p[4])]  # what must never reach the audit log
OFFICER, VIEWER = "xa.phuongtien", "nguoixem"


def f1_instance(version: str, key: str, name: str, other: str, born: str, nid: str, hamlet: str,
                category: str) -> tuple[str, bytes]:
    """(instanceID, XML) of a new registration as Collect writes F1 (the answers the form asks)."""
    iid = f"uuid:{uuid.uuid4()}"
    fields = {
        "province": "19", "commune": PT, "hamlet": hamlet, "ref_date": "2025-10-01", "entry_type": "new",
        "new_person_key": key, "person_key": key, "person_name": name, "present": "yes",
        "full_name": name, "other_name": other, "sex": "male", "birth_date": born, "birth_year": born[:4],
        "id_number": nid, "category": category,
    }  # fmt: skip
    body = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items())
    xml = (
        f'<?xml version=\'1.0\' ?><data id="f1_person" version="{version}" '
        'xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms">'
        f"{body}<meta><instanceID>{iid}</instanceID></meta></data>"
    )
    return iid, xml.encode("utf-8")


@pytest.fixture(scope="module")
def world(
    module_backend_url: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimpleNamespace]:
    data_dir = tmp_path_factory.mktemp("identities") / "data"
    with opened_store(data_dir, module_backend_url) as store:
        form = compile_cached(F1)
        media, _missing = find_media(F1, form.form_id, form.media)
        publish_form(store, form, {n: p.read_bytes() for n, p in media.items()}, "test")
        r25 = create_round(store, "Rà soát 2025", "2025", ["f1_person"], [PT, TC], kind="census")
        thu, thu_token = create_collector(store, "Nguyễn Thị Thu", [PT], [r25.id])
        lan, lan_token = create_collector(store, "Lê Văn Lân", [TC], [r25.id])
        open_round(store, r25.id, allow_missing_hamlets=True)  # Tân Cương has no hamlet list
        for username in (OFFICER, VIEWER):
            password, role, units, name = ACCOUNTS[username]
            create_user(store, username, password, role, units, display_name=name, actor="test")
        with serving(store, access_log=False) as server:
            thu_phone = CollectClient(f"{server.url}/v1/key/{thu_token}/projects/1")
            lan_phone = CollectClient(f"{server.url}/v1/key/{lan_token}/projects/1")
            ids = []
            try:
                for person in PERSONS:
                    iid, xml = f1_instance(form.version, *person)
                    assert thu_phone.head("/submission").status_code == 204
                    resp = thu_phone.submit(xml)
                    assert resp.status_code == 201, resp.text
                    ids.append(iid)
                close_round(store, r25.id)
                r26 = create_round(store, "Rà soát 2026", "2026", ["f1_person"], [PT, TC], kind="census",
                                   collectors=[thu.id, lan.id])
                open_round(store, r26.id, allow_missing_hamlets=True)
                yield SimpleNamespace(store=store, url=server.url, data_dir=data_dir,
                                      database_url=module_backend_url, thu=thu, lan=lan, thu_phone=thu_phone,
                                      lan_phone=lan_phone, ids=ids)
            finally:
                thu_phone.close()
                lan_phone.close()


def audit(world: SimpleNamespace, action: str, actor: str) -> list:
    return [e for e in world.store.iter_audit(actor=actor) if e.action == action]


def assert_no_secret_in_audit(world: SimpleNamespace) -> None:
    text = json.dumps([e.model_dump(mode="json") for e in world.store.iter_audit()], ensure_ascii=False)
    assert not [s for s in SECRETS if s in text]


def roster(phone: CollectClient) -> tuple[list[dict[str, str]], str | None]:
    """persons.csv as Collect fetches it (manifest, then the file) and the hash the manifest announced
    (an entity list's hash is its state's, not the file's MD5; entities.md §2.2)."""
    import hashlib
    import re

    manifest = phone.get("/forms/f1_person/manifest")
    assert manifest.status_code == 200, manifest.text
    listed = re.search(r'<mediaFile( type="entityList")?><filename>persons\.csv</filename>\s*'
                       r"<hash>md5:([0-9a-f]+)</hash>", manifest.text)
    resp = phone.get("/forms/f1_person/attachments/persons.csv")
    assert resp.status_code == 200, resp.text
    if listed and not listed.group(1):
        assert listed.group(2) == hashlib.md5(resp.content).hexdigest()
    return list(csv.DictReader(io.StringIO(resp.content.decode("utf-8")))), listed and listed.group(2)


def test_roster_names_reach_only_the_phones_of_their_commune(world: SimpleNamespace) -> None:
    """The 2026 census opened with last year's persons put on the persons entity list (their names sealed
    there too), so F1's persons.csv is that list, cut to the phone's commune (issue 23)."""
    rows, md5 = roster(world.thu_phone)
    assert md5 is not None
    got = {r["name"]: r for r in rows}
    assert sorted(got) == sorted(p[0] for p in PERSONS)
    for key, name, other, born, _nid, hamlet, category in PERSONS:
        row = got[key]
        assert (row["full_name"], row["other_name"], row["birth_year"]) == (name, other, born[:4])
        assert (row["commune"], row["hamlet"], row["category"], row["status"]) == (PT, hamlet, category, "")
        assert row["display"] == f"{name} ({born[:4]}) – Xóm {hamlet[-1]}"  # what F1's picker shows
        assert row["label"] == f"Người {key[:8]} ({born[:4]})"  # the label holds no name
    assert "national_id" not in rows[0] and "pseudonym" not in rows[0]  # no ID number reaches a phone
    stored = world.store.get_entity(PERSONS[0][0])
    assert stored is not None and isinstance(stored.properties["full_name"], dict)  # sealed at rest

    others, _ = roster(world.lan_phone)
    assert others == []  # a Tân Cương phone gets none of Phượng Tiến's persons

    (moved,) = audit(world, "roster.to_entities", "rollforward")
    assert moved.details["count"] == 3
    (here,) = audit(world, "entities.download", world.thu.username)
    (there,) = audit(world, "entities.download", world.lan.username)
    assert here.details["units"] != there.details["units"]
    assert_no_secret_in_audit(world)


def test_web_commune_officer_sees_names_viewer_does_not(world: SimpleNamespace) -> None:
    officer, viewer = http_login(world.url, OFFICER), http_login(world.url, VIEWER)
    for iid, (_key, name, other, _born, nid, _hamlet, _cat) in zip(world.ids, PERSONS, strict=True):
        path = f"/submissions/{quote(iid, safe='')}"
        seen = officer.get(path)
        assert seen.status_code == 200
        assert name in seen.text and other in seen.text and nid in seen.text
        assert 'value="approved"' in seen.text  # a record the officer reads can be reviewed
        hidden = viewer.get(path)
        assert hidden.status_code == 200
        assert not [s for s in (name, other, nid) if s in hidden.text]
        assert 'id="identities-hidden"' in hidden.text and 'value="approved"' not in hidden.text
    views = audit(world, "view.submission", OFFICER)
    assert sorted(v.details["instance_ids"][0] for v in views) == sorted(world.ids)
    assert not audit(world, "view.submission", VIEWER)

    listing = officer.get("/submissions?form=f1_person")
    assert listing.status_code == 200
    (listed,) = audit(world, "view.submissions", OFFICER)
    assert (sorted(listed.details["instance_ids"]), listed.details["count"]) == (sorted(world.ids), 3)
    assert viewer.get("/submissions?form=f1_person").status_code == 200
    assert not audit(world, "view.submissions", VIEWER)

    refused = viewer.get("/exports/raw?form=f1_person&personal=1")
    assert refused.status_code == 403 and "không được xem danh tính" in refused.text
    assert audit(world, "export.raw.refused", VIEWER)
    resp = viewer.post(f"/submissions/{quote(world.ids[0], safe='')}/review",
                       data={"state": "approved", "csrf": csrf_of(viewer.get("/submissions").text)})
    assert resp.status_code == 403
    assert_no_secret_in_audit(world)


@pytest.mark.slow  # two `rasoat export` subprocesses per backend
def test_cli_personal_export_for_an_allowed_officer_and_refused_for_a_viewer(
    world: SimpleNamespace, tmp_path: Path
) -> None:
    out = tmp_path / "f1.xlsx"
    common = ["--data", str(world.data_dir), "-q"]
    done = run_cli("export", "f1_person", "-o", str(out), "--include-personal", "--as", OFFICER, *common,
                   database_url=world.database_url)
    assert done.returncode == 0, done.stderr
    wb = openpyxl.load_workbook(out, read_only=True)
    data = wb.worksheets[0]
    header = next(data.iter_rows(values_only=True))
    rows = list(data.iter_rows(min_row=2, values_only=True))
    column = {name: header.index(name) for name in ("full_name", "other_name", "id_number")
              if name in header}
    if not column:  # labelled headers: find the columns by their values
        column = {
            what: next(i for i, h in enumerate(header) if any(r[i] == value for r in rows))
            for what, value in (("full_name", NAMES[0]), ("other_name", PERSONS[0][2]),
                                ("id_number", PERSONS[0][4]))
        }
    got = sorted((r[column["full_name"]], r[column["other_name"]], str(r[column["id_number"]])) for r in rows)
    assert got == sorted((p[1], p[2], p[4]) for p in PERSONS)
    about = {r[0]: r[1] for r in wb["Thông tin"].iter_rows(values_only=True)}
    assert about["Dữ liệu cá nhân / Personal data"] == "có / included"
    assert "Cột đã loại / Columns left out" not in about  # nothing it claims to include was left out
    (exported,) = audit(world, "export.raw", OFFICER)
    assert exported.details["include_personal"] is True and exported.details["submissions"] == 3

    refused_out = tmp_path / "viewer.xlsx"
    refused = run_cli("export", "f1_person", "-o", str(refused_out), "--include-personal", "--as", VIEWER,
                      *common, database_url=world.database_url)
    assert refused.returncode == 1
    assert "không được xem danh tính" in refused.stderr and "may not read identities" in refused.stderr
    assert not refused_out.exists()
    assert audit(world, "export.raw.refused", VIEWER)
    assert not audit(world, "export.raw", VIEWER)
    assert_no_secret_in_audit(world)
