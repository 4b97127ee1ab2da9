"""Submissions: a filterable list per form, and one record's detail: its answers as the form lays them out
(labels in the page's language, groups and repeats in place, local times, phone metadata under technical
details), attachments, edits, and its review ("approve and next" walks the review queue, ``pages_review``)."""

from __future__ import annotations

import mimetypes
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, QueryParameter
from rasoat.core import identities, scope
from rasoat.core.excel.schema import Kind, SchemaOptions, Table, build_tables
from rasoat.core.models import REVIEW_LABELS, AuditEvent, ReviewState, Submission
from rasoat.core.problems import Problem
from rasoat.core.protection import plain_attachment
from rasoat.core.review import TO_REVIEW, ReviewError, next_in_queue, review_submission
from rasoat.core.storage.base import PageKey, SubmissionQuery
from rasoat.core.units import get_units
from rasoat.server.web import scoped
from rasoat.server.web.base import (
    LOCAL_TZ,
    Ctx,
    allowed,
    page,
    redirect,
    unit_name,
    vn_time,
)
from rasoat.server.web.pages_persons import name_persons

PAGE_SIZE = 50
LOCATION = {"province", "commune", "hamlet"}
SAFE_INLINE = {"image/png", "image/jpeg", "image/gif", "image/webp"}  # never SVG/HTML inline: scripts


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat((value or "").strip()) if value else None
    except ValueError:
        return None


def _local_midnight_utc(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=LOCAL_TZ).astimezone(UTC)


def list_filters(
    form: FromQuery[str] = "",
    round: FromQuery[str] = "",
    unit: FromQuery[str] = "",
    review_state: Annotated[str, QueryParameter(name="state")] = "",  # "state": litestar's app state
    day_from: Annotated[str, QueryParameter(name="from")] = "",
    day_to: Annotated[str, QueryParameter(name="to")] = "",
) -> dict[str, Any]:
    """The list's filters as asked in the address; a state or day that is not one is left out."""
    return {
        "form": form.strip(),
        "round": round.strip(),
        "unit": unit.strip(),
        "state": review_state if review_state in {s.value for s in ReviewState} else "",
        "from": _date(day_from),
        "to": _date(day_to),
    }


def build_query(ctx: Ctx, f: dict[str, Any]) -> SubmissionQuery:
    """The store query for the filters, cut to the officer's units."""
    unit_codes = None
    if f["form"]:
        try:
            known = ctx.store.get_form(f["form"]) is not None
        except ValueError:  # a name no store could hold ('/', NUL): not a form either
            known = False
        if not known:
            code = f["form"]
            raise Problem("web.no_form", form=code)
    if f["unit"]:
        scope.require_unit(ctx.user, f["unit"])

        units = get_units()
        if units.get(f["unit"]) is None:  # not a unit (an administrator may type anything): say so
            code = f["unit"]
            raise Problem("web.unknown_unit", unit=code)
        unit_codes = sorted(units.expand([f["unit"]]))
    query = SubmissionQuery(
        form_id=f["form"] or None,
        round_id=f["round"] or None,
        unit_codes=unit_codes,
        review_states=[ReviewState(f["state"])] if f["state"] else None,
        received_from=_local_midnight_utc(f["from"]) if f["from"] else None,
        received_to=_local_midnight_utc(f["to"] + timedelta(days=1)) if f["to"] else None,
    )
    return scope.narrow(query, ctx.user)


def page_key(sub: Submission) -> str:
    """Where a page starts or ends, in a link: the record's receipt time and instanceID."""
    return f"{sub.received_at.isoformat()}_{sub.instance_id}"


def _parse_key(text: str | None) -> PageKey | None:
    when, _, iid = (text or "").partition("_")  # an ISO time holds no "_"
    try:
        at = datetime.fromisoformat(when)
    except ValueError:
        return None
    return PageKey(at if at.tzinfo else at.replace(tzinfo=UTC), iid)


def newest_page(
    ctx: Ctx, query: SubmissionQuery, older: str | None = None, newer: str | None = None
) -> tuple[list[Submission], bool, bool]:
    """A page of the list, newest first, read from a key in the store's order (never by skipping rows):
    the records just older than ``older``, or just newer than ``newer`` (fewer than a page of those: the
    newest page). Also whether newer and older records exist beyond it (an index seek each)."""
    store = ctx.store
    subs: list[Submission] = []
    if (after := _parse_key(newer)) is not None:
        subs = store.page_submissions(query, limit=PAGE_SIZE, after=after)[::-1]
    if len(subs) < PAGE_SIZE:
        subs = store.page_submissions(query, limit=PAGE_SIZE, after=_parse_key(older), descending=True)
    if not subs:
        return [], False, False

    def beyond(sub: Submission, descending: bool) -> bool:
        key = PageKey(sub.received_at, sub.instance_id)
        return bool(store.page_submissions(query, limit=1, after=key, descending=descending))

    return subs, beyond(subs[0], False), beyond(subs[-1], True)


def _tables(ctx: Ctx, form_id: str, version: str) -> Table | None:
    try:
        schema = ctx.store.form_schema(form_id, version)
    except Exception:  # a form version the store lost: show raw fields
        return None
    labels: Any = "en" if ctx.lang == "en" else "vi"
    return build_tables(schema, form_id, SchemaOptions(labels=labels, group_prefix=False))


def summaries(ctx: Ctx, subs: list[Submission], target: str = "") -> dict[str, str]:
    """Each record on one line: what the form names it by (its ODK ``instance_name``, else its first
    answers; only for an officer who may read the record's identities, and that read is audited), then
    where, when and by whom."""
    collectors: dict[str, str] = {}
    tables: dict[str, Table | None] = {}
    read: list[str] = []
    out: dict[str, str] = {}
    for sub in subs:
        parts: list[str] = []
        if identities.may_read(ctx.user, sub):
            fields = identities.full_fields(ctx.store, sub)
            read.append(sub.instance_id)
            named = fields.get("meta/instanceName")
            if not (isinstance(named, str) and named.strip()):
                key = f"{sub.form_id}@{sub.form_version}"
                if key not in tables:
                    tables[key] = _tables(ctx, sub.form_id, sub.form_version)
                answers = [{"value": v} for v in _first_answers(tables[key], fields)]
                name_persons(ctx, answers)  # F12's chosen person by name, not by the list's key
                named = ", ".join(a["value"] for a in answers)
            if named:
                parts.append(named.strip()[:120])
        who = sub.collector_id or ""
        if who and who not in collectors:
            user = ctx.store.get_user(who)
            collectors[who] = (user.display_name or user.username) if user is not None else ""
        parts += [place(sub.unit_code), vn_time(sub.received_at, with_time=False), collectors.get(who, "")]
        out[sub.instance_id] = " · ".join(p for p in parts if p)
    if read:
        identities.record_read(ctx.store, ctx.actor, "view.submissions", read, target=target, via="web")
    return out


def _first_answers(table: Table | None, fields: dict[str, Any]) -> list[str]:
    """The first answers that say what a record is about (no location, times or files)."""
    if table is None:
        return []
    parts = []
    for col in table.columns:
        if col.key in LOCATION or col.kind in (Kind.attachment, Kind.geopoint, Kind.date, Kind.datetime,
                                               Kind.time) or not col.labelled:
            continue
        value = fields.get(col.key)
        if isinstance(value, str) and value:
            parts.append(_choice_text(col, value))
        if len(parts) == 2:
            break
    return parts


def place(code: str | None) -> str:
    """A hamlet with its commune ("Xóm 1, Xã Phượng Tiến"), a commune alone; the code when unknown."""
    if not code:
        return ""

    units = get_units()
    unit = units.get(code)
    if unit is None:
        return code
    parent = units.get(unit.parent_code) if unit.level == "hamlet" and unit.parent_code else None
    return f"{unit.name}, {parent.name}" if parent is not None else unit.name


def _choice_text(col: Any, value: str) -> str:
    if col.kind in (Kind.select_one, Kind.select_multiple) and col.choices:
        names = dict(col.choices)
        return (
            ", ".join(names.get(v, v) for v in value.split())
            if col.kind is Kind.select_multiple
            else names.get(value, value)
        )
    return value


@get("/submissions", dependencies={"f": Provide(list_filters, sync_to_thread=False)}, sync_to_thread=True)
def submissions(
    ctx: NamedDependency[Ctx], f: NamedDependency[dict[str, Any]], older: FromQuery[str] = "",
    newer: FromQuery[str] = "",
) -> Response:
    forms = sorted(ctx.store.list_forms(), key=lambda fv: fv.form_id)
    rounds = scoped.rounds(ctx)
    subs: list[Submission] = []
    total, has_newer, has_older = 0, False, False
    status, problem = 200, None
    try:
        query = build_query(ctx, f) if f["form"] else None
    except Problem as exc:  # the page comes back with the filters as typed and why
        status, problem, query = exc.status, exc, None
    if query is not None:
        subs, has_newer, has_older = newest_page(ctx, query, older, newer)
        total = ctx.store.count_submissions(query)
    return page(
        ctx,
        "submissions.html",
        status,
        **({"flash": problem} if problem else {}),
        f=f,
        forms=forms,
        rounds=rounds,
        subs=subs,
        total=total,
        newer=page_key(subs[0]) if has_newer else None,
        older=page_key(subs[-1]) if has_older else None,
        summaries=summaries(ctx, subs, f["form"]),
        unit_choices=scoped.unit_choices(ctx),
        states=list(ReviewState),
        review_labels=REVIEW_LABELS,
    )


# Phone metadata the form records without asking: named for officers, kept under "technical details".
METADATA_TYPES = frozenset(
    {"start", "end", "today", "deviceid", "username", "email", "phonenumber", "simserial", "subscriberid",
     "audit", "start-geopoint"}
)


def _shown(col: Any, value: Any) -> str:
    """An answer as an officer reads it: choice labels, unit names, local times, Vietnamese dates."""
    text = str(value)
    if col.key in LOCATION:  # codes from the unit CSVs: show the names
        name = unit_name(text)
        return f"{name} ({text})" if name != text else text
    if col.kind is Kind.datetime:
        return vn_time(text)
    if col.kind is Kind.date:
        try:
            return date.fromisoformat(text[:10]).strftime("%d/%m/%Y")
        except ValueError:
            return text
    if col.kind is Kind.time:
        return text[:5]
    return _choice_text(col, text)


def value_rows(
    ctx: Ctx, table: Table, fields: dict[str, Any], hidden: frozenset[str] | None
) -> list[dict[str, Any]]:
    """The answers as the form lays them out: a heading where a group starts, each question's label in
    the page's language with its shown value, a repeat where it stands with one block per row. Questions
    the form gives no label (phone metadata, calculations) are marked ``technical``, named for officers,
    their code a detail. ``hidden``: the identifying questions left out (None: none left out)."""
    rows: list[dict[str, Any]] = []
    children = sorted(table.children, key=lambda c: c.position)
    heading: list[tuple[str, ...]] = [()]

    def enter(groups: tuple[str, ...]) -> None:  # a group starts (a heading) or ends (a gap)
        if groups != heading[0]:
            heading[0] = groups
            rows.append({"heading": " › ".join(groups)})

    def add_repeats(upto: int) -> None:
        while children and children[0].position <= upto:
            child = children.pop(0)
            items = fields.get(child.key)
            if isinstance(items, dict):
                items = [items]
            left_out = hidden is not None and (child.personal or child.key.rsplit("/", 1)[-1] in hidden)
            if left_out or not isinstance(items, list) or not items:
                continue
            enter(child.groups)
            nested = [value_rows(ctx, child, item, hidden) for item in items if isinstance(item, dict)]
            rows.append({"label": child.label, "name": child.key, "repeat": nested})

    for n, col in enumerate(table.columns):
        add_repeats(n)
        if hidden is not None and (col.personal or col.name in hidden or col.key in hidden):
            continue
        value = fields.get(col.key)
        if value is None or value == "":
            continue
        technical = col.source_type in METADATA_TYPES or not col.labelled
        if not technical:
            enter(col.groups)
        label = col.header
        if technical:
            kind = col.source_type if col.source_type in METADATA_TYPES else "calculate"
            label = ctx.t(f"meta.{kind}")
        rows.append({"label": label, "name": col.key, "value": _shown(col, value), "technical": technical,
                     "attachment": col.kind is Kind.attachment})
    add_repeats(len(table.columns))
    return rows


def _raw_rows(fields: dict[str, Any]) -> list[dict[str, Any]]:
    """A record whose form version the store no longer has: every field by its code, as received."""
    rows: list[dict[str, Any]] = []
    for key, value in fields.items():
        if isinstance(value, list):
            rows.append(
                {"label": key, "name": key, "repeat": [_raw_rows(v) for v in value if isinstance(v, dict)]}
            )
        else:
            rows.append({"label": key, "name": key, "value": str(value), "attachment": False})
    return rows


def _edit_history(ctx: Ctx, sub: Submission) -> tuple[list[Submission], Submission | None]:
    """Earlier versions this one replaced (newest first), and the version that replaced it, if any."""
    earlier: list[Submission] = []
    seen = {sub.instance_id}
    prev_id = sub.deprecated_id
    while prev_id and prev_id not in seen and len(earlier) < 50:
        seen.add(prev_id)
        prev = ctx.store.get_submission(prev_id)
        if prev is None:
            break
        earlier.append(prev)
        prev_id = prev.deprecated_id
    newer = None
    if not sub.current:
        query = scope.narrow(
            SubmissionQuery(
                form_id=sub.form_id, unit_codes=[sub.unit_code] if sub.unit_code else None, current_only=False
            ),
            ctx.user,
        )
        for other in ctx.store.iter_submissions(query):
            if other.deprecated_id == sub.instance_id:
                newer = other
                break
    return earlier, newer


def _detail(
    ctx: Ctx, iid: str, from_queue: bool, error: str | Problem | None = None, status: int = 200,
    comment: str = "",
) -> Response:
    """One record; ``from_queue`` (reached from the review queue) leads back to it and puts the focus on
    "approve and next", so a keyboard walks the queue with Enter."""
    sub = scoped.submission(ctx, iid)
    personal = identities.may_read(ctx.user, sub)
    table = _tables(ctx, sub.form_id, sub.form_version)
    rows: list[dict[str, Any]] = []
    if personal:
        fields = identities.full_fields(ctx.store, sub)
        rows = value_rows(ctx, table, fields, None) if table is not None else _raw_rows(fields)
        identities.record_read(ctx.store, ctx.actor, "view.submission", [sub.instance_id], target=sub.form_id,
                               via="web")
    elif table is not None:  # the statistical answers, when the form says which questions identify a person
        hidden = identities.identifying_names(ctx.store, sub.form_id, sub.form_version)
        rows = value_rows(ctx, table, sub.fields, hidden) if hidden else []
    name_persons(ctx, rows)
    earlier, newer = _edit_history(ctx, sub)
    form = ctx.store.get_form(sub.form_id, sub.form_version)
    rnd = ctx.store.get_round(sub.round_id) if sub.round_id else None
    collector = ctx.store.get_user(sub.collector_id) if sub.collector_id else None
    return page(
        ctx,
        "submission.html",
        status=status,
        sub=sub,
        rows=[r for r in rows if not r.get("technical")],
        personal=personal,
        identities_hidden=not ctx.can(scope.VIEW_PERSONAL),
        earlier=earlier,
        newer=newer,
        form=form,
        rnd=rnd,
        collector=collector,
        review_labels=REVIEW_LABELS,
        can_review=ctx.can(scope.REVIEW) and personal,  # only a record the officer can read is judged
        error=error,
        comment=comment,
        from_queue=from_queue,
        waiting=sub.review_state in TO_REVIEW,
        technical=[r for r in rows if r.get("technical")],
    )


# "… and next" (?next=1) posts from a record reached from the queue (?queue=1): either leads back to it
GO_NEXT = Annotated[str, QueryParameter(name="next")]


@get("/submissions/{iid:str}", sync_to_thread=True)
def submission_detail(
    ctx: NamedDependency[Ctx], iid: FromPath[str], queue: FromQuery[str] = "", go_next: GO_NEXT = ""
) -> Response:
    return _detail(ctx, iid, "1" in (queue, go_next))


@get("/submissions/{iid:str}/files/{name:str}", guards=[allowed(scope.VIEW_PERSONAL)], sync_to_thread=True)
def submission_file(ctx: NamedDependency[Ctx], iid: FromPath[str], name: FromPath[str]) -> Response:
    sub = scoped.submission(ctx, iid)
    if name not in sub.attachments:
        raise Problem("web.no_file", name=name)
    data = ctx.store.attachment(sub.instance_id, name)
    if data is None:
        raise Problem("web.no_file", name=name)
    data = plain_attachment(ctx.store, sub.instance_id, name, data)  # a sealed photo opened in memory
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    inline = media_type in SAFE_INLINE
    disposition = f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quote(name, safe='')}"
    ctx.store.append_audit(
        AuditEvent(
            actor=ctx.actor,
            action="submission.attachment",
            target=sub.instance_id,
            details={"name": name, "via": "web"},
        )
    )
    return Response(
        content=data,
        media_type=media_type if inline else "application/octet-stream",
        headers={
            "Content-Disposition": disposition,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            "Content-Security-Policy": "default-src 'none'",
        },
    )


@post("/submissions/{iid:str}/review", guards=[allowed(scope.REVIEW)], sync_to_thread=True)
def submission_review(
    ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict], iid: FromPath[str],
    go_next: GO_NEXT = "",
) -> Response:
    """Save a review; with ``?next=1`` ("… and next") go on to the next record of the review queue."""
    state = str(posted.get("state") or "")
    comment = str(posted.get("comment") or "")[:2000]
    walk = go_next == "1"

    def again(message: str | Problem) -> Response:  # the page comes back with the comment as typed
        return _detail(ctx, iid, walk, message, 400, comment)

    if state in ("has_issues", "rejected") and not comment.strip():
        return again(ctx.t("sub.comment_needed"))
    sub = scoped.submission(ctx, iid)
    if not identities.may_read(ctx.user, sub):
        raise scope.ScopeError("scope.review_unreadable")
    try:
        review_submission(ctx.store, iid, state, comment, actor=ctx.actor)
    except ReviewError as exc:
        return again(exc)
    if not walk:
        return redirect(ctx, f"/submissions/{quote(iid, safe='')}", "sub.reviewed")
    following = next_in_queue(ctx.store, ctx.user, PageKey(sub.received_at, sub.instance_id))
    if following is None:
        return redirect(ctx, "/review", "review.done")
    path = f"/submissions/{quote(following.instance_id, safe='')}?queue=1"
    return redirect(ctx, path, "review.saved_next")


handlers = [submissions, submission_detail, submission_file, submission_review]
