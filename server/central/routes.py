"""Every Central API route, as the app mounts them."""

from __future__ import annotations

from typing import Any

from rasoat.server.central.entities import entity_handlers
from rasoat.server.central.odata import odata_handlers
from rasoat.server.central.rest import rest_handlers
from rasoat.server.openapi import CENTRAL_PROBLEM_RESPONSES


def handlers() -> list[Any]:
    """Every Central API route; each refuses in Central's shape (the router's ``problem_response``), which
    the OpenAPI schema is told here, once, beside what the route itself declares."""
    routes = [*rest_handlers, *odata_handlers, *entity_handlers]
    for route in routes:
        route.responses = {**CENTRAL_PROBLEM_RESPONSES, **(route.responses or {})}
    return routes
