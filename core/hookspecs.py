"""Every hook rasoat calls, one line each. Core's own behaviour implements them as default plugins.

Hooks that return data return it as plain values (paths, dicts, pydantic models); each plugin's
answer is collected in a list, and ``core.plugins`` merges them, naming both plugins on a conflict.
"""

from __future__ import annotations

from typing import Any

from rasoat.core.hooks import hookspec


@hookspec
def plan_info() -> dict[str, Any] | None:
    """Plan metadata: name, issuer, number, date, period, province code, hamlet term, seed file."""


@hookspec
def forms() -> list[Any] | None:
    """XLSForm files (paths to .xlsx) this plugin provides, with their media next to them."""


@hookspec
def indicators() -> list[Any] | None:
    """Indicator definitions (core.indicators models, or dicts / a YAML path that load into them)."""


@hookspec
def hamlets() -> list[Any] | None:
    """Hamlet lists: CSV paths (columns code, name, commune_code[, households, term, sample])."""


@hookspec
def checklists() -> list[Any] | None:
    """Checklists with scoring rules (drug-free criteria, the 03-tốt scorecard) as dicts or models."""


@hookspec
def check_submission(form_id: str, fields: dict[str, Any]) -> list[str] | None:
    """Extra checks on a parsed submission: return messages for problems (Vietnamese first)."""


@hookspec
def export_sheets(form_id: str) -> list[Any] | None:
    """Extra sheets for a form's Excel export: (sheet name, header list, row iterator factory)."""


@hookspec
def register_commands(subparsers: Any) -> None:
    """Add sub-commands to the ``rasoat`` command line (an argparse subparsers object)."""
