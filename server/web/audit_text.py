"""An audit entry's target and details as an officer reads them on the audit page, in the page's language:
labelled lines ("Vai trò: Cán bộ xã", "Đơn vị: Xã Phượng Tiến (05563)") instead of ``role=commune_officer;
units=05563``. Roles by name, units by name with their code, forms by title with their code, yes/no in
words, a round's kind and an assessment figure by name; a long list names its first few and how many more
(the Excel export keeps every item, as stored)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rasoat.core.assessment.rules import INPUT_LABELS
from rasoat.core.problems import said
from rasoat.core.rounds import kind_label
from rasoat.core.units import get_units
from rasoat.server.web.i18n import LABELS, t

UNIT_KEYS = frozenset({"unit", "units", "commune", "communes", "province"})
FORM_KEYS = frozenset({"form", "form_id", "forms"})


def unit_text(code: str) -> str:
    """"Xã Phượng Tiến (05563)"; a code the registry lacks as it is."""
    unit = get_units().get(code)
    return f"{unit.name} ({code})" if unit is not None else code


def key_label(key: str, lang: str) -> str:
    """The detail's name in ``lang`` (``audit.key.*``); a key without a label is shown as it is written."""
    return t(f"audit.key.{key}", lang) if f"audit.key.{key}" in LABELS else key


class Describer:
    """Turns one page's entries into text; ``form_title`` reads the forms' titles once a page."""

    def __init__(self, lang: str, form_title: Callable[[str], str], most: int = 3) -> None:
        self.lang, self.form_title, self.most = lang, form_title, most

    def form_text(self, code: str) -> str:
        title = self.form_title(code)
        return f"{title} ({code})" if title and title != code else code

    def target(self, target: str) -> str:
        """A unit or a form named by the target is shown by name; anything else (a user, a record) as is."""
        if target and get_units().get(target) is not None:
            return unit_text(target)
        title = self.form_title(target) if target else ""
        return f"{title} ({target})" if title and title != target else target

    def value(self, key: str, value: Any) -> str:
        if isinstance(value, dict):
            return ", ".join(f"{key_label(k, self.lang)}: {self.value(k, v)}" for k, v in value.items())
        if isinstance(value, list | tuple):
            if not value:
                return "—"
            shown = value[: self.most]
            text = ", ".join(self.value(key, v) for v in shown)
            more = len(value) - len(shown)
            return text + (f" … {t('audit.more', self.lang).format(n=more)}" if more else "")
        if isinstance(value, bool):
            return t("yes" if value else "no", self.lang)
        text = str(value)
        if text == "":
            return "—"
        if key == "role":
            return t(f"role.{text}", self.lang) if f"role.{text}" in LABELS else text
        if key in UNIT_KEYS:
            return unit_text(text)
        if key in FORM_KEYS:
            return self.form_text(text)
        if key == "kind":  # a round's kind
            return said(kind_label(text), self.lang)
        if key == "name" and text in INPUT_LABELS:  # an assessment figure entered
            return said(INPUT_LABELS[text], self.lang)
        return text

    def details(self, details: dict[str, Any]) -> list[tuple[str, str]]:
        """(label, text) for each detail, in the order it was recorded."""
        return [(key_label(key, self.lang), self.value(key, value)) for key, value in details.items()]
