"""The officer pages over plain HTTP: sessions, CSRF, security headers, and scope on every kind of page.

The browser drives the same pages in tests/test_web_pages.py; here each rule is checked directly, fast.
"""

from __future__ import annotations

import hashlib
import io
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx
import openpyxl
from rasoat.core import audit
from rasoat.core.indicators.engine import evaluate
from rasoat.core.indicators.periods import vn_today
from rasoat.core.models import ReviewState
from rasoat.core.units import get_units
from rasoat.server.web import session as sessions
from rasoat.server.web import web_router
from rasoat.server.web.pages_overview import value_text
from server_support import COMMUNE, OTHER_COMMUNE
from web_support import INDICATOR_ID, OTHER_NAMES, csrf_of, http_login

PUBLIC = {"/login", "/password-reset/{token:str}", "/favicon.ico"}  # the pages that need no session


def web_paths(method: str, public: bool = False) -> list[str]:
    """Every officer page's address answering ``method`` (those of ``PUBLIC`` only if ``public``), its path
    parameters filled in: ``{year:int}`` → 2026, any other → x."""
    return [re.sub(r"\{\w+:(\w+)\}", lambda m: "2026" if m[1] == "int" else "x", route.path)
            for route in web_router().routes
            if method in route.methods and (public or route.path not in PUBLIC)]


def test_pages_need_a_login_and_come_back_after_it(site) -> None:
    anon = httpx.Client(base_url=site.url, follow_redirects=False)
    every = web_paths("GET")
    assert "/accounts" in every and "/persons/x" in every and "/login" not in every
    for path in [*every, "/submissions?form=tform", "/exports/raw?form=tform"]:
        resp = anon.get(path)
        assert resp.status_code == 303, path
        assert resp.headers["location"] == "/login?" + urlencode({"next": path}), path
    resp = anon.get(f"/submissions/{quote(site.here_ids[0], safe='')}")
    assert resp.status_code == 303 and resp.headers["location"].startswith("/login?next=%2Fsubmissions%2F")
    for path in web_paths("POST"):
        resp = anon.post(path, data={"state": "approved"})
        assert resp.status_code == 303 and resp.headers["location"] == "/login?next=%2F", path


def test_login_sets_a_strict_session_cookie_kept_in_the_store(site) -> None:
    client = http_login(site.url, "xa.phuongtien")
    cookie = next(c for c in client.cookies.jar if c.name == sessions.COOKIE)
    # Set-Cookie flags, as the browser gets them at login
    login = httpx.Client(base_url=site.url, follow_redirects=False)
    page = login.get("/login")
    resp = login.post("/login", data={"username": "xa.phuongtien", "password": "mật-khẩu-xã-00001",
                                      "csrf": csrf_of(page.text), "next": "/"})
    set_cookie = [v.lower() for k, v in resp.headers.multi_items()
                  if k == "set-cookie" and v.startswith(sessions.COOKIE)]
    assert set_cookie and "httponly" in set_cookie[0] and "samesite=lax" in set_cookie[0]
    assert "secure" not in set_cookie[0]  # plain HTTP here; HTTPS (or X-Forwarded-Proto) adds it
    # the state lives in the store's kv under the hash of the cookie, so every server process shares it
    assert sessions.load(site.store, cookie.value) is not None
    assert site.store.kv_get(sessions.NAMESPACE, cookie.value) is None


def test_wrong_password_and_login_form_without_csrf_are_refused(site) -> None:
    client = httpx.Client(base_url=site.url, follow_redirects=False)
    page = client.get("/login")
    resp = client.post("/login", data={"username": "xa.tancuong", "password": "sai-mat-khau-roi",
                                       "csrf": csrf_of(page.text)})
    assert resp.status_code == 401
    assert "Sai tên đăng nhập hoặc mật khẩu" in resp.text
    other = httpx.Client(base_url=site.url, follow_redirects=False)  # no login CSRF cookie
    resp = other.post("/login", data={"username": "xa.tancuong", "password": "mật-khẩu-xã-00002",
                                      "csrf": csrf_of(page.text)})
    assert resp.status_code == 403
    assert sessions.COOKIE not in resp.cookies


def test_every_post_needs_the_session_csrf_token(site) -> None:
    client = http_login(site.url, "tinh.thainguyen")
    iid = quote(site.here_ids[1], safe="")
    for path, data in [
        (f"/submissions/{iid}/review", {"state": "approved"}),
        ("/rounds", {"name": "Đợt giả", "period": "2026", "units": COMMUNE, "forms": "tform"}),
        ("/rounds/r-open/state", {"target": "closed"}),
        ("/collectors", {"name": "Kẻ giả mạo", "units": COMMUNE}),
        ("/logout", {}),
    ]:
        resp = client.post(path, data={**data, "csrf": "not-the-token"})
        assert resp.status_code == 403, path
    assert site.store.get_submission(site.here_ids[1]).review_state is ReviewState.received
    assert site.store.get_round("r-open").state.value == "open"
    assert all(r.name != "Đợt giả" for r in site.store.list_rounds())


def test_every_form_post_is_refused_without_its_csrf_token(site) -> None:
    """Every POST of the officer pages, to an administrator (whom no role guard stops), with a wrong
    token: the "form has expired" page; the login and reset-link forms check their double-submit cookie."""
    admin = http_login(site.url, "quantri")
    every = web_paths("POST", public=True)
    assert "/persons/x/resolve" in every and "/login" in every and "/password-reset/x" in every
    for path in every:
        resp = admin.post(path, data={"csrf": "not-the-token"})
        assert resp.status_code == 403 and "Biểu mẫu đã hết hạn" in resp.text, (path, resp.text[:300])
    assert http_login(site.url, "quantri").get("/accounts").status_code == 200  # still logged in


def test_pages_carry_security_headers_and_no_outside_resources(site) -> None:
    client = http_login(site.url, "quantri")
    for path in ["/", "/indicators", "/rounds", "/plugins"]:
        resp = client.get(path)
        assert resp.status_code == 200
        assert "default-src 'self'" in resp.headers["content-security-policy"]
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["cache-control"] == "no-store"
        assert '<meta name="viewport"' in resp.text
        assert "http://" not in resp.text.replace(site.url, "") and "https://" not in resp.text
    css = client.get("/static/web.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]


def test_logout_ends_the_session_everywhere(site) -> None:
    client = http_login(site.url, "nguoixem")
    value = client.cookies[sessions.COOKIE]
    page = client.get("/")
    resp = client.post("/logout", data={"csrf": csrf_of(page.text)})
    assert resp.status_code == 303
    assert sessions.load(site.store, value) is None
    replay = httpx.Client(base_url=site.url, follow_redirects=False, cookies={sessions.COOKIE: value})
    assert replay.get("/").status_code == 303


def test_commune_officer_never_reaches_another_commune(site) -> None:
    client = http_login(site.url, "xa.phuongtien")
    other = quote(site.there_ids[0], safe="")
    assert client.get(f"/submissions/{other}").status_code == 403
    assert client.get(f"/submissions/{other}/files/anh.png").status_code == 403
    page = client.get("/submissions")
    resp = client.post(f"/submissions/{other}/review", data={"state": "approved", "csrf": csrf_of(page.text)})
    assert resp.status_code == 403
    assert site.store.get_submission(site.there_ids[0]).review_state is ReviewState.received
    assert client.get(f"/submissions?form=tform&unit={OTHER_COMMUNE}").status_code == 403
    assert client.get(f"/indicators?unit={OTHER_COMMUNE}").status_code == 403
    assert client.get(f"/exports/raw?form=tform&unit={OTHER_COMMUNE}").status_code == 403
    assert client.get(f"/exports/report?unit={OTHER_COMMUNE}").status_code == 403
    listing = client.get("/submissions?form=tform").text
    assert site.there_ids[0] not in listing and OTHER_NAMES[0] not in listing
    overview = client.get("/").text
    assert f'data-unit="{OTHER_COMMUNE}"' not in overview and f'data-unit="{COMMUNE}"' in overview
    raw = client.get("/exports/raw?form=tform&labels=none")
    assert raw.status_code == 200
    wb = openpyxl.load_workbook(io.BytesIO(raw.content), read_only=True)
    cells = {str(c) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for c in row if c}
    assert OTHER_COMMUNE not in cells and COMMUNE in cells


def test_the_overview_counts_the_units_below_off_target_inside_the_officers_scope(site) -> None:
    """The overview's "units below not met" of an indicator: of the units one level below the officer's
    own that they may see, how many missed the target, and their names (the engine's statuses)."""
    below = get_units().expand([COMMUNE]) - {COMMUNE}
    results = evaluate(site.store, str(vn_today().year), units=[COMMUNE], level="hamlet")
    mine = [r for r in results if r.indicator_id == INDICATOR_ID and r.unit_code in below]
    missed = [r.unit_name for r in mine if r.status.value == "not_met"]
    assert mine and missed  # the seed has a hamlet under its target and others over it
    for username in ("xa.phuongtien", "nguoixem"):
        html = http_login(site.url, username).get("/").text
        row = re.search(f'<tr data-indicator="{INDICATOR_ID}">.*?</tr>', html, re.S)
        assert row, username
        assert f"<b>{len(missed)}/{len(mine)}</b> <small>{', '.join(missed)}</small>" in row.group(0)


def test_the_audit_page_walks_the_log_from_a_key_newest_first(site, monkeypatch) -> None:
    """100 entries a page, newest first: the Older links walk every entry once, Newer comes back, and the
    walk reads each entry of the log about once (from each page's key), not the log up to every page."""
    from rasoat.core import audit
    from rasoat.core.models import AuditEvent

    for n in range(230):
        site.store.append_audit(AuditEvent(actor="nguoixem", action="view.submission",
                                           target=f"uuid:walk-{n}"))
    in_log = sum(1 for e in site.store.iter_audit(actor="nguoixem"))
    monkeypatch.setattr(audit, "READ_BATCH", 50)
    read: list[int] = []  # entries the store hands over, a page or the whole log
    page_audit, iter_audit = type(site.store).page_audit, type(site.store).iter_audit

    def paged(self, **asked):  # type: ignore[no-untyped-def]
        rows = page_audit(self, **asked)
        read.append(len(rows))
        return rows

    def streamed(self, *args, **asked):  # type: ignore[no-untyped-def]
        for event in iter_audit(self, *args, **asked):
            read.append(1)
            yield event

    monkeypatch.setattr(type(site.store), "page_audit", paged)
    monkeypatch.setattr(type(site.store), "iter_audit", streamed)
    admin = http_login(site.url, "quantri")
    url: str | None = "/audit?person=nguoixem"
    pages: list[list[str]] = []
    while url:
        html = admin.get(url).text
        pages.append(re.findall(r"uuid:walk-\d+", html))
        older = re.search(r'href="([^"]+)" rel="next"', html)
        url = "/audit" + older.group(1).replace("&amp;", "&") if older else None  # the page's own address
    assert [len(p) for p in pages[:2]] == [100, 100] and len(pages) == 3
    assert sum(pages, []) == [f"uuid:walk-{n}" for n in range(229, -1, -1)]
    assert sum(read) <= in_log + 3 * 50  # each page reads on from its key, at most a batch past its end
    newer = re.search(r'href="([^"]+)" rel="prev"', html)
    assert newer
    back = admin.get("/audit" + newer.group(1).replace("&amp;", "&")).text
    assert re.findall(r"uuid:walk-\d+", back) == pages[1]


def test_viewer_sees_counts_but_no_personal_data_and_cannot_review(site) -> None:
    client = http_login(site.url, "nguoixem")
    iid = quote(site.here_ids[0], safe="")
    detail = client.get(f"/submissions/{iid}")
    assert detail.status_code == 200
    assert "Nguyễn Văn Ánh" not in detail.text  # the name is personal data
    assert 'action="/submissions/' not in detail.text  # no review form
    assert client.get(f"/submissions/{iid}/files/anh.png").status_code == 403
    resp = client.post(f"/submissions/{iid}/review", data={"state": "approved", "csrf": csrf_of(detail.text)})
    assert resp.status_code == 403
    assert client.get("/collectors").status_code == 403


def test_attachment_is_served_to_an_officer_in_scope_and_audited(site) -> None:
    client = http_login(site.url, "xa.phuongtien")
    resp = client.get(f"/submissions/{quote(site.here_ids[0], safe='')}/files/anh.png")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "image/png"
    assert resp.content.startswith(b"\x89PNG")
    assert any(e.action == "submission.attachment" and e.actor == "xa.phuongtien"
               for e in site.store.iter_audit())
    assert client.get(f"/submissions/{quote(site.here_ids[0], safe='')}/files/..%2Fetc").status_code == 404


def test_english_switch_is_remembered(site) -> None:
    client = http_login(site.url, "xa.phuongtien")
    assert "Tổng quan" in client.get("/").text
    english = client.get("/?lang=en")
    assert "Overview" in english.text and "Open rounds" in english.text
    assert client.get("/rounds").text.count("Rounds and forms") >= 1
    assert "Đợt và biểu mẫu" in client.get("/rounds?lang=vi").text


def test_unknown_pages_and_bad_input_get_an_html_error(site) -> None:
    client = http_login(site.url, "quantri")
    resp = client.get("/submissions/uuid:khong-co")
    assert resp.status_code == 404 and "text/html" in resp.headers["content-type"]
    resp = client.get("/rounds/khong-co-dot")
    assert resp.status_code == 404 and "Không có đợt" in resp.text
    assert client.get("/indicators?unit=99999").status_code == 404


def test_no_path_from_a_login_redirect_leaves_the_site(site) -> None:
    client = httpx.Client(base_url=site.url, follow_redirects=False)
    page = client.get("/login?next=//evil.example/x")
    assert 'name="next" value="/"' in page.text
    page = client.post("/login", data={"username": "quantri", "password": "sai", "csrf": csrf_of(page.text),
                                       "next": "/rounds?x=1"})  # a wrong password keeps where to go
    assert page.status_code == 401 and 'name="next" value="/rounds?x=1"' in page.text
    resp = client.post("/login", data={"username": "quantri", "password": "mật-khẩu-quản-trị-1",
                                       "csrf": csrf_of(page.text), "next": "https://evil.example/"})
    assert resp.status_code == 303 and resp.headers["location"] == "/"
    assert client.get("/login?next=/%5Cevil.example").headers["location"] == "/"  # logged in: on to next
    assert client.get("/login?next=/rounds").headers["location"] == "/rounds"


def test_artifacts_folder_is_ignored_by_git() -> None:
    ignore = (Path(__file__).resolve().parents[1] / ".gitignore").read_text()
    assert "/tests/artifacts/" in ignore


def test_a_second_server_process_on_the_same_store_knows_the_session(site) -> None:
    """Sessions live in the store, not in a process: another server over the same data serves the same
    officer (several processes behind one load balancer)."""
    from server_support import opened_store, serving

    client = http_login(site.url, "xa.phuongtien")
    with opened_store(site.data_dir) as second_store, serving(second_store, access_log=False) as second:
        other = httpx.Client(base_url=second.url, follow_redirects=False,
                             cookies={sessions.COOKIE: client.cookies[sessions.COOKIE]})
        resp = other.get("/")
        assert resp.status_code == 200 and "Nguyễn Thị Hồng Nhung" in resp.text


def test_rounds_reopen_needs_a_reason_and_changes_stay_inside_the_scope(site) -> None:
    client = http_login(site.url, "tinh.thainguyen")
    page = client.get("/rounds/r-closed")
    assert page.status_code == 200 and "Mở lại" in page.text
    token = csrf_of(page.text)
    resp = client.post("/rounds/r-closed/state", data={"target": "open", "reason": "", "csrf": token})
    assert resp.status_code == 400 and "lý do" in resp.text
    assert site.store.get_round("r-closed").state.value == "closed"
    # a round over a commune of another province is refused before anything is made
    resp = client.post("/rounds", data={"name": "Đợt tỉnh khác", "period": "2026", "units": "00004",
                                        "forms": "tform", "csrf": csrf_of(page.text)})
    assert resp.status_code == 403
    assert all(r.name != "Đợt tỉnh khác" for r in site.store.list_rounds())
    # a commune officer may not manage rounds at all
    officer = http_login(site.url, "xa.phuongtien")
    page = officer.get("/rounds/r-open")
    assert "/state" not in page.text
    resp = officer.post("/rounds/r-open/state", data={"target": "closed", "csrf": csrf_of(page.text)})
    assert resp.status_code == 403 and site.store.get_round("r-open").state.value == "open"


def test_assign_a_collector_to_a_round(site) -> None:
    from rasoat.core.collectors import get_collector

    client = http_login(site.url, "xa.phuongtien")
    stranger = get_collector(site.store, "le-van-c")  # in Phượng Tiến, assigned to nothing
    page = client.get("/rounds/r-open")
    assert f'value="{stranger.id}"' in page.text
    other = next(u for u in site.store.list_users() if u.display_name == "Phạm D")  # Tân Cương's
    assert f'value="{other.id}"' not in page.text
    token = csrf_of(page.text)
    resp = client.post("/rounds/r-open/collectors", data={"collector": other.id, "csrf": token})
    assert resp.status_code == 403
    resp = client.post("/rounds/r-open/collectors", data={"collector": stranger.id, "csrf": token})
    assert resp.status_code == 303
    assert stranger.id in site.store.get_round("r-open").collector_ids


def test_printing_a_sheet_shows_current_codes_for_the_unit_only_and_rotation_is_its_own_step(site) -> None:
    from rasoat.core.collectors import find_by_token

    client = http_login(site.url, "xa.tancuong")
    page = client.get("/collectors")
    before = find_by_token(site.store, site.seeded.other_commune_token)
    assert before is not None
    resp = client.post("/collectors/sheet", data={"unit": OTHER_COMMUNE, "csrf": csrf_of(page.text)})
    assert resp.status_code == 200
    assert resp.text.count('class="qr-card"') == 1 and "Phạm D" in resp.text
    assert "<svg" in resp.text
    assert find_by_token(site.store, site.seeded.other_commune_token) == before  # earlier cards still work
    resp = client.post("/collectors/sheet", data={"unit": COMMUNE, "csrf": csrf_of(page.text)})
    assert resp.status_code == 403
    resp = client.post(f"/collectors/{before.id}/rotate", data={"csrf": csrf_of(page.text)})
    assert resp.status_code == 200 and resp.text.count('class="qr-card"') == 1
    assert find_by_token(site.store, site.seeded.other_commune_token) is None  # rotated: the old card stops


def test_plugins_page_lists_the_province_plans(site) -> None:
    client = http_login(site.url, "nguoixem")
    page = client.get("/plugins")
    assert page.status_code == 200
    assert "rasoat.core.builtin.national" in page.text
    assert "thai_nguyen" in page.text and "UBND xã Phượng Tiến" in page.text
    # a form the plans bring but nobody published yet: its code once, said to be unpublished
    unpublished = r'<li><span class="mono">\w+</span> <small class="muted">chưa phát hành</small>'
    assert re.search(unpublished, page.text)


def test_edit_history_links_both_versions(site) -> None:
    from server_support import CollectClient, instance_xml

    old_id = site.here_ids[3]
    collect = CollectClient(f"{site.url}/v1/key/{site.seeded.token}/projects/1")
    new_id, xml = instance_xml(commune=COMMUNE, hamlet="05563-03", name="Lưu Thị Yến (đã sửa)",
                               deprecated_id=old_id)
    assert collect.submit(xml).status_code == 201
    collect.close()
    client = http_login(site.url, "xa.phuongtien")
    new = client.get(f"/submissions/{quote(new_id, safe='')}").text
    assert "Thay cho bản" in new and old_id in new and "Lưu Thị Yến (đã sửa)" in new
    old = client.get(f"/submissions/{quote(old_id, safe='')}").text
    assert "Đã được thay bằng bản" in old and new_id in old and "Bản cũ (đã bị sửa)" in old
    listing = client.get("/submissions?form=tform").text
    assert new_id in listing and old_id not in listing  # the list shows current versions


def test_encrypted_form_is_not_exported_as_empty_rows_from_the_web(site, tmp_path) -> None:
    """The passphrase never goes through a page: an encrypted form's export is refused, naming the CLI."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from rasoat.core.xlsform import compile_xlsform, publish_form

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    book = openpyxl.Workbook()
    book.active.title = "survey"
    book.active.append(["type", "name", "label"])
    book.active.append(["text", "ho_ten", "Họ tên"])
    book.create_sheet("settings").append(["form_id", "form_title", "version"])
    book["settings"].append(["web_secret", "Biểu mật", "1"])
    path = tmp_path / "web_secret.xlsx"
    book.save(path)
    publish_form(site.store, compile_xlsform(path, public_key=public_pem), {}, "test")

    client = http_login(site.url, "tinh.thainguyen")
    resp = client.get("/exports/raw?form=web_secret")
    assert resp.status_code == 409
    assert "--passphrase-file" in resp.text and "mã hoá" in resp.text


def test_unit_lists_and_review_queue_ask_for_a_login_a_role_and_the_csrf_token(site) -> None:
    anon = httpx.Client(base_url=site.url, follow_redirects=False)
    for path in ["/units", "/units/template/hamlets.xlsx", "/review?at=x", "/exports/report"]:
        resp = anon.get(path)
        assert resp.status_code == 303 and resp.headers["location"] == f"/login?next={quote(path, safe='')}"
    resp = anon.post("/units/apply", data={"token": "x"})
    assert resp.status_code == 303 and resp.headers["location"] == "/login?next=%2F"
    viewer = http_login(site.url, "nguoixem")
    token = csrf_of(viewer.get("/").text)
    for resp in [viewer.get("/units"), viewer.get("/units/template/hamlets.csv"), viewer.get("/review"),
                 viewer.post("/units/apply", data={"token": "x", "csrf": token})]:
        assert resp.status_code == 403 and "text/html" in resp.headers["content-type"], resp.request.url
        assert "Biểu mẫu đã hết hạn" not in resp.text
    officer = http_login(site.url, "xa.phuongtien")
    template = officer.get("/units/template/hamlets.csv")
    assert template.status_code == 200 and "attachment" in template.headers["content-disposition"]
    assert officer.get("/units/template/nothing.csv").status_code == 404
    resp = officer.post("/units/preview", data={"kind": "hamlets", "csrf": "not-the-token"},
                        files={"file": ("xom.csv", template.content, "text/csv")})
    assert resp.status_code == 403 and "Biểu mẫu đã hết hạn" in resp.text  # the CSRF page, not the role's


def test_a_torn_upload_is_an_error_page_not_a_server_error(site) -> None:
    """The upload pages read multipart with litestar's request.form() (the same ``multipart`` parser as
    ``server.uploads`` for phones): a body cut off before its closing boundary is a 400 page."""
    for username, path in [("xa.phuongtien", "/units/preview"), ("tinh.thainguyen", "/forms")]:
        officer = http_login(site.url, username)
        token = csrf_of(officer.get("/").text)
        body = (f'--b\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{token}\r\n--b\r\n'
                'Content-Disposition: form-data; name="file"; filename="x.csv"\r\n\r\nma,ten\r\n').encode()
        resp = officer.post(path, content=body, headers={"Content-Type": "multipart/form-data; boundary=b"})
        assert resp.status_code == 400 and "text/html" in resp.headers["content-type"], (path, resp.text)
        assert "Không đọc được biểu mẫu gửi lên" in resp.text and "multipart" not in resp.text  # one language


def test_a_rounds_history_is_shown_to_who_manages_rounds(site) -> None:
    """The round page lists who opened and closed it for a province manager, not for a commune officer."""
    assert "<h2>Lịch sử</h2>" in http_login(site.url, "tinh.thainguyen").get("/rounds/r-open").text
    officer = http_login(site.url, "xa.phuongtien").get("/rounds/r-open")
    assert officer.status_code == 200 and "<h2>Lịch sử</h2>" not in officer.text


def test_the_administrators_menu_pages_offer_a_choice_instead_of_an_error(site) -> None:
    """The administrator's scope is the country: the management and assessment pages in their menu offer the
    communes of the rounds (or the provinces) to pick from (the persons page too, scoped.commune_choices),
    and the pick opens that unit's page."""
    admin = http_login(site.url, "quantri")
    page = admin.get("/management")
    assert page.status_code == 200, page.text
    chooser = re.search(r'class="filters card commune-chooser">(.*?)</form>', page.text, re.S)
    assert chooser, page.text  # one picker (a select a script makes searchable), the rounds' communes in it
    offered = re.findall(r'<option value="(\d+)"', chooser.group(1))
    assert offered == [OTHER_COMMUNE, COMMUNE] and "Xã Phượng Tiến · 05563" in chooser.group(1)
    assert admin.get(f"/management?commune={COMMUNE}").status_code == 200
    page = admin.get("/assessment")
    assert page.status_code == 200 and 'href="/assessment?province=19"' in page.text, page.text
    assert "Tỉnh Thái Nguyên" in page.text and 'id="communes"' not in page.text
    chosen = admin.get("/assessment?province=19")
    assert chosen.status_code == 200 and 'id="communes"' in chosen.text
    # a figure not entered yet says so in the page's language, not with the command-line tool's name
    assert "Nhân khẩu hiện đang cư trú — chưa nhập" in chosen.text and "rasoat assessment" not in chosen.text
    unknown = admin.get("/management?commune=99999")
    assert unknown.status_code == 400 and "Chọn một xã, phường trong danh sách" in unknown.text
    assert "?commune=" not in unknown.text.split("<main", 1)[-1]


def test_how_many_units_reported_is_said_in_the_pages_language(site) -> None:
    """A commune without a hamlet list reads "0 thôn (chưa có danh sách)" in Vietnamese and "0 hamlets
    (no list)" in English on the indicators page, never both languages glued together."""
    admin = http_login(site.url, "quantri")
    path = f"/indicators?unit=19&ind=web_test_surveyed&period={datetime.now(UTC).year}"
    vi = admin.get(path).text
    assert "thôn (chưa có danh sách)</td>" in vi and "no list" not in vi
    en = admin.get(path + "&lang=en").text
    assert "hamlets (no list)</td>" in en and "chưa có danh sách" not in en and "/8 thôn" not in en


def test_the_unit_lists_page_puts_communes_without_a_list_on_one_line(site) -> None:
    """A province's 92 communes: those with a list are table rows, the rest one folded line of names, so the
    page stays short (it was 4,300 px on a desktop, 22,000 on a phone, nearly all "0 · chưa có")."""
    html = http_login(site.url, "tinh.thainguyen").get("/units").text
    table, _, folded = html.partition('<details id="without">')
    assert f'<tr data-commune="{COMMUNE}">' in table  # Phượng Tiến has the plugin's hamlet list
    assert f'<span data-commune="{OTHER_COMMUNE}">Xã Tân Cương' in folded
    assert '<tr data-commune="01840">' not in html and '<span data-commune="01840">' in folded
    assert "Xã, phường chưa có danh sách nào: 91" in folded


def test_the_administrators_unit_picker_lists_each_commune_under_its_province(site) -> None:
    """Phượng Tiến and Tân Cương (05563, 05503) sit under Thái Nguyên (19), not under Cao Bằng (04), whose
    code merely sorts before theirs."""
    html = http_login(site.url, "quantri").get("/audit").text
    select = html.split('name="unit"', 1)[1].split("</select>", 1)[0]
    values = re.findall(r'<option value="(\d+)"', select)
    provinces = [v for v in values if len(v) == 2]
    assert provinces[:3] == ["01", "04", "08"] and len(provinces) == 34
    at = values.index("19")
    assert values[at + 1:at + 3] == [OTHER_COMMUNE, COMMUNE] and len(values[at + 3]) == 2


def test_a_definition_link_is_drawn_not_a_glyph_fonts_may_lack(site) -> None:
    """"ⓘ" is in no font Debian installs (a box there): the mark is a styled letter, the link named."""
    html = http_login(site.url, "quantri").get("/indicators?unit=19").text
    assert "ⓘ" not in html and 'aria-label="Định nghĩa chỉ tiêu"><span class="info-mark"' in html


def test_the_audit_page_shortens_a_long_list_of_records_the_export_keeps_whole(site) -> None:
    """Listing records audits every record shown; the audit page names three and says how many more, so one
    entry is not a screen of identifiers; the workbook keeps the whole list."""
    admin = http_login(site.url, "quantri")
    assert admin.get("/submissions?form=tform").status_code == 200
    listed = [e for e in site.store.iter_audit() if e.action == "view.submissions" and e.actor == "quantri"]
    ids = listed[-1].details["instance_ids"]
    assert len(ids) > 3
    html = admin.get("/audit?action=view.submissions").text
    cells = re.findall(r'<td data-label="Chi tiết" class="audit-details">(.*?)</td>', html)
    assert cells and all(cell.count("uuid:") <= 3 for cell in cells)
    assert f"… và {len(ids) - 3} mục khác" in html
    book = openpyxl.load_workbook(io.BytesIO(admin.get("/audit.xlsx?action=view.submissions").content))
    assert any(ids[-1] in str(cell.value) for row in book.active.iter_rows() for cell in row)


def test_the_audit_page_labels_each_detail_in_the_page_language(site) -> None:
    """An account's creation reads "Vai trò: Cán bộ xã", "Đơn vị: Xã Phượng Tiến (05563)" (the screenshot
    review found ``role=commune_officer; units=05563``), in English "Role: Commune officer"; a form the
    entry is about by its title."""
    admin = http_login(site.url, "quantri")

    def details(lang: str, action: str) -> list[str]:
        html = admin.get("/audit", params={"action": action, "lang": lang}).text
        label = "Chi tiết" if lang == "vi" else "Details"
        return [re.sub(r"<[^>]+>", "", c) for c in
                re.findall(rf'<td data-label="{label}" class="audit-details">(.*?)</td>', html, re.S)]

    vi = " | ".join(details("vi", "user.add"))
    assert "Vai trò: Cán bộ xã" in vi and "Đơn vị: Xã Phượng Tiến (05563)" in vi
    assert "role=" not in vi and "commune_officer" not in vi
    audit.record(site.store, "quantri", "assessment.fact", target=COMMUNE, year=2026, name="population",
                 value=8000)
    fact = " | ".join(details("vi", "assessment.fact"))
    assert "Tên: Nhân khẩu hiện đang cư trú" in fact and "population" not in fact
    en = " | ".join(details("en", "user.add"))
    assert "Role: Commune officer" in en and "Units: Xã Phượng Tiến (05563)" in en and "Cán bộ" not in en
    assert admin.get("/submissions?form=tform").status_code == 200
    html = admin.get("/audit", params={"action": "view.submissions", "lang": "vi"}).text
    assert '<td data-label="Đối tượng">Biểu thử (tform)</td>' in html  # the form listed, by its title


def test_english_pages_show_units_of_measure_and_targets_in_english(site) -> None:
    """The screenshot review: on English pages indicator units stayed Vietnamese ("5 người") and a change
    target showed both languages glued together. The indicator's ``unit_label_en`` is shown instead, and the
    definition page says what is counted in the page's language and names the unit of measure and the
    period kind in words."""
    client = http_login(site.url, "xa.phuongtien")

    def values(lang: str) -> list[str]:
        html = client.get("/indicators", params={"unit": COMMUNE, "ind": INDICATOR_ID, "lang": lang}).text
        label = "Giá trị" if lang == "vi" else "Value"
        return re.findall(rf'<td class="num" data-label="{label}">([^<]*)</td>', html)

    english, vietnamese = values("en"), values("vi")
    assert "5 persons" in english and "0 sites" in english  # the test indicator's, a national one's
    assert not any("người" in v or "điểm" in v for v in english), english
    assert "5 người" in vietnamese and "0 điểm" in vietnamese
    definition = client.get(f"/indicators/definition/{INDICATOR_ID}", params={"lang": "en"}).text
    assert re.search(r'class="unit-of-measure">persons<', definition) and ">Year<" in definition
    growth = client.get("/indicators/definition/nat_addict_growth", params={"lang": "en"}).text
    assert "growth &lt; 1 %" in growth and "Tăng" not in growth
    pledges = client.get("/indicators/definition/nat_household_pledges", params={"lang": "en"}).text
    numerator = re.search(r'class="numerator">([^<]*)<', pledges).group(1)
    assert numerator.startswith("sum of households_pledged (f2_pledge)") and "tổng" not in numerator
    vi = client.get("/indicators/definition/nat_household_pledges", params={"lang": "vi"}).text
    assert re.search(r'class="numerator">tổng households_pledged \(f2_pledge\)', vi)


def test_one_of_a_unit_is_said_in_the_singular_in_english(site) -> None:
    """The screenshot review: an English page said "1 sites" and "1 persons". A value of one takes the
    indicator's ``unit_label_en_one``; other values and Vietnamese keep their one word."""
    results = evaluate(site.store, str(vn_today().year), units=[COMMUNE])
    hotspots = next(r for r in results if r.indicator_id == "nat_hotspots_new")
    said = {(v, lang): value_text(hotspots.model_copy(update={"value": v}), lang)
            for v in (0, 1, 2) for lang in ("en", "vi")}
    assert said == {(0, "en"): "0 sites", (1, "en"): "1 site", (2, "en"): "2 sites",
                    (0, "vi"): "0 điểm", (1, "vi"): "1 điểm", (2, "vi"): "2 điểm"}


def test_a_round_of_many_forms_folds_them_and_the_national_pack_is_named(site) -> None:
    """The screenshot review: a round of the 19 national and plan forms listed every title in its row (the
    round's name squeezed to a word a line), and the forms list called the national pack by its module path.
    A round of more than three forms folds them; a form the national pack published reads 'Chương trình
    quốc gia', a province plugin's the province."""
    from rasoat.core.models import FormVersion, Round, RoundState
    from server_support import compile_test_form

    for n in range(4):
        xml, schema = compile_test_form(f"qg{n}", "1", f"Biểu quốc gia {n}")
        form = FormVersion(form_id=f"qg{n}", version="1", title=f"Biểu quốc gia {n}",
                           md5=hashlib.md5(xml).hexdigest(), source="rasoat.core.builtin.national")
        site.store.put_form(form, xml, schema, {})
    site.store.put_round(Round(id="r-nhieu", name="Đợt nhiều biểu", period="2026", unit_codes=["19"],
                               form_ids=[f"qg{n}" for n in range(4)], state=RoundState.draft))
    admin = http_login(site.url, "quantri")
    html = admin.get("/rounds", params={"lang": "vi"}).text
    row = re.search(r'<tr data-round="r-nhieu">(.*?)</tr>', html, re.S)
    assert row and '<details class="round-forms"><summary>4 biểu mẫu</summary>' in row.group(1)
    listed = re.search(r'<tr data-round="r-open">(.*?)</tr>', html, re.S)
    assert listed and "<details" not in listed.group(1) and "Biểu thử" in listed.group(1)  # one form: shown
    forms = admin.get("/forms").text
    assert "rasoat.core.builtin" not in forms
    assert re.search(r'data-form="qg0">.*?<td data-label="Nguồn">Chương trình quốc gia</td>', forms, re.S)
    xml, schema = compile_test_form("tn_thu", "1", "Biểu của tỉnh")
    form = FormVersion(form_id="tn_thu", version="1", title="Biểu của tỉnh", md5=hashlib.md5(xml).hexdigest(),
                       source="thai_nguyen")  # as `rasoat serve` publishes a plugin's form
    site.store.put_form(form, xml, schema, {})
    forms = admin.get("/forms").text
    assert re.search(r'data-form="tn_thu">.*?<td data-label="Nguồn">Tỉnh Thái Nguyên</td>', forms, re.S)


def test_the_records_of_one_form_leave_out_the_form_column(site) -> None:
    """The submissions page lists one form (chosen in its filter): each row repeating the form's title made
    a page of 50 records 4,579 px tall (the screenshot review). The overview's latest records, of any form,
    keep the column."""
    client = http_login(site.url, "xa.phuongtien")
    listed = client.get("/submissions", params={"form": "tform", "lang": "vi"}).text
    table = listed.split('<table class="subs', 1)[1]
    assert table.count("<tr data-instance=") == len(site.here_ids) + 2  # this year's and last year's
    assert "<th>Biểu mẫu</th>" not in table and 'data-label="Biểu mẫu"' not in table
    latest = client.get("/").text.split('<table class="subs', 1)[1]
    assert "<th>Biểu mẫu</th>" in latest and 'data-label="Biểu mẫu">Biểu thử' in latest
