"""The web pages' labels (server/web/locale/{vi,en}/LC_MESSAGES/pages.po, read by server.web.i18n): each key
has both languages, and every key a page or a template asks for exists, so a missing label fails here
instead of showing its key on screen."""

from __future__ import annotations

import re
from pathlib import Path

from rasoat.core.models import Role
from rasoat.core.problems import read_catalogue
from rasoat.server.web import base, i18n

WEB = Path(i18n.__file__).parent
# t("key") / ctx.t("key") / visitor.t("key", lang) in the page modules and {{ t('key') }} in the templates;
# the keys a redirect shows as its notice (msg="key", ?msg=key)
USES = [
    re.compile(r"""\bt\(\s*["']([\w.\-]+)["']"""),
    re.compile(r"""\bmsg=["']([\w.\-]+)["']"""),
    re.compile(r"""\?msg=([\w.\-]+)"""),
]


def _used_keys() -> dict[str, str]:
    """Every label key written literally in server/web, with the first file that uses it."""
    used: dict[str, str] = {}
    for path in sorted([*WEB.glob("*.py"), *(WEB / "templates").glob("*.html")]):
        text = path.read_text(encoding="utf-8")
        for pattern in USES:
            for key in pattern.findall(text):
                used.setdefault(key, path.name)
    return used


def test_every_label_has_both_languages() -> None:
    vi, en = (read_catalogue(i18n.LOCALE_DIR, i18n.DOMAIN, lang) for lang in i18n.LANGS)
    assert set(vi) == set(en)  # read_catalogue leaves out an empty translation, so none is empty either
    assert len(vi) > 300
    assert i18n.t("login.title", "vi") == "Đăng nhập" and i18n.t("login.title", "en") == "Log in"


def test_every_label_the_pages_use_exists() -> None:
    used = _used_keys()
    assert {"login.title", "nav.overview", "csrf"} <= set(used)  # the scan finds page and template keys
    # a key ending in "." starts a family the page completes ({{ t('picker.kind.' ~ kind) }}): it has members
    missing = {
        key: where for key, where in used.items()
        if key not in i18n.LABELS and not (key.endswith(".") and any(k.startswith(key) for k in i18n.LABELS))
    }
    assert missing == {}
    named = [key for _path, key, _perm in base.NAV] + [f"role.{role.value}" for role in Role]
    assert [key for key in named if key not in i18n.LABELS] == []


def test_an_unknown_key_is_caught_by_the_scan(tmp_path: Path) -> None:
    """The scan reads keys the way pages write them: a typo in a template would be reported."""
    template = "<h1>{{ t('login.titel') }}</h1> {{ t(\"nav.overview\") }}"
    found = {key for pattern in USES for key in pattern.findall(template)}
    assert found == {"login.titel", "nav.overview"}
    assert "login.titel" not in i18n.LABELS
