"""Test forms with an ``entities`` sheet (converted by pyxform, checked by ODK Validate once per session),
and submissions written the way ODK Collect writes entity blocks (shared/reference/entities.md §1.3)."""

from __future__ import annotations

import functools
import hashlib
import uuid as uuidlib

from rasoat.core.models import FormVersion, Round, RoundState
from rasoat.core.storage.base import Store

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
