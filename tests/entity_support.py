"""Test forms with an ``entities`` sheet (converted by pyxform, checked by ODK Validate once per session),
and submissions written the way ODK Collect writes entity blocks (shared/reference/entities.md §1.3)."""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import io
import re
import uuid as uuidlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

from rasoat.core.models import FormVersion, Round, RoundState
from rasoat.core.storage.base import Store

if TYPE_CHECKING:
    from server_support import CollectClient

REGISTER_MD = """
| survey |
| | type | name | label | save_to | bind::rasoat:identifying |
| | text | commune | Xã | | |
| | text | full_name | Họ tên | full_name | yes |
| | integer | birth_year | Năm sinh | birth_year | |
| | text | status | Tình trạng quản lý | status | |
| entities |
| | list_name | label |
| | persons | concat(${full_name}, ' ', ${birth_year}) |
| settings |
| | form_id | version | form_title | namespaces |
| | ent_register | 1 | Đăng ký người | rasoat="https://rasoat.vn/xforms" |
"""

VISIT_MD = """
| survey |
| | type | name | label | save_to |
| | text | commune | Xã | |
| | select_one_from_file persons.csv | person | Người | |
| | text | status | Tình trạng quản lý | status |
| | text | note | Ghi chú lần thăm | visit_note |
| entities |
| | list_name | entity_id |
| | persons | ${person} |
| settings |
| | form_id | version | form_title |
| | ent_visit | 1 | Thăm định kỳ |
"""


@functools.cache
def compiled(which: str) -> tuple[bytes, dict]:
    """(XForm bytes, pyxform schema) of ``register`` or ``visit``; ODK Validate must pass."""
    from pyxform.xls2xform import convert

    md = {"register": REGISTER_MD, "visit": VISIT_MD}[which]
    result = convert(xlsform=md, file_type=".md", form_name="data", validate=True)
    return result.xform.encode("utf-8"), result._survey.to_json_dict()


def publish(store: Store, which: str) -> FormVersion:
    from rasoat.core.xlsform import referenced_media

    xml, schema = compiled(which)
    form = FormVersion(form_id=str(schema["id_string"]), version="1", title=str(schema["title"]),
                       md5=hashlib.md5(xml).hexdigest(), media=referenced_media(xml.decode()), source="test")
    store.put_form(form, xml, schema, {})
    return form


A, B = "05563", "05503"  # the two communes of the entity tests


def entity_round(store: Store) -> tuple[str, str]:
    """Both test forms published into the open round ``r-ent`` over communes A and B, and a collector in
    each: their tokens (A's, B's)."""
    from rasoat.core.collectors import create_collector

    publish(store, "register")
    publish(store, "visit")
    store.put_round(Round(id="r-ent", name="Quản lý 2026", period="2026",
                          form_ids=["ent_register", "ent_visit"], unit_codes=[A, B], state=RoundState.open))
    _, token_a = create_collector(store, "Người thu A", [A], ["r-ent"])
    _, token_b = create_collector(store, "Người thu B", [B], ["r-ent"])
    return token_a, token_b


def new_uuid() -> str:
    return str(uuidlib.uuid4())


def register_xml(entity_id: str, name: str, year: str = "1990", status: str = "quản lý",
                 commune: str = "05563", instance_id: str | None = None) -> tuple[str, bytes]:
    """A register submission creating entity ``entity_id`` (Collect sets the id at first load)."""
    iid = instance_id or f"uuid:{new_uuid()}"
    xml = (
        '<data xmlns:entities="http://www.opendatakit.org/xforms/entities" '
        f'xmlns:jr="http://openrosa.org/javarosa" id="ent_register" version="1">'
        f"<commune>{commune}</commune><full_name>{name}</full_name><birth_year>{year}</birth_year>"
        f"<status>{status}</status>"
        f'<meta><entity dataset="persons" create="1" id="{entity_id}"><label>{name} {year}</label></entity>'
        f"<instanceID>{iid}</instanceID></meta></data>"
    )
    return iid, xml.encode()


def visit_xml(entity_id: str, base_version: int, *, status: str | None = None, note: str | None = None,
              trunk_version: int | None = None, branch_id: str | None = None, commune: str = "05563",
              instance_id: str | None = None) -> tuple[str, bytes]:
    """A visit submission updating ``entity_id`` from ``base_version`` (with a branch when offline)."""
    iid = instance_id or f"uuid:{new_uuid()}"
    trunk = "" if trunk_version is None else str(trunk_version)
    fields = ""
    if status is not None:
        fields += f"<status>{status}</status>"
    if note is not None:
        fields += f"<note>{note}</note>"
    xml = (
        '<data xmlns:entities="http://www.opendatakit.org/xforms/entities" id="ent_visit" version="1">'
        f"<commune>{commune}</commune><person>{entity_id}</person>{fields}"
        f'<meta><entity dataset="persons" update="1" baseVersion="{base_version}" trunkVersion="{trunk}" '
        f'branchId="{branch_id or ""}" id="{entity_id}"><label/></entity>'
        f"<instanceID>{iid}</instanceID></meta></data>"
    )
    return iid, xml.encode()


# --- what a phone and pyodk see ---------------------------------------------------------------------------


def manifest_entry(phone: CollectClient) -> dict[str, str]:
    resp = phone.get("/forms/ent_visit/manifest")
    assert resp.status_code == 200 and resp.headers["X-OpenRosa-Version"] == "1.0"
    body = resp.text
    match = re.search(r'<mediaFile type="(\w+)"><filename>persons.csv</filename>'
                      r"<hash>md5:([0-9a-f]{32})</hash><downloadUrl>([^<]+)</downloadUrl>"
                      r"<integrityUrl>([^<]+)</integrityUrl></mediaFile>", body)
    assert match, body
    return {"type": match[1], "hash": match[2], "url": match[3], "integrity": match[4]}


def persons_csv(phone: CollectClient) -> list[dict[str, str]]:
    entry = manifest_entry(phone)
    resp = phone.get(entry["url"])
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert resp.headers["etag"] == f'"{entry["hash"]}"'
    assert phone.get(entry["url"], headers={"If-None-Match": f'"{entry["hash"]}"'}).status_code == 304
    return list(csv.DictReader(io.StringIO(resp.text)))



OFFICER_PASSWORD = "mật-khẩu-cán-bộ-23"


@contextlib.contextmanager
def officers_server(backend: str, data_dir: Path) -> Iterator[SimpleNamespace]:
    """A real server over a fresh store of ``backend`` ("embedded" or "postgres") holding ``entity_round``,
    the phones of its collectors of A and B (``a``, ``b``) and three officers (password
    ``OFFICER_PASSWORD``): ``xa-a`` commune officer of A, ``xem-a`` viewer of A, ``xa-b`` commune officer
    of B."""
    from pg_support import fresh_schema
    from rasoat.core.users import create_user
    from server_support import CollectClient, opened_store, serving

    schema = fresh_schema() if backend == "postgres" else contextlib.nullcontext((None, None))
    with schema as (url, _name), opened_store(data_dir, url) as store:
        token_a, token_b = entity_round(store)
        for name, role, unit in (("xa-a", "commune_officer", A), ("xem-a", "viewer", A),
                                 ("xa-b", "commune_officer", B)):
            create_user(store, name, OFFICER_PASSWORD, role, [unit], actor="test")
        with serving(store, access_log=False) as server:
            phone_a = CollectClient(f"{server.url}/v1/key/{token_a}/projects/1")
            phone_b = CollectClient(f"{server.url}/v1/key/{token_b}/projects/1")
            try:
                yield SimpleNamespace(store=store, url=server.url, a=phone_a, b=phone_b, backend=backend)
            finally:
                phone_a.close()
                phone_b.close()


@functools.cache
def _national(form_id: str) -> tuple[bytes, dict, str]:
    from rasoat.core.xlsform import compile_xlsform

    c = compile_xlsform(f"forms/{form_id}.xlsx")  # ODK Validate runs in tests/test_national_forms.py
    return c.xml, c.schema, c.version


def publish_national(store: Store, form_id: str, round_id: str = "r-ent") -> FormVersion:
    """A national form (forms/<form_id>.xlsx) published and added to the round ``round_id``."""
    from rasoat.core.xlsform import referenced_media

    xml, schema, version = _national(form_id)
    form = FormVersion(form_id=form_id, version=version, title=str(schema["title"]),
                       md5=hashlib.md5(xml).hexdigest(), media=referenced_media(xml.decode()), source="test")
    store.put_form(form, xml, schema, {})
    rnd = store.get_round(round_id)
    if rnd is not None and form_id not in rnd.form_ids:
        store.put_round(rnd.model_copy(update={"form_ids": [*rnd.form_ids, form_id]}))
    return form


def decision_xml(entity_id: str, base_version: int, to: str | None = None, *, commune: str = A,
                 status: str = "active") -> tuple[str, bytes]:
    """An F11 decision as Collect fills it for the person of ``commune`` whose list version is
    ``base_version``: a transfer (Mẫu 08) to the commune ``to`` (its province read from the registry), or
    without ``to`` a decision to manage (Mẫu 07), which keeps the person in ``commune``."""
    from rasoat.core.units import get_units

    unit = get_units().get(to) if to else None
    province = unit.parent_code if unit is not None and unit.parent_code else "19"
    event = (
        "<event>transfer</event><event_date>2026-12-07</event_date>"
        f"<transfer_province>{province}</transfer_province><transfer_commune>{to}</transfer_commune>"
        "<transfer_no>08/TB-CAX</transfer_no><transfer_items>decision cv</transfer_items>"
        if to else
        "<event>decision_start</event><event_date>2026-12-01</event_date><mgmt_kind>user</mgmt_kind>"
        "<decision_no>07/QĐ-UBND</decision_no>"
    )
    iid = f"uuid:{new_uuid()}"
    xml = (
        '<data xmlns:entities="http://www.opendatakit.org/xforms/entities" id="f11_management" '
        f'version="{_national("f11_management")[2]}">'
        f"<province>19</province><commune>{commune}</commune><hamlet>{commune}-01</hamlet>"
        f"<ref_date>2026-12-07</ref_date><enumerator_role>commune_police</enumerator_role>"
        f"<known_person>{entity_id}</known_person><person_key>{entity_id}</person_key>{event}"
        f"<ent_mgmt_status>{status}</ent_mgmt_status><ent_mgmt_kind>user</ent_mgmt_kind>"
        f"<ent_term_end>2027-06-30</ent_term_end><ent_commune>{to or commune}</ent_commune><ent_hamlet/>"
        f'<meta><entity dataset="persons" update="1" baseVersion="{base_version}" trunkVersion="" '
        f'branchId="" id="{entity_id}"><label/></entity><instanceID>{iid}</instanceID></meta></data>'
    )
    return iid, xml.encode()
