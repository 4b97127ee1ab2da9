"""ODK Central's REST API subset (what pyodk uses) and OData, over rasoat's store and rules.

``rest`` holds sessions, projects, forms and drafts, submissions, reviews, comments and attachments;
``odata`` the per-form OData service; ``entities`` the entity lists (REST and OData, read and write);
``auth`` who is calling; ``problems`` every error in Central's JSON shape. See docs/api.md.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from rasoat.server.central.problems import Problem, problem_response


def wants_central(request: Request) -> bool:
    """An API caller (Bearer or Basic) rather than ODK Collect (Digest, or a token in the path)."""
    scheme = request.headers.get("authorization", "").strip().partition(" ")[0].lower()
    return scheme in ("bearer", "basic")


def handlers() -> list[Any]:
    """Every Central API route; each refuses in Central's shape (the router's ``problem_response``), which
    the OpenAPI schema is told here, once, beside what the route itself declares."""
    from rasoat.server.central.entities import entity_handlers
    from rasoat.server.central.odata import odata_handlers
    from rasoat.server.central.rest import rest_handlers
    from rasoat.server.openapi import CENTRAL_PROBLEM_RESPONSES

    routes = [*rest_handlers, *odata_handlers, *entity_handlers]
    for route in routes:
        route.responses = {**CENTRAL_PROBLEM_RESPONSES, **(route.responses or {})}
    return routes


__all__ = ["Problem", "handlers", "problem_response", "wants_central"]
