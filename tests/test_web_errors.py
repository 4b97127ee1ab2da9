"""Officer pages answer mistakes with a message and keep what was typed, never a server error: a round with
no form ticked, a collector with no round or no unit ticked, an assignment with nobody ticked, a submission
filter with a unit that is not one (a '/' in it) or a commune outside one's units (each message in the
chosen language, never both glued); a locked login says when to try again (Retry-After)."""

from __future__ import annotations

import httpx
import pytest
from rasoat.core.users import MAX_USER_FAILURES
from server_support import COMMUNE, OTHER_COMMUNE
from web_support import csrf_of, http_login


def test_round_with_no_form_ticked_is_a_message_with_the_values_kept(site) -> None:
    client = http_login(site.url, "tinh.thainguyen")
    token = csrf_of(client.get("/rounds").text)
    before = len(site.store.list_rounds())
    resp = client.post("/rounds", data={"name": "Đợt không biểu mẫu", "period": "2026-Q3", "units": COMMUNE,
                                        "csrf": token})
    assert resp.status_code == 400, resp.text
    assert 'role="alert"' in resp.text and "biểu mẫu" in resp.text.lower()
    assert 'value="Đợt không biểu mẫu"' in resp.text and 'value="2026-Q3"' in resp.text
    assert len(site.store.list_rounds()) == before


def test_collector_with_no_round_ticked_is_added_and_with_no_unit_is_a_message(site) -> None:
    client = http_login(site.url, "xa.phuongtien")
    token = csrf_of(client.get("/collectors").text)
    resp = client.post("/collectors", data={"name": "Người Chưa Giao Đợt", "units": COMMUNE, "csrf": token})
    assert resp.status_code == 201, resp.text  # assigned to rounds later
    assert any(u.display_name == "Người Chưa Giao Đợt" for u in site.store.list_users())
    resp = client.post("/collectors", data={"name": "Người Không Đơn Vị", "csrf": token})
    assert resp.status_code == 400, resp.text
    assert 'role="alert"' in resp.text and 'value="Người Không Đơn Vị"' in resp.text
    assert not any(u.display_name == "Người Không Đơn Vị" for u in site.store.list_users())


def test_assign_with_nobody_ticked_is_a_message(site) -> None:
    client = http_login(site.url, "xa.phuongtien")
    token = csrf_of(client.get("/rounds/r-open").text)
    before = list(site.store.get_round("r-open").collector_ids)
    resp = client.post("/rounds/r-open/collectors", data={"csrf": token})
    assert resp.status_code == 400, resp.text
    assert "đánh dấu ít nhất một người thu thập" in resp.text and "Tick at least" not in resp.text
    assert site.store.get_round("r-open").collector_ids == before


@pytest.mark.parametrize("unit", ["a/b", "../..", "99999"])
def test_admin_filter_with_a_unit_that_is_not_one(site, unit: str) -> None:
    client = http_login(site.url, "quantri")
    resp = client.get("/submissions", params={"form": "tform", "unit": unit})
    assert resp.status_code == 400, resp.text
    assert "Không có đơn vị" in resp.text and "No unit" not in resp.text  # one language per message
    assert 'name="form"' in resp.text  # the filter form is there to correct it
    english = client.get("/submissions", params={"form": "tform", "unit": unit, "lang": "en"})
    assert "No unit" in english.text and "Không có đơn vị" not in english.text


def test_unknown_unit_is_said_to_be_unknown_and_outside_only_when_it_is_known(site) -> None:
    """A commune officer typing a code no registry has is told so (400); a real commune of another officer
    is "outside your units" (403); each in one language."""
    client = http_login(site.url, "xa.phuongtien")
    unknown = client.get("/submissions", params={"form": "tform", "unit": "99999"})
    assert unknown.status_code == 400, unknown.text
    assert "Không có đơn vị mã 99999" in unknown.text and "ngoài phạm vi" not in unknown.text
    assert "No unit" not in unknown.text
    outside = client.get("/submissions", params={"form": "tform", "unit": OTHER_COMMUNE, "lang": "en"})
    assert outside.status_code == 403, outside.text
    assert f"Unit {OTHER_COMMUNE} is outside" in outside.text and "ngoài phạm vi" not in outside.text


def test_locked_login_says_when_to_try_again(site) -> None:
    client = httpx.Client(base_url=site.url, follow_redirects=False)
    resp = None
    for _ in range(MAX_USER_FAILURES + 1):
        page = client.get("/login")
        resp = client.post("/login", data={"username": "nguoixem", "password": "sai-mật-khẩu",
                                           "csrf": csrf_of(page.text)})
    assert resp is not None and resp.status_code == 429
    assert int(resp.headers["retry-after"]) > 0


@pytest.mark.parametrize("form_id", ["a/b", "../..", "x\\y", "\x00", "no_such_form"])
def test_submission_filter_with_a_form_that_is_not_one(site, form_id: str) -> None:
    client = http_login(site.url, "quantri")
    resp = client.get("/submissions", params={"form": form_id})
    assert resp.status_code == 400, resp.text
    assert "Không có biểu mẫu" in resp.text and "No form" not in resp.text


@pytest.mark.parametrize("iid", ["x\\y", "%00"])  # %00: a NUL once the path is decoded
def test_a_record_name_no_store_could_hold_is_not_found(site, iid: str) -> None:
    client = http_login(site.url, "quantri")
    resp = client.get(f"/submissions/{iid}")
    assert resp.status_code == 404, resp.text
