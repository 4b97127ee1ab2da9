"""The review queue and a record's detail over plain HTTP (tests/web_support.py's site): the queue holds
only the officer's units, oldest first, with a one-line summary and a count in the navigation; "approve
and next" (and "reject with a comment and next") lands on the next record of the queue, then on the empty
queue; the detail shows the form's labels, groups and repeats in place, local times, and phone metadata
under technical details, never a variable name as a question."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from rasoat.core.models import ReviewState
from server_support import OTHER_COMMUNE
from test_excel_raw import make_sub, publish_test_form
from web_support import csrf_of, http_login, start_site, stop_site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    site = start_site(tmp_path_factory.mktemp("web-review") / "data")
    yield site
    stop_site(site)


def queue_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-instance="([^"]+)"', html)


def nav_count(html: str) -> str:
    match = re.search(r'<a href="/review"[^>]*>[^<]*<span class="count">([^<]+)</span>', html)
    assert match, "no review count in the navigation"
    return match.group(1)


def test_queue_holds_only_the_officers_units_oldest_first(site) -> None:
    there = http_login(site.url, "xa.tancuong")
    page = there.get("/review")
    assert page.status_code == 200, page.text
    assert queue_ids(page.text) == site.there_ids  # submitted in this order
    assert nav_count(page.text) == "2"
    here = http_login(site.url, "xa.phuongtien")
    page = here.get("/review")
    shown = queue_ids(page.text)
    assert not set(shown) & set(site.there_ids)  # never another commune's record
    assert shown[-5:] == site.here_ids and len(shown) == 7  # last year's two are the oldest
    assert nav_count(page.text) == "7"
    # the line says where, when and by whom (the test form names no instance_name)
    assert "Xóm 1, Xã Phượng Tiến · " in page.text and " · Nguyễn Văn A</a>" in page.text
    other = here.get(f"/submissions/{quote(site.there_ids[0], safe='')}?queue=1")
    assert other.status_code == 403


def test_viewer_has_no_queue(site) -> None:
    viewer = http_login(site.url, "nguoixem")
    assert viewer.get("/review").status_code == 403
    assert 'href="/review"' not in viewer.get("/").text


def review(client, iid: str, state: str, comment: str = "", next_: bool = True):
    page = client.get(f"/submissions/{quote(iid, safe='')}?queue=1")
    url = f"/submissions/{quote(iid, safe='')}/review" + ("?next=1" if next_ else "")
    return client.post(url, data={"state": state, "comment": comment, "csrf": csrf_of(page.text)})


def test_approve_and_next_walks_the_queue_to_its_end(site) -> None:
    client = http_login(site.url, "xa.tancuong")
    first, second = site.there_ids
    page = client.get(f"/submissions/{quote(first, safe='')}?queue=1")
    assert 'id="approve-next"' in page.text and "autofocus" in page.text and 'href="/review"' in page.text
    resp = review(client, first, "approved")
    assert resp.status_code == 303
    assert resp.headers["location"] == f"/submissions/{quote(second, safe='')}?queue=1&msg=review.saved_next"
    # reject needs a comment: the same record comes back, still in the queue's flow, nothing saved
    refused = review(client, second, "rejected")
    assert refused.status_code == 400 and "Cần ghi chú" in refused.text and 'href="/review"' in refused.text
    assert site.store.get_submission(second).review_state is ReviewState.received
    done = review(client, second, "rejected", "Trùng với bản đã gửi hôm trước")
    assert done.status_code == 303 and done.headers["location"] == "/review?msg=review.done"
    assert site.store.get_submission(first).review_state is ReviewState.approved
    assert site.store.get_submission(second).review_state is ReviewState.rejected
    empty = client.get("/review?msg=review.done")
    assert 'id="queue-empty"' in empty.text and "không còn bản nào chờ duyệt" in empty.text
    assert nav_count(empty.text) == "0"


def test_queue_pages_by_keyset(site) -> None:
    """Past one page of 50 the next link resumes after the last row; nothing is shown twice or lost."""
    from rasoat.core.models import Submission

    for n in range(55):
        site.store.save_submission(
            Submission(instance_id=f"uuid:page-{n:03d}", form_id="tform", form_version="1",
                       unit_code=OTHER_COMMUNE, received_at=datetime(2026, 1, 1, 1, n, tzinfo=UTC),
                       xml_md5=hashlib.md5(b"<data/>").hexdigest(), fields={"commune": OTHER_COMMUNE}),
            b"<data/>", {},
        )
    client = http_login(site.url, "xa.tancuong")
    first = client.get("/review")
    ids = queue_ids(first.text)
    assert len(ids) == 50 and ids[0] == "uuid:page-000"
    link = re.search(r'href="(/review\?at=[^"]+)"', first.text)
    assert link, "no next page"
    rest = queue_ids(client.get(link.group(1).replace("&amp;", "&")).text)
    assert ids + [i for i in rest if i.startswith("uuid:page-")] == [f"uuid:page-{n:03d}" for n in range(55)]
    for n in range(55):  # leave the queue as the other tests expect it
        site.store.set_review(f"uuid:page-{n:03d}", ReviewState.approved, "", "test")


def test_detail_lays_out_the_form_in_the_page_language(site) -> None:
    publish_test_form(site.store)  # groups, choices, a repeat in a repeat, a dateTime, phone metadata
    sub = make_sub(1, start="2026-03-05T09:58:00.000+07:00")
    sub = sub.model_copy(update={"unit_code": "05563-01", "review_state": ReviewState.received,
                                 "xml_md5": hashlib.md5(b"<data/>").hexdigest()})
    site.store.save_submission(sub, b"<data/>", {})
    client = http_login(site.url, "xa.phuongtien")
    html = client.get(f"/submissions/{quote(sub.instance_id, safe='')}").text
    main, _, technical = html.partition('id="technical"')
    assert '<th colspan="2" scope="colgroup">Hộ gia đình</th>' in main  # the group is a heading
    order = [main.index(s) for s in ("Ghi chú", "Hộ gia đình", "Họ tên chủ hộ", "Thành viên 1",
                                     "Lần gặp 1", "Thời điểm kiểm tra")]
    assert order == sorted(order)  # as the form lays them out, the repeat where it stands
    assert "Vắng nhà, Khác" in main and ">Có<" in main.replace("\n", "").replace(" ", "")
    assert "05/03/2026 10:15" in main and "05/03/2026" in main  # local time; a date as officers write it
    assert "06/03/2026 03:30" in main  # received 20:30 UTC
    questions = re.findall(r'<th scope="row">([^<]*)', main)
    assert questions and not [q for q in questions if re.fullmatch(r"\s*[a-z_/]+\s*", q)]
    assert "Bắt đầu điền" in technical and '<small class="mono">start</small>' in technical
    english = client.get(f"/submissions/{quote(sub.instance_id, safe='')}?lang=en").text
    assert "Household" in english and "Head of household" in english and "Away, Other" in english
    assert "Started filling in" in english and "Hộ gia đình" not in english
