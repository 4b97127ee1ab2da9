"""Receive one OpenRosa submission POST: check, parse, store, and say what happened.

Order of decisions (each failure leaves the store untouched):
1. the multipart body has an ``xml_submission_file`` part and attachment names are bare file names (400);
2. the XML parses safely and names a form id and an instanceID (400); the form and version exist (404);
3. an identical resend of the caller's own stored submission is accepted at once (201, missing
   attachments added) even if the round has since closed, so a phone can finish a split upload;
4. the caller is assigned to an open round carrying the form, and the unit the submission names lies in
   both the collector's and the round's units (403);
5. plugins' ``check_submission`` hooks run; their messages do **not** reject the submission: it is stored
   with review state ``has_issues`` and the messages in its review history, and the phone is told.
   Refusing would leave the form stuck on a phone in the field with a weak connection, while a reviewer
   can fix or reject it later at no cost to the collector;
6. the store applies ODK Central's duplicate/edit rules atomically: Conflict → 409; an edit whose
   ``deprecatedID`` is unknown → 404.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from threading import Lock
from typing import Any

from core.instance import FormShape, InstanceError, ParsedInstance, parse_instance, safe_attachment_name
from core.models import AuditEvent, ReviewState, Round, Submission, User, utcnow
from core.scope import common_unit
from core.storage.base import Conflict, SaveOutcome, Store
from server.access import assigned_open_rounds, in_scope, submission_unit
from server.auth import Caller
from server.errors import OpenRosaError, bad_request, conflict, forbidden, not_found
from server.multipart import Part

log = logging.getLogger("rasoat.server")

XML_PART = "xml_submission_file"
INCOMPLETE_PART = "*isIncomplete*"


@dataclass(frozen=True)
class IngestResult:
    outcome: SaveOutcome
    instance_id: str
    message: str


class ShapeCache:
    """FormShape per (form id, version): a published version never changes, so this is a pure cache."""

    def __init__(self) -> None:
        self._shapes: dict[tuple[str, str], FormShape] = {}
        self._lock = Lock()

    def get(self, store: Store, form_id: str, version: str) -> FormShape:
        key = (form_id, version)
        shape = self._shapes.get(key)
        if shape is None:
            shape = FormShape.from_xform(store.form_xml(form_id, version))
            with self._lock:
                self._shapes[key] = shape
        return shape


def split_parts(parts: list[Part]) -> tuple[bytes, dict[str, bytes], bool]:
    """(instance XML, attachments by name, incomplete flag); rejects unsafe names."""
    xml: bytes | None = None
    files: dict[str, bytes] = {}
    incomplete = False
    for part in parts:
        if part.name == XML_PART and xml is None:
            xml = part.data
            continue
        if part.name == INCOMPLETE_PART:
            incomplete = True
            continue
        name = part.filename or part.name
        if not safe_attachment_name(name) or (part.filename and not safe_attachment_name(part.name)):
            raise bad_request(
                f"Tên tệp đính kèm không hợp lệ: {name!r} (không được chứa đường dẫn) / "
                f"Invalid attachment name {name!r} (no paths allowed)"
            )
        files[name] = part.data
    if xml is None:
        raise bad_request(
            "Thiếu phần xml_submission_file trong dữ liệu gửi lên / "
            "The upload has no xml_submission_file part"
        )
    return xml, files, incomplete


def _parse(store: Store, xml: bytes, shapes: ShapeCache) -> ParsedInstance:
    missing: list[tuple[str, str]] = []

    def shape_for(form_id: str, version: str) -> FormShape | None:
        if store.get_form(form_id, version) is None:
            missing.append((form_id, version))
            return None
        return shapes.get(store, form_id, version)

    try:
        parsed = parse_instance(xml, shape_for)
    except InstanceError as exc:
        if missing:  # the form is unknown: say that, not what else is wrong with the XML
            raise _unknown_form(*missing[0]) from None
        raise bad_request(exc.message) from None
    if missing:
        raise _unknown_form(*missing[0])
    return parsed


def _unknown_form(form_id: str, version: str) -> OpenRosaError:
    shown = f"{form_id} (phiên bản / version {version or '—'})"
    return not_found(
        f"Máy chủ không có biểu mẫu {shown}; hãy tải lại biểu mẫu trống / "
        f"The server has no form {shown}; download the blank form again"
    )


def ingest(
    store: Store,
    caller: Caller,
    parts: list[Part],
    shapes: ShapeCache,
    check_hook: Callable[..., list[Any]] | None = None,
) -> IngestResult:
    """Handle one POST's parts for ``caller``; raises OpenRosaError for every refusal."""
    try:
        return _ingest(store, caller, parts, shapes, check_hook)
    except ValueError as exc:  # a name or value the store refuses (it checked before writing anything)
        log.warning("submission refused by the store: %s", exc)
        raise bad_request(f"Dữ liệu không hợp lệ / Invalid submission: {exc}") from None


def _ingest(
    store: Store,
    caller: Caller,
    parts: list[Part],
    shapes: ShapeCache,
    check_hook: Callable[..., list[Any]] | None,
) -> IngestResult:
    xml, files, _incomplete = split_parts(parts)  # *isIncomplete* is advisory (Central ignores it too)
    parsed = _parse(store, xml, shapes)
    _check_encryption(store, parsed)
    user = caller.user
    xml_md5 = hashlib.md5(xml, usedforsecurity=False).hexdigest()
    expected = parsed.attachment_names
    attachments = {name: data for name, data in files.items() if name in expected}

    try:
        rnd, unit = _place(store, parsed, user)
    except OpenRosaError:
        # An identical resend of the caller's own stored submission is accepted even when the round has
        # closed since, so a phone can finish an interrupted upload. Looked up only here: a lookup of a
        # new instanceID on every POST would cost a directory walk in a large store.
        existing = store.get_submission(parsed.instance_id)
        if existing is not None and existing.xml_md5 == xml_md5 and existing.collector_id == user.id:
            return _save(store, existing.model_copy(), xml, attachments)
        raise

    if parsed.deprecated_id:
        old = store.get_submission(parsed.deprecated_id)
        if old is None:
            raise not_found(
                f"Không tìm thấy bản ghi gốc {parsed.deprecated_id} để sửa / "
                f"The submission being edited ({parsed.deprecated_id}) is not on the server"
            )
        # Central carries over the old version's files the edit still names (posted files win); doing
        # it here keeps that rule the same on every backend.
        for name in expected:
            if name not in attachments and name in old.attachments:
                data = store.attachment(old.instance_id, name)
                if data is not None:
                    attachments[name] = data

    issues = _run_checks(check_hook, parsed) if not parsed.encrypted else []
    sub = Submission(
        instance_id=parsed.instance_id,
        form_id=parsed.form_id,
        form_version=parsed.version,
        round_id=rnd.id,
        unit_code=unit,
        collector_id=user.id,
        xml_md5=xml_md5,
        fields=parsed.fields,
        attachments=sorted(attachments),
        expected_attachments=expected,
        deprecated_id=parsed.deprecated_id,
        encrypted=parsed.encrypted,
    )
    if issues:
        sub.review_state = ReviewState.has_issues
        sub.review_history.append(
            {"at": utcnow().isoformat(), "actor": "checks", "state": ReviewState.has_issues.value,
             "comment": "; ".join(issues)}
        )
    result = _save(store, sub, xml, attachments)
    if parsed.deprecated_id and result.outcome is SaveOutcome.created:  # an edit replaces a record: audited
        store.append_audit(AuditEvent(actor=user.username, action="submission.edit", target=sub.instance_id,
                                      details={"replaces": parsed.deprecated_id, "form_id": sub.form_id,
                                               "unit": unit, "via": "openrosa"}))
    if issues and result.outcome is SaveOutcome.created:
        return IngestResult(
            result.outcome,
            result.instance_id,
            "Đã nhận, cần xem lại / Received, to be reviewed: " + "; ".join(issues),
        )
    return result


def _check_encryption(store: Store, parsed: ParsedInstance) -> None:
    """An encrypted form takes only envelopes (a plaintext record would put person data on the server);
    an envelope must name a known form version that is encrypted, and carry its wrapped key."""
    form = store.get_form(parsed.form_id, parsed.version)
    if form is None:  # an envelope is parsed without asking for the form's shape
        raise _unknown_form(parsed.form_id, parsed.version)
    if form.encrypted and not parsed.encrypted:
        raise bad_request(
            f"Biểu mẫu {parsed.form_id} phải được gửi đã mã hoá; hãy tải lại biểu mẫu trống / "
            f"Form {parsed.form_id} must be sent encrypted; download the blank form again"
        )
    if parsed.encrypted and not form.encrypted:
        raise bad_request(
            f"Biểu mẫu {parsed.form_id} không dùng mã hoá / Form {parsed.form_id} is not an encrypted form"
        )
    fields = parsed.fields
    if parsed.encrypted and not (fields.get("base64EncryptedKey") and fields.get("encryptedXmlFile")):
        raise bad_request(
            "Phong bì mã hoá thiếu base64EncryptedKey hoặc encryptedXmlFile / "
            "The encrypted envelope lacks base64EncryptedKey or encryptedXmlFile"
        )


def _place(store: Store, parsed: ParsedInstance, user: User) -> tuple[Round, str | None]:
    """The open round and the unit a submission belongs to, or 403 when the caller may not send it."""
    rounds = [r for r in assigned_open_rounds(store, user) if parsed.form_id in r.form_ids]
    if not rounds:
        raise forbidden(
            f"Biểu mẫu {parsed.form_id} không thuộc đợt nào đang mở được giao cho bạn / "
            f"Form {parsed.form_id} is not in any open round assigned to you"
        )
    unit = None if parsed.encrypted else submission_unit(parsed.fields, user)
    if unit is None:  # an encrypted record names no unit the server can read: the collector's own
        unit = common_unit(user.unit_codes)
    rnd = rounds[0]
    if unit is not None:
        if user.unit_codes and not in_scope(unit, user.unit_codes):
            raise forbidden(
                f"Đơn vị {unit} nằm ngoài phạm vi của bạn ({', '.join(user.unit_codes)}) / "
                f"Unit {unit} is outside your units ({', '.join(user.unit_codes)})"
            )
        matching = [r for r in rounds if not r.unit_codes or in_scope(unit, r.unit_codes)]
        if not matching:
            raise forbidden(
                f"Đơn vị {unit} nằm ngoài phạm vi đợt đang mở / Unit {unit} is outside the open round's units"
            )
        rnd = matching[0]
    return rnd, unit


def _save(store: Store, sub: Submission, xml: bytes, attachments: dict[str, bytes]) -> IngestResult:
    try:
        outcome = store.save_submission(sub, xml, attachments)
    except Conflict as exc:
        raise conflict(
            str(exc)
            or f"Mã bản ghi {sub.instance_id} đã có với nội dung khác, hoặc bản sửa không phải bản "
            f"mới nhất / instanceID {sub.instance_id} exists with other content, or the edit is not of "
            "the current version"
        ) from None
    if outcome is SaveOutcome.duplicate:
        message = "Đã nhận (gửi lại) / Received (resent)"
    else:
        message = "Đã nhận biểu mẫu / Form received"
    return IngestResult(outcome, sub.instance_id, message)


def _run_checks(check_hook: Callable[..., list[Any]] | None, parsed: ParsedInstance) -> list[str]:
    if check_hook is None:
        return []
    try:
        results = check_hook(form_id=parsed.form_id, fields=parsed.fields)
    except Exception:  # a plugin's bug must not cost a collector their submission
        log.exception("check_submission hook failed for form %s", parsed.form_id)
        return []
    messages: list[str] = []
    for result in results or []:
        for msg in result or []:
            if msg:
                messages.append(str(msg))
    return messages
