"""Person records protected at rest, statistics in clear (issue 18).

**Declaration.** Which answers identify a person is declared in the XLSForm, in the survey-sheet column
``bind::rasoat:identifying`` (settings ``namespaces``: ``rasoat="https://rasoat.vn/xforms"``): ``yes``
for a value that names or locates a person (name, other names, date of birth, address, phone,
parents' names, photos, free-text notes), ``id`` for the one field holding the person's ID number (it
is identifying too, and the keyed pseudonym is computed from it). A mark on a group or repeat covers
everything in it. It is a column of its own rather than a value of the existing
``bind::rasoat:sensitive`` mark because the two answer different questions: *sensitive* (P/S, domain
analysis §2C) says who may **see** an answer, and most of F1 is S — category, treatment, services —
yet those are exactly the statistics every figure counts, so they must stay readable without a key;
*identifying* says which answers are **encrypted at rest**. A field can be S and clear (category) or
identifying. ``check_declaration`` refuses, at compile and publish time, a mark on a note or on a field
the unit placement or an indicator reads, an unknown value, two ``id`` fields, and a form field named
like the pseudonym.

**Keys.** The key-encryption key (KEK, 32 random bytes) never lives in the store or its data
directory: it comes from ``RASOAT_KEK`` (base64), the standard output of ``RASOAT_KEK_COMMAND`` (a KMS
or a password manager), ``RASOAT_KEK_FILE``, or by default a file named by the key's id in
``RASOAT_KEY_DIR`` (default ``~/.config/rasoat/keys``, mode 0600); a key path inside the store's data
directory is refused, so a backup of that directory never holds it. The store keeps only the KEK's id
and the *index key* wrapped by it (kv ``protection/keyring``). The index key gives the keyed hashes —
the person's pseudonym and the digest a resend is compared by — and, unlike the KEK, survives a
rotation, so pseudonyms stay the same across years and key changes.

**Records.** On arrival (``core.ingest``, the one way in) a record of a form with identifying fields
is split before anything is written: a fresh data key (AES-256) per record, wrapped by the KEK (AES key
wrap, RFC 3394), seals with AES-256-GCM the identifying values (kept in ``fields`` under
``PROTECTED``), the raw XML and every attachment (each sealed blob carries the wrapped data key, so a
file that arrives in a later upload opens the same way). Statistical answers stay in ``fields`` in
clear, with ``PSEUDONYM_FIELD`` (HMAC-SHA-256 of the normalised ID number) for roll-forward and
de-duplication, so indicators, snapshots and year-on-year comparisons need no key. An identical resend
is recognised by the keyed digest of its plaintext XML (``core.storage.rules``), never by plaintext.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import os
import shlex
import subprocess
import sys
import threading
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
from rasoat.core.entities import ENTITIES_NS, LABEL, SEALED, SEALED_LABEL, declared_lists
from rasoat.core.models import AuditEvent, Submission, utcnow
from rasoat.core.problems import Problem
from rasoat.core.storage.base import Store
from rasoat.core.storage.rules import PROTECTED

__all__ = [
    "PROTECTED",
    "PSEUDONYM_FIELD",
    "Keyring",
    "ProtectionError",
    "check_declaration",
    "form_declaration",
    "identifying_fields",
    "is_protected",
    "keyring",
    "open_sealed",
    "protect",
    "pseudonym",
    "reveal",
    "reveal_stored",
    "ring_for",
]

MARK = "identifying"  # bind::rasoat:identifying
PSEUDONYM_FIELD = "person_pseudonym"
KV_NS, KV_KEYRING = "protection", "keyring"
MAGIC = b"RSP1"  # a sealed blob: MAGIC | KEK id (8) | wrapped data key (40) | nonce (12) | AES-GCM
_KID_BYTES, _WRAPPED, _NONCE = 8, 40, 12
_HEADER = len(MAGIC) + _KID_BYTES + _WRAPPED + _NONCE
_YES, _NO, _ID = {"yes", "true", "true()", "1"}, {"", "no", "false", "false()", "0"}, "id"
_NO_ANSWER = {"note", "trigger", "xml-external", "csv-external", "entity"}


class ProtectionError(Problem, ValueError):
    """A key or a protected record that cannot be used; one bilingual line, never holding a secret."""


# --- the declaration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Declaration:
    """What a form declares: its identifying field paths (as ``Submission.fields`` keys them, a repeat's
    fields as ``repeat/field``) and the path of the ID number the pseudonym is computed from."""

    identifying: frozenset[str] = frozenset()
    id_field: str | None = None


def _mark(node: Mapping[str, Any]) -> str | None:
    for key, value in (node.get("bind") or {}).items():
        if str(key).rsplit(":", 1)[-1].casefold() == MARK and value is not None:
            return str(value).strip().casefold()
    return None


def _walk(
    children: Iterable[Mapping[str, Any]], prefix: str, inherited: bool
) -> Iterable[tuple[str, Mapping[str, Any], bool]]:
    """(path, node, marked) of every schema row, a group's or repeat's mark passed down to its rows."""
    for node in children:
        name = str(node.get("name", ""))
        if not name:
            continue
        mark = _mark(node)
        marked = inherited or (mark is not None and mark not in _NO)
        path = f"{prefix}{name}"
        yield path, node, marked
        if node.get("type") in {"group", "repeat", "loop"}:
            yield from _walk(node.get("children") or [], f"{path}/", marked)


def _schema(form: Any) -> Mapping[str, Any]:
    return form.schema if hasattr(form, "schema") else form


def form_declaration(form: Any) -> Declaration:
    """The declaration of a form: a pyxform schema dict, or anything with ``.schema`` (CompiledForm).

    An entity's label (``…/meta/entity/label``, ODK Entities) computed from an identifying field is
    identifying too: F1's label is the person's name, and the record keeps it beside the answers."""
    found: set[str] = set()
    names: set[str] = set()
    labels: list[tuple[str, str]] = []
    id_field = None
    for path, node, marked in _walk(_schema(form).get("children") or [], "", False):
        if node.get("type") == "entity":
            for child in node.get("children") or []:
                if child.get("type") == "label":
                    labels.append((f"{path}/label", str((child.get("bind") or {}).get("calculate") or "")))
        if not marked or node.get("type") in {"group", "repeat", "loop"} or node.get("type") in _NO_ANSWER:
            continue
        found.add(path)
        names.add(str(node.get("name")))
        if _mark(node) == _ID and id_field is None:
            id_field = path
    found |= {path for path, expr in labels if any(f"${{{n}}}" in expr for n in names)}
    return Declaration(frozenset(found), id_field)


def identifying_fields(form: Any) -> frozenset[str]:
    """The identifying field paths of a form (a schema dict or a CompiledForm); empty: nothing to protect."""
    return form_declaration(form).identifying


def check_declaration(
    form: Any, read: Mapping[str, tuple[str, str]] | None = None
) -> list[tuple[str, str, str]]:
    """Problems with a form's marks, as (field name, Vietnamese, English); ``read`` maps the field paths
    something else reads (the unit placement, an indicator) to who reads them (Vietnamese, English)."""
    problems: list[tuple[str, str, str]] = []
    reserved: list[tuple[str, str, str]] = []  # a problem only in a form that protects anything
    ids: list[str] = []
    any_mark = False
    for path, node, marked in _walk(_schema(form).get("children") or [], "", False):
        name, kind, mark = str(node.get("name")), str(node.get("type", "")), _mark(node)
        if mark is not None and mark not in _YES | _NO | {_ID}:
            problems.append((name, f"Giá trị rasoat:identifying không hợp lệ: '{mark}' (yes, id, trống)",
                             f"invalid rasoat:identifying value '{mark}' (yes, id or empty)"))
        if mark is not None and mark not in _NO and kind in _NO_ANSWER:
            problems.append((name, "Ghi chú (note) không chứa câu trả lời, không đánh dấu định danh được",
                             "a note holds no answer and cannot be marked identifying"))
        if mark == _ID:
            ids.append(name)
        if marked and kind not in _NO_ANSWER:
            any_mark = True
            who = (read or {}).get(path)
            if who:
                problems.append((name, f"Trường '{path}' được {who[0]} đọc nên phải để rõ, không đánh dấu "
                                 "định danh", f"field '{path}' is read by {who[1]}; it must stay in clear, "
                                 "not identifying"))
        if name == PSEUDONYM_FIELD:
            reserved.append((name, f"Tên '{PSEUDONYM_FIELD}' dành cho bí danh của người, hãy đổi tên trường",
                             f"the name '{PSEUDONYM_FIELD}' is reserved for the person's pseudonym; "
                             "rename it"))
    if len(ids) > 1:
        problems.append((ids[1], "Chỉ một trường được đánh dấu 'id' (số định danh)",
                         "only one field may be marked 'id' (the ID number)"))
    return problems + reserved if any_mark else problems


# --- the key-encryption key ----------------------------------------------------------------------


def kek_id(kek: bytes) -> str:
    """A KEK's public name (its key file is ``<id>.key``): a hash, from which the key cannot be had."""
    return hashlib.sha256(b"rasoat kek id\0" + kek).hexdigest()[:2 * _KID_BYTES]


def keyring_entry(kek: bytes, index_key: bytes, retired: Iterable[str] = ()) -> dict[str, Any]:
    """What the store keeps (kv ``protection/keyring``): the KEK's id and the index key wrapped by it."""
    return {"kek": kek_id(kek), "index": base64.b64encode(aes_key_wrap(kek, index_key)).decode(),
            "created_at": utcnow().isoformat(), "retired": list(retired)}


def _decode_key(text: str, where: str) -> bytes:
    raw = text.strip()
    try:
        key = bytes.fromhex(raw) if len(raw) == 64 else base64.b64decode(raw, validate=True)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ProtectionError("protection.bad_kek", where=where)
    return key


def key_dir() -> Path:
    """Where key files live by default: ``RASOAT_KEY_DIR``, else ``$XDG_CONFIG_HOME/rasoat/keys``."""
    if os.environ.get("RASOAT_KEY_DIR"):
        return Path(os.environ["RASOAT_KEY_DIR"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "rasoat" / "keys"


def check_key_path(store: Store, path: Path) -> Path:
    """``path`` unless it lies inside the store's data directory (a backup of it would hold the key)."""
    data = getattr(store, "files_dir", None)
    if data is not None:
        resolved, root = path.expanduser().resolve(), Path(data).resolve()
        if resolved == root or root in resolved.parents:
            raise ProtectionError("protection.kek_in_data_dir", root=root)
    return path.expanduser()


def _configured(store: Store) -> tuple[bytes | None, str, Path | None]:
    """(the key, where it came from, its file) from the operator's setting; no key with only a file
    that does not exist yet (or no setting: the default folder is searched by id)."""
    if os.environ.get("RASOAT_KEK"):
        return _decode_key(os.environ["RASOAT_KEK"], "RASOAT_KEK"), "RASOAT_KEK", None
    if os.environ.get("RASOAT_KEK_COMMAND"):
        cmd = os.environ["RASOAT_KEK_COMMAND"]
        try:
            out = subprocess.run(shlex.split(cmd), capture_output=True, text=True, timeout=60, check=True)
        except (OSError, subprocess.SubprocessError) as exc:
            raise ProtectionError("protection.kek_command_failed", error=type(exc).__name__) from None
        return _decode_key(out.stdout, "RASOAT_KEK_COMMAND"), "RASOAT_KEK_COMMAND", None
    if os.environ.get("RASOAT_KEK_FILE"):
        path = check_key_path(store, Path(os.environ["RASOAT_KEK_FILE"]))
        if path.is_file():
            return _decode_key(path.read_text(encoding="ascii"), str(path)), str(path), path
        return None, str(path), path
    return None, "", None


def _read_by_id(store: Store, kid: str) -> bytes | None:
    """The KEK of id ``kid``: the configured one if it is that key, else ``<key dir>/<kid>.key``."""
    key, _, _ = _configured(store)
    if key is not None and kek_id(key) == kid:
        return key
    path = check_key_path(store, key_dir() / f"{kid}.key")
    if path.is_file():
        found = _decode_key(path.read_text(encoding="ascii"), str(path))
        if kek_id(found) == kid:
            return found
    return None


def write_key_file(path: Path, kek: bytes) -> None:
    """A new key file, readable by its owner only (0600 from its creation, folder 0700)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(base64.b64encode(kek).decode() + "\n")
        fh.flush()
        os.fsync(fh.fileno())


# --- the keyring: the KEK in memory, the index key it unwraps ------------------------------------


@dataclass
class Keyring:
    """The current KEK (and, for a rotation, retired ones by id) with the index key it unwraps."""

    kid: str
    kek: bytes
    index_key: bytes
    retired: dict[str, bytes] = field(default_factory=dict)

    def _hmac_key(self, purpose: bytes) -> bytes:
        return hmac.new(self.index_key, purpose, hashlib.sha256).digest()

    def pseudonym(self, id_number: str) -> str:
        """The person's keyed pseudonym: HMAC-SHA-256 of the ID number's digits ("" for none)."""
        digits = "".join(c for c in str(id_number) if c.isdigit())
        if not digits:
            return ""
        return hmac.new(self._hmac_key(b"rasoat pseudonym v1"), digits.encode(), hashlib.sha256).hexdigest()

    def digest(self, xml: bytes) -> str:
        """The keyed digest an identical resend is recognised by (plaintext is never compared)."""
        return hmac.new(self._hmac_key(b"rasoat content v1"), bytes(xml), hashlib.sha256).hexdigest()

    def kek_for(self, kid: str) -> bytes:
        if kid == self.kid:
            return self.kek
        if kid in self.retired:
            return self.retired[kid]
        raise ProtectionError("protection.kek_missing", kid=kid, folder=key_dir())

    def wrap(self, dek: bytes) -> bytes:
        return aes_key_wrap(self.kek, dek)

    def unwrap(self, kid: str, wrapped: bytes) -> bytes:
        try:
            return aes_key_unwrap(self.kek_for(kid), wrapped)
        except InvalidUnwrap:
            raise ProtectionError("protection.kek_opens_nothing", kid=kid) from None


_CACHE: weakref.WeakKeyDictionary[Store, Keyring] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _unwrap_index(entry: Mapping[str, Any], kek: bytes) -> bytes:
    try:
        return aes_key_unwrap(kek, base64.b64decode(entry["index"]))
    except (InvalidUnwrap, KeyError, ValueError):
        raise ProtectionError("protection.kek_mismatch", kek=entry.get('kek')) from None


def keyring(store: Store, create: bool = True, current: bool = False) -> Keyring:
    """The store's keyring, loaded once per process. With ``create`` and none yet, a new KEK is made (or
    the configured one adopted), its file written outside the data directory, and a warning printed.

    With ``current`` the store's entry is read again first (one small read), so a rotation made meanwhile
    by ``rasoat protection rotate-kek`` (another process, another server) is followed: the new key is
    loaded, or, when this process cannot read it, a ``ProtectionError`` says so. Everything that seals
    asks for the current ring, so nothing is sealed under a retired key by a server started before the
    rotation."""
    if current:
        cached = _CACHE.get(store)
        if cached is not None:
            entry = store.kv_get(KV_NS, KV_KEYRING)
            if isinstance(entry, dict) and entry.get("kek") == cached.kid:
                return cached
            return _follow(store, cached, entry)
    with _LOCK:
        cached = _CACHE.get(store)
        if cached is not None:
            return cached
        ring = _load(store) or (_create(store) if create else None)
        if ring is None:
            raise ProtectionError("protection.no_key")
        _CACHE[store] = ring
        return ring


def ring_for(store: Store, kid: str) -> Keyring:
    """A keyring that holds the KEK of id ``kid`` (what a sealed record names): the loaded one, or, when
    the record was re-wrapped by a rotation since, the store's current one loaded again."""
    ring = keyring(store, create=False)
    if kid == ring.kid or kid in ring.retired:
        return ring
    return keyring(store, create=False, current=True)


def _follow(store: Store, held: Keyring, entry: Any) -> Keyring:
    """Load the keyring a rotation made current; refuse clearly when this process cannot read its KEK
    (rather than seal anything under the retired one)."""
    new = entry.get("kek") if isinstance(entry, dict) else None
    try:
        with _LOCK:
            ring = _load(store)
            if ring is None:
                raise ProtectionError("protection.keyring_gone")
            _CACHE[store] = ring
            return ring
    except ProtectionError as exc:
        raise ProtectionError(
            "protection.kek_rotated", kid=held.kid, new=new, folder=key_dir(), detail=exc
        ) from None


def forget(store: Store) -> None:
    """Drop the cached keyring (after a rotation, the next use loads the new one)."""
    with _LOCK:
        _CACHE.pop(store, None)


def _load(store: Store) -> Keyring | None:
    entry = store.kv_get(KV_NS, KV_KEYRING)
    if not isinstance(entry, dict):
        return None
    kid = str(entry["kek"])
    kek = _read_by_id(store, kid)
    if kek is None:
        configured, where, _ = _configured(store)
        if configured is not None:
            raise ProtectionError(
                "protection.kek_not_this_store", where=where, configured=kek_id(configured), kid=kid
            )
        raise ProtectionError("protection.store_kek_missing", kid=kid, file=key_dir() / (kid + '.key'))
    ring = Keyring(kid, kek, _unwrap_index(entry, kek))
    for old in entry.get("retired") or []:
        found = _read_by_id(store, str(old))
        if found is not None:
            ring.retired[str(old)] = found
    return ring


def _create(store: Store) -> Keyring:
    kek, where, path = _configured(store)
    written = None
    if kek is None:
        kek = os.urandom(32)
        written = path or check_key_path(store, key_dir() / f"{kek_id(kek)}.key")
        write_key_file(written, kek)
        where = str(written)
    index_key = os.urandom(32)
    entry = keyring_entry(kek, index_key)
    if not store.kv_cas(KV_NS, KV_KEYRING, None, entry):  # another process made it first: use theirs
        if written is not None:  # made by us a moment ago (O_EXCL), never used
            written.unlink(missing_ok=True)
        ring = _load(store)
        assert ring is not None
        return ring
    store.append_audit(AuditEvent(actor="system", action="protection.key_create", target=entry["kek"],
                                  details={"where": "file" if written else where}))
    print(
        f"Đã tạo khoá mã hoá khoá (KEK) {entry['kek']} bảo vệ hồ sơ cá nhân: {where}. Sao lưu khoá này "
        "RIÊNG, không cùng bản sao lưu dữ liệu: mất khoá là mất tên và số định danh trong hồ sơ. / "
        f"Created the key-encryption key {entry['kek']} protecting person records: {where}. Back it up "
        "SEPARATELY from the data backups: losing it loses the names and ID numbers of every record.",
        file=sys.stderr,
    )
    return Keyring(entry["kek"], kek, index_key)


# --- sealing ----------------------------------------------------------------------------------------


def _aad(instance_id: str, name: str) -> bytes:
    """What a ciphertext is bound to: its record and its name (not the KEK: a rotation re-wraps only)."""
    return MAGIC + instance_id.encode() + b"\0" + name.encode()


def _seal(ring: Keyring, dek: bytes, wrapped: bytes, instance_id: str, name: str, data: bytes) -> bytes:
    kid = bytes.fromhex(ring.kid)
    nonce = os.urandom(_NONCE)
    return MAGIC + kid + wrapped + nonce + AESGCM(dek).encrypt(nonce, bytes(data), _aad(instance_id, name))


def is_sealed(data: bytes | None) -> bool:
    return data is not None and len(data) >= _HEADER + 16 and data[: len(MAGIC)] == MAGIC


def open_sealed(ring: Keyring, instance_id: str, name: str, data: bytes) -> bytes:
    """The plaintext of a sealed XML (``name`` "submission.xml") or attachment of record ``instance_id``."""
    from cryptography.exceptions import InvalidTag

    if not is_sealed(data):
        raise ProtectionError("protection.not_sealed", instance_id=instance_id, name=name)
    at = len(MAGIC)
    kid = data[at:at + _KID_BYTES]
    wrapped = data[at + _KID_BYTES:at + _KID_BYTES + _WRAPPED]
    nonce = data[at + _KID_BYTES + _WRAPPED:_HEADER]
    dek = ring.unwrap(kid.hex(), wrapped)
    try:
        return AESGCM(dek).decrypt(nonce, data[_HEADER:], _aad(instance_id, name))
    except InvalidTag:
        raise ProtectionError("protection.sealed_damaged", instance_id=instance_id, name=name) from None


def sealed_kid(data: bytes) -> str:
    """The id of the KEK that wraps a sealed blob's data key."""
    return data[len(MAGIC):len(MAGIC) + _KID_BYTES].hex()


def rewrap_sealed(ring: Keyring, data: bytes) -> bytes:
    """A sealed blob with its data key wrapped by ``ring``'s current KEK (the ciphertext unchanged)."""
    at, end = len(MAGIC), len(MAGIC) + _KID_BYTES
    kid = data[at:end].hex()
    if kid == ring.kid:
        return data
    dek = ring.unwrap(kid, data[end:end + _WRAPPED])
    return data[:at] + bytes.fromhex(ring.kid) + ring.wrap(dek) + data[end + _WRAPPED:]


def _take(fields: dict[str, Any], path: str, secret: dict[str, Any]) -> None:
    """Move the value at ``path`` from ``fields`` to ``secret`` (inside repeats: row by row)."""
    if path in fields:
        secret[path] = fields.pop(path)
        return
    parts = path.split("/")
    for i in range(len(parts) - 1, 0, -1):
        head, rest = "/".join(parts[:i]), "/".join(parts[i:])
        rows = fields.get(head)
        if isinstance(rows, list):
            kept = secret.setdefault(head, [{} for _ in rows])
            for row, row_secret in zip(rows, kept, strict=True):
                if isinstance(row, dict):
                    _take(row, rest, row_secret)
            return


def _put(fields: dict[str, Any], secret: Mapping[str, Any]) -> None:
    for key, value in secret.items():
        rows = fields.get(key)
        if isinstance(value, list) and isinstance(rows, list):
            for row, row_secret in zip(rows, value, strict=False):
                if isinstance(row, dict) and isinstance(row_secret, dict):
                    _put(row, row_secret)
        else:
            fields[key] = value


@dataclass(frozen=True)
class Protected:
    """A record as it is stored: clear fields with the sealed envelope, sealed XML and attachments."""

    fields: dict[str, Any]
    xml: bytes
    attachments: dict[str, bytes]


XML_NAME = "submission.xml"


def protect(
    ring: Keyring,
    instance_id: str,
    fields: Mapping[str, Any],
    xml: bytes,
    attachments: Mapping[str, bytes],
    declaration: Declaration,
) -> Protected:
    """Split one record: identifying values sealed in ``fields[PROTECTED]``, XML and attachments sealed,
    the pseudonym added in clear; one fresh data key for the record, wrapped by the KEK."""
    clear = copy.deepcopy(dict(fields))
    secret: dict[str, Any] = {}
    for path in sorted(declaration.identifying):
        _take(clear, path, secret)
    if declaration.id_field:
        holder: dict[str, Any] = {}
        _take(copy.deepcopy(dict(fields)), declaration.id_field, holder)
        value = holder.get(declaration.id_field)
        alias = ring.pseudonym(value) if isinstance(value, str) else ""
        if alias:
            clear[PSEUDONYM_FIELD] = alias
    dek = AESGCM.generate_key(bit_length=256)
    wrapped = ring.wrap(dek)
    nonce = os.urandom(_NONCE)
    values = AESGCM(dek).encrypt(nonce, json.dumps(secret, ensure_ascii=False).encode(),
                                 _aad(instance_id, PROTECTED))
    b64 = base64.b64encode
    clear[PROTECTED] = {"v": 1, "kek": ring.kid, "dek": b64(wrapped).decode(),
                        "values": b64(nonce + values).decode(), "digest": ring.digest(xml)}
    sealed = {name: _seal(ring, dek, wrapped, instance_id, name, data) for name, data in attachments.items()}
    return Protected(clear, _seal(ring, dek, wrapped, instance_id, XML_NAME, xml), sealed)


def is_protected(fields: Mapping[str, Any]) -> bool:
    return isinstance(fields.get(PROTECTED), dict)


def reveal(ring: Keyring, instance_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The record's fields with its identifying values back in place (a copy; memory only). Audit the
    view at the caller: who read which records."""
    from cryptography.exceptions import InvalidTag

    out = copy.deepcopy(dict(fields))
    envelope = out.pop(PROTECTED, None)
    if not isinstance(envelope, dict):
        return out
    kid = str(envelope["kek"])
    dek = ring.unwrap(kid, base64.b64decode(envelope["dek"]))
    raw = base64.b64decode(envelope["values"])
    try:
        plain = AESGCM(dek).decrypt(raw[:_NONCE], raw[_NONCE:], _aad(instance_id, PROTECTED))
    except InvalidTag:
        raise ProtectionError("protection.identifiers_damaged", instance_id=instance_id) from None
    _put(out, json.loads(plain))
    return out


def pseudonym(ring: Keyring, id_number: str) -> str:
    """The keyed pseudonym of an ID number (what ``PSEUDONYM_FIELD`` holds)."""
    return ring.pseudonym(id_number)


# --- a store's forms, records and ingest ---------------------------------------------------------


_DECLARATIONS: weakref.WeakKeyDictionary[Store, dict[tuple[str, str], Declaration]] = (
    weakref.WeakKeyDictionary())


def stored_declaration(store: Store, form_id: str, version: str) -> Declaration:
    """The declaration of a published form version (a version never changes: cached per store)."""
    known = _DECLARATIONS.setdefault(store, {})
    found = known.get((form_id, version))
    if found is None:
        found = known[(form_id, version)] = _with_entity_labels(
            store, form_id, version, form_declaration(store.form_schema(form_id, version)))
    return found


def _with_entity_labels(store: Store, form_id: str, version: str, declaration: Declaration) -> Declaration:
    """An entity label built from identifying fields (``core.entities``) is identifying too: the
    submission's ``meta/entity/label`` answer is sealed with the rest."""
    if not declaration.identifying:
        return declaration

    xml = store.form_xml(form_id, version)
    if ENTITIES_NS.encode() not in xml:
        return declaration
    labels = {f"{d.container}/meta/entity/label".lstrip("/")
              for d in declared_lists(xml, declaration.identifying) if LABEL in d.identifying}
    return Declaration(declaration.identifying | labels, declaration.id_field)


def protect_submission(
    store: Store, sub: Submission, xml: bytes, attachments: Mapping[str, bytes]
) -> tuple[Submission, bytes, dict[str, bytes]]:
    """What ingest stores for ``sub``: protected when its form version declares identifying fields and
    the server can read it (an ODK-encrypted envelope is stored as it came)."""
    declaration = stored_declaration(store, sub.form_id, sub.form_version)
    if sub.encrypted or not declaration.identifying:
        return sub, xml, dict(attachments)
    done = protect(keyring(store, current=True), sub.instance_id, sub.fields, xml, attachments, declaration)
    stored = sub.model_copy(update={"fields": done.fields,
                                    "xml_md5": hashlib.md5(done.xml, usedforsecurity=False).hexdigest()})
    return stored, done.xml, done.attachments


def same_content(store: Store, stored: Submission, xml: bytes) -> bool:
    """Is ``xml`` the content of the stored version (its keyed digest when protected)?"""
    envelope = stored.fields.get(PROTECTED)
    if isinstance(envelope, dict):
        return hmac.compare_digest(str(envelope.get("digest")), keyring(store).digest(xml))
    return stored.xml_md5 == hashlib.md5(xml, usedforsecurity=False).hexdigest()


def plain_attachment(store: Store, instance_id: str, name: str, data: bytes) -> bytes:
    """A stored attachment's bytes in plaintext (a sealed one opened in memory)."""
    if not is_sealed(data):
        return data
    return open_sealed(ring_for(store, sealed_kid(data)), instance_id, name, data)


def reveal_stored(store: Store, instance_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """``reveal`` with the store's keyring (loaded again when a rotation re-wrapped the record since)."""
    envelope = fields.get(PROTECTED)
    if not isinstance(envelope, dict):
        return copy.deepcopy(dict(fields))
    return reveal(ring_for(store, str(envelope.get("kek"))), instance_id, fields)


# --- entity properties (issue 23) ------------------------------------------------------------------


def _entity_owner(uuid: str) -> str:
    return f"entity:{uuid}"


def seal_entity_values(
    ring: Keyring, uuid: str, data: Mapping[str, Any], identifying: Iterable[str]
) -> dict[str, Any]:
    """``data`` (an entity block's properties) with each identifying value sealed on its own,
    ``{"#sealed": base64}`` bound to the entity and the property, so the store merges and versions them
    without a key; statistical properties stay in clear."""

    secret = set(identifying)
    out: dict[str, Any] = {}
    for name, value in data.items():
        if name in secret and isinstance(value, str):
            dek = AESGCM.generate_key(bit_length=256)
            sealed = _seal(ring, dek, ring.wrap(dek), _entity_owner(uuid), name, value.encode())
            out[name] = {SEALED: base64.b64encode(sealed).decode()}
        else:
            out[name] = value
    return out


def seal_entity_label(ring: Keyring, uuid: str, label: str) -> str:
    """A label built from identifying fields, sealed as text (``core.entities.SEALED_LABEL`` + base64)."""

    dek = AESGCM.generate_key(bit_length=256)
    sealed = _seal(ring, dek, ring.wrap(dek), _entity_owner(uuid), LABEL, label.encode())
    return SEALED_LABEL + base64.b64encode(sealed).decode()


def open_entity_label(ring: Keyring, uuid: str, label: str) -> str:
    if not label.startswith(SEALED_LABEL):
        return label
    raw = base64.b64decode(label[len(SEALED_LABEL):])
    return open_sealed(ring, _entity_owner(uuid), LABEL, raw).decode()


def open_entity_values(ring: Keyring, uuid: str, properties: Mapping[str, Any]) -> dict[str, str]:
    """An entity's properties in clear (memory only): what a phone of the entity's unit receives."""

    out: dict[str, str] = {}
    for name, value in properties.items():
        if isinstance(value, dict) and SEALED in value:
            raw = base64.b64decode(value[SEALED])
            out[name] = open_sealed(ring, _entity_owner(uuid), name, raw).decode()
        else:
            out[name] = str(value)
    return out


def has_sealed_values(properties: Mapping[str, Any], label: str = "") -> bool:
    sealed = any(isinstance(v, dict) and SEALED in v for v in properties.values())
    return sealed or label.startswith(SEALED_LABEL)
