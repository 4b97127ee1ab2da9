"""Every hook rasoat calls: the whole contract between rasoat and a plugin.

Core's own behaviour implements these hooks as default plugins (``core.plugins.DEFAULT_PLUGINS``); a
province plugin implements any of them with ``from rasoat import hookimpl``. docs/plugins.md has a
section for each (tests/test_plugins.py fails when one is missing).

How answers are read: every hook collects one answer per plugin (none is ``firstresult``: plans, forms,
indicators, hamlets and checks from several provinces all count, and two plugins claiming one form id or
indicator id is a conflict naming both, never a silent winner). Core reads the data hooks through
``core.plugins.results_by_plugin``, which calls each plugin through ``pm.hook`` (so
``RASOAT_TRACE_HOOKS=1`` prints every call) and validates its answer against the models in
``core.payloads``; a wrong answer stops with one line naming the plugin and the hook. Returning ``None``
means "nothing to add". Hooks are called with keyword arguments; a plugin may leave out parameters it
does not use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rasoat.core.hooks import hookspec

if TYPE_CHECKING:
    import argparse
    import os

    from rasoat.core.indicators.models import Indicator
    from rasoat.core.payloads import Checklist, ExportSheet, PlanInfo


@hookspec
def plan_info() -> PlanInfo | dict[str, Any] | None:
    """The plan the plugin carries: its title, who issued it, number, date and period.

    Called when a report names its plan (Excel indicator reports, ``rasoat export``), on the officers'
    Plugins page and by ``rasoat plugins``. No parameters.

    Returns a ``core.payloads.PlanInfo`` or a dict of its fields (``plan.yaml`` read as is): ``name``
    (required), ``name_en``, ``issuer``, ``signer``, ``number``, ``date``, ``period`` (``{from, to}``),
    ``province_code``, ``province_name``, ``communes``, ``implements`` (documents with ``document``,
    ``date``, ``issuer``), ``hamlet_term``, ``seed``; other keys are kept. A report over one province
    cites the plan whose ``province_code`` is that province's.
    """


@hookspec
def forms() -> list[str | os.PathLike[str]] | None:
    """The XLSForms the plugin provides.

    Called when the form catalogue is built: ``rasoat serve`` at start (it publishes every form whose
    version it does not have), ``rasoat forms list|build|publish`` and ``rasoat plugins``. No parameters.

    Returns paths to ``.xlsx`` files (validated as ``list[Path]``); each form's media files (CSV lists,
    images) sit next to it. A form id that another plugin also provides stops with an error naming both.
    """


@hookspec
def indicators() -> list[Indicator | dict[str, Any]] | str | os.PathLike[str] | dict[str, Any] | None:
    """The plugin's indicators with their targets and deadlines, as data.

    Called when indicators are computed or listed (``rasoat indicators``, the Indicators page, Excel
    reports, closing a round, which freezes them) and by ``rasoat plugins``. No parameters.

    Returns a path to a YAML/JSON file, a pack ``{"source": {...}, "indicators": [...]}`` (the source is
    shared by every definition), or a list of ``core.indicators.Indicator`` models or dicts of their
    fields. ``overrides: <national id>`` changes only the keys given of a national indicator. Read by
    ``core.indicators.loading``, whose errors name the plugin and the definition.
    """


@hookspec
def hamlets() -> list[str | os.PathLike[str]] | None:
    """Hamlet lists (thôn, xóm, bản, tổ dân phố) below the national communes.

    Called once per plugin manager, when the unit registry is first needed (``core.units.get_units``):
    ingest, scope checks, exports, progress, ``rasoat units``. No parameters.

    Returns paths to CSV files (validated as ``list[Path]``) with the columns ``code, name,
    commune_code`` and optionally ``households, term, sample, legacy_commune_code``. A hamlet code another
    plugin also defines stops with an error naming both.
    """


@hookspec
def checklists() -> list[Checklist | dict[str, Any]] | None:
    """Checklists and scorecards as data, and the sites (schools, enterprises) a commune must audit.

    Called by round progress (``rasoat rounds progress``, the round page) to know the expected schools
    and enterprises, and by plugins' own scoring. No parameters.

    Returns ``core.payloads.Checklist`` models or dicts: a checklist ``{"id", "kind", "form",
    "items"|"groups", "rule"}``, or a site list ``{"sites": "schools"|"enterprises", "csv": path}`` (or
    ``"rows": [{"id", "name", "commune", "hamlet"}]``).
    """


@hookspec
def check_submission(form_id: str, fields: dict[str, Any]) -> list[str] | None:
    """Extra checks on a submission the server has just parsed, before it is stored.

    Called for every unencrypted submission received (OpenRosa upload, ``rasoat submissions import``).
    A check never rejects a submission: with messages it is stored as "has issues", the messages in its
    review history for the reviewer, and the collector is told; a check that raises is logged and skipped.

    ``form_id``: the form's id; ``fields``: the parsed answers (group paths flattened, repeats as lists of
    dicts). Returns messages for problems, Vietnamese first with English after " / ", or None.
    """


@hookspec
def export_sheets(form_id: str) -> list[ExportSheet | tuple[str, list[str], Any]] | None:
    """Extra sheets for a form's Excel export.

    Called once per form export (``rasoat export``, the Exports page, ``/api/v1/exports``).

    ``form_id``: the form being exported. Returns ``core.payloads.ExportSheet`` models or
    ``(name, headers, rows)`` tuples; ``rows`` is the rows, or a function returning them that may take
    ``store`` and/or ``query`` (the export's ``SubmissionQuery``) as keyword parameters.
    """


@hookspec
def register_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add sub-commands to the ``rasoat`` command line.

    Called once at every start of ``rasoat``, before the arguments are parsed, with the parser's
    ``subparsers`` (argparse): ``parser = subparsers.add_parser(...)`` then
    ``parser.set_defaults(func=run)``, where ``run(args) -> int`` is the exit code. Returns nothing.
    """
