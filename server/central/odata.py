"""OData for every form, as Central serves it: ``/v1/projects/{p}/forms/{id}.svc`` (service document),
``…/$metadata``, ``…/Submissions``, ``…/Submissions('<id>')``, one table per repeat
(``…/Submissions.member``), and a submission's repeat rows by navigation link.

Query options: ``$top $skip $count $filter $orderby $select $expand=* $wkt $skiptoken $format``; other
``$`` options are ignored (Excel and Power BI send a few). Pages come from ``Store.page_submissions``
(keyset on receipt time and instanceID), a thousand rows at a time, and the response is written as it is
read: a million-row form never sits in memory. ``@odata.nextLink`` carries ``$skiptoken`` = ``01`` +
base64 of ``{"instanceId": …}`` (plus ``repeatId`` on repeat tables), as Central's does.

Every request runs as the officer (the Central router's ``user`` dependency, ``server.deps``, behind a
``view`` guard) through ``core.scope``: rows outside their units are never read; without
``view_personal`` the form's personal fields are ``null``; reads with personal fields are written to the
audit log.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath
from litestar.response import Stream
from rasoat.core import scope
from rasoat.core.audit import record_view
from rasoat.core.identities import identifying_names, with_identities
from rasoat.core.models import FormVersion, Submission, User
from rasoat.core.protection import stored_declaration
from rasoat.core.storage.base import PageKey, Store, SubmissionQuery
from rasoat.server.central import problems
from rasoat.server.central.odata_edmx import edmx
from rasoat.server.central.odata_filter import compile_filter, parse_orderby
from rasoat.server.central.odata_query import ODATA, ODataQuery
from rasoat.server.central.odata_rows import RowOptions, repeat_rows, submission_row
from rasoat.server.central.project import base_url, find_form, schemas
from rasoat.server.central.schema import ROOT_TABLE, FormSchema, Table, sanitize
from rasoat.server.central.shapes import EntitySet, ODataPage, ODataServiceDocument, actor_id
from rasoat.server.deps import requires
from rasoat.server.openapi import JsonOrXml

PAGE = 1000  # rows per store read
JSON_TYPE = "application/json; odata.metadata=minimal"
HEADERS = {"OData-Version": "4.0"}
XML_FORMATS = ("application/xml", "application/atom+xml", "application/atomsvc+xml", "atom", "xml")


@dataclass
class Reader:
    """Everything one OData request needs: the officer, the store, the form's shape."""

    user: User
    store: Store
    form: FormVersion
    schema: FormSchema
    base: str  # https://host/v1/projects/1/forms/<id>.svc
    hidden: frozenset[str] = field(default_factory=frozenset)


def personal_names(store: Store, form: FormVersion) -> frozenset[str]:
    """The form's personal field names (core.identities: marked P/S, or the national forms' known list)."""

    return identifying_names(store, form.form_id, form.version)


def reader(request: Request, user: User, form_id: str) -> Reader:
    """The form's reader for an officer whose project and ``view`` permission have been checked."""
    store: Store = request.app.state["rasoat"].store
    form = find_form(store, form_id) if form_id else None
    if form is None:
        raise problems.not_found(f"form {form_id}")
    hidden = frozenset() if scope.can(user, scope.VIEW_PERSONAL) else personal_names(store, form)
    pid = request.path_params.get("pid", "1")
    base = f"{base_url(request)}/v1/projects/{pid}/forms/{form_id}.svc"
    return Reader(user, store, form, schemas(request).get(store, form.form_id, form.version), base, hidden)


def _check_format(wanted: str | None, xml: bool) -> None:
    """Only an explicit ``$format`` the resource cannot serve is refused (406.1); ``Accept`` headers are
    not (Excel and Power BI send long ones, with XML and JSON in varying order)."""
    wanted = (wanted or "").lower()
    if not wanted:
        return
    asks_xml = any(f in wanted for f in XML_FORMATS)
    if (xml and "json" in wanted) or (not xml and asks_xml):
        raise problems.not_acceptable()


def service_document(
    request: Request, user: User, form_id: str, fmt: str | None
) -> Response[ODataServiceDocument]:
    rd = reader(request, user, form_id)
    _check_format(fmt, xml=False)
    body: ODataServiceDocument = {
        "@odata.context": f"{rd.base}/$metadata",
        "value": [EntitySet(name=name, kind="EntitySet", url=name) for name in rd.schema.tables],
    }
    return Response(content=body, media_type=JSON_TYPE, headers=HEADERS)


def metadata(request: Request, user: User, form_id: str, fmt: str | None) -> Response[bytes]:
    rd = reader(request, user, form_id)
    _check_format(fmt, xml=True)
    return Response(content=edmx(rd.schema), media_type="application/xml", headers=HEADERS)


# --- query options -----------------------------------------------------------------------------------


@dataclass
class Options:
    top: int | None
    skip: int
    count: bool
    expand: bool
    wkt: bool
    select: list[str] | None
    descending: bool
    query: SubmissionQuery
    predicate: Callable[[Submission], bool] | None
    token: dict[str, Any] | None


def options(q: ODataQuery, rd: Reader) -> Options:
    expand = q.expand
    if expand not in (None, "", "*"):
        raise problems.not_implemented("501.6", f"$expand={expand} ($expand=* only)")
    select_text = q.select
    select = (
        None if not select_text or select_text.strip() == "*" else [s.strip() for s in select_text.split(",")]
    )
    if select and expand:
        raise problems.not_implemented("501.11", "$select together with $expand")
    order = parse_orderby(q.orderby)
    if order and order[0][0] != "__system/submissionDate":
        raise problems.not_implemented("501.5", "$orderby other than __system/submissionDate")
    if q.skiptoken and order:
        raise problems.not_implemented("501.1", "$orderby with $skiptoken")
    token = _read_token(q.skiptoken) if q.skiptoken else None
    accounts = {actor_id(u.id): u.id for u in rd.store.list_users()}
    compiled = compile_filter(q.filter, accounts.get, _sealed_names(rd))
    query = scope.narrow(SubmissionQuery(form_id=rd.form.form_id, **compiled.query), rd.user)
    return Options(
        top=q.top,
        skip=0 if token else (q.skip or 0),
        count=q.count,
        expand=bool(expand),
        wkt=q.wkt,
        select=select,
        descending=order[0][1] if order else True,  # Central lists newest first
        query=query,
        predicate=compiled.predicate,
        token=token,
    )


def _sealed_names(rd: Reader) -> frozenset[str]:
    """The form's identifying fields as a $filter could name them: their paths and their last names (a
    repeat table's fields are named without the repeat)."""

    paths = stored_declaration(rd.store, rd.form.form_id, rd.form.version).identifying
    return frozenset(paths) | {p.rsplit("/", 1)[-1] for p in paths}


def _read_token(text: str) -> dict[str, Any]:
    try:
        if not text.startswith("01"):
            raise ValueError(text)
        data = json.loads(base64.b64decode(text[2:], validate=False))
        if not isinstance(data, dict) or not isinstance(data.get("instanceId"), str):
            raise ValueError(text)
        return data
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise problems.bad_skiptoken() from None


def _write_token(data: dict[str, Any]) -> str:
    return "01" + base64.b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()


# --- reading -----------------------------------------------------------------------------------------


def matching(rd: Reader, opts: Options, after: PageKey | None) -> Iterator[Submission]:
    """Every matching submission from ``after`` on, read a page at a time."""
    while True:
        page = rd.store.page_submissions(opts.query, limit=PAGE, after=after, descending=opts.descending)
        for sub in page:
            if opts.predicate is None or opts.predicate(sub):
                yield sub
        if len(page) < PAGE:
            return
        after = PageKey(page[-1].received_at, page[-1].instance_id)


def _start(rd: Reader, opts: Options) -> PageKey | None:
    if not opts.token:
        return None
    try:
        sub = rd.store.get_submission(opts.token["instanceId"])
    except ValueError:
        sub = None
    if sub is None:
        raise problems.skiptoken_gone()
    return PageKey(sub.received_at, sub.instance_id)


def _count(rd: Reader, opts: Options, table: Table) -> int:
    if table.name == ROOT_TABLE and opts.predicate is None:
        return rd.store.count_submissions(opts.query)
    total = 0
    plain = RowOptions()
    for sub in matching(rd, opts, None):
        total += 1 if table.name == ROOT_TABLE else sum(1 for _ in repeat_rows(sub, rd.schema, table, plain))
    return total


def _select(row: dict[str, Any], select: list[str] | None, table: Table) -> dict[str, Any]:
    if not select:
        return row
    out: dict[str, Any] = {}
    for path in select:
        parts = path.split("/")
        src: Any = row
        for part in parts:
            if not isinstance(src, dict) or part not in src:
                raise problems.odata_select(path)
            src = src[part]
        dst = out
        for part in parts[:-1]:
            dst = dst.setdefault(part, {})
        dst[parts[-1]] = src
    return out


def _read(rd: Reader, sub: Submission) -> Submission:
    """The record as this reader sees it: identifying fields included for a reader of identities
    (core.identities; their view is audited by the caller), the stored statistical fields otherwise."""
    return with_identities(rd.store, sub) if scope.can(rd.user, scope.VIEW_PERSONAL) else sub


def _rows(
    rd: Reader, opts: Options, table: Table, names: dict[str, str]
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(row, token data after it) in order, from the skiptoken on."""
    ropts = RowOptions(expand=opts.expand, wkt=opts.wkt, hidden=rd.hidden, names=names)
    after = _start(rd, opts)
    resume_repeat = (opts.token or {}).get("repeatId")
    if table.name == ROOT_TABLE:
        for sub in matching(rd, opts, after):
            yield submission_row(_read(rd, sub), rd.schema, ropts), {"instanceId": sub.instance_id}
        return
    if after is not None and resume_repeat:  # finish the submission the last page stopped inside
        last = rd.store.get_submission(after.instance_id)
        if last is not None:
            rows = list(repeat_rows(_read(rd, last), rd.schema, table, ropts))
            ids = [r["__id"] for r in rows]
            if resume_repeat in ids:
                for row in rows[ids.index(resume_repeat) + 1 :]:
                    yield row, {"instanceId": last.instance_id, "repeatId": row["__id"]}
    for sub in matching(rd, opts, after):
        for row in repeat_rows(_read(rd, sub), rd.schema, table, ropts):
            yield row, {"instanceId": sub.instance_id, "repeatId": row["__id"]}


def _next_link(q: ODataQuery, rd: Reader, table: str, token: dict[str, Any]) -> str:
    return f"{rd.base}/{table}?{urlencode(q.link(skiptoken=_write_token(token)))}"


def table_response(
    request: Request, q: ODataQuery, user: User, form_id: str, table_name: str, only: str | None = None
) -> Response[Any]:
    """``Submissions``, one repeat table, or (``only``) one submission's row or its repeat rows."""
    rd = reader(request, user, form_id)
    _check_format(q.format, xml=False)
    table = rd.schema.tables.get(table_name)
    if table is None:
        raise problems.not_found(f"table {table_name}")
    opts = options(q, rd)
    if opts.select:
        _check_select(rd, table, opts.select)
    if only is not None:
        try:
            sub = rd.store.get_submission(only)
        except ValueError:
            sub = None
        if sub is None or sub.form_id != rd.form.form_id or not sub.current or not _visible(rd.user, sub):
            raise problems.not_found(f"submission {only}")
        single = _read(rd, sub)
    names = {u.id: (u.display_name or u.username) for u in rd.store.list_users()}
    total = _count(rd, opts, table) if opts.count and only is None else None
    context = f"{rd.base}/$metadata#{table_name}"
    if scope.can(rd.user, scope.VIEW_PERSONAL):  # field values of person records: who read which rows
        record_view(
            rd.store,
            rd.user.username,
            "view.submissions",
            via="odata",
            count=opts.top or 0,
            filters={
                "form_id": rd.form.form_id,
                "table": table_name,
                "instance_id": only,
                "filter": q.filter,
            },
        )

    def rows() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        if only is None:
            yield from _rows(rd, opts, table, names)
            return
        ropts = RowOptions(expand=opts.expand, wkt=opts.wkt, hidden=rd.hidden, names=names)
        if table.name == ROOT_TABLE:
            yield submission_row(single, rd.schema, ropts), {}
        else:
            for row in repeat_rows(single, rd.schema, table, ropts):
                yield row, {}

    def body() -> Iterator[bytes]:
        yield b'{"value":['
        skipped = sent = 0
        last: dict[str, Any] | None = None
        more = False
        for row, token in rows():
            if skipped < opts.skip:
                skipped += 1
                continue
            if opts.top is not None and sent >= opts.top:
                more = True
                break
            yield (b"," if sent else b"") + json.dumps(
                _select(row, opts.select, table), ensure_ascii=False, separators=(",", ":")
            ).encode()
            sent += 1
            last = token
        tail: dict[str, Any] = {"@odata.context": context}
        if more and last:
            tail["@odata.nextLink"] = _next_link(q, rd, table_name, last)
        if total is not None:
            tail["@odata.count"] = total
        yield b"]," + json.dumps(tail, ensure_ascii=False, separators=(",", ":"))[1:].encode()

    return Stream(chunks(body()), media_type=JSON_TYPE, headers=HEADERS)


CHUNK = 64 * 1024


def chunks(parts: Iterator[bytes]) -> Iterator[bytes]:
    """Rows joined into ~64 KB writes: litestar runs each step of a sync iterator in a worker thread,
    and a thread hop per row would cost more than the row."""
    buf: list[bytes] = []
    size = 0
    for part in parts:
        buf.append(part)
        size += len(part)
        if size >= CHUNK:
            yield b"".join(buf)
            buf, size = [], 0
    if buf:
        yield b"".join(buf)


def _visible(user: User, sub: Submission) -> bool:
    try:
        scope.require_submission(user, sub)
    except scope.ScopeError:
        return False
    return True


def _check_select(rd: Reader, table: Table, select: list[str]) -> None:
    known = {"__id", "__system"} if table.name == ROOT_TABLE else {"__id", table.parent_key or ""}
    names = {n.odata_name for n in table.children}
    for path in select:
        head = path.split("/")[0]
        if head not in known and head not in names:
            raise problems.odata_select(path)


# --- routes ------------------------------------------------------------------------------------------


def _decode_table(segment: str) -> tuple[str, str | None]:
    """``Submissions('uuid:…')`` → ("Submissions", "uuid:…"); a table name → (name, None)."""
    if segment.endswith("')") and "('" in segment:
        name, _, rest = segment.partition("('")
        return name, rest[:-2]
    return segment, None


PAGE_RESPONSE = {200: ResponseSpec(ODataPage, description="Các dòng của bảng (JSON; $metadata là CSDL XML) / "
                                  "The table's rows (JSON; $metadata is CSDL XML)", generate_examples=False)}


@get("/v1/projects/{pid:str}/forms/{svc:str}/{table:str}", guards=[requires(scope.VIEW)], dependencies=ODATA,
     responses=PAGE_RESPONSE, operation_class=JsonOrXml, sync_to_thread=True)
def odata_table(
    request: Request, user: NamedDependency[User], odata: NamedDependency[ODataQuery], pid: FromPath[str],
    svc: FromPath[str], table: FromPath[str],
) -> Response[Any]:
    """OData: ``$metadata``, ``Submissions``, ``Submissions('<id>')``, a repeat table."""
    del pid
    if not svc.endswith(".svc"):
        raise problems.not_found()
    form_id = svc[: -len(".svc")]
    if table == "$metadata":
        return metadata(request, user, form_id, odata.format)
    name, only = _decode_table(table)
    if only is not None and name != ROOT_TABLE:
        raise problems.not_found()
    return table_response(request, odata, user, form_id, name, only)


@get("/v1/projects/{pid:str}/forms/{svc:str}/{table:str}/{rest:path}", guards=[requires(scope.VIEW)],
     dependencies=ODATA, responses=PAGE_RESPONSE, sync_to_thread=True)
def odata_navigation(
    request: Request, user: NamedDependency[User], odata: NamedDependency[ODataQuery], pid: FromPath[str],
    svc: FromPath[str], table: FromPath[str], rest: FromPath[str],
) -> Response[Any]:
    """OData navigation: ``Submissions('<id>')/group/repeat`` → that submission's rows of the repeat."""
    del pid
    name, only = _decode_table(table)
    if not svc.endswith(".svc") or name != ROOT_TABLE or only is None:
        raise problems.not_found()
    form_id = svc[: -len(".svc")]
    segments = [s for s in rest.strip("/").split("/") if s]
    if any("('" in s for s in segments):
        raise problems.not_implemented("501.1", "navigation below a repeat row")

    table_name = ROOT_TABLE + "." + ".".join(sanitize(s) for s in segments)
    return table_response(request, odata, user, form_id, table_name, only)


odata_handlers = [odata_table, odata_navigation]
