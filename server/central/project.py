"""The one project rasoat is to a Central client: its id and base URL, its forms and their OData schemas.
Shared by the REST handlers (``rest``) and the OData ones (``odata``)."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from rasoat.core.models import FormVersion
from rasoat.core.storage.base import Store
from rasoat.server.central import problems
from rasoat.server.central.schema import SchemaCache

_SCHEMAS = SchemaCache()


def schemas(_request: Request) -> SchemaCache:
    return _SCHEMAS


def base_url(request: Request) -> str:
    public = request.app.state["rasoat"].settings.public_url
    return public.rstrip("/") if public else str(request.base_url).rstrip("/")


def project_id(request: Request) -> int:
    return int(request.app.state["rasoat"].settings.project_id)


def check_project(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    pid = connection.path_params.get("pid")
    if pid is not None and str(pid) != str(connection.app.state["rasoat"].settings.project_id):
        raise problems.not_found(f"project {pid}")


def find_form(store: Store, form_id: str, version: str | None = None) -> FormVersion | None:
    """The form, or None also for a name the store cannot even hold (path syntax, too long)."""
    try:
        return store.get_form(form_id, version)
    except ValueError:
        return None
