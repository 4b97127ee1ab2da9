"""Officer accounts, login throttling, the scope rules and the audit log (core.users, core.scope,
core.audit and their commands), on a real embedded store."""

from __future__ import annotations

import hashlib
import json

import openpyxl
import pytest
from rasoat.core import scope
from rasoat.core.models import Role, Round, Submission, User
from rasoat.core.storage.base import SubmissionQuery
from rasoat.core.storage.opening import open_store
from rasoat.core.users import (
    MAX_USER_FAILURES,
    AccountDisabled,
    Throttled,
    UserError,
    WrongCredentials,
    authenticate,
    create_user,
    disable_user,
    new_api_token,
    set_role,
    user_by_api_token,
)
from server_support import COMMUNE, OTHER_COMMUNE, run_cli

PASSWORD = "mật-khẩu-dài-1"


@pytest.fixture
def store(tmp_path):
    s = open_store(tmp_path / "data")
    yield s
    s.close()


def test_passwords_are_argon2id_and_login_works(store) -> None:
    user = create_user(store, "Can.Bo1", PASSWORD, "commune_officer", [COMMUNE], "Cán bộ Một")
    assert user.username == "can.bo1"
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert authenticate(store, "can.bo1", PASSWORD, "10.0.0.1", via="api").id == user.id
    with pytest.raises(WrongCredentials):
        authenticate(store, "can.bo1", "sai-mat-khau-123", "10.0.0.1")
    with pytest.raises(WrongCredentials):  # an unknown name fails the same way
        authenticate(store, "khong-co", PASSWORD, "10.0.0.1")
    with pytest.raises(UserError):
        create_user(store, "ngan", "short", "viewer", [COMMUNE])
    with pytest.raises(UserError):  # every role but admin is scoped
        create_user(store, "khongdonvi", PASSWORD, "viewer", [])
    with pytest.raises(UserError):
        create_user(store, "sai-don-vi", PASSWORD, "viewer", ["99999"])
    with pytest.raises(UserError):
        create_user(store, "thu-thap", PASSWORD, "collector", [COMMUNE])
    actions = [(e.action, e.actor) for e in store.iter_audit()]
    assert ("login.ok", "can.bo1") in actions
    assert ("login.failed", "can.bo1") in actions and ("login.failed", "khong-co") in actions
    assert not any(PASSWORD in json.dumps(e.details, ensure_ascii=False) for e in store.iter_audit())


@pytest.mark.slow
def test_throttling_kicks_in_per_user_and_holds_across_store_handles(store, tmp_path) -> None:
    create_user(store, "bi-khoa", PASSWORD, "viewer", [COMMUNE])
    for _ in range(MAX_USER_FAILURES):
        with pytest.raises(WrongCredentials):
            authenticate(store, "bi-khoa", "wrong-password-x", f"10.0.1.{_}")
    with pytest.raises(Throttled) as info:  # even the right password, from any address
        authenticate(store, "bi-khoa", PASSWORD, "10.0.9.9")
    assert info.value.retry_after > 600 and "15" in info.value.message
    other = open_store(tmp_path / "data")  # another process's view of the same data dir
    try:
        with pytest.raises(Throttled):
            authenticate(other, "bi-khoa", PASSWORD, "10.0.9.9")
    finally:
        other.close()
    assert any(e.action == "login.throttled" for e in store.iter_audit())
    # an administrator lifts it
    r = run_cli("users", "unlock", "bi-khoa", "--data", str(tmp_path / "data"))
    assert r.returncode == 0, r.stderr
    assert authenticate(store, "bi-khoa", PASSWORD, "10.0.9.9").username == "bi-khoa"


@pytest.mark.slow
def test_throttling_per_address(store) -> None:
    from rasoat.core.users import MAX_IP_FAILURES

    create_user(store, "nguoi-that", PASSWORD, "viewer", [COMMUNE])
    for n in range(MAX_IP_FAILURES):
        with pytest.raises(WrongCredentials):
            authenticate(store, f"doan-{n}", "wrong-password-x", "203.0.113.7")
    with pytest.raises(Throttled):
        authenticate(store, "nguoi-that", PASSWORD, "203.0.113.7")
    assert authenticate(store, "nguoi-that", PASSWORD, "203.0.113.8").username == "nguoi-that"


def test_disabled_account_and_api_token(store) -> None:
    create_user(store, "tam-nghi", PASSWORD, "province_manager", ["19"])
    token = new_api_token(store, "tam-nghi")
    assert len(token) >= 40 and user_by_api_token(store, token).username == "tam-nghi"
    assert store.get_user_by_name("tam-nghi").token_hash != token  # only the hash is kept
    disable_user(store, "tam-nghi")
    assert user_by_api_token(store, token) is None
    with pytest.raises(AccountDisabled):
        authenticate(store, "tam-nghi", PASSWORD, "10.0.0.2")


def _sub(iid: str, unit: str | None) -> Submission:
    return Submission(instance_id=iid, form_id="tform", form_version="1", unit_code=unit, xml_md5="0" * 32)


def test_scope_rules() -> None:
    officer = User(id="u1", username="xa", role=Role.commune_officer, unit_codes=[COMMUNE])
    province = User(id="u2", username="tinh", role=Role.province_manager, unit_codes=["19"])
    admin = User(id="u3", username="admin", role=Role.admin)
    viewer = User(id="u4", username="xem", role=Role.viewer, unit_codes=[COMMUNE])
    gone = officer.model_copy(update={"active": False})

    assert scope.allowed_units(admin) is None
    mine = scope.allowed_units(officer)
    assert COMMUNE in mine and OTHER_COMMUNE not in mine and "19" not in mine
    assert all(c == COMMUNE or c.startswith(COMMUNE + "-") for c in mine)
    assert {COMMUNE, OTHER_COMMUNE} <= scope.allowed_units(province)
    assert scope.allowed_units(gone) == set()
    scope.allowed_units(officer).add("01")  # the caller's copy: what a user may see is not changed by it
    assert "01" not in scope.allowed_units(officer) and not scope.unit_allowed(officer, "01")
    # the check a page makes once per figure says what allowed_units says, for each kind of user
    for user in (officer, province, admin, viewer, gone):
        check, allowed = scope.unit_check(user), scope.allowed_units(user)
        for code in (COMMUNE, OTHER_COMMUNE, "19", "01", None):
            expected = allowed is None or (code is not None and code in allowed)
            assert check(code) is expected and scope.unit_allowed(user, code) is expected

    q = scope.narrow(SubmissionQuery(form_id="tform"), officer)
    assert q.form_id == "tform" and set(q.unit_codes) == mine
    assert scope.narrow(SubmissionQuery(unit_codes=[OTHER_COMMUNE]), officer).unit_codes == []
    assert scope.narrow(SubmissionQuery(unit_codes=[OTHER_COMMUNE]), province).unit_codes == [OTHER_COMMUNE]
    assert scope.narrow(SubmissionQuery(), admin).unit_codes is None

    scope.require_submission(officer, _sub("a", COMMUNE))
    with pytest.raises(scope.ScopeError):
        scope.require_submission(officer, _sub("b", OTHER_COMMUNE))
    with pytest.raises(scope.ScopeError):
        scope.require_submission(officer, _sub("c", None))  # no unit: administrators only
    scope.require_submission(admin, _sub("c", None))
    with pytest.raises(scope.ScopeError):
        scope.require_unit(officer, "19")

    assert scope.round_visible(officer, Round(id="r", name="r", period="2026", unit_codes=["19"]))
    assert not scope.round_visible(
        officer, Round(id="r2", name="r", period="2026", unit_codes=[OTHER_COMMUNE])
    )

    assert scope.can(officer, "view_personal") and scope.can(officer, "review")
    assert not scope.can(officer, "manage_users") and scope.can(admin, "manage_users")
    assert not scope.can(viewer, "view_personal") and scope.can(viewer, "export")
    assert not scope.can(gone, "view")
    assert scope.export_units(officer, ()) == (COMMUNE,)
    with pytest.raises(scope.ScopeError):
        scope.export_units(officer, (OTHER_COMMUNE,))
    assert scope.report_unit(officer, None) == COMMUNE
    with pytest.raises(scope.ScopeError):
        scope.report_unit(officer, "19")


def test_narrowed_query_on_a_real_store(store) -> None:
    officer = User(id="u1", username="xa", role=Role.commune_officer, unit_codes=[COMMUNE])
    for iid, unit in (
        ("uuid:mine", COMMUNE),
        ("uuid:hamlet", f"{COMMUNE}-01"),
        ("uuid:other", OTHER_COMMUNE),
        ("uuid:none", None),
    ):
        md5 = hashlib.md5(iid.encode()).hexdigest()
        store.save_submission(_sub(iid, unit).model_copy(update={"xml_md5": md5}), iid.encode(), {})
    query = scope.narrow(SubmissionQuery(form_id="tform"), officer)
    seen = {s.instance_id for s in store.iter_submissions(query)}
    assert seen == {"uuid:mine", "uuid:hamlet"}


@pytest.mark.slow
def test_users_and_audit_commands(tmp_path) -> None:
    data = str(tmp_path / "data")
    pw = tmp_path / "pw.txt"
    pw.write_text(PASSWORD + "\n")
    assert run_cli("init", data).returncode == 0
    r = run_cli(
        "users",
        "add",
        "quan.ly",
        "--role",
        "province_manager",
        "--unit",
        "19",
        "--name",
        "Quản lý",
        "--password-file",
        str(pw),
        "--data",
        data,
        "--by",
        "admin1",
    )
    assert r.returncode == 0, r.stderr
    r = run_cli(
        "users",
        "add",
        "=cmd",
        "--role",
        "viewer",
        "--unit",
        COMMUNE,
        "--password-file",
        str(pw),
        "--data",
        data,
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr
    r = run_cli(
        "users", "set-role", "quan.ly", "commune_officer", "--unit", COMMUNE, "--data", data, "--by", "admin1"
    )
    assert r.returncode == 0, r.stderr
    r = run_cli("users", "list", "--json", "--data", data)
    [row] = json.loads(r.stdout)
    assert row["role"] == "commune_officer" and row["units"] == [COMMUNE] and row["active"]
    assert run_cli("users", "disable", "quan.ly", "--data", data).returncode == 0
    assert json.loads(run_cli("users", "list", "--json", "--data", data).stdout)[0]["active"] is False

    r = run_cli("audit", "--json", "--data", data, "--user", "admin1")
    events = json.loads(r.stdout)
    assert [e["action"] for e in events] == ["user.add", "user.set_role"]
    assert events[1]["details"]["to"] == {"role": "commune_officer", "units": [COMMUNE]}
    assert PASSWORD not in r.stdout
    r = run_cli("audit", "--since", "1d", "--action", "user", "--data", data)
    assert r.returncode == 0 and "user.disable" in r.stdout
    out = tmp_path / "audit.xlsx"
    r = run_cli("audit", "--xlsx", str(out), "--data", data)
    assert r.returncode == 0, r.stderr
    ws = openpyxl.load_workbook(out).active
    rows = list(ws.iter_rows(values_only=True))
    users = [r for r in rows[1:] if str(r[3]).startswith("user.")]  # init also logs the key it made
    assert rows[0][2:4] == ("Hành động / Action", "Mã hành động / Action code") and len(users) == 3
    assert users[0][2:5] == ("Tạo tài khoản / Account created", "user.add", "quan.ly")
    r = run_cli("audit", "--since", "hôm qua", "--data", data)
    assert r.returncode == 1 and "Invalid time" in r.stderr


def test_set_role_is_audited(store) -> None:
    create_user(store, "doi-vai", PASSWORD, "viewer", [COMMUNE])
    user = set_role(store, "doi-vai", "province_manager", ["19"], actor="admin")
    assert user.role is Role.province_manager and user.unit_codes == ["19"]
    [event] = [e for e in store.iter_audit() if e.action == "user.set_role"]
    assert event.actor == "admin" and event.details["from"]["role"] == "viewer"
