"""Hostile bodies at the submission endpoint of a real running server (hypothesis generates them): entity
expansion, external entities, DTDs, deep nesting, invalid UTF-8, garbage, malformed multipart, too many
or oversized parts, path-traversal names, wrong content types. Every answer is a 4xx with an OpenRosa
message Collect can show (never a 5xx), and nothing is stored. Huge numbers are text and export fine;
cells that look like formulas are written as text."""

from __future__ import annotations

import io
import uuid
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import httpx
import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasoat.core.storage.base import SubmissionQuery
from server_support import COMMUNE, instance_xml, multipart, seeded_store, serving

MAX_BODY = 1_000_000
EXAMPLES = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
RESPONSE_NS = "{http://openrosa.org/http/response}"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("hostile") / "data"
    with seeded_store(data_dir) as (store, seeded), serving(store, max_body_bytes=MAX_BODY) as server:
        http = httpx.Client(timeout=60, headers={"X-OpenRosa-Version": "1.0"})
        yield SimpleNamespace(
            url=f"{server.url}/v1/key/{seeded.token}/projects/1/submission",
            store=store,
            http=http,
            data_dir=data_dir,
        )
        http.close()


def state(srv) -> tuple[int, frozenset[str], int]:
    """What must not change: the submissions, and nothing left half-written in staging."""
    ids = frozenset(s.instance_id for s in srv.store.iter_submissions(SubmissionQuery(current_only=False)))
    staging = sum(1 for _ in (srv.data_dir / "staging").rglob("*"))
    return len(ids), ids, staging


def post(srv, body: bytes, content_type: str) -> httpx.Response:
    return srv.http.post(srv.url, content=body, headers={"Content-Type": content_type})


def assert_refused(srv, resp: httpx.Response, before) -> None:
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:300])
    root = ET.fromstring(resp.content)  # a well-formed OpenRosa response
    assert root.tag == f"{RESPONSE_NS}OpenRosaResponse"
    message = root.find(f"{RESPONSE_NS}message")
    assert message is not None and message.get("nature") == "error" and message.text and " / " in message.text
    assert state(srv) == before


# --- hostile XML in a well-formed multipart body ------------------------------------------------------


def _valid_tail(iid: str) -> str:
    return f"<commune>{COMMUNE}</commune><name>x</name><meta><instanceID>{iid}</instanceID></meta></data>"


@st.composite
def entity_bomb(draw) -> bytes:
    depth, width = draw(st.integers(1, 10)), draw(st.integers(2, 12))
    ents = ['<!ENTITY e0 "lol">'] + [
        f'<!ENTITY e{i} "{("&e" + str(i - 1) + ";") * width}">' for i in range(1, depth + 1)
    ]
    iid = f"uuid:{uuid.uuid4()}"
    return (
        f'<?xml version="1.0"?><!DOCTYPE data [{"".join(ents)}]>'
        f'<data id="tform" version="1"><name>&e{depth};</name>{_valid_tail(iid)}'
    ).encode()


@st.composite
def external_entity(draw) -> bytes:
    target = draw(
        st.sampled_from(
            [
                "file:///etc/passwd",
                "http://127.0.0.1:9/x",
                "expect://id",
                "php://filter/resource=/etc/hosts",
                "/dev/random",
                "../../../../etc/shadow",
            ]
        )
    )
    kind = draw(st.sampled_from(["general", "parameter", "doctype"]))
    iid = f"uuid:{uuid.uuid4()}"
    if kind == "general":
        head, use = f'<!DOCTYPE data [<!ENTITY x SYSTEM "{target}">]>', "&x;"
    elif kind == "parameter":
        head, use = f'<!DOCTYPE data [<!ENTITY % p SYSTEM "{target}"> %p;]>', "x"
    else:
        head, use = f'<!DOCTYPE data SYSTEM "{target}">', "x"
    xml = f'<?xml version="1.0"?>{head}<data id="tform" version="1"><name>{use}</name>{_valid_tail(iid)}'
    return xml.encode()


@st.composite
def deep_nesting(draw) -> bytes:
    depth = draw(st.integers(48, 5000))
    iid = f"uuid:{uuid.uuid4()}"
    return (
        '<data id="tform" version="1">' + "<g>" * depth + "x" + "</g>" * depth + _valid_tail(iid)
    ).encode()


INVALID_UTF8 = [
    b"\xff",
    b"\xfe\xff",
    b"\xc3\x28",
    b"\xa0\xa1",
    b"\xe2\x28\xa1",
    b"\xf0\x28\x8c\x28",
    b"\xed\xa0\x80",
    b"\xc0\xaf",
    b"\xf8\x88\x80\x80\x80",
]


@st.composite
def invalid_utf8(draw) -> bytes:
    iid, xml = instance_xml(name="ABCDEFGH")
    bad = draw(st.sampled_from(INVALID_UTF8))
    at = draw(st.integers(0, 8))
    return xml.replace(b"ABCDEFGH", b"ABCDEFGH"[:at] + bad + b"ABCDEFGH"[at:])


@st.composite
def broken_instance(draw) -> bytes:
    """Not XML at all, or XML without what a submission needs."""
    iid = f"uuid:{uuid.uuid4()}"
    return draw(
        st.one_of(
            st.binary(max_size=3000).filter(lambda b: b"<data" not in b),
            st.text(max_size=500).map(lambda t: t.encode("utf-8")),
            st.just(f'<data version="1">{_valid_tail(iid)}'.encode()),  # no form id
            st.just(b'<data id="tform" version="1"><name>x</name></data>'),  # no instanceID
            st.just(f'<data id="nope" version="1">{_valid_tail(iid)}'.encode()),  # unknown form
            st.just(f'<?xml version="1.0" encoding="bogus-8"?><data id="tform">{_valid_tail(iid)}'.encode()),
            st.just(
                f'<data id="tform" version="1"><meta><instanceID>../{iid}</instanceID></meta></data>'.encode()
            ),
            st.just(f'<data id="tform" version="1">{_valid_tail(iid)}<trailing/>'.encode()),
            st.just(b"<data id='tform' version='1'><![CDATA[" + b"x" * 100 + b"]]><meta>"),
            st.just(b'<?xml-stylesheet href="file:///etc/passwd"?><data id="tform"'),
        )
    )


HOSTILE_XML = st.one_of(entity_bomb(), external_entity(), deep_nesting(), invalid_utf8(), broken_instance())


@EXAMPLES
@given(xml=HOSTILE_XML)
def test_hostile_xml_is_refused_and_nothing_stored(srv, xml: bytes) -> None:
    before = state(srv)
    body, ctype = multipart(xml)
    assert_refused(srv, post(srv, body, ctype), before)


# --- hostile multipart ---------------------------------------------------------------------------------

TRAVERSAL = [
    "../../etc/passwd",
    "..\\..\\boot.ini",
    "/etc/passwd",
    "C:\\Windows\\x.jpg",
    "a/b.jpg",
    "..",
    ".",
    ".hidden",
    "x\x00.jpg",
    "photo.jpg/..",
    "  spaced.jpg",
    "%2e%2e%2fx",
    "\u202ejpg.exe",
]


@st.composite
def traversal_part(draw) -> tuple[bytes, str]:
    name = draw(st.sampled_from(TRAVERSAL) | st.text(min_size=1, max_size=40).map(lambda t: f"../{t}"))
    if "%2e" in name or "\u202e" in name:
        name = "../" + name  # keep every case unsafe (those two are only odd, not paths)
    _, xml = instance_xml(photo="p.jpg")
    body, ctype = multipart(xml, {name: b"\xff\xd8 not really a photo"})
    return body, ctype


@st.composite
def malformed_multipart(draw) -> tuple[bytes, str]:
    _, xml = instance_xml()
    body, ctype = multipart(xml)
    boundary = ctype.split("boundary=")[1]
    how = draw(
        st.sampled_from(
            [
                "other_boundary",
                "truncated",
                "no_headers",
                "no_name",
                "garbage",
                "no_close",
                "empty",
                "long_boundary",
                "no_xml_part",
                "lf_only_mangled",
            ]
        )
    )
    if how == "other_boundary":
        return body, "multipart/form-data; boundary=" + draw(
            st.text("abcdef0123456789-", min_size=5, max_size=60)
        )
    if how == "truncated":
        return body[: draw(st.integers(0, len(body) - 60))], ctype
    if how == "no_headers":
        return f"--{boundary}\r\nno blank line after headers".encode(), ctype
    if how == "no_name":
        return (
            f"--{boundary}\r\nContent-Disposition: form-data\r\n\r\nxx\r\n--{boundary}--\r\n"
        ).encode(), ctype
    if how == "garbage":
        return draw(st.binary(min_size=0, max_size=4000)), ctype
    if how == "no_close":
        return body.replace(f"--{boundary}--".encode(), b""), ctype
    if how == "empty":
        return b"", ctype
    if how == "long_boundary":
        long = "b" * draw(st.integers(71, 5000))
        return body.replace(boundary.encode(), long.encode()), ctype.replace(boundary, long[:70])
    if how == "no_xml_part":
        other, octype = multipart(None, {"p.jpg": b"x"})
        return other, octype
    return body.replace(b"\r\n", b"\n").replace(b"Content-Disposition", b"Content-Dispositio"), ctype


@st.composite
def wrong_content_type(draw) -> tuple[bytes, str]:
    _, xml = instance_xml()
    ctype = draw(
        st.sampled_from(
            [
                "text/xml",
                "application/xml",
                "application/json",
                "text/plain",
                "",
                "application/x-www-form-urlencoded",
                "multipart/form-data",
                "multipart/form-data; boundary=",
                "multipart/form-data; charset=utf-8",
                "image/jpeg",
            ]
        )
    )
    body = draw(st.sampled_from([xml, b'{"xml_submission_file": "x"}', b"xml_submission_file=%3Cdata%3E"]))
    return body, ctype


@st.composite
def too_many_parts(draw) -> tuple[bytes, str]:
    _, xml = instance_xml()
    n = draw(st.integers(1001, 2500))
    return multipart(xml, {f"f{i}.jpg": b"" for i in range(n)})


@EXAMPLES
@given(case=st.one_of(traversal_part(), malformed_multipart(), wrong_content_type(), too_many_parts()))
def test_hostile_multipart_is_refused_and_nothing_stored(srv, case: tuple[bytes, str]) -> None:
    before = state(srv)
    body, ctype = case
    assert_refused(srv, post(srv, body, ctype), before)


@settings(max_examples=6, deadline=None)
@given(size=st.integers(MAX_BODY + 1, MAX_BODY * 3), lie=st.booleans())
def test_oversized_bodies_get_413(srv, size: int, lie: bool) -> None:
    before = state(srv)
    _, xml = instance_xml(photo="p.jpg")
    body, ctype = multipart(xml, {"p.jpg": b"\0" * size})
    if lie:  # a Content-Length that claims less than is sent: the streamed size still counts

        def chunks():
            yield body

        resp = srv.http.post(srv.url, content=chunks(), headers={"Content-Type": ctype})
    else:
        resp = post(srv, body, ctype)
    assert resp.status_code == 413
    assert_refused(srv, resp, before)


# --- what is accepted stays harmless --------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(
    value=st.one_of(
        st.integers(min_value=10**20, max_value=10**400).map(str),
        st.integers(20_000, 200_000).map(lambda n: "9" * n),
        st.sampled_from(["1e999999", "-1e-999999", "NaN", "Infinity", "-0", "0x1F", "١٢٣", "1_000", "+5"]),
    )
)
def test_huge_numbers_are_stored_as_text_and_export(srv, value: str) -> None:
    from rasoat.core.excel.from_store import ExportFilters, export_form

    iid, xml = instance_xml(ages=(value,))
    body, ctype = multipart(xml)
    resp = post(srv, body, ctype)
    assert resp.status_code == 201, resp.text
    assert srv.store.get_submission(iid).fields["member"][0]["age"] == value
    out = io.BytesIO()
    stats = export_form(
        srv.store,
        "tform",
        out,
        filters=ExportFilters(unit_codes=[COMMUNE]),
        actor="test",
        plugin_sheets=False,
    )
    assert stats.submissions >= 1 and out.getvalue()[:2] == b"PK"


def test_xinclude_is_never_resolved(srv) -> None:
    """XInclude is not an entity: the parser keeps it as an element, and nothing is fetched or read."""
    iid = f"uuid:{uuid.uuid4()}"
    use = '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" parse="text"/>'
    xml = f'<data id="tform" version="1"><name>{use}</name>{_valid_tail(iid)}'.encode()
    body, ctype = multipart(xml)
    assert post(srv, body, ctype).status_code == 201
    stored = srv.store.submission_xml(iid) + repr(srv.store.get_submission(iid).fields).encode()
    assert b"root:" not in stored


FORMULAS = [
    "=1+1",
    '=HYPERLINK("http://evil","x")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1",
    "=cmd|'/c calc'!A1",
]


def test_formula_like_values_are_written_as_text(srv) -> None:
    from rasoat.core.excel.from_store import ExportFilters, export_form
    from rasoat.core.excel.raw import RawExportOptions

    ids = []
    for text in FORMULAS:
        iid, xml = instance_xml(name=text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;"))
        body, ctype = multipart(xml)
        assert post(srv, body, ctype).status_code == 201
        ids.append(iid)
    out = io.BytesIO()
    export_form(
        srv.store,
        "tform",
        out,
        filters=ExportFilters(unit_codes=[COMMUNE]),
        actor="test",
        options=RawExportOptions(include_personal=True),
        plugin_sheets=False,
    )
    wb = openpyxl.load_workbook(io.BytesIO(out.getvalue()))
    found = {}
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and cell.value in FORMULAS:
                    found[cell.value] = cell
    assert set(found) == set(FORMULAS)
    for cell in found.values():
        assert cell.data_type == "s"  # a string, never a formula
        assert cell.quotePrefix  # and Excel keeps it text when someone edits the cell
