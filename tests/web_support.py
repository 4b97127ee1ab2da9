"""A real site for the web page tests: a seeded embedded store with officer accounts of every role,
submissions from two communes (this year and last), a small indicator over the test form, and a uvicorn
server on a free port; and the browser side: Debian's headless chromium driven by Playwright. Loaded as a
pytest plugin by tests/conftest.py, so every module gets the fixtures ``site`` (this site, one per module)
and ``browser`` (one chromium per module); browser modules set ``pytestmark = browser_tests()``."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from rasoat.core.hooks import hookimpl
from rasoat.core.models import Submission
from rasoat.core.storage.opening import open_store
from server_support import COMMUNE, OTHER_COMMUNE, CollectClient, instance_xml, seed, serve

ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "web"
PUBLIC_URL = "http://192.0.2.10:8000"  # what phones would reach (TEST-NET address: never dialled)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
LAPTOP = {"width": 1280, "height": 860}
PHONE = {"width": 375, "height": 812}


def browser_tests(timeout: int = 240) -> list[pytest.MarkDecorator]:
    """A browser test module's ``pytestmark``: slow, skipped without chromium or Playwright, ``timeout``
    seconds a test."""
    return [
        pytest.mark.slow,  # chromium
        pytest.mark.skipif(not Path(CHROMIUM).exists() or importlib.util.find_spec("playwright") is None,
                           reason="Debian chromium or Playwright is not installed"),
        pytest.mark.timeout(timeout),
    ]

# username → (password, role, units, display name)
ACCOUNTS: dict[str, tuple[str, str, list[str], str]] = {
    "quantri": ("mật-khẩu-quản-trị-1", "admin", [], "Quản trị viên"),
    "tinh.thainguyen": ("mật-khẩu-tỉnh-0001", "province_manager", ["19"], "Đỗ Thị Hương"),
    "xa.phuongtien": ("mật-khẩu-xã-00001", "commune_officer", [COMMUNE], "Nguyễn Thị Hồng Nhung"),
    "xa.tancuong": ("mật-khẩu-xã-00002", "commune_officer", [OTHER_COMMUNE], "Lê Văn Đức"),
    "nguoixem": ("mật-khẩu-xem-0001", "viewer", [COMMUNE], "Phạm Quốc Việt"),
}
HERE_NAMES = ["Nguyễn Văn Ánh", "Trần Thị Bích Ngọc", "Hoàng Đức Thắng", "Lưu Thị Yến", "Đặng Quý Hưng"]
OTHER_NAMES = ["Vũ Thị Tân Cương", "Bùi Văn Khác Xã"]
INDICATOR_ID = "web_test_surveyed"


class WebTestIndicators:
    """A plugin with one indicator over the test form, so the indicator pages have numbers and a target."""

    @hookimpl
    def indicators(self) -> list[dict[str, Any]]:
        return [{
            "id": INDICATOR_ID,
            "name_vi": "Số người được rà soát (biểu thử)",
            "name_en": "Persons surveyed (test form)",
            "numerator": {"form": "tform", "if_empty": "zero"},
            "unit_label": "người",
            "unit_label_en": "persons",
            "level": "hamlet",
            "comparison": "previous",
            "target": {"op": ">=", "value": 2},
            "order": 1,
        }]


def png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (179, 38, 30)).save(buf, format="PNG")
    return buf.getvalue()


def _last_year(store: Any, hamlet: str, name: str) -> None:
    iid, xml = instance_xml(commune=COMMUNE, hamlet=hamlet, name=name)
    store.save_submission(
        Submission(
            instance_id=iid, form_id="tform", form_version="1", unit_code=hamlet,
            received_at=datetime(datetime.now(UTC).year - 1, 6, 1, 3, 0, tzinfo=UTC),
            xml_md5=hashlib.md5(xml).hexdigest(),
            fields={"province": "19", "commune": COMMUNE, "hamlet": hamlet, "name": name},
        ),
        xml,
        {},
    )


def start_site(data_dir: Path) -> SimpleNamespace:
    """Everything above, running. Call ``stop_site`` when done."""
    from rasoat.core.plugins import get_manager
    from rasoat.core.users import create_user

    store = open_store(data_dir)
    seeded = seed(store)
    for username, (password, role, units, name) in ACCOUNTS.items():
        create_user(store, username, password, role, units, display_name=name, actor="test")
    pm = get_manager()
    plugin = WebTestIndicators()
    pm.register(plugin, name="test_web_indicators")
    server = serve(store, public_url=PUBLIC_URL, access_log=False)
    here = CollectClient(f"{server.url}/v1/key/{seeded.token}/projects/1")
    there = CollectClient(f"{server.url}/v1/key/{seeded.other_commune_token}/projects/1")
    here_ids, there_ids = [], []
    hamlets = ["05563-01", "05563-01", "05563-02", "05563-03", "05563-03"]
    for n, (name, hamlet) in enumerate(zip(HERE_NAMES, hamlets, strict=True)):
        photo = "anh.png" if n == 0 else ""
        iid, xml = instance_xml(commune=COMMUNE, hamlet=hamlet, name=name, photo=photo)
        resp = here.submit(xml, {"anh.png": png_bytes()} if photo else None)
        assert resp.status_code == 201, resp.text
        here_ids.append(iid)
    for name in OTHER_NAMES:
        iid, xml = instance_xml(commune=OTHER_COMMUNE, name=name)
        resp = there.submit(xml)
        assert resp.status_code == 201, resp.text
        there_ids.append(iid)
    here.close()
    there.close()
    _last_year(store, "05563-01", "Người năm trước Một")
    _last_year(store, "05563-02", "Người năm trước Hai")
    return SimpleNamespace(url=server.url, store=store, server=server, seeded=seeded, data_dir=data_dir,
                           here_ids=here_ids, there_ids=there_ids, pm=pm, plugin=plugin)


def stop_site(site: SimpleNamespace) -> None:
    site.server.stop()
    site.pm.unregister(site.plugin)
    site.store.close()


def http_login(url: str, username: str, password: str | None = None) -> httpx.Client:
    """An httpx client holding a logged-in session (the way a browser gets one: form, cookie, CSRF);
    the password of ``ACCOUNTS`` unless given."""
    client = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, page.text
    resp = client.post("/login", data={"username": username, "password": password or ACCOUNTS[username][0],
                                       "csrf": token.group(1), "next": "/"})
    assert resp.status_code == 303 and resp.headers["location"] == "/", resp.text
    return client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


@pytest.fixture(scope="module")
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimpleNamespace]:
    """``start_site`` once for the module (a module adding data of its own overrides ``site`` and asks for
    this one)."""
    site = start_site(tmp_path_factory.mktemp(request.module.__name__) / "data")
    yield site
    stop_site(site)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Debian chromium for the module, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def new_page(browser: Any, site: SimpleNamespace, viewport: dict[str, int] = LAPTOP,
             lang: str | None = None) -> Any:
    """A fresh browser context (no cookies) on the site, Vietnamese locale unless ``lang``'s cookie."""
    context = browser.new_context(viewport=viewport, locale="vi-VN", accept_downloads=True,
                                  base_url=site.url)
    if lang:
        context.add_cookies([{"name": "lang", "value": lang, "url": site.url}])
    page = context.new_page()
    page.set_default_timeout(20_000)
    return page


def login(page: Any, username: str) -> None:
    page.goto("/")
    assert "/login" in page.url
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", ACCOUNTS[username][0])
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def shot(page: Any, name: str) -> Path:
    """A full-page screenshot in tests/artifacts/web/ for a person to look at."""
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def no_horizontal_overflow(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))
