"""Whole-store work on protected records: sealing records stored before their form declared identifying
fields (``rasoat protect-records``), and rotating the key-encryption key (``rasoat keys rotate-kek``).

Both are safe to rerun: a record already sealed under the current key is left as it is, and each record
is rewritten in one transaction (``Store.rewrite_payload``). Every converted record is read back and
compared with what it held before (fields, XML and attachments, in memory) before it counts as
converted; the report names each one with the keyed digest of its XML. The audit log gets counts and
form ids, never a value.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rasoat.core import protection
from rasoat.core.crypto import decrypt_submission
from rasoat.core.ingest import filing_unit
from rasoat.core.instance import FormShape, parse_instance
from rasoat.core.models import AuditEvent, Submission
from rasoat.core.protection import PROTECTED, Keyring, ProtectionError
from rasoat.core.storage.base import Store, SubmissionQuery


@dataclass
class Report:
    """What a run did: how many records it sealed (each with its keyed digest), found sealed already,
    could not open (ODK-encrypted without the passphrase) or could not convert (with why)."""

    converted: list[dict[str, str]] = field(default_factory=list)
    already: int = 0
    locked: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    forms: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"forms": self.forms, "converted": len(self.converted), "already_protected": self.already,
                "encrypted_without_key": self.locked, "failed": self.failed, "records": self.converted}


def _plain(store: Store, sub: Submission, rsa_keys: Sequence[Any] | None) -> tuple[Submission, bytes, dict]:
    """The record's fields, XML and attachments in plaintext (an ODK envelope decrypted in memory)."""
    files = {name: store.attachment(sub.instance_id, name) for name in sub.attachments}
    if not sub.encrypted:
        xml = store.submission_xml(sub.instance_id)
        if xml is None:
            raise ProtectionError("protection.xml_missing", instance_id=sub.instance_id)
        return sub, xml, {k: v for k, v in files.items() if v is not None}

    opened = decrypt_submission(rsa_keys or [], sub, files)
    parsed = parse_instance(opened.xml, FormShape.from_xform(store.form_xml(sub.form_id, sub.form_version)))
    if parsed.instance_id != sub.instance_id:
        raise ProtectionError("protection.inner_id_differs", instance_id=sub.instance_id)
    try:
        unit = filing_unit(parsed.fields, None) or sub.unit_code
    except ValueError:
        unit = sub.unit_code
    plain = sub.model_copy(update={
        "fields": parsed.fields, "encrypted": False, "unit_code": unit,
        "expected_attachments": parsed.attachment_names,
        "xml_md5": hashlib.md5(opened.xml, usedforsecurity=False).hexdigest()})
    return plain, opened.xml, dict(opened.files)


def _verify(store: Store, ring: Keyring, plain: Submission, xml: bytes, files: dict[str, bytes]) -> str:
    """Read the rewritten record back and compare it with what it held; its keyed digest if equal."""
    iid = plain.instance_id
    stored = store.get_submission(iid)
    sealed_xml = store.submission_xml(iid)
    if stored is None or sealed_xml is None:
        raise ProtectionError("protection.record_gone", instance_id=iid)
    revealed = protection.reveal(ring, iid, stored.fields)
    revealed.pop(protection.PSEUDONYM_FIELD, None)
    expected = {k: v for k, v in plain.fields.items() if k != protection.PSEUDONYM_FIELD}
    same_files = sorted(stored.attachments) == sorted(files) and all(
        protection.open_sealed(ring, iid, name, store.attachment(iid, name) or b"") == data
        for name, data in files.items())
    if revealed != expected or protection.open_sealed(ring, iid, protection.XML_NAME, sealed_xml) != xml \
            or not same_files:
        raise ProtectionError("protection.read_back_differs", instance_id=iid)
    return ring.digest(xml)


def protect_existing(
    store: Store, form_ids: Sequence[str] | None = None, rsa_keys: Sequence[Any] | None = None,
    actor: str = "cli",
) -> Report:
    """Seal every stored record (every version, edited ones too) of the forms whose latest published
    version declares identifying fields; ODK-encrypted ones only with ``rsa_keys`` (the unlocked
    project keys)."""
    report = Report()
    ring = protection.keyring(store)
    for form in store.list_forms():
        if form_ids and form.form_id not in form_ids:
            continue
        declared = protection.stored_declaration(store, form.form_id, form.version)
        if not declared.identifying:
            continue
        report.forms.append(form.form_id)
        query = SubmissionQuery(form_id=form.form_id, current_only=False)
        for sub in list(store.iter_submissions(query)):  # listed first: rows are rewritten meanwhile
            if protection.is_protected(sub.fields):
                report.already += 1
                continue
            if sub.encrypted and not rsa_keys:
                report.locked += 1
                continue
            try:
                plain, xml, files = _plain(store, sub, rsa_keys)
                done = protection.protect(ring, sub.instance_id, plain.fields, xml, files, declared)
                md5 = hashlib.md5(done.xml, usedforsecurity=False).hexdigest()
                sealed = plain.model_copy(update={"fields": done.fields, "xml_md5": md5})
                store.rewrite_payload(sealed, done.xml, done.attachments)
                digest = _verify(store, ring, plain, xml, files)
            except (ValueError, KeyError) as exc:  # CryptoError, InstanceError, ProtectionError: ValueErrors
                report.failed.append({"instance_id": sub.instance_id, "error": str(exc)})
                continue
            report.converted.append({"instance_id": sub.instance_id, "digest": digest})
    store.purge_freed()
    store.append_audit(AuditEvent(actor=actor, action="protection.migrate", target=",".join(report.forms),
                                  details={k: v for k, v in report.as_dict().items() if k != "records"}
                                  | {"failed": len(report.failed)}))
    return report


# --- rotating the key-encryption key --------------------------------------------------------------


SETTLE_SECONDS = 2.0  # a record a running server sealed just before it saw the rotation is saved by then


def rotate_kek(store: Store, new_kek: bytes | None = None, new_file: Path | None = None,
               actor: str = "cli", settle: float = SETTLE_SECONDS) -> tuple[str, Path | None, int]:
    """Make a new KEK current (written to ``new_file`` or the key folder unless given), keep the old one's
    id as retired, and re-wrap every record's data key under the new one. Returns (new id, the new key
    file, records re-wrapped). The old key file stays until the operator removes it.

    Running servers need no restart: each reads the store's keyring entry before it seals a record and
    follows the rotation (``protection.keyring(current=True)``), or refuses person records with a 503 that
    says why when it cannot read the new key. A record such a server sealed in the instant before it
    noticed is re-wrapped by a second pass ``settle`` seconds later; ``records_by_kek`` shows that none is
    left under the old key before its file is removed."""
    old = protection.keyring(store, create=False, current=True)
    kek = new_kek or os.urandom(32)
    kid = protection.kek_id(kek)
    written = None
    if new_kek is None:
        written = protection.check_key_path(store, new_file or protection.key_dir() / f"{kid}.key")
        protection.write_key_file(written, kek)
    entry = store.kv_get(protection.KV_NS, protection.KV_KEYRING)
    assert isinstance(entry, dict)
    updated = protection.keyring_entry(
        kek, old.index_key, [old.kid, *[r for r in entry.get("retired") or [] if r != old.kid]])
    if not store.kv_cas(protection.KV_NS, protection.KV_KEYRING, entry, updated):
        raise ProtectionError("protection.key_changed")
    ring = Keyring(kid, kek, old.index_key, {old.kid: old.kek, **old.retired})
    protection.forget(store)
    store.append_audit(AuditEvent(actor=actor, action="protection.key_rotate", target=kid,
                                  details={"retired": old.kid}))
    n = finish_rotation(store, ring, settle, actor)
    return kid, written, n


def finish_rotation(store: Store, ring: Keyring, settle: float = SETTLE_SECONDS, actor: str = "cli") -> int:
    """Re-wrap every record not under ``ring``'s current KEK, then once more after ``settle`` seconds (what
    a running server saved meanwhile); audited with the count. Safe to rerun (``rotate-kek --finish``)."""
    n = rewrap_all(store, ring)
    if settle > 0:
        time.sleep(settle)
    n += rewrap_all(store, ring)
    store.append_audit(AuditEvent(actor=actor, action="protection.rewrap", target=ring.kid,
                                  details={"records": n}))
    return n


def records_by_kek(store: Store) -> dict[str, int]:
    """How many protected records (every version) each KEK id wraps: an old key file may be removed
    once its id is no longer here."""
    counts: dict[str, int] = {}
    for sub in store.iter_submissions(SubmissionQuery(current_only=False)):
        envelope = sub.fields.get(PROTECTED)
        if isinstance(envelope, dict):
            kid = str(envelope.get("kek"))
            counts[kid] = counts.get(kid, 0) + 1
    return counts


def entity_values_by_kek(store: Store) -> dict[str, int]:
    """How many sealed entity values and labels (issue 23: entities, their past versions and held blocks)
    each KEK id wraps. A rotation re-wraps them with the records (``rewrap_all``); while any is left under
    an old key (an interrupted rotation: run ``rotate-kek --finish``), that key file must stay."""
    return store.entity_seal_keys()


def rewrap_all(store: Store, ring: Keyring) -> int:
    """Re-wrap the data key of every protected record not under ``ring``'s current KEK (a rerun after an
    interrupted rotation finishes the rest). Ciphertexts are unchanged; only the wrapped keys are."""
    n = 0
    for sub in list(store.iter_submissions(SubmissionQuery(current_only=False))):
        envelope = sub.fields.get(PROTECTED)
        if not isinstance(envelope, dict) or envelope.get("kek") == ring.kid:
            continue
        dek = ring.unwrap(str(envelope["kek"]), base64.b64decode(envelope["dek"]))
        fields = {**sub.fields, PROTECTED: {**envelope, "kek": ring.kid,
                                            "dek": base64.b64encode(ring.wrap(dek)).decode()}}
        xml = protection.rewrap_sealed(ring, store.submission_xml(sub.instance_id) or b"")
        files = {name: protection.rewrap_sealed(ring, store.attachment(sub.instance_id, name) or b"")
                 for name in sub.attachments}
        store.rewrite_payload(sub.model_copy(update={
            "fields": fields, "xml_md5": hashlib.md5(xml, usedforsecurity=False).hexdigest()}), xml, files)
        n += 1
    return n + store.rewrite_entity_seals(lambda sealed: protection.rewrap_sealed(ring, sealed))
