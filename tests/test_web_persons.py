"""Persons under management in the browser (issue 23): phones send the national F1 (register) and F12
(monthly visit) as ODK Collect writes their entity blocks; a commune officer sees the month's persons
not visited first, opens a person's history (who, when, which form, what changed) and resolves a
conflict by choosing a version (audited); a viewer sees no names; another commune's officer cannot open
the person. Desktop and phone widths."""

from __future__ import annotations

import hashlib
import uuid as uuidlib
from collections.abc import Iterator
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from rasoat.core.collectors import create_collector
from rasoat.core.indicators.periods import vn_today
from rasoat.core.models import FormVersion, Round, RoundState
from rasoat.core.storage.base import SubmissionQuery
from rasoat.core.users import create_user
from rasoat.core.xlsform import compile_xlsform
from server_support import COMMUNE, OTHER_COMMUNE, CollectClient, opened_store, serving
from web_support import (
    ACCOUNTS,
    PHONE,
    browser_tests,
    http_login,
    login,
    new_page,
    no_horizontal_overflow,
    shot,
)

pytestmark = browser_tests()
FORMS = ("f1_person", "f12_visit")
TODAY = vn_today()
THIS_MONTH = TODAY.isoformat()[:7]
LAST_MONTH = (TODAY.replace(day=1).toordinal() - 1)
NS = "http://www.opendatakit.org/xforms/entities"


def f1_xml(eid: str, name: str, year: str, commune: str, status: str = "active") -> bytes:
    iid = f"uuid:{uuidlib.uuid4()}"
    return (
        f'<data xmlns:entities="{NS}" id="f1_person" version="2026120730">'
        f"<province>19</province><commune>{commune}</commune><hamlet>{commune}-01</hamlet>"
        f"<entry_type>new</entry_type><full_name>{name}</full_name><person_name>{name}</person_name>"
        f"<person_key>{eid}</person_key><ent_display>{name} ({year}) – Xóm 1</ent_display><ent_other_name/>"
        f"<ent_birth_year>{year}</ent_birth_year><followup_status/><ent_category>user</ent_category>"
        f"<ent_mgmt_status>{status}</ent_mgmt_status><ent_term_end>2027-06-30</ent_term_end>"
        f'<meta><entity dataset="persons" create="true" update="false" baseVersion="" trunkVersion="" '
        f'branchId="" id="{eid}"><label>Người {eid[:8]} ({year})</label></entity>'
        f"<instanceID>{iid}</instanceID></meta></data>"
    ).encode()


def f12_xml(eid: str, base: int, day: str, result: str, commune: str = COMMUNE) -> bytes:
    iid = f"uuid:{uuidlib.uuid4()}"
    return (
        f'<data xmlns:entities="{NS}" id="f12_visit" version="2026120730">'
        f"<province>19</province><commune>{commune}</commune><hamlet>{commune}-01</hamlet>"
        f"<known_person>{eid}</known_person><person_key>{eid}</person_key><visit_date>{day}</visit_date>"
        f"<check_result>{result}</check_result>"
        f'<meta><entity dataset="persons" update="1" baseVersion="{base}" trunkVersion="" branchId="" '
        f'id="{eid}"/><instanceID>{iid}</instanceID></meta></data>'
    ).encode()


def send_visits(url: str, token_a: str, token_b: str) -> dict[str, str]:
    """The persons and visits the phones of the two communes send; returns each person's entity id."""
    from datetime import date

    people = {k: str(uuidlib.uuid4()) for k in ("anh", "yen", "quy", "cuong")}
    last_month = date.fromordinal(LAST_MONTH).isoformat()
    phone_a = CollectClient(f"{url}/v1/key/{token_a}/projects/1")
    phone_b = CollectClient(f"{url}/v1/key/{token_b}/projects/1")
    try:
        for phone, xml in (
            (phone_a, f1_xml(people["anh"], "Nguyễn Văn Ánh", "1990", COMMUNE)),
            (phone_a, f1_xml(people["yen"], "Lưu Thị Yến", "1993", COMMUNE)),
            (phone_a, f1_xml(people["quy"], "Đặng Quý Hưng", "1985", COMMUNE, status="")),  # not managed
            (phone_b, f1_xml(people["cuong"], "Vũ Thị Tân Cương", "1991", OTHER_COMMUNE)),
            (phone_a, f12_xml(people["anh"], 1, TODAY.isoformat(), "present")),
            (phone_a, f12_xml(people["anh"], 1, TODAY.isoformat(), "absent")),  # the same base: a conflict
            (phone_a, f12_xml(people["yen"], 1, last_month, "present")),  # last month only: overdue
            (phone_a, f12_xml(people["yen"], 1, last_month, "moved")),  # a conflict to keep as it is
        ):
            resp = phone.submit(xml)
            assert resp.status_code == 201, resp.text
    finally:
        phone_a.close()
        phone_b.close()
    return people


@pytest.fixture(scope="module")
def persons_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    with opened_store(tmp_path_factory.mktemp("persons-web") / "data") as store:
        for form_id in FORMS:
            c = compile_xlsform(f"forms/{form_id}.xlsx")
            form = FormVersion(form_id=c.form_id, version=c.version, title=c.title,
                               md5=hashlib.md5(c.xml).hexdigest(), media=list(c.media), source="test")
            store.put_form(form, c.xml, c.schema, {})
        store.put_round(Round(id="r-qly", name="Quản lý 2026", period="2026", form_ids=list(FORMS),
                              unit_codes=[COMMUNE, OTHER_COMMUNE], state=RoundState.open))
        for username in ("xa.phuongtien", "xa.tancuong", "nguoixem"):
            password, role, units, display = ACCOUNTS[username]
            create_user(store, username, password, role, units, actor="test", display_name=display)
        _, token_a = create_collector(store, "Lò Thị Thu", [COMMUNE], ["r-qly"])
        _, token_b = create_collector(store, "Hà Văn Bắc", [OTHER_COMMUNE], ["r-qly"])
        with serving(store, access_log=False) as server:
            people = send_visits(server.url, token_a, token_b)
            yield SimpleNamespace(url=server.url, store=store, people=people)


def test_the_month_list_and_a_persons_history_with_a_conflict_resolved(browser, persons_site) -> None:
    site, p = persons_site, persons_site.people
    assert site.store.get_entity(p["anh"]).conflict == "hard"
    page = new_page(browser, site)
    try:
        login(page, "xa.phuongtien")
        page.click("nav >> text=Người được quản lý")
        rows = page.locator("#visits tr[data-person]")
        order = [rows.nth(i).get_attribute("data-person") for i in range(rows.count())]
        assert order == [p["yen"], p["anh"]]  # the overdue one first; the unmanaged and B's are not listed
        yen = page.locator(f"#visits tr[data-person='{p['yen']}']").inner_text()
        assert "Lưu Thị Yến (1993) – Xóm 1" in yen and "Chưa thăm trong tháng" in yen
        assert page.locator(f"#visits tr[data-person='{p['anh']}']").get_attribute("data-visited") == "yes"
        shot(page, "persons-month")

        page.click(f"a[href='/persons/{p['anh']}']")
        assert page.locator("#person-name").inner_text().startswith("Nguyễn Văn Ánh (1990)")
        assert "Xung đột cứng" in page.locator("#conflict").inner_text()
        history = page.locator("#history tbody tr")
        versions = [history.nth(i).get_attribute("data-version") for i in range(history.count())]
        assert versions == ["3", "2", "1"]
        v3 = page.locator("#history tr[data-version='3']").inner_text()
        assert "Kiểm tra, giúp đỡ hằng tháng" in v3 and "Lò Thị Thu" in v3
        assert "dựa trên phiên bản 1" in v3
        assert "Đang cư trú tại địa phương → Vắng mặt, không rõ nơi ở" in v3
        v1 = page.locator("#history tr[data-version='1']").inner_text()
        assert "Phiếu rà soát" in v1 and "Nguyễn Văn Ánh" in v1
        shot(page, "person-history")
        page.click("#history tr[data-version='2'] button.choose-version")
        assert page.locator("#conflict").count() == 0
        assert page.locator("#props dd[data-prop='last_check']").inner_text() == "Đang cư trú tại địa phương"
        # an officer who may read identities sees no empty line either: the sealed other name is empty
        assert page.locator("#props dd[data-prop='other_name']").count() == 0
        assert all(text.strip() for text in page.locator("#props dd").all_inner_texts())
    finally:
        page.context.close()
    entity = site.store.get_entity(p["anh"])
    assert entity.conflict is None and entity.version == 4 and entity.properties["last_check"] == "present"
    [resolved] = [e for e in site.store.iter_audit(actor="xa.phuongtien") if e.action == "entity.resolve"]
    assert resolved.target == p["anh"] and resolved.details["chosen_version"] == 2
    assert resolved.details["properties"] == ["last_check"]
    views = {e.action for e in site.store.iter_audit(actor="xa.phuongtien")}
    assert {"view.persons", "view.person"} <= views


def test_a_viewer_sees_no_names_and_another_commune_nothing(browser, persons_site) -> None:
    site, p = persons_site, persons_site.people
    page = new_page(browser, site, viewport=PHONE)
    try:
        login(page, "nguoixem")
        page.goto(f"/persons?commune={COMMUNE}&month={THIS_MONTH}")
        text = page.locator("#visits").inner_text()
        assert f"Người {p['yen'][:8]} (1993)" in text and "Lưu Thị Yến" not in page.content()
        assert no_horizontal_overflow(page)
        page.goto(f"/persons/{p['yen']}")
        assert page.locator("#props dd[data-prop='full_name']").inner_text() == "(ẩn danh tính)"
        assert page.locator("#props dd[data-prop='birth_year']").inner_text() == "1993"
        assert all(text.strip() for text in page.locator("#props dd").all_inner_texts())  # no empty lines
        assert "Lưu Thị Yến" not in page.content() and page.locator("button").filter(
            has_text="Dùng giá trị").count() == 0
        assert no_horizontal_overflow(page)
        shot(page, "person-viewer-phone")
    finally:
        page.context.close()
    seen = [e for e in site.store.iter_audit(actor="nguoixem") if e.action in ("view.persons", "view.person")]
    assert seen == []
    other = new_page(browser, site)
    try:
        login(other, "xa.tancuong")
        resp = other.goto(f"/persons/{p['anh']}")
        assert resp.status == 404 and "Nguyễn Văn Ánh" not in other.content()
        other.goto("/persons")
        assert [other.locator("#visits tr[data-person]").nth(0).get_attribute("data-person")] == [p["cuong"]]
    finally:
        other.context.close()


def test_keeping_the_current_values_resolves_without_a_new_version(browser, persons_site) -> None:
    site, p = persons_site, persons_site.people
    before = site.store.get_entity(p["yen"])
    assert before.conflict == "hard" and before.version == 3
    page = new_page(browser, site, viewport=PHONE)
    try:
        login(page, "xa.phuongtien")
        page.goto(f"/persons/{p['yen']}")
        page.click("#keep-current")
        assert page.locator("#conflict").count() == 0 and no_horizontal_overflow(page)
    finally:
        page.context.close()
    after = site.store.get_entity(p["yen"])
    assert after.conflict is None and after.version == 3 and after.properties == before.properties
    kept = [e for e in site.store.iter_audit(actor="xa.phuongtien")
            if e.action == "entity.resolve" and e.target == p["yen"]]
    assert [(e.details["chosen_version"], e.details["properties"]) for e in kept] == [(None, [])]


def test_a_visit_record_names_the_person_it_chose(persons_site) -> None:
    """F12's "choose the person" answer reads as the person's name linked to their page (and by name in the
    review queue), not the list's key; a viewer, who sees no names, gets the label the persons pages give."""
    site, yen = persons_site, persons_site.people["yen"]
    visit = next(s for s in site.store.iter_submissions(SubmissionQuery(form_id="f12_visit"))
                 if yen in s.fields.values())
    officer = http_login(site.url, "xa.phuongtien")
    html = officer.get(f"/submissions/{quote(visit.instance_id)}").text
    assert f'<a href="/persons/{yen}" class="person">Lưu Thị Yến (1993) – Xóm 1</a>' in html
    assert f">{yen}<" not in html
    queue = officer.get("/review").text  # the queue's one-line summary names the person too
    assert "Lưu Thị Yến (1993) – Xóm 1, Đang cư trú tại địa phương" in queue and f"{yen}," not in queue
    viewer = http_login(site.url, "nguoixem").get(f"/submissions/{quote(visit.instance_id)}").text
    assert "Lưu Thị Yến" not in viewer
