"""Receive one OpenRosa submission POST: take the multipart parts apart (``server.uploads`` read them,
files spooled to disk), hand the instance to
``core.ingest.accept`` (which holds every acceptance rule, shared with the phone-folder importer), and turn
its refusals into the statuses Collect expects.

Statuses: a missing ``xml_submission_file`` part, an unsafe attachment name or any other ``invalid``
refusal → 400; ``forbidden`` → 403; ``not_found`` (unknown form version, unknown edited record) → 404;
``conflict`` → 409; ``unavailable`` (the record cannot be protected now) → 503, which Collect retries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rasoat.core.derive import on_arrival
from rasoat.core.ingest import IngestError, IngestResult, ShapeCache, accept, check_attachment_names
from rasoat.core.problems import Problem
from rasoat.core.storage.base import Store
from rasoat.server.auth import Caller
from rasoat.server.uploads import Part

__all__ = ["INCOMPLETE_PART", "XML_PART", "IngestResult", "ShapeCache", "ingest", "split_parts"]

XML_PART = "xml_submission_file"
INCOMPLETE_PART = "*isIncomplete*"

def split_parts(parts: list[Part]) -> tuple[bytes, dict[str, bytes], bool]:
    """(instance XML, attachments by name, incomplete flag); rejects unsafe names. Reads the spooled
    files: call from a worker thread."""
    xml: bytes | None = None
    files: dict[str, bytes] = {}
    incomplete = False
    for part in parts:
        if part.name == XML_PART and xml is None:
            xml = part.read()
            continue
        if part.name == INCOMPLETE_PART:
            incomplete = True
            continue
        name = part.filename or part.name
        try:
            check_attachment_names([name] + ([part.name] if part.filename else []))
        except IngestError:  # the message names the file the phone knows, not the form field
            raise Problem("submission.bad_attachment_name", name=repr(name)) from None
        files[name] = part.read()
    if xml is None:
        raise Problem("submission.no_xml_part")
    return xml, files, incomplete


def ingest(
    store: Store,
    caller: Caller,
    parts: list[Part],
    shapes: ShapeCache,
    check_hook: Callable[..., list[Any]] | None = None,
) -> IngestResult:
    """Handle one POST's parts for ``caller``; raises a Problem (IngestError) for every refusal."""
    xml, files, _incomplete = split_parts(parts)  # *isIncomplete* is advisory (Central ignores it too)
    result = accept(store, caller.user, xml, files, shapes, check_hook, via="openrosa")
    on_arrival(store, result.instance_id)  # an encrypted record, while an officer has the key unlocked
    return result
