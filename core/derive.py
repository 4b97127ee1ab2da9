"""Unlock and derive: the statistical fields of ODK-encrypted records, computed once with the project key
and kept, so figures need no passphrase afterwards.

An officer with the ``decrypt`` permission gives the passphrase (``rasoat keys unlock``, the web page
``/keys/unlock``, ``rasoat report --passphrase-file``). Every encrypted record whose fields the server
cannot read yet (``core.models.unread``) is decrypted in memory, its answers parsed and split as a
plaintext arrival's are (``_kept_fields``: identifying fields sealed, never kept in clear), and the result
kept as its fields (``Store.set_derived_fields``), filed under the unit its answers name when that lies
inside the unit it was filed under. Collect's envelope is kept beside them (``ENVELOPE_FIELD``), so the
record still opens with the key; its stored bytes never change.

In a server the unlocked keys stay in that process's memory for a limited time (``hold``, 15 minutes by
default; each worker process holds its own), and encrypted records arriving meanwhile are derived as
they come (``on_arrival``); then they are forgotten. The audit log gets ``key.unlock`` (who, for how long)
and ``key.derive`` (who, which forms, how many derived and failed): never the passphrase, never a value.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from rasoat.core.crypto import Decryptor, unlock
from rasoat.core.excel.personal import fallback_personal_fields
from rasoat.core.excel.schema import is_personal
from rasoat.core.indicators.describe import fields_read
from rasoat.core.indicators.loading import collect
from rasoat.core.ingest import IngestError, filing_unit
from rasoat.core.models import ENVELOPE_FIELD, UNREAD_FIELD, AuditEvent, Submission, unread
from rasoat.core.problems import Problem
from rasoat.core.protection import keyring, protect, stored_declaration
from rasoat.core.rounds import in_scope
from rasoat.core.storage.base import Store, SubmissionQuery

DEFAULT_MINUTES = 15
MAX_MINUTES = 8 * 60
_ENVELOPE_KEYS = (UNREAD_FIELD, "media", "encryptedXmlFile", "base64EncryptedElementSignature")


@dataclass
class Derived:
    """What one derivation pass did."""

    by_form: dict[str, int] = field(default_factory=dict)  # records derived, per form
    failed: int = 0  # records that would not open (wrong key, damaged or altered files)
    refused: dict[str, int] = field(default_factory=dict)  # left unread, per form (``NotDerivable``)

    @property
    def total(self) -> int:
        return sum(self.by_form.values())


class NotDerivable(Problem, ValueError):
    """A form whose figures need answers it marks personal and declares no identifying field to seal."""


def _kept_fields(store: Store, opened: Submission, xml: bytes) -> dict[str, Any]:
    """What a decrypted record keeps: the split a plaintext arrival of its form version takes when the
    form declares identifying fields (``core.protection``: those sealed under the key-encryption key,
    statistics and a keyed pseudonym in clear). A form that declares none keeps only the answers it does
    not mark personal (``core.excel.personal``); when an indicator reads one so marked (F1 before its
    identifying fields are declared) it is refused rather than derived without them, which would count
    its records as zeros."""

    declaration = stored_declaration(store, opened.form_id, opened.form_version)
    if declaration.identifying:
        ring = keyring(store, current=True)
        return protect(ring, opened.instance_id, opened.fields, xml, {}, declaration).fields
    schema = store.form_schema(opened.form_id, opened.form_version)
    personal = set(fallback_personal_fields(opened.form_id, schema))

    def walk(children: Sequence[dict[str, Any]]) -> None:
        for node in children:
            if is_personal(node):
                personal.add(str(node.get("name", "")))
            walk(node.get("children") or [])

    walk(schema.get("children") or [])
    read = {path.rsplit("/", 1)[-1] for path in fields_read(collect()).get(opened.form_id, set())}
    if personal & read:
        raise NotDerivable("derive.personal_answers", form=opened.form_id)
    return {k: v for k, v in opened.fields.items() if k.rsplit("/", 1)[-1] not in personal}


def _unit(stored: Submission, opened: Submission) -> str | None:
    """The unit the answers name (the filing rule of a plaintext arrival), when it lies inside the unit
    the envelope was filed under (the collector's); otherwise the record stays where it was checked in."""

    try:
        answer = filing_unit(opened.fields, None)
    except IngestError:  # answers that contradict each other or name no known unit
        return stored.unit_code
    if stored.unit_code and answer and in_scope(answer, [stored.unit_code]):
        return answer
    return stored.unit_code


def derive_one(store: Store, opener: Decryptor, sub: Submission) -> bool:
    """Derive and keep one unread record's statistical fields; False when it would not open."""
    opened = opener.open(sub)
    if opened is None:
        return False
    envelope = {k: sub.fields[k] for k in _ENVELOPE_KEYS if k in sub.fields}
    fields = {**_kept_fields(store, opened[0], opened[1].xml), ENVELOPE_FIELD: envelope}
    store.set_derived_fields(sub.instance_id, fields, _unit(sub, opened[0]))
    return True


def encrypted_form_ids(store: Store) -> list[str]:
    """Forms with an encrypted version in the store: the only ones that can hold unread records."""
    return sorted({f.form_id for f in store.list_forms(all_versions=True) if f.encrypted})


def derive_all(
    store: Store, keys: Sequence[rsa.RSAPrivateKey], actor: str, purpose: str = "unlock"
) -> Derived:
    """Derive every unread record the store holds (every form, every unit); one audit line."""
    opener = Decryptor(store, keys)
    done = Derived()
    for form_id in encrypted_form_ids(store):
        waiting = [s for s in store.iter_submissions(SubmissionQuery(form_id=form_id, current_only=False))
                   if unread(s)]  # listed first: the pass writes to the rows it reads
        for n, sub in enumerate(waiting):
            try:
                opened = derive_one(store, opener, sub)
            except NotDerivable:
                done.refused[form_id] = len(waiting) - n
                break
            if opened:
                done.by_form[form_id] = done.by_form.get(form_id, 0) + 1
            else:
                done.failed += 1
    _audit(store, actor, purpose, done)
    return done


def _audit(store: Store, actor: str, purpose: str, done: Derived) -> None:
    details = {"purpose": purpose, "derived": done.by_form, "failed": done.failed, "refused": done.refused}
    store.append_audit(AuditEvent(actor=actor, action="key.derive", target=",".join(sorted(done.by_form)),
                                  details=details))


def unlock_and_derive(
    store: Store, passphrase: str, actor: str, minutes: int | None = None
) -> Derived:
    """Unlock the project key, derive every unread record, and (``minutes``) hold the keys in this
    process for that long so arrivals are derived too. A wrong passphrase raises ``WrongPassphrase``."""
    keys = unlock(store, passphrase, actor, purpose="derive")
    store.append_audit(AuditEvent(actor=actor, action="key.unlock", details={"minutes": minutes or 0}))
    done = derive_all(store, keys, actor)
    if minutes:
        hold(store, keys, minutes, actor)
    return done


# --- keys held in this process for a while -------------------------------------------------------------

_held: weakref.WeakKeyDictionary[Store, tuple[list[rsa.RSAPrivateKey], float, str]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def hold(store: Store, keys: Sequence[rsa.RSAPrivateKey], minutes: int, actor: str) -> None:
    """Keep the unlocked keys in this process's memory for ``minutes`` (1 … MAX_MINUTES)."""
    minutes = max(1, min(int(minutes), MAX_MINUTES))
    with _lock:
        _held[store] = (list(keys), time.monotonic() + minutes * 60, actor)


def held_until(store: Store) -> float | None:
    """Seconds the keys stay unlocked in this process (None: locked); expired keys are dropped here."""
    with _lock:
        entry = _held.get(store)
        if entry is None:
            return None
        left = entry[1] - time.monotonic()
        if left <= 0:
            del _held[store]
            return None
        return left


def forget(store: Store) -> None:
    with _lock:
        _held.pop(store, None)


def on_arrival(store: Store, instance_id: str) -> bool:
    """Derive a record that has just arrived encrypted, if the keys are held; True when derived."""
    if held_until(store) is None:
        return False
    with _lock:
        entry = _held.get(store)
    if entry is None:
        return False
    keys, _, actor = entry
    sub = store.get_submission(instance_id)
    if sub is None or not unread(sub):
        return False
    done = Derived()
    try:
        if derive_one(store, Decryptor(store, keys), sub):
            done.by_form[sub.form_id] = 1
        else:
            done.failed = 1
    except NotDerivable:
        done.refused[sub.form_id] = 1
    _audit(store, actor, "arrival", done)
    return bool(done.total)
