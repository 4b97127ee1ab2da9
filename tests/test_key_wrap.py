"""The project private key is sealed under the passphrase with a memory-hard KDF (argon2id) whose
parameters are stored beside the ciphertext; keys wrapped the older way (PKCS#8 PEM under PBKDF2) or with
weaker parameters open as before and are re-wrapped the next time the passphrase is used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from rasoat.core import crypto
from rasoat.core.storage.opening import open_store

PASSPHRASE = "cụm mật khẩu của tỉnh 2026"


@pytest.fixture
def store(tmp_path: Path):
    store = open_store(tmp_path / "data")
    yield store
    store.close()


def _numbers(key: rsa.RSAPrivateKey) -> int:
    return key.private_numbers().d


def _rewraps(store) -> int:
    return sum(1 for e in store.iter_audit() if e.action == "key.rewrap")


def test_a_new_key_is_sealed_with_argon2id_and_its_parameters(store) -> None:
    crypto.create_project_key(store, PASSPHRASE, actor="test")
    entry = crypto.key_entry(store)
    wrapped = entry["private_key"]
    assert "private_key_pem" not in entry
    assert wrapped["kdf"] == "argon2id" and wrapped["m"] >= 19 * 1024 and wrapped["t"] >= 1
    assert wrapped["salt"] and wrapped["nonce"] and wrapped["cipher"] == "aes-256-gcm"
    assert "PRIVATE KEY" not in json.dumps(entry)  # nothing readable without the passphrase
    [key] = crypto.unlock(store, PASSPHRASE)
    assert crypto._public_b64(key.public_key()) == entry["public_key"]
    with pytest.raises(crypto.WrongPassphrase):
        crypto.unlock(store, "not the passphrase at all")
    assert _rewraps(store) == 0  # already current: nothing written


def _legacy_item(key: rsa.RSAPrivateKey, passphrase: str) -> dict:
    """A key entry as rasoat wrote it before: PKCS#8 PEM under the passphrase (PBKDF2)."""
    public = crypto._public_b64(key.public_key())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.BestAvailableEncryption(passphrase.encode()))
    return {"public_key": public, "fingerprint": crypto.fingerprint(public), "private_key_pem": pem.decode(),
            "created_at": "2026-01-01T00:00:00+00:00"}


def test_a_pbkdf2_key_is_rewrapped_at_the_next_use_of_the_passphrase(store) -> None:
    current = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    retired = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    legacy = {**_legacy_item(current, PASSPHRASE), "created_by": "test",
              "retired": [_legacy_item(retired, PASSPHRASE)]}
    store.kv_put(crypto.KV_NS, crypto.KEY_ENTRY, legacy)

    with pytest.raises(crypto.WrongPassphrase):  # a wrong passphrase changes nothing
        crypto.unlock(store, "not the passphrase at all")
    assert crypto.key_entry(store) == legacy

    keys = crypto.unlock(store, PASSPHRASE, actor="officer")
    assert [_numbers(k) for k in keys] == [_numbers(current), _numbers(retired)]
    entry = crypto.key_entry(store)
    for item in (entry, *entry["retired"]):
        assert "private_key_pem" not in item and item["private_key"]["kdf"] == "argon2id"
    assert entry["fingerprint"] == legacy["fingerprint"] and entry["public_key"] == legacy["public_key"]
    assert _rewraps(store) == 1
    again = crypto.unlock(store, PASSPHRASE)  # the same keys from the new wrapping; no second re-wrap
    assert [_numbers(k) for k in again] == [_numbers(current), _numbers(retired)]
    assert _rewraps(store) == 1


def test_parameters_can_be_raised_later(store, monkeypatch: pytest.MonkeyPatch) -> None:
    weak = {"kdf": "argon2id", "t": 1, "m": 8 * 1024, "p": 1}
    monkeypatch.setattr(crypto, "KDF_PARAMS", weak)
    crypto.create_project_key(store, PASSPHRASE, actor="test")
    assert crypto.key_entry(store)["private_key"]["m"] == 8 * 1024
    monkeypatch.undo()  # the code now asks for more: the stored key still opens, then is re-wrapped
    [key] = crypto.unlock(store, PASSPHRASE)
    wrapped = crypto.key_entry(store)["private_key"]
    assert wrapped["m"] == crypto.KDF_PARAMS["m"] and wrapped["t"] == crypto.KDF_PARAMS["t"]
    [same] = crypto.unlock(store, PASSPHRASE)
    assert _numbers(same) == _numbers(key)


def test_change_passphrase_and_rotate_keep_every_key_readable(store) -> None:
    crypto.create_project_key(store, PASSPHRASE, actor="test")
    [first] = crypto.unlock(store, PASSPHRASE)
    crypto.rotate_key(store, PASSPHRASE, actor="test")
    crypto.change_passphrase(store, PASSPHRASE, "một cụm mật khẩu mới hơn", actor="test")
    keys = crypto.unlock(store, "một cụm mật khẩu mới hơn")
    assert len(keys) == 2 and _numbers(keys[1]) == _numbers(first)
    with pytest.raises(crypto.WrongPassphrase):
        crypto.unlock(store, PASSPHRASE)
