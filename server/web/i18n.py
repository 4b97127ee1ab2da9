"""Page labels in Vietnamese (first) and English, and the language choice (``?lang=`` or the ``lang`` cookie).

Labels are keyed and live in gettext catalogues (``locale/{vi,en}/LC_MESSAGES/pages.po``), read with Babel as
core's error messages are; a missing key is a bug tests/test_web_labels.py catches (``t`` shows the key).
Core's own labels (states, kinds, flags) are ``Words`` pairs a page says with ``said`` (``core.problems``),
and a Problem passed to ``base.page`` is shown in the page's language there.
"""

from __future__ import annotations

from pathlib import Path

from rasoat.core.problems import read_catalogue

LANGS = ("vi", "en")
DEFAULT_LANG = "vi"
LANG_COOKIE = "lang"
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "pages"


def labels() -> dict[str, tuple[str, str]]:
    """The page labels of both languages by key (a key one language lacks is shown as itself there)."""
    vi, en = (read_catalogue(LOCALE_DIR, DOMAIN, lang) for lang in LANGS)
    return {key: (vi.get(key, key), en.get(key, key)) for key in {**vi, **en}}


# Every label of the pages, key → (Vietnamese, English), read from the gettext catalogues
# server/web/locale/{vi,en}/LC_MESSAGES/pages.po (tests/test_web_labels.py: both languages have every key,
# every key the pages and templates use exists).
LABELS: dict[str, tuple[str, str]] = labels()


def norm_lang(value: str | None) -> str | None:
    value = (value or "").strip().lower()
    return value if value in LANGS else None


def t(key: str, lang: str) -> str:
    """The label in ``lang``; an unknown key shows itself (visible in a page, caught by the tests)."""
    pair = LABELS.get(key)
    if pair is None:
        return key
    return pair[1] if lang == "en" else pair[0]

