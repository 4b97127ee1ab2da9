"""OData's system query options (``$top $skip $count $filter $select $orderby $skiptoken $expand $wkt
$format $search $apply``) as litestar reads them: declared query parameters of one dependency
(``ODATA``), so each is typed and checked before a handler runs (a negative ``$top`` is 400.11, as any
parameter litestar refuses, ``server.errors``) and the OpenAPI schema lists them. Other ``$`` options
are ignored (Excel and Power BI send a few)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated

from litestar.di import Provide
from litestar.params import QueryParameter

NAMES = {"top": "$top", "skip": "$skip", "count": "$count", "filter": "$filter", "select": "$select",
         "orderby": "$orderby", "skiptoken": "$skiptoken", "expand": "$expand", "wkt": "$wkt",
         "format": "$format", "search": "$search", "apply": "$apply"}


@dataclass(frozen=True)
class ODataQuery:
    """The options one request names (None or False: not given)."""

    top: int | None = None
    skip: int | None = None
    count: bool = False  # pyodk sends Python's True/False
    filter: str | None = None
    select: str | None = None
    orderby: str | None = None
    skiptoken: str | None = None
    expand: str | None = None
    wkt: bool = False
    format: str | None = None
    search: str | None = None
    apply: str | None = None

    def link(self, **changed: str) -> dict[str, str]:
        """The options again, for an ``@odata.nextLink``: those given, without ``$skip`` and
        ``$skiptoken``, then ``changed`` (``skiptoken=…`` or ``skip=…``)."""
        given = {NAMES[k]: _text(v) for k, v in asdict(self).items()
                 if v not in (None, False) and k not in ("skip", "skiptoken")}
        return {**given, **{NAMES[k]: v for k, v in changed.items()}}


def _text(value: object) -> str:
    return "true" if value is True else str(value)


def odata_query(
    top: Annotated[int | None, QueryParameter(name="$top", ge=0)] = None,
    skip: Annotated[int | None, QueryParameter(name="$skip", ge=0)] = None,
    count: Annotated[bool, QueryParameter(name="$count")] = False,
    filter: Annotated[str | None, QueryParameter(name="$filter")] = None,
    select: Annotated[str | None, QueryParameter(name="$select")] = None,
    orderby: Annotated[str | None, QueryParameter(name="$orderby")] = None,
    skiptoken: Annotated[str | None, QueryParameter(name="$skiptoken")] = None,
    expand: Annotated[str | None, QueryParameter(name="$expand")] = None,
    wkt: Annotated[bool, QueryParameter(name="$wkt")] = False,
    format: Annotated[str | None, QueryParameter(name="$format")] = None,
    search: Annotated[str | None, QueryParameter(name="$search")] = None,
    apply: Annotated[str | None, QueryParameter(name="$apply")] = None,
) -> ODataQuery:
    return ODataQuery(top, skip, count, filter, select, orderby, skiptoken, expand, wkt, format, search,
                      apply)


ODATA = {"odata": Provide(odata_query, sync_to_thread=False)}
