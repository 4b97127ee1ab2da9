"""Reviewing in Debian's headless chromium against a real server (tests/web_support.py), by keyboard
only, as a commune officer: the "Cần duyệt" queue → a record → "approve and next" → the next record →
a reject with a comment and next; the focus is always visible. And the queue and a record on a phone."""

from __future__ import annotations

from urllib.parse import quote

from rasoat.core.models import ReviewState
from web_support import PHONE, browser_tests, login, new_page, no_horizontal_overflow, shot

pytestmark = browser_tests()



def focused(page) -> dict:
    return page.evaluate("""() => {
        const e = document.activeElement, s = getComputedStyle(e);
        return {id: e.id, tag: e.tagName, href: e.getAttribute('href') || '', text: e.innerText || '',
                outline: s.outlineStyle + ' ' + s.outlineWidth};
    }""")


def tab_to(page, wanted, limit: int = 40) -> dict:
    """Press Tab until ``wanted(focused element)``; the focus ring must show on the way."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        el = focused(page)
        assert not el["outline"].startswith("none"), el  # every stop visibly focused
        if wanted(el):
            return el
    raise AssertionError("not reachable with Tab")


def test_walk_the_queue_by_keyboard(browser, site) -> None:
    page = new_page(browser, site)
    login(page, "xa.tancuong")
    assert page.locator("nav a[href='/review'] .count").inner_text() == "2"
    page.goto("/review")
    assert page.inner_text("h1") == "Cần duyệt"
    first, second = site.there_ids
    tab_to(page, lambda el: quote(first, safe="") in el["href"])
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/submissions/" in url)
    el = focused(page)  # "approve and next" has the focus when a record is opened from the queue
    assert el["id"] == "approve-next" and el["text"] == "Duyệt và sang bản tiếp theo"
    assert not el["outline"].startswith("none")
    page.keyboard.press("Enter")
    page.wait_for_selector(".flash")
    assert "đây là bản tiếp theo" in page.inner_text(".flash")
    assert quote(second, safe="") in page.url  # the next record of the queue
    assert site.store.get_submission(first).review_state is ReviewState.approved
    # reject with a comment: back to the comment box, type, Tab to "reject and next", Enter
    page.keyboard.press("Shift+Tab")
    assert focused(page)["tag"] == "TEXTAREA"
    page.keyboard.type("Người này đã chuyển đi nơi khác")
    tab_to(page, lambda el: el["id"] == "reject-next", limit=4)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: url.endswith("/review?msg=review.done"))
    assert "không còn bản nào chờ duyệt" in page.inner_text(".flash")
    assert page.locator("#queue-empty").count() == 1
    assert page.locator("nav a[href='/review'] .count").inner_text() == "0"
    done = site.store.get_submission(second)
    assert done.review_state is ReviewState.rejected
    assert done.review_history[-1]["comment"] == "Người này đã chuyển đi nơi khác"
    page.context.close()


def test_queue_and_record_fit_a_phone(browser, site) -> None:
    page = new_page(browser, site, viewport=PHONE)
    login(page, "xa.phuongtien")
    page.goto("/review")
    assert page.locator("table.queue tr[data-instance]").count() == 7
    assert no_horizontal_overflow(page)
    shot(page, "review-queue-phone")
    page.locator("table.queue tr[data-instance] a").first.click()
    page.wait_for_selector("#approve-next")
    assert no_horizontal_overflow(page)
    shot(page, "review-record-phone")
    page.context.close()
