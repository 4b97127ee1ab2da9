"""Issue 14: a page says core's labels and errors in its own language only, never "Việt / English" glued
together. Core keeps each label as a (Vietnamese, English) pair (``core.problems.Words``); a page says one
half (``said``), the CLI and Excel both (``both``); a form's error is a Problem the page renders in its
language (``server.web.base.page``). Checked on the Vietnamese and the English page of each area: round
and review states, round kinds, indicator statuses, the unit lists' kinds and sources, the assessment's
states, figures and flags, and the errors of the accounts, rounds, keys, assessment and collectors forms.
"""

from __future__ import annotations

import html
import re
from dataclasses import fields

import httpx
import pytest
from rasoat.core.assessment import signoff
from rasoat.core.assessment.rules import (
    CLASS_LABELS,
    INPUT_LABELS,
    PROVINCE_CRITERIA,
    PROVINCE_LABELS,
    CommuneInputs,
)
from rasoat.core.indicators.models import STATUS_LABELS, Status
from rasoat.core.models import REVIEW_LABELS, ROUND_KINDS, ReviewState, RoundState
from rasoat.core.problems import Problem, Words, both, said
from rasoat.core.rounds import STATE_LABELS
from rasoat.core.unit_lists import KINDS
from server_support import COMMUNE
from web_support import csrf_of, http_login

LANGS = ("vi", "en")


def test_every_core_label_has_both_languages_each_whole() -> None:
    """Every state, status and kind has a label in each language, neither empty nor itself a "Việt / English"
    text to be split again: a label one language lacks fails here, as a page label missing in a .po does."""
    tables: dict[str, dict[object, Words]] = {
        "REVIEW_LABELS": dict(REVIEW_LABELS), "STATE_LABELS": dict(STATE_LABELS),
        "STATUS_LABELS": dict(STATUS_LABELS), "ROUND_KINDS": dict(ROUND_KINDS),
        "CLASS_LABELS": dict(CLASS_LABELS), "PROVINCE_LABELS": dict(PROVINCE_LABELS),
        "INPUT_LABELS": dict(INPUT_LABELS), "PROVINCE_CRITERIA": dict(PROVINCE_CRITERIA),
        "signoff.STATES": dict(signoff.STATES), "signoff.LIST_STATES": dict(signoff.LIST_STATES),
        "unit_lists.KINDS": {k: kind.label for k, kind in KINDS.items()},
    }
    bad = {
        (name, str(key)): words for name, table in tables.items() for key, words in table.items()
        if len(words) != 2 or not all(words) or any(" / " in w for w in words)
    }
    assert bad == {}
    assert set(REVIEW_LABELS) == set(ReviewState) and set(STATE_LABELS) == set(RoundState)
    assert set(STATUS_LABELS) == set(Status)
    assert set(INPUT_LABELS) == {f.name for f in fields(CommuneInputs)} - {"flags"}
    assert set(signoff.STATES) >= {"not_proposed", "proposed", "sent_back", "accepted"}
    # the CLI and Excel say both, once when they are the same
    assert both(("Đang mở", "Open")) == "Đang mở / Open" and both(("P ≥ 5", "P ≥ 5")) == "P ≥ 5"
    assert said(["chưa có", "none"], "en") == "none" and said("plugin x", "en") == "plugin x"


# --- the pages ---------------------------------------------------------------------------------------


def _texts(page: str, pattern: str) -> list[str]:
    """The text of each match of ``pattern``'s one group, tags removed, as a reader sees it."""
    return [html.unescape(re.sub(r"<[^>]+>", "", m)).strip() for m in re.findall(pattern, page, re.S)]


def _alert(page: str) -> str:
    [text] = _texts(page, r'<p class="error" role="alert">(.*?)</p>')
    return text


def _client(site, username: str, lang: str) -> httpx.Client:
    client = http_login(site.url, username)
    assert client.get(f"/?lang={lang}").status_code == 200  # the choice is kept in the lang cookie
    return client


@pytest.mark.parametrize("lang", LANGS)
def test_round_states_and_kinds_in_the_pages_language(site, lang: str) -> None:
    client = _client(site, "tinh.thainguyen", lang)
    page = client.get("/rounds").text
    badges = re.findall(r'<span class="badge state-(\w+)">(.*?)</span>', page)
    assert {state for state, _ in badges} >= {"open", "closed"}
    assert all(text == said(STATE_LABELS[RoundState(state)], lang) for state, text in badges), badges
    options = _texts(page, r'<select name="kind">(.*?)</select>')[0]
    assert said(ROUND_KINDS["census"], lang) in options
    assert said(ROUND_KINDS["census"], "en" if lang == "vi" else "vi") not in options
    one = client.get("/rounds/r-open").text
    [head] = re.findall(r'<span class="badge state-open">(.*?)</span>', one.split("</h1>")[0])
    assert head == said(STATE_LABELS[RoundState.open], lang)


@pytest.mark.parametrize("lang", LANGS)
def test_review_states_and_indicator_statuses_in_the_pages_language(site, lang: str) -> None:
    client = _client(site, "tinh.thainguyen", lang)
    for path in ("/", "/review", "/submissions?form=tform"):
        page = client.get(path).text
        badges = re.findall(r'<span class="badge rs-(\w+)">(.*?)</span>', page)
        assert badges, path
        assert all(text == said(REVIEW_LABELS[ReviewState(s)], lang) for s, text in badges), (path, badges)
    filters = client.get("/submissions?form=tform").text
    choices = _texts(filters, r'<option value="(?:received|approved)"[^>]*>(.*?)<')
    assert choices == [said(REVIEW_LABELS[s], lang) for s in (ReviewState.received, ReviewState.approved)]
    legend = re.findall(r'<span class="swatch st-([\w-]+)">(.*?)</span>', client.get("/indicators").text)
    assert {st for st, _ in legend} == {"not-met", "on-track", "met", "no-target"}
    assert all(text == said(STATUS_LABELS[Status(st.replace("-", "_"))], lang) for st, text in legend)


@pytest.mark.parametrize("lang", LANGS)
def test_unit_list_kinds_and_sources_in_the_pages_language(site, lang: str) -> None:
    page = _client(site, "tinh.thainguyen", lang).get("/units").text
    templates = _texts(page, r'<section class="card" id="templates">(.*?)</section>')[0]
    assert all(f"{said(k.label, lang)}: Excel" in templates for k in KINDS.values())
    assert " / " not in templates
    header = _texts(page, r'<section class="card" id="current">.*?<thead>(.*?)</thead>')[0]
    assert all(said(k.label, lang) in header for k in KINDS.values()) and " / " not in header
    cells = _texts(page, rf'<tr data-commune="{COMMUNE}">(.*?)</tr>')[0]
    none, plugin = ("chưa có", "mẫu") if lang == "vi" else ("none", "sample")
    assert none in cells and plugin in cells and " / " not in cells


@pytest.mark.parametrize("lang", LANGS)
def test_the_assessment_says_states_figures_and_flags_in_one_language(site, lang: str) -> None:
    page = _client(site, "tinh.thainguyen", lang).get("/assessment?province=19").text
    [list_state] = _texts(page, r'id="list-state">(.*?)</span>')
    assert list_state == said(signoff.LIST_STATES["open"], lang)
    by_state = _texts(page, r'<p id="by-state">(.*?)</p>')[0]
    assert all(said(words, lang) in by_state for words in signoff.STATES.values())
    province = _texts(page, r'<p id="province-class">(.*?)</p>')[0]
    assert any(said(words, lang) in province for words in PROVINCE_LABELS.values()) and " / " not in province
    population = said(INPUT_LABELS["population"], lang)
    not_entered = ("Chưa nhập", "chưa nhập") if lang == "vi" else ("Not entered", "not entered")
    figures = _texts(page, r"<li>(" + re.escape(population) + r".*?)</li>")
    assert figures and figures[0].startswith(population) and all(w in figures[0] for w in not_entered)
    flags = _texts(page, r"<small>((?:Thiếu số liệu|Input not known): .*?)</small>")
    assert flags and all(f.startswith("Thiếu số liệu" if lang == "vi" else "Input not known") for f in flags)
    assert all(" / " not in f for f in flags)


# the forms' errors: the Problem each refusal is, said in the page's language alone
@pytest.mark.parametrize("lang", LANGS)
def test_form_errors_are_said_in_the_pages_language(site, lang: str) -> None:
    client = _client(site, "tinh.thainguyen", lang)
    token = csrf_of(client.get("/rounds").text)
    resp = client.post("/rounds", data={"name": "Đợt thiếu biểu mẫu", "period": "2026", "units": COMMUNE,
                                        "csrf": token})
    assert resp.status_code == 400 and _alert(resp.text) == Problem("round.no_forms").text(lang)
    resp = client.post("/rounds/r-open/state", data={"target": "vanished", "csrf": token})
    assert resp.status_code == 400
    assert _alert(resp.text) == Problem("round.bad_transition", state="open", target="vanished").text(lang)
    resp = client.post("/accounts", data={"username": "mot.nguoi", "role": "nobody", "password": "x" * 20,
                                          "csrf": token})
    assert resp.status_code == 400 and _alert(resp.text).startswith(Problem("user.bad_role").text(lang)[:12])
    assert " / " not in _alert(resp.text)
    resp = client.post("/keys/unlock", data={"passphrase": "không phải mật khẩu", "csrf": token})
    assert resp.status_code == 400
    assert _alert(resp.text) == Problem("crypto.no_project_key").text(lang)  # the site has no project key
    resp = client.post(f"/assessment/2026/{COMMUNE}/send_back", data={"text": "", "csrf": token})
    assert resp.status_code == 400 and _alert(resp.text) == Problem("assessment.return_reason").text(lang)
    commune = _client(site, "xa.phuongtien", lang)
    token = csrf_of(commune.get("/collectors").text)
    resp = commune.post("/collectors", data={"name": "Người Không Đơn Vị", "csrf": token})
    assert resp.status_code == 400 and _alert(resp.text) == Problem("collector.no_units").text(lang)
    resp = commune.post("/rounds/r-open/collectors", data={"csrf": token})
    assert resp.status_code == 400 and _alert(resp.text) == Problem("round.no_collectors_ticked").text(lang)
