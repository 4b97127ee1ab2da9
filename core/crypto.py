"""ODK encrypted forms: the project key pair, its passphrase, and decrypting submissions in memory.

The scheme is ODK Collect's (reference: openrosa.md §7). The project has one RSA-2048 key pair. The
public key goes into every encrypted form (``<submission base64RsaPublicKey=…>``); Collect encrypts each
finalized record with a fresh AES-256 key, wraps that key with RSA-OAEP (SHA-256, MGF1-SHA-256) and
uploads only an envelope, ``submission.xml.enc`` and ``*.enc`` media. The server stores those as they
come and cannot read them.

The private key is kept in the store (key-value ``crypto/project``) only encrypted under a passphrase that
officers hold ("managed encryption", as ODK Central does): its PKCS#8 DER sealed with AES-256-GCM under a
key derived from the passphrase by argon2id (memory-hard, as the user passwords; its parameters are
stored beside the ciphertext so they can be raised later). Keys wrapped the older way (PKCS#8 PEM under
PBKDF2) are read and re-wrapped the next time the passphrase is used; it travels with backups and
works the same on the PostgreSQL backend. Decryption happens when an officer gives the passphrase (an
export, a report): the key is unlocked in memory, records are decrypted in memory, nothing plaintext is
written back to the store, and the audit log records who decrypted which form and how many records —
never the passphrase or any field value.

Which forms are encrypted when published from the plugins' catalogue: ``encrypted_form_ids(store)``,
by default none (``DEFAULT_ENCRYPTED_FORMS``: person registers are protected at rest by
``core.protection``, which keeps their statistics readable), chosen per form with ``rasoat keys forms``
(stored in ``crypto/settings``). A form listed there is published with the project's public key; with no
project key yet it is not published at all (``rasoat keys init`` first), so person records are never
collected in plaintext by accident.

Rotating the key (``rotate_key``) keeps the retired private keys (still under their passphrase) so records
encrypted for them stay readable.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import padding as sympad
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from rasoat.core.instance import FormShape, InstanceError, parse_instance

try:  # cryptography >= 48 keeps CFB among the "decrepit" modes (removed from primitives in 49)
    from cryptography.hazmat.decrepit.ciphers.modes import CFB
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.modes import CFB

from rasoat.core.models import (
    ENVELOPE_FIELD,
    UNREAD_FIELD,
    AuditEvent,
    Submission,
    utcnow,
)
from rasoat.core.problems import Problem
from rasoat.core.storage.base import Store, SubmissionQuery

KV_NS = "crypto"
KEY_ENTRY = "project"
SETTINGS_ENTRY = "settings"
DEFAULT_ENCRYPTED_FORMS: tuple[str, ...] = ()
KEY_BITS = 2048
MIN_PASSPHRASE_CHARS = 12
OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
# argon2id for the passphrase (RFC 9106's second choice, with one lane for a small shared server): about
# 64 MiB and a fraction of a second per unlock; stored with each wrapped key, so raising them later
# leaves existing keys readable (and they are re-wrapped under the new values at their next use).
KDF_PARAMS: dict[str, Any] = {"kdf": "argon2id", "t": 3, "m": 64 * 1024, "p": 1}


class CryptoError(Problem, ValueError):
    """A key operation that cannot be done; one bilingual line, never holding a secret."""


class WrongPassphrase(CryptoError):
    def __init__(self) -> None:
        super().__init__("crypto.wrong_passphrase")


class NoProjectKey(CryptoError):
    def __init__(self) -> None:
        super().__init__("crypto.no_project_key")


class DecryptionError(CryptoError):
    """One record could not be decrypted (wrong key, damaged file, failed signature)."""


# --- the project key ------------------------------------------------------------------------------


def _public_b64(public_key: rsa.RSAPublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode("ascii")


def fingerprint(public_b64: str) -> str:
    """A short, stable name for a public key: sha256 of its DER, first 16 hex digits."""
    return hashlib.sha256(base64.b64decode(public_b64)).hexdigest()[:16]


def _check_passphrase(passphrase: str) -> bytes:
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise CryptoError("crypto.passphrase_short", min=MIN_PASSPHRASE_CHARS)
    return passphrase.encode("utf-8")


def _derive(passphrase: bytes, salt: bytes, params: dict[str, Any]) -> bytes:
    from argon2.low_level import Type, hash_secret_raw

    if params.get("kdf") != "argon2id":
        raise CryptoError("crypto.unsupported_kdf", kdf=repr(params.get('kdf')))
    return hash_secret_raw(passphrase, salt, time_cost=int(params["t"]), memory_cost=int(params["m"]),
                           parallelism=int(params["p"]), hash_len=32, type=Type.ID)


def _wrap(key: rsa.RSAPrivateKey, passphrase: str, fp: str) -> dict[str, Any]:
    """The private key sealed under the passphrase, with everything needed to open it again."""
    import os

    salt, nonce = os.urandom(16), os.urandom(12)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    sealed = AESGCM(_derive(_check_passphrase(passphrase), salt, KDF_PARAMS)).encrypt(nonce, der, fp.encode())
    b64 = base64.b64encode
    return {**KDF_PARAMS, "salt": b64(salt).decode(), "cipher": "aes-256-gcm", "nonce": b64(nonce).decode(),
            "sealed": b64(sealed).decode()}


def _unwrap(item: dict[str, Any], passphrase: str) -> rsa.RSAPrivateKey:
    """The private key of a key entry (current or retired), from either way it may be wrapped."""
    wrapped = item.get("private_key")
    if not isinstance(wrapped, dict):  # wrapped before argon2id: PKCS#8 PEM under PBKDF2
        return _load(str(item["private_key_pem"]), passphrase)
    from cryptography.exceptions import InvalidTag

    b64d = base64.b64decode
    try:
        aes = AESGCM(_derive(passphrase.encode("utf-8"), b64d(wrapped["salt"]), wrapped))
        der = aes.decrypt(b64d(wrapped["nonce"]), b64d(wrapped["sealed"]), str(item["fingerprint"]).encode())
    except InvalidTag:
        raise WrongPassphrase() from None
    key = serialization.load_der_private_key(der, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CryptoError("crypto.key_not_rsa")
    return key


def _current(item: dict[str, Any]) -> bool:
    """Is this key wrapped the current way, with the current parameters?"""
    wrapped = item.get("private_key")
    return isinstance(wrapped, dict) and all(wrapped.get(k) == v for k, v in KDF_PARAMS.items())


def _rewrapped(item: dict[str, Any], key: rsa.RSAPrivateKey, passphrase: str) -> dict[str, Any]:
    out = {k: v for k, v in item.items() if k != "private_key_pem"}
    out["private_key"] = _wrap(key, passphrase, str(item["fingerprint"]))
    return out


def _new_entry(passphrase: str, actor: str) -> dict[str, Any]:
    _check_passphrase(passphrase)
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    public = _public_b64(private.public_key())
    fp = fingerprint(public)
    return {
        "public_key": public,
        "fingerprint": fp,
        "private_key": _wrap(private, passphrase, fp),
        "created_at": utcnow().isoformat(),
        "created_by": actor,
        "retired": [],
    }


def key_entry(store: Store) -> dict[str, Any] | None:
    entry = store.kv_get(KV_NS, KEY_ENTRY)
    return entry if isinstance(entry, dict) and entry.get("public_key") else None


def public_key(store: Store) -> str | None:
    """The project's public key as forms carry it (base64 DER SubjectPublicKeyInfo), or None."""
    entry = key_entry(store)
    return str(entry["public_key"]) if entry else None


def create_project_key(store: Store, passphrase: str, actor: str = "cli") -> str:
    """Make the project's key pair; returns its fingerprint. Refused when one exists (see ``rotate_key``)."""
    if key_entry(store) is not None:
        raise CryptoError("crypto.key_exists")
    entry = _new_entry(passphrase, actor)
    store.kv_put(KV_NS, KEY_ENTRY, entry)
    store.append_audit(AuditEvent(actor=actor, action="key.create", target=entry["fingerprint"]))
    return str(entry["fingerprint"])


def _load(pem: str, passphrase: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=passphrase.encode("utf-8"))
    except (ValueError, TypeError):
        raise WrongPassphrase() from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CryptoError("crypto.key_not_rsa")
    return key


def unlock(store: Store, passphrase: str, actor: str = "cli", purpose: str = "") -> list[rsa.RSAPrivateKey]:
    """The project's private keys (current first, then retired ones), unlocked in memory.

    A wrong passphrase raises ``WrongPassphrase`` and leaves an audit line saying so (no secret in it).
    """
    entry = key_entry(store)
    if entry is None:
        raise NoProjectKey()
    try:
        keys = [_unwrap(entry, passphrase)]
    except WrongPassphrase:
        store.append_audit(
            AuditEvent(
                actor=actor,
                action="key.unlock_failed",
                target=entry["fingerprint"],
                details={"purpose": purpose},
            )
        )
        raise
    retired: list[dict[str, Any]] = []
    for old in entry.get("retired") or []:
        try:
            key = _unwrap(old, passphrase)
        except WrongPassphrase:  # retired under an older passphrase: change_passphrase re-encrypts them all
            retired.append(old)
            continue
        keys.append(key)
        retired.append(old if _current(old) else _rewrapped(old, key, passphrase))
    if not _current(entry) or retired != list(entry.get("retired") or []):
        _upgrade(store, entry, {**_rewrapped(entry, keys[0], passphrase), "retired": retired}, actor)
    return keys


def _upgrade(store: Store, entry: dict[str, Any], updated: dict[str, Any], actor: str) -> None:
    """Keys wrapped the older way (or with weaker parameters) are re-wrapped at the first use of the
    passphrase; compare-and-set, so a passphrase change made meanwhile is never overwritten."""
    if store.kv_cas(KV_NS, KEY_ENTRY, entry, updated):
        store.append_audit(AuditEvent(actor=actor, action="key.rewrap", target=entry["fingerprint"],
                                      details={"kdf": KDF_PARAMS["kdf"]}))


def change_passphrase(store: Store, old: str, new: str, actor: str = "cli") -> None:
    """Re-encrypt every project private key (current and retired) under a new passphrase."""
    entry = key_entry(store)
    if entry is None:
        raise NoProjectKey()
    _check_passphrase(new)
    updated = _rewrapped(entry, _unwrap(entry, old), new)
    updated["retired"] = [_rewrapped(r, _unwrap(r, old), new) for r in entry.get("retired") or []]
    store.kv_put(KV_NS, KEY_ENTRY, updated)
    store.append_audit(AuditEvent(actor=actor, action="key.change_passphrase", target=entry["fingerprint"]))


def rotate_key(store: Store, passphrase: str, actor: str = "cli") -> str:
    """A new key pair under the same passphrase; the old private key is kept (retired) for old records.
    Forms must be published again (a new version) to carry the new public key."""
    if key_entry(store) is None:
        raise NoProjectKey()
    unlock(store, passphrase, actor, purpose="rotate")  # the passphrase must be the current one
    entry = key_entry(store)  # as unlock left it (re-wrapped, if it was wrapped the older way)
    assert entry is not None
    new = _new_entry(passphrase, actor)
    retired = [
        {k: entry[k] for k in ("public_key", "fingerprint", "private_key", "private_key_pem", "created_at")
         if k in entry},
        *(entry.get("retired") or []),
    ]
    new["retired"] = retired
    store.kv_put(KV_NS, KEY_ENTRY, new)
    store.append_audit(
        AuditEvent(
            actor=actor,
            action="key.rotate",
            target=new["fingerprint"],
            details={"retired": entry["fingerprint"]},
        )
    )
    return str(new["fingerprint"])


def encrypted_form_ids(store: Store) -> tuple[str, ...]:
    """Form ids published encrypted from the catalogue (default: none; a province's choice per form)."""
    entry = store.kv_get(KV_NS, SETTINGS_ENTRY)
    if isinstance(entry, dict) and isinstance(entry.get("encrypted_forms"), list):
        return tuple(str(f) for f in entry["encrypted_forms"])
    return DEFAULT_ENCRYPTED_FORMS


def set_encrypted_form_ids(store: Store, form_ids: Iterable[str], actor: str = "cli") -> tuple[str, ...]:
    ids = tuple(dict.fromkeys(f.strip() for f in form_ids if f.strip()))
    before = encrypted_form_ids(store)
    store.kv_put(KV_NS, SETTINGS_ENTRY, {"encrypted_forms": list(ids)})
    store.append_audit(
        AuditEvent(
            actor=actor,
            action="key.set_forms",
            target=",".join(ids),
            details={"from": list(before), "to": list(ids)},
        )
    )
    return ids


# --- decrypting one submission ----------------------------------------------------------------------


def iv_stream(instance_id: str, key: bytes) -> Iterator[bytes]:
    """Collect's per-file IVs: md5(instanceID ‖ key), one byte incremented per file (cumulatively)."""
    seed = bytearray(hashlib.md5(instance_id.encode("utf-8") + key, usedforsecurity=False).digest())
    i = 0
    while True:
        seed[i % 16] = (seed[i % 16] + 1) & 0xFF
        i += 1
        yield bytes(seed)


def _decrypt_file(key: bytes, iv: bytes, data: bytes) -> bytes:
    dec = Cipher(algorithms.AES(key), CFB(iv)).decryptor()
    padded = dec.update(data) + dec.finalize()
    unpad = sympad.PKCS7(128).unpadder()
    return unpad.update(padded) + unpad.finalize()


@dataclass
class Decrypted:
    """One record in plaintext, in memory only."""

    xml: bytes
    files: dict[str, bytes] = field(default_factory=dict)  # media by original name (".enc" removed)
    signature_checked: bool = False


def _envelope(sub: Submission) -> tuple[str, list[str], str, str]:
    f = sub.fields.get(ENVELOPE_FIELD) or sub.fields  # kept aside once the statistical fields are derived
    media = [str(m.get("file", "")) for m in f.get("media") or [] if isinstance(m, dict)]
    return (
        str(f.get("base64EncryptedKey") or ""),
        media,
        str(f.get("encryptedXmlFile") or ""),
        str(f.get("base64EncryptedElementSignature") or ""),
    )


def decrypt_submission(
    keys: Sequence[rsa.RSAPrivateKey], sub: Submission, files: dict[str, bytes | None]
) -> Decrypted:
    """Decrypt a stored envelope's files (``files``: stored name → bytes) with whichever key fits.

    The signature element, when present, is checked: a record whose files were changed or swapped after
    Collect signed them raises ``DecryptionError``.
    """
    wrapped_b64, media, xml_name, signature_b64 = _envelope(sub)
    if not wrapped_b64 or not xml_name:
        raise DecryptionError("crypto.envelope_incomplete", instance_id=sub.instance_id)
    try:
        wrapped = base64.b64decode(wrapped_b64, validate=True)
    except ValueError:
        raise DecryptionError("crypto.bad_encrypted_key", instance_id=sub.instance_id) from None
    aes_key = owner = None
    for key in keys:
        try:
            aes_key, owner = key.decrypt(wrapped, OAEP), key
            break
        except ValueError:
            continue
    if aes_key is None or owner is None or len(aes_key) != 32:
        raise DecryptionError("crypto.no_key_opens", instance_id=sub.instance_id)
    ivs = iv_stream(sub.instance_id, aes_key)
    out: dict[str, bytes] = {}
    xml: bytes | None = None
    for name in [*media, xml_name]:  # order matters: media first, the XML last
        iv = next(ivs)  # a missing file still uses its IV
        data = files.get(name)
        if data is None:
            if name == xml_name:
                raise DecryptionError("crypto.part_missing", instance_id=sub.instance_id, name=name)
            continue
        try:
            plain = _decrypt_file(aes_key, iv, data)
        except ValueError:
            raise DecryptionError(
                "crypto.part_undecryptable", instance_id=sub.instance_id, name=name
            ) from None
        if name == xml_name:
            xml = plain
        else:
            out[name.removesuffix(".enc")] = plain
    assert xml is not None
    checked = False
    if signature_b64:
        _verify_signature(owner, sub, wrapped_b64, media, out, xml, signature_b64)
        checked = True
    return Decrypted(xml=xml, files=out, signature_checked=checked)


def _verify_signature(
    key: rsa.RSAPrivateKey,
    sub: Submission,
    wrapped_b64: str,
    media: list[str],
    plain: dict[str, bytes],
    xml: bytes,
    signature_b64: str,
) -> None:
    lines = [sub.form_id]
    if sub.form_version:
        lines.append(sub.form_version)
    lines += [wrapped_b64, sub.instance_id]
    for name in media:
        original = name.removesuffix(".enc")
        if original not in plain:
            return  # a media file not received yet: the signature cannot be checked until it arrives
        lines.append(f"{original}::{hashlib.md5(plain[original], usedforsecurity=False).hexdigest()}")
    lines.append(f"submission.xml::{hashlib.md5(xml, usedforsecurity=False).hexdigest()}")
    text = "".join(f"{line}\n" for line in lines)
    expected = hashlib.md5(text.encode("utf-8"), usedforsecurity=False).digest()
    try:
        given = key.decrypt(base64.b64decode(signature_b64, validate=True), OAEP)
    except ValueError:
        given = b""
    if given != expected:
        raise DecryptionError("crypto.signature_mismatch", instance_id=sub.instance_id)


# --- opening stored records ---------------------------------------------------------------------------


class Decryptor:
    """Opens stored encrypted records with the unlocked keys: reads only their files and their form's
    XForm (for the shape to parse), in memory; counts what it opened and what failed."""

    def __init__(self, store: Store, keys: Sequence[rsa.RSAPrivateKey], actor: str = "cli") -> None:
        self.store = store
        self.keys = list(keys)
        self.actor = actor
        self.decrypted = 0
        self.failed = 0
        self.failed_ids: list[str] = []
        self.forms: set[str] = set()
        self._shapes: dict[tuple[str, str], Any] = {}

    def _shape(self, form_id: str, version: str) -> Any:
        key = (form_id, version)
        if key not in self._shapes:
            self._shapes[key] = FormShape.from_xform(self.store.form_xml(form_id, version))
        return self._shapes[key]

    def open(self, sub: Submission) -> tuple[Submission, Decrypted] | None:
        """The record with its fields parsed from the decrypted XML (attachments under their original
        names, the unit its answers name), and the plaintext; None when it cannot be opened."""

        names = list(sub.attachments)
        try:
            files = {n: self.store.attachment(sub.instance_id, n) for n in names}
            plain = decrypt_submission(self.keys, sub, files)
            parsed = parse_instance(plain.xml, self._shape(sub.form_id, sub.form_version))
            if parsed.instance_id != sub.instance_id:
                raise DecryptionError("crypto.inner_id_differs", instance_id=sub.instance_id)
        except (DecryptionError, InstanceError):
            self.failed += 1
            self.failed_ids.append(sub.instance_id)
            return None
        self.decrypted += 1
        self.forms.add(sub.form_id)
        unit = sub.unit_code
        for name in ("hamlet", "commune", "province"):
            value = parsed.fields.get(name)
            if isinstance(value, str) and value.strip():
                unit = value.strip()
                break
        opened = sub.model_copy(
            update={
                "fields": parsed.fields,
                "attachments": sorted(plain.files),
                "unit_code": unit,
                "expected_attachments": parsed.attachment_names,
            }
        )
        return opened, plain

    def readable(self, subs: Iterable[Submission]) -> Iterator[Submission]:
        """``subs`` as an officer with the key reads them: plaintext records as they are, encrypted ones
        opened; those that cannot be opened are left out (and counted in ``failed``)."""
        for sub in subs:
            if not sub.encrypted:
                yield sub
                continue
            opened = self.open(sub)
            if opened is not None:
                yield opened[0]

    def record(self, what: str, target: str = "", **details: Any) -> None:
        """One audit line for this decryption session: counts only, never a field value."""
        self.store.append_audit(
            AuditEvent(
                actor=self.actor,
                action="key.decrypt",
                target=target,
                details={
                    "purpose": what,
                    "forms": sorted(self.forms),
                    "decrypted": self.decrypted,
                    "failed": self.failed,
                    **details,
                },
            )
        )


def open_decryptor(store: Store, passphrase: str, actor: str = "cli", purpose: str = "") -> Decryptor:
    """Unlock the project key with ``passphrase`` and return a ``Decryptor`` over ``store``'s records
    (``WrongPassphrase`` when it does not open the key, audited by ``unlock``)."""
    return Decryptor(store, unlock(store, passphrase, actor, purpose), actor)


def form_is_encrypted(store: Store, form_id: str) -> bool:
    """True when any published version of the form is encrypted."""
    return any(f.encrypted for f in store.list_forms(all_versions=True) if f.form_id == form_id)


def encrypted_counts(store: Store, query: SubmissionQuery | None = None) -> dict[str, int]:
    """How many matching submissions the server cannot read, by form: ODK-encrypted and their statistical
    fields not derived yet (what a report without the passphrase lacks)."""
    out: dict[str, int] = {}
    base = query or SubmissionQuery()
    for form in store.list_forms(all_versions=True):  # every record of an encrypted version is encrypted
        if not form.encrypted or (base.form_id and base.form_id != form.form_id):
            continue
        q = base.model_copy(update={"form_id": form.form_id, "form_version": form.version})
        n = sum(1 for fact in store.iter_facts(q, [UNREAD_FIELD]) if fact.fields)
        if n:
            out[form.form_id] = out.get(form.form_id, 0) + n
    return out
