"""Issue 18, the protection half of "done when", on both backends: three F1 records sent as Collect sends
them to ``rasoat serve`` (one new user, one addict, one post-rehab person), then the indicators count
1/1/1 with no passphrase anywhere, and none of the three names or ID numbers can be found in the data
directory, a pg_dump of the PostgreSQL store, the server log, the audit log or a backup archive — in
UTF-8, UTF-16, decomposed diacritics, XML character references or JSON escapes. The same 1/1/1 is read,
still with no passphrase, from the report workbook's cells (openpyxl), the web indicator page as an
officer sees it, and the demo round's snapshot once it is closed (the workbook's cells are searched for
the names too; the snapshot is in the store the search covers)."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import openpyxl
import pytest
from pg_support import base_url, fresh_schema
from server_support import CollectClient, ProcessServer, backend_env, rasoat_cmd, run_cli

pytestmark = pytest.mark.slow

FORMS = Path(__file__).resolve().parents[1] / "forms"
PASSWORD = "mật khẩu dài 2026"
BY_CATEGORY = ("nat_persons_users", "nat_persons_addicts", "nat_persons_post_rehab")
PERSONS = [  # (name, ID number, category)
    ("Hoàng Thị Lựu", "019201004821", "user"),
    ("Đặng Văn Quýnh", "019085007733", "addict"),
    ("Nông Thị Ngọc Ánh", "019192001156", "post_rehab"),
]


def f1_xml(version: str, iid: str, name: str, id_number: str, category: str) -> bytes:
    """An F1 registration as Collect writes it (the form's own element names, UTF-8)."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><data xmlns:jr="http://openrosa.org/javarosa" '
        f'xmlns:orx="http://openrosa.org/xforms" id="f1_person" version="{version}">'
        "<start>2026-03-02T08:00:00.000+07:00</start><end>2026-03-02T08:10:00.000+07:00</end>"
        "<today>2026-03-02</today><deviceid>collect:abc</deviceid><username>demo</username>"
        "<admin_data_version>2025-07-01</admin_data_version><province>19</province><commune>05563</commune>"
        "<hamlet>05563-01</hamlet><ref_date>2026-03-02</ref_date><enumerator_role>police</enumerator_role>"
        f"<entry_type>new</entry_type><new_person_key>{uuid.uuid4()}</new_person_key>"
        f"<person_key>{uuid.uuid4()}</person_key><person_name>{name}</person_name><present>yes</present>"
        f"<full_name>{name}</full_name><other_name>{name.split()[-1]} béo</other_name><sex>female</sex>"
        "<birth_date>1992-05-17</birth_date><birth_year>1992</birth_year>"
        f"<id_number>{id_number}</id_number><phone>0912{id_number[-6:]}</phone>"
        f"<residence_status>permanent</residence_status><address_text>Xóm 1, nhà {name}</address_text>"
        f"<first_basis>tip</first_basis><category>{category}</category><psychosis>no</psychosis>"
        "<has_record>no</has_record><services>none</services><legal_aid_requested>no</legal_aid_requested>"
        f"<notes>Gặp {name} tại nhà</notes>"
        f"<meta><instanceID>{iid}</instanceID><instanceName>05563 – 2026-03-02</instanceName></meta></data>"
    ).encode()


def spellings(secret: str) -> list[bytes]:
    """The ways a value could sit in a file: UTF-8 (composed and decomposed), UTF-16, XML character
    references, JSON's \\u escapes."""
    out = {secret.encode(), unicodedata.normalize("NFD", secret).encode(), secret.encode("utf-16-le"),
           "".join(c if ord(c) < 128 else f"&#{ord(c)};" for c in secret).encode(),
           "".join(c if ord(c) < 128 else f"&#x{ord(c):x};" for c in secret).encode(),
           json.dumps(secret).strip('"').encode()}
    return sorted(out)


def found_in(data: bytes) -> list[str]:
    hits = []
    for name, id_number, _ in PERSONS:
        for secret in (name, id_number, name.split()[-1] + " béo"):
            if any(s in data for s in spellings(secret)):
                hits.append(secret)
    return hits


@pytest.fixture(params=["embedded", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ProcessServer, str | None, str]]:
    from pg_support import require_pg

    if request.param == "postgres":
        require_pg()
        ctx = fresh_schema()
    else:
        from contextlib import nullcontext

        ctx = nullcontext((None, None))
    with ctx as (url, schema):
        server = ProcessServer(tmp_path / "rasoat-data", database_url=url).start(timeout=240)
        try:
            yield server, url, schema or ""
        finally:
            server.stop()


def test_person_records_count_without_a_passphrase_and_nothing_identifying_is_stored_in_clear(
    served: tuple[ProcessServer, str | None, str], tmp_path: Path
) -> None:
    from rasoat.core.formreg import compile_cached

    server, url, schema = served
    data = server.data_dir
    demo = next(line.strip() for line in server.output().splitlines() if "/v1/key/" in line)
    version = compile_cached(FORMS / "f1_person.xlsx").version
    phone = CollectClient(demo)
    sent = []
    for name, id_number, category in PERSONS:
        iid = f"uuid:{uuid.uuid4()}"
        xml = f1_xml(version, iid, name, id_number, category)
        assert phone.head("/submission").status_code == 204
        answer = phone.submit(xml)
        assert answer.status_code == 201, answer.text
        assert phone.submit(xml).status_code in (200, 201)  # Collect retrying: a duplicate, not a 409
        sent.append((iid, xml))
    changed = sent[0][1].replace(b"<psychosis>no</psychosis>", b"<psychosis>suspected</psychosis>")
    assert phone.submit(changed).status_code == 409  # same instanceID, other content
    phone.close()

    shown = run_cli("indicators", "--unit", "05563", "--json", "--data", str(data), database_url=url)
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    text = json.dumps(rows, ensure_ascii=False)
    values = {}
    for ind in ("nat_persons_users", "nat_persons_addicts", "nat_persons_post_rehab", "nat_persons_listed"):
        match = [r for r in _walk(rows) if r.get("indicator_id") == ind]
        assert match, f"{ind} missing in {text[:500]}"
        values[ind] = match[0].get("value")
    assert values == {"nat_persons_users": 1, "nat_persons_addicts": 1, "nat_persons_post_rehab": 1,
                      "nat_persons_listed": 3}
    coverage = [r for r in _walk(rows) if r.get("indicator_id") == "nat_id_coverage"]
    assert coverage and coverage[0].get("value") == 100  # the pseudonym says an ID was given

    # an officer who may read identities gets the record and its XML opened through the Central API
    added = subprocess.run(rasoat_cmd("users", "add", "tinh.admin", "--role", "admin", "--data", str(data)),
                           input=f"{PASSWORD}\n", capture_output=True, text=True, env=backend_env(url))
    assert added.returncode == 0, added.stderr
    iid, xml = sent[1]
    got = httpx.get(f"{server.url}/v1/projects/1/forms/f1_person/submissions/{iid}.xml",
                    auth=("tinh.admin", PASSWORD))
    assert got.status_code == 200 and got.content == xml  # not the sealed bytes kept on disk

    # the report workbook's cells, with no passphrase
    workbook = tmp_path / "bao-cao.xlsx"
    made = run_cli("report", "-o", str(workbook), "--unit", "05563", "-q", "--data", str(data),
                   database_url=url)
    assert made.returncode == 0, made.stderr
    sheet = openpyxl.load_workbook(workbook)["Cấp xã"]
    cells = {(r[0], r[2]): r for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert {ind: cells[("05563", ind)][5] for ind in BY_CATEGORY} == dict.fromkeys(BY_CATEGORY, 1)

    # the web indicator page, as an officer
    assert indicator_page_values(server.url) == dict.fromkeys(BY_CATEGORY, "1 người")

    # the round's closing snapshot
    closed = run_cli("rounds", "close", "demo", "--data", str(data), database_url=url)
    assert closed.returncode == 0, closed.stderr
    shown = run_cli("rounds", "show", "demo", "--json", "--data", str(data), database_url=url)
    assert shown.returncode == 0, shown.stderr
    frozen = json.loads(shown.stdout)["snapshot"]["indicators"]
    assert {ind: frozen[ind]["units"]["05563"][0] for ind in BY_CATEGORY} == dict.fromkeys(BY_CATEGORY, 1)
    assert all(not frozen[ind].get("uncounted_encrypted") for ind in BY_CATEGORY)

    archive = tmp_path / "du-phong.tar.gz"
    backup = run_cli("backup", "-o", str(archive), "--data", str(data), database_url=url)
    assert backup.returncode == 0, backup.stderr
    audit = run_cli("audit", "--json", "--data", str(data), database_url=url)
    assert audit.returncode == 0, audit.stderr
    server.stop()

    places: dict[str, bytes] = {"server log": server.output().encode(), "audit": audit.stdout.encode()}
    every_cell = [c for ws in openpyxl.load_workbook(workbook) for row in ws.iter_rows(values_only=True)
                  for c in row if c is not None]
    places["report workbook cells"] = "\n".join(map(str, every_cell)).encode()
    for path in sorted(p for p in data.rglob("*") if p.is_file()):
        places[f"data dir {path.relative_to(data)}"] = path.read_bytes()
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            fh = tar.extractfile(member)
            if fh is not None:
                places[f"backup {member.name}"] = fh.read()
    if url:
        dump = subprocess.run(["pg_dump", "--no-owner", f"--schema={schema}", base_url()],
                              capture_output=True, check=True)
        assert f"{sent[0][0]}".encode() in dump.stdout  # the dump is of the store that holds them
        places["pg_dump"] = dump.stdout
    else:
        assert sent[0][0].encode() in places["data dir rasoat.sqlite3"] + places.get(
            "data dir rasoat.sqlite3-wal", b"")
    leaks = {where: found_in(content) for where, content in places.items() if found_in(content)}
    assert leaks == {}


def indicator_page_values(base: str) -> dict[str, str]:
    """The commune's value cell of each person figure on the web indicators page, as the officer sees it."""
    with httpx.Client(base_url=base, timeout=60) as client:
        page = client.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf, page.text
        login = client.post("/login", data={"username": "tinh.admin", "password": PASSWORD,
                                            "csrf": csrf.group(1), "next": "/"})
        assert login.status_code == 303, login.text
        page = client.get("/indicators?unit=05563&lang=vi")
        assert page.status_code == 200, page.text
    values = {}
    for ind in BY_CATEGORY:
        row = re.search(rf'<tr data-indicator="{ind}">(.*?)</tr>', page.text, re.S)
        assert row, ind
        value = re.search(r'<td class="num" data-label="[^"]+">([^<]*)</td>', row.group(1))
        assert value, row.group(1)
        values[ind] = value.group(1).strip()
    return values


def _walk(node: object) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def test_the_regex_used_for_spellings_finds_what_it_should() -> None:
    assert found_in("xx Hoàng Thị Lựu yy".encode()) == ["Hoàng Thị Lựu"]
    assert found_in(b"&#7921;") == [] and found_in(b"Ho&#224;ng Th&#7883; L&#7921;u") == [
        "Hoàng Thị Lựu"]
    assert re.compile(b"019201004821").search("019201004821".encode("utf-16-le")) is None
    assert found_in("019201004821".encode("utf-16-le")) == ["019201004821"]
