"""The review queue ("Cần duyệt"): every record waiting for the officer's review across forms and rounds,
in their units, oldest first, one line each; paged by keyset in the store (``core.review.queue_page``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from rasoat.core import scope
from rasoat.core.models import REVIEW_LABELS
from rasoat.core.review import queue_count, queue_page
from rasoat.core.storage.base import PageKey
from rasoat.server.web.base import Ctx, allowed, page
from rasoat.server.web.pages_submissions import PAGE_SIZE, summaries


def _after(at: str, iid: str) -> PageKey | None:
    """Where the previous page ended (``at`` and ``id`` of its last row); a bad value starts over."""
    if not at or not iid:
        return None
    try:
        return PageKey(datetime.fromisoformat(at), iid)
    except ValueError:
        return None


@get("/review", guards=[allowed(scope.REVIEW)], sync_to_thread=True)
def review_queue(
    ctx: NamedDependency[Ctx], at: FromQuery[str] = "", iid: Annotated[str, QueryParameter(name="id")] = ""
) -> Response:
    after = _after(at, iid)
    rows = queue_page(ctx.store, ctx.user, PAGE_SIZE + 1, after)  # one more says whether a page follows
    more, rows = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE]
    next_url = None
    if more:
        last = rows[-1]
        next_url = "/review?" + urlencode({"at": last.received_at.isoformat(), "id": last.instance_id})
    return page(
        ctx,
        "review.html",
        subs=rows,
        total=queue_count(ctx.store, ctx.user),
        summaries=summaries(ctx, rows),
        review_labels=REVIEW_LABELS,
        first_page=after is None,
        next_url=next_url,
    )


handlers = [review_queue]
