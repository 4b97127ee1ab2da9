"""Accept one submitted instance: check, parse, store, and say what happened, with no transport in sight.

The server's OpenRosa POST (``server.ingest``) and the phone-folder importer (``mobile_export.importer``)
both come here, so an upload and an import follow the same rules. Each refusal is an ``IngestError``
whose ``reason`` the caller maps to its own answer (an HTTP status, an import outcome).

Order of decisions (each failure leaves the store untouched):
1. attachment names are bare file names (``invalid``);
2. the XML parses safely and names a form id and an instanceID (``invalid``); the form and version exist
   (``not_found``); a form whose named version **or current version** is encrypted takes only envelopes
   (``invalid``), so an old plaintext version on a phone cannot bypass it;
3. an identical resend of the caller's own stored submission is accepted at once (missing attachments
   added) even if the round has since closed, so a phone can finish a split upload;
4. ``place`` (the one scope rule, used by every way in): the caller is assigned to an open round carrying
   the form, the unit the record is filed under lies in both the collector's and the round's units
   and its location answers agree with each other, and a province plan's form is taken only for units of
   that province (``forbidden``, core.plans); an edit replaces only
   a record of the same form inside the caller's units (``forbidden``; unknown → ``not_found``);
5. plugins' ``check_submission`` hooks run; their messages do **not** reject the submission: it is stored
   with review state ``has_issues`` and the messages in its review history, and the phone is told.
   Refusing would leave the form stuck on a phone in the field with a weak connection, while a reviewer
   can fix or reject it later at no cost to the collector;
6. a form version declaring identifying fields has them, its XML and its attachments sealed before
   anything is written (``core.protection``: the one place every way in passes);
7. the store applies ODK Central's duplicate/edit rules atomically: Conflict → ``conflict``; the
   submission's entity blocks (``core.entities``: read from the plaintext XML, identifying properties
   sealed) are applied by ``core.storage.entity_rules`` in the same transaction. A block moving a person
   to a commune the unit registry does not know (``core.entities.receiving_refusal``) refuses the
   submission before anything is written (``invalid``): the collector chooses the commune again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from threading import Lock
from typing import Any

from rasoat.core import scope
from rasoat.core.entities import (
    LABEL,
    EntityWork,
    ListDeclaration,
    declared_lists,
    moved_to,
    read_blocks,
    receiving_refusal,
)
from rasoat.core.instance import (
    FormShape,
    InstanceError,
    ParsedInstance,
    parse_instance,
    safe_attachment_name,
)
from rasoat.core.models import AuditEvent, ReviewState, Role, Round, RoundState, Submission, User, utcnow
from rasoat.core.plans import form_refusal, plans
from rasoat.core.problems import Problem
from rasoat.core.protection import (
    Keyring,
    ProtectionError,
    identifying_fields,
    keyring,
    plain_attachment,
    protect_submission,
    same_content,
    seal_entity_label,
    seal_entity_values,
)
from rasoat.core.rounds import assigned_open_rounds, in_scope
from rasoat.core.scope import common_unit, unit_allowed
from rasoat.core.storage.base import Conflict, SaveOutcome, Store
from rasoat.core.unit_lists import units_for
from rasoat.core.units import LOCATION_FIELDS, UnitRegistry, get_units

log = logging.getLogger("rasoat.ingest")


CheckHook = Callable[..., list[Any]]
RoundsOf = Callable[[Store, User], list[Round]]


class Refusal(StrEnum):
    """Why a submission is not taken; each caller maps these to its own answer."""

    invalid = "invalid"  # the upload itself is wrong (names, XML, encryption, a value the store refuses)
    forbidden = "forbidden"  # the caller may not send this form or this unit
    not_found = "not_found"  # the form version, or the record an edit replaces, is not here
    conflict = "conflict"  # the instanceID is taken by other content, or the edit is not of the latest
    unavailable = "unavailable"  # it cannot be protected now (the key was rotated away): send it later


REFUSAL_CODES: dict[Refusal, str] = {
    Refusal.invalid: "submission.invalid",
    Refusal.forbidden: "submission.forbidden",
    Refusal.not_found: "submission.version_not_found",
    Refusal.conflict: "submission.conflict",
    Refusal.unavailable: "submission.unavailable",
}


class IngestError(Problem):
    """A refused submission: ``reason`` for the caller, the message (Vietnamese first) for the collector."""

    def __init__(self, reason: Refusal, code: str, /, **params: Any) -> None:
        super().__init__(code, **params)
        self.reason = reason

    @classmethod
    def because(cls, reason: Refusal, problem: Problem) -> IngestError:
        """Refused for ``reason`` because of another error (the XML, the key, the store): its message,
        said in the collector's language, under the refusal's own code and status."""
        return cls(reason, REFUSAL_CODES[reason], problem=problem)


@dataclass(frozen=True)
class IngestResult:
    outcome: SaveOutcome
    instance_id: str
    message: str


class ShapeCache:
    """FormShape and entity declarations per (form id, version): a published version never changes, so
    this is a pure cache."""

    def __init__(self) -> None:
        self._shapes: dict[tuple[str, str], FormShape] = {}
        self._entities: dict[tuple[str, str], list[ListDeclaration]] = {}
        self._lock = Lock()

    def entities(self, store: Store, form_id: str, version: str) -> list[ListDeclaration]:
        key = (form_id, version)
        found = self._entities.get(key)
        if found is None:
            found = declared_lists(store.form_xml(form_id, version),
                                   identifying_fields(store.form_schema(form_id, version)))
            with self._lock:
                self._entities[key] = found
        return found

    def get(self, store: Store, form_id: str, version: str) -> FormShape:
        key = (form_id, version)
        shape = self._shapes.get(key)
        if shape is None:
            shape = FormShape.from_xform(store.form_xml(form_id, version))
            with self._lock:
                self._shapes[key] = shape
        return shape


def _answer(fields: dict, name: str) -> str | None:
    value = fields.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _contradiction(answers: dict[str, str]) -> IngestError:
    shown = ", ".join(f"{name}={code}" for name, code in answers.items())
    return IngestError(Refusal.forbidden, "submission.places_contradict", answers=shown)


def filing_unit(
    fields: dict,
    user: User | None,
    encrypted: bool = False,
    check: Callable[[str], None] | None = None,
    units: UnitRegistry | None = None,
) -> str | None:
    """The unit a submission is filed under, from its hamlet/commune/province answers.

    It is the most precise answer the unit registry knows (a hamlet code the registry lacks stands for
    the commune its code names: "05563-99" → "05563"; the raw answer stays in ``fields``), and every
    other answer must lie on that unit's own chain (itself or above it), so the unit that is checked
    against the caller's scope is the unit the record is filed under. Answers that contradict each
    other, or that name no known unit, raise ``forbidden`` (a 403: no unit a scope check could pass).
    ``check`` (the scope check) runs on the unit before the answers are compared, so a unit outside the
    caller's scope is reported as that. A form without a location block, or an encrypted record the
    server cannot read, is filed under the collector's own unit (the most precise
    one holding all of them; None when they span provinces, or with no ``user``)."""
    answers = {name: code for name in LOCATION_FIELDS if (code := _answer(fields, name)) is not None}
    if encrypted or not answers:
        own = common_unit(user.unit_codes) if user is not None else None
        if own is not None and check is not None:
            check(own)
        return own
    units = units or get_units()  # the store's registry (core.unit_lists.units_for) knows loaded hamlets
    hamlet = answers.get("hamlet")
    named_commune = hamlet.split("-", 1)[0] if hamlet and "-" in hamlet else None  # "05563-07" → "05563"
    candidates = [answers.get("hamlet"), named_commune, answers.get("commune"), answers.get("province")]
    unit = next((code for code in candidates if code and units.get(code) is not None), None)
    if unit is None:
        shown = ", ".join(answers.values())
        raise IngestError(Refusal.forbidden, "submission.no_unit_matches", answers=shown)
    if check is not None:
        check(unit)
    chain = {unit, *(u.code for u in units.ancestors(unit))}
    for name, code in answers.items():
        if code in chain:
            continue
        if name == "hamlet" and units.get(code) is None and named_commune == unit:
            continue  # an unlisted hamlet of the filed commune
        raise _contradiction(answers)
    return unit


@dataclass(frozen=True)
class Placement:
    """Where an accepted submission goes: its round, its unit and the record it replaces (an edit)."""

    round: Round
    unit: str | None
    replaces: Submission | None = None


def place(
    store: Store,
    user: User,
    form_id: str,
    fields: dict,
    encrypted: bool = False,
    deprecated_id: str | None = None,
    rounds_of: RoundsOf = assigned_open_rounds,
) -> Placement:
    """The ingest scope rule, the one every way in uses (OpenRosa POST, USB/offline instance import).

    The caller must be assigned to an open round carrying the form (``rounds_of``: a collector's assigned
    rounds, or ``officer_open_rounds`` for an officer through the Central API); the unit the record is
    filed under (``filing_unit``) must lie in both the caller's and that round's units; an edit
    (``deprecated_id``) may replace only a record of the same form inside the caller's units. Raises
    IngestError (``forbidden``, also for contradictory answers; ``not_found`` for an unknown edited
    record)."""
    rounds = [r for r in rounds_of(store, user) if form_id in r.form_ids]
    if not rounds:
        raise IngestError(Refusal.forbidden, "submission.form_not_assigned", form=form_id)
    rnd = rounds[0]

    def check(unit: str) -> None:
        nonlocal rnd
        if user.unit_codes and not in_scope(unit, user.unit_codes):
            raise IngestError(
                Refusal.forbidden, "submission.unit_outside", unit=unit, units=', '.join(user.unit_codes),
            )
        matching = [r for r in rounds if not r.unit_codes or in_scope(unit, r.unit_codes)]
        if not matching:
            raise IngestError(Refusal.forbidden, "submission.unit_outside_round", unit=unit)
        rnd = matching[0]

    unit = filing_unit(fields, user, encrypted, check, units_for(store))
    if unit is None and user.unit_codes:  # units across provinces and no answer to choose one
        raise IngestError(Refusal.forbidden, "submission.unit_unknown")
    _check_plan(store, form_id, unit)
    replaces = _replaced(store, user, form_id, deprecated_id) if deprecated_id else None
    return Placement(rnd, unit, replaces)


def _check_plan(store: Store, form_id: str, unit: str | None) -> None:
    """A province plan's form is taken only for units of that province (core.plans), whoever sends it."""

    if not plans():  # no province plugin loaded: nothing to look up
        return
    form = store.get_form(form_id)
    refusal = form_refusal(form.source, form_id, unit) if form is not None else None
    if refusal:
        raise IngestError.because(Refusal.forbidden, refusal)


def _replaced(store: Store, user: User, form_id: str, deprecated_id: str) -> Submission:
    """The record an edit replaces, if the caller may replace it: same form, inside the caller's units.
    instanceIDs are not secret (exports, URLs, the audit log show them), so knowing one proves nothing."""
    old = store.get_submission(deprecated_id)
    if old is None:
        raise IngestError(Refusal.not_found, "submission.edited_missing", instance_id=deprecated_id)
    if old.form_id != form_id:
        raise IngestError(
            Refusal.forbidden, "submission.edited_other_form", instance_id=deprecated_id, form=form_id,
        )
    if not unit_allowed(user, old.unit_code):
        raise IngestError(Refusal.forbidden, "submission.edited_outside", instance_id=deprecated_id)
    return old


def check_attachment_names(names: Any) -> None:
    """Refuse a name that could leave its folder (file names from outside never become paths)."""
    for name in names:
        if not safe_attachment_name(name):
            raise IngestError(Refusal.invalid, "submission.bad_attachment", name=repr(name))


def accept(
    store: Store,
    user: User,
    xml: bytes,
    files: dict[str, bytes],
    shapes: ShapeCache,
    check_hook: CheckHook | None = None,
    via: str = "openrosa",
    rounds_of: RoundsOf = assigned_open_rounds,
) -> IngestResult:
    """Take one instance (its XML and the files sent with it) from ``user``; raises IngestError on refusal.

    ``via`` names the way it came in, for the audit log of edits. ``rounds_of`` gives the open rounds the
    sender may submit to: a collector's assigned rounds (the default), or ``officer_open_rounds``.
    """
    check_attachment_names(files)
    try:
        return _accept(store, user, xml, files, shapes, check_hook, via, rounds_of)
    except ValueError as exc:  # a name or value the store refuses (it checked before writing anything)
        log.warning("submission refused by the store: %s", exc)
        raise IngestError(Refusal.invalid, "submission.bad_value", detail=exc) from None


def _accept(
    store: Store,
    user: User,
    xml: bytes,
    files: dict[str, bytes],
    shapes: ShapeCache,
    check_hook: CheckHook | None,
    via: str,
    rounds_of: RoundsOf,
) -> IngestResult:
    parsed = _parse(store, xml, shapes)
    _check_encryption(store, parsed)
    xml_md5 = hashlib.md5(xml, usedforsecurity=False).hexdigest()
    expected = parsed.attachment_names
    attachments = {name: data for name, data in files.items() if name in expected}

    try:
        placed = place(store, user, parsed.form_id, parsed.fields, parsed.encrypted, parsed.deprecated_id,
                       rounds_of)
    except IngestError:
        # An identical resend of the caller's own stored submission is accepted even when the round has
        # closed since, so a phone can finish an interrupted upload. Looked up only here: a lookup of a
        # new instanceID on every POST would cost a directory walk in a large store.
        existing = store.get_submission(parsed.instance_id)
        if existing is not None and existing.collector_id == user.id and same_content(store, existing, xml):
            return _save(store, existing.model_copy(update={"fields": parsed.fields, "xml_md5": xml_md5}),
                         xml, attachments)
        raise
    rnd, unit = placed.round, placed.unit

    if placed.replaces is not None:
        old = placed.replaces
        # Central carries over the old version's files the edit still names (posted files win); only
        # from a record the caller may edit (``place`` checked it), the same on every backend.
        for name in expected:
            if name not in attachments and name in old.attachments:
                data = store.attachment(old.instance_id, name)
                if data is not None:
                    attachments[name] = plain_attachment(store, old.instance_id, name, data)

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
    work = None if parsed.encrypted else entity_work(store, user, parsed, xml, shapes)
    result = _save(store, sub, xml, attachments, work)
    if parsed.deprecated_id and result.outcome is SaveOutcome.created:  # an edit replaces a record: audited
        store.append_audit(AuditEvent(actor=user.username, action="submission.edit", target=sub.instance_id,
                                      details={"replaces": parsed.deprecated_id, "form_id": sub.form_id,
                                               "unit": unit, "via": via}))
    if issues and result.outcome is SaveOutcome.created:
        return IngestResult(
            result.outcome,
            result.instance_id,
            "Đã nhận, cần xem lại / Received, to be reviewed: " + "; ".join(issues),
        )
    return result


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
        raise IngestError.because(Refusal.invalid, exc) from None
    if missing:
        raise _unknown_form(*missing[0])
    return parsed


def _unknown_form(form_id: str, version: str) -> IngestError:
    shown = f"{form_id} (phiên bản / version {version or '—'})"
    return IngestError(Refusal.not_found, "submission.no_form", form=shown)


def _check_encryption(store: Store, parsed: ParsedInstance) -> None:
    """An encrypted form takes only envelopes (a plaintext record would put person data on the server),
    decided by the form: a phone still holding an older unencrypted version is refused too; an envelope
    must name a known form version that is encrypted, and carry its wrapped key."""
    form = store.get_form(parsed.form_id, parsed.version)
    if form is None:  # an envelope is parsed without asking for the form's shape
        raise _unknown_form(parsed.form_id, parsed.version)
    current = store.get_form(parsed.form_id)  # the named or the latest version demanding it is enough
    if (form.encrypted or (current is not None and current.encrypted)) and not parsed.encrypted:
        raise IngestError(Refusal.invalid, "submission.must_encrypt", form=parsed.form_id)
    if parsed.encrypted and not form.encrypted:
        raise IngestError(Refusal.invalid, "submission.not_encrypted_form", form=parsed.form_id)
    fields = parsed.fields
    if parsed.encrypted and not (fields.get("base64EncryptedKey") and fields.get("encryptedXmlFile")):
        raise IngestError(Refusal.invalid, "submission.envelope_incomplete")


def officer_open_rounds(store: Store, user: User) -> list[Round]:
    """Open rounds an officer may submit to (through the Central API): those over some of their units."""

    if not scope.can(user, scope.EDIT):
        return []
    return [r for r in store.list_rounds() if r.state is RoundState.open and scope.round_visible(user, r)]


def entity_work(
    store: Store, user: User, parsed: ParsedInstance, xml: bytes, shapes: ShapeCache
) -> EntityWork | None:
    """The entity blocks of a plaintext submission, identifying properties sealed (None: no entities)."""
    declarations = shapes.entities(store, parsed.form_id, parsed.version)
    if not declarations:
        return None
    blocks, problems = read_blocks(xml, declarations)
    if not (blocks or problems):
        return None
    for block in blocks:  # a person moved to a commune the registry does not know: the collector is told
        target = moved_to(None, block.data)
        refused = receiving_refusal(target) if target is not None else None
        if refused is not None:
            raise IngestError.because(Refusal.invalid, refused)
    sealed = []
    opened: list[Keyring] = []

    def ring() -> Keyring:
        if not opened:
            try:
                opened.append(keyring(store, current=True))  # a rotation made meanwhile is followed
            except ProtectionError as exc:
                raise IngestError.because(Refusal.unavailable, exc) from None
        return opened[0]

    for block in blocks:
        lst = store.get_entity_list(block.dataset)
        secret = lst.identifying if lst is not None else frozenset()
        if secret & set(block.data):
            block = replace(block, data=seal_entity_values(ring(), block.uuid, block.data, secret))
        if LABEL in secret and block.label:
            block = replace(block, label=seal_entity_label(ring(), block.uuid, block.label))
        sealed.append(block)
    scope = None if user.role is Role.admin else tuple(user.unit_codes)
    return EntityWork(tuple(sealed), tuple(problems), user.username, scope)


def _save(
    store: Store, sub: Submission, xml: bytes, attachments: dict[str, bytes],
    entities: EntityWork | None = None,
) -> IngestResult:
    try:
        stored = protect_submission(store, sub, xml, attachments)
    except ProtectionError as exc:  # nothing written; the phone keeps the record and sends it again
        raise IngestError.because(Refusal.unavailable, exc) from None
    try:
        outcome = store.save_submission(*stored, entities=entities)
    except Conflict as exc:
        raise IngestError.because(Refusal.conflict, exc) from None
    if outcome is SaveOutcome.duplicate:
        message = "Đã nhận (gửi lại) / Received (resent)"
    else:
        message = "Đã nhận biểu mẫu / Form received"
    return IngestResult(outcome, sub.instance_id, message)


def _run_checks(check_hook: CheckHook | None, parsed: ParsedInstance) -> list[str]:
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
