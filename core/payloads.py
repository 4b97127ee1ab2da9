"""What plugins return from the data hooks, as pydantic models: the contract ``core.hookspecs`` documents.

A plugin may keep returning plain values (a dict read from ``plan.yaml``, a list of paths); core reads
every answer through ``core.plugins.results_by_plugin``, which validates it against ``ANSWERS`` here and
refuses a wrong one with a one-line message naming the plugin and the hook.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError
from rasoat.core.problems import Problem


class PluginAnswerError(Problem, ValueError):
    """A plugin's hook returned something that is not what the hook promises."""


def _as_path(value: Any) -> Any:
    # importlib.resources hands out Traversable objects (no os.PathLike) for files inside a package
    if not isinstance(value, str | os.PathLike) and hasattr(value, "read_text"):
        return Path(str(value))
    return value


def _as_text(value: Any) -> Any:
    # YAML reads `date: 2026-03-04` as a date and `number: 80` as an int; the plan cites them as text
    if isinstance(value, dt.date | int | float) and not isinstance(value, bool):
        return str(value)
    return value


FilePath = Annotated[Path, BeforeValidator(_as_path)]
Text = Annotated[str, BeforeValidator(_as_text)]


class PlanPeriod(BaseModel):
    """The years a plan runs over, ``{from: 2026, to: 2030}``."""

    model_config = ConfigDict(populate_by_name=True)

    start: int | None = Field(default=None, alias="from")
    end: int | None = Field(default=None, alias="to")

    def __str__(self) -> str:
        return "–".join(str(y) for y in (self.start, self.end) if y is not None)


class PlanDocument(BaseModel):
    """A document the plan implements (``implements:`` in plan.yaml)."""

    model_config = ConfigDict(extra="allow")

    document: Text
    date: Text | None = None
    issuer: str | None = None


class PlanInfo(BaseModel):
    """``plan_info``: the plan a plugin carries; reports and ``rasoat plugins`` cite it.

    Keys a plan adds beyond these (``legacy_units``, ``seed``, ``watch_list`` …) are kept as given."""

    model_config = ConfigDict(extra="allow")

    name: str
    name_en: str | None = None
    issuer: str | None = None
    signer: str | None = None
    number: Text | None = None
    date: Text | None = None
    period: PlanPeriod | Text | None = None
    province_code: Text | None = None
    province_name: str | None = None
    communes: list[Text] = []
    implements: list[PlanDocument] = []
    hamlet_term: str | None = None
    seed: str | None = None

    def extra(self, key: str) -> Any:
        """A key of plan.yaml this model does not name (None when absent)."""
        return (self.model_extra or {}).get(key)


class ExportSheet(BaseModel):
    """One extra sheet of a form's Excel export (``export_sheets``); ``rows`` is rows, or a function
    returning them that may take ``store`` and/or ``query`` parameters."""

    name: str
    headers: list[str]
    rows: Any  # Iterable[Iterable[Any]] or a Callable[..., that]: kept as given, never consumed here


def _sheet(value: Any) -> Any:
    if isinstance(value, tuple | list) and len(value) == 3:  # the (name, headers, rows) shorthand
        return {"name": value[0], "headers": value[1], "rows": value[2]}
    if hasattr(value, "name") and hasattr(value, "headers") and hasattr(value, "rows"):
        return {"name": value.name, "headers": value.headers, "rows": value.rows}
    return value


class Checklist(BaseModel):
    """``checklists``: a checklist or scorecard (``id``, ``kind``, ``form``, ``items`` or ``groups``,
    ``rule``) or the sites a commune must audit (``sites`` = schools / enterprises, ``csv`` or ``rows``)."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    kind: str | None = None
    form: str | None = None
    sites: str | None = None
    csv: FilePath | None = None
    rows: list[dict[str, Any]] = []


#: The answer each data hook promises (None: the plugin has nothing to say). ``indicators`` stays loose:
#: ``core.indicators.loading`` reads a YAML/JSON path, a pack, dicts or models and names the plugin itself.
ANSWERS: dict[str, TypeAdapter[Any]] = {
    "plan_info": TypeAdapter(PlanInfo),
    "forms": TypeAdapter(list[FilePath]),
    "hamlets": TypeAdapter(list[FilePath]),
    "checklists": TypeAdapter(list[Checklist]),
    "check_submission": TypeAdapter(list[str]),
    "export_sheets": TypeAdapter(list[Annotated[ExportSheet, BeforeValidator(_sheet)]]),
}


def validate_answer(plugin: str, hook: str, answer: Any) -> Any:
    """``answer`` as the model ``hook`` promises; PluginAnswerError with one line naming plugin and hook."""
    adapter = ANSWERS.get(hook)
    if adapter is None:
        return answer
    if hook in ("checklists", "hamlets", "forms") and not isinstance(answer, list | tuple):
        answer = [answer]  # one item for a list
    try:
        return adapter.validate_python(answer)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        got = type(first["input"]).__name__
        more = f" (+{len(errors) - 1})" if len(errors) > 1 else ""
        raise PluginAnswerError(
            "plugin.wrong_value", plugin=plugin, hook=hook, where=where, got=got, msg=first['msg'], more=more
        ) from None
