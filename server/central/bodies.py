"""What the Central API's JSON requests carry: one pydantic model per body, the keys pyodk sends.

A handler names its body as ``data: <model>``, so litestar reads and checks it before the handler runs
and the OpenAPI schema (/schema/openapi.json) describes it. A body it refuses is answered by
``server.errors.http_problem`` as Central does: a key missing 400.3, a value of the wrong type 400.11, a
key an entity body does not take 400.31, a body that is not a JSON object 400.1. What depends on the
stored records (an entity list's properties, a blank label, the officer's units) stays in the handlers.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Login(BaseModel):
    """``POST /v1/sessions``: an officer's username (Central's ``email``) and password."""

    email: str = Field(min_length=1)
    password: str = Field(min_length=1)


class ReviewChange(BaseModel):
    """``PATCH …/submissions/{id}``: the new review state (``null``: back to received), with an optional
    comment (rasoat asks a reason for ``hasIssues`` and ``rejected``)."""

    reviewState: Literal["approved", "hasIssues", "rejected", "edited"] | None  # Central's key
    comment: str | None = None


class NewComment(BaseModel):
    """``POST …/submissions/{id}/comments``."""

    body: str


class NewEntity(BaseModel):
    """One entity to create: its id (a v4 UUID; one is made when absent), label and property values (every
    value a string, the list's properties only)."""

    model_config = ConfigDict(extra="forbid")

    uuid: str | None = None
    label: str | None = None
    data: dict[str, str] | None = None


class EntitySource(BaseModel):
    """Where a ``create_many`` batch came from (pyodk: a file name and its size), kept in the audit log."""

    name: str | None = None
    size: float | None = None


class EntitiesWrite(NewEntity):
    """``POST …/datasets/{name}/entities``: one entity (``uuid``, ``label``, ``data``), or pyodk's
    ``create_many`` (``entities`` and ``source``, all or none), never keys of both. ``unit`` is rasoat's:
    the administrative unit a new entity is filed under (the officer's only unit when absent)."""

    unit: str | None = None
    entities: list[NewEntity] | None = None
    source: EntitySource | None = None

    def mixed_keys(self) -> set[str]:
        """The keys given that the other kind of body takes (a bulk body's ``label``, a single one's
        ``source``)."""
        bulk = {"entities", "source"}
        given = self.model_fields_set - {"unit"}
        return given - bulk if self.entities is not None else given & bulk


class EntityChange(BaseModel):
    """``PATCH …/entities/{uuid}``: a new label and property values laid over the current ones ("" clears
    a value)."""

    model_config = ConfigDict(extra="forbid")

    label: str | None = None
    data: dict[str, str] | None = None


class NewProperty(BaseModel):
    """``POST …/datasets/{name}/properties`` (pyodk's ``entity_list_properties.create``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
