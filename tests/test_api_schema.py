"""The OpenAPI schema of rasoat's own JSON API (/api/v1) and of the Central API (/v1) describes what each
operation answers: a response model for its result and the API's problem shape for each refusal, and only
the parameters a client sends (the store and the officer are dependencies, never query parameters)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from litestar.enums import RequestEncodingType
from rasoat.core.storage.opening import open_store
from rasoat.server.app import CENTRAL_TAG, create_app

REFUSALS = ("400", "401", "403", "404", "409", "413", "422", "429")
CENTRAL_REFUSALS = ("400", "401", "403", "404", "409", "413", "429", "501")


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> Any:
    store = open_store(Path(tmp_path_factory.mktemp("schema")) / "data")
    try:
        yield create_app(store).openapi_schema.to_schema()
    finally:
        store.close()


def _operations(schema: Any) -> list[tuple[str, str, Any]]:
    return [(path, method, op) for path, item in schema["paths"].items() if path.startswith("/api/v1/")
            for method, op in item.items()]


def test_every_api_operation_has_a_result_model_and_the_problem_shape(schema: Any) -> None:
    operations = _operations(schema)
    assert {p for p, _, _ in operations} >= {"/api/v1/rounds", "/api/v1/indicators", "/api/v1/forms"}
    problem = schema["components"]["schemas"]["ApiProblem"]
    assert set(problem["required"]) == {"error", "code"}
    for path, method, op in operations:
        ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
        content = ok["content"]
        if "application/json" in content:  # a JSON result: a named model (or a list of one)
            body = content["application/json"]["schema"]
            assert "$ref" in body or "$ref" in body.get("items", {}), (path, method, body)
        else:  # a file: its media type
            assert set(content) & {"application/zip", "application/vnd.openxmlformats-officedocument"
                                   ".spreadsheetml.sheet"}, (path, method)
        for status in REFUSALS:
            refusal = op["responses"][status]["content"]["application/json"]["schema"]
            assert refusal["$ref"].endswith("/ApiProblem"), (path, method, status)


def test_dependencies_are_not_parameters(schema: Any) -> None:
    for path, method, op in _operations(schema):
        names = {p["name"] for p in op.get("parameters", [])}
        assert not names & {"store", "user", "connection", "request"}, (path, method, names)


def _central_operations(schema: Any) -> list[tuple[str, str, Any]]:
    return [(path, method, op) for path, item in schema["paths"].items() for method, op in item.items()
            if CENTRAL_TAG in op.get("tags", ())]


def test_every_central_operation_has_a_result_model_and_centrals_problem_shape(schema: Any) -> None:
    """pyodk and other Central clients read these answers: each JSON result is a named model (the OData
    tables an envelope whose rows are open objects), each refusal Central's ``{"message", "code"}``."""
    operations = _central_operations(schema)
    paths = {p for p, _, _ in operations}
    assert paths >= {"/v1/sessions", "/v1/users/current", "/v1/projects", "/v1/projects/{pid}/forms",
                     "/v1/projects/{pid}/forms/{name}",
                     "/v1/projects/{pid}/forms/{form_id}/submissions",
                     "/v1/projects/{pid}/forms/{svc}/{table}", "/v1/projects/{pid}/datasets",
                     "/v1/projects/{pid}/datasets/{name}/entities/{uuid}",
                     "/v1/projects/{pid}/datasets/{name}/entities/{uuid}/versions"}
    assert not any(p.startswith(("/v1/key/", "/v1/test/")) or p.endswith("/formList") for p in paths)
    components = schema["components"]["schemas"]
    problem = components["CentralProblem"]
    assert set(problem["required"]) == {"message", "code"}
    assert problem["properties"]["code"]["type"] == "number"  # 404.1, as Central sends it
    page = components["ODataPage"]
    assert set(page["required"]) == {"@odata.context", "value"}
    assert page["properties"]["value"]["items"]["type"] == "object"
    form = set(components["CentralForm"]["required"])
    assert {"projectId", "xmlFormId", "version", "hash", "state", "publishedAt", "enketoId"} <= form
    entity_list = set(components["EntityListOut"]["required"])  # pyodk's EntityList
    assert {"name", "projectId", "createdAt", "approvalRequired"} <= entity_list
    entity = components["EntityOut"]  # pyodk's Entity, with the current version's data
    assert {"uuid", "creatorId", "createdAt", "currentVersion"} <= set(entity["required"])
    assert entity["properties"]["currentVersion"]["$ref"].endswith("/CurrentData")
    assert {"data", "label", "version"} <= set(components["CurrentData"]["required"])
    for path, method, op in operations:
        ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
        content = ok["content"]
        if "application/json" in content:  # a model, a list of one, or one of several (a form or its .svc)
            body = content["application/json"]["schema"]
            items = body.get("items", {})
            refs = [body, items, *body.get("oneOf", []), *items.get("oneOf", [])]
            assert any("$ref" in r for r in refs), (path, method, body)
        else:  # an attachment's bytes
            assert set(content) == {"application/octet-stream"}, (path, method)
        for status in CENTRAL_REFUSALS:
            refusal = op["responses"][status]["content"]["application/json"]["schema"]
            assert refusal["$ref"].endswith("/CentralProblem"), (path, method, status)
        names = {p["name"] for p in op.get("parameters", [])}
        assert not names & {"store", "user", "connection", "request"}, (path, method, names)


def test_every_json_body_is_described(tmp_path: Path) -> None:
    """Each route that takes a JSON body (a ``data`` parameter litestar reads as JSON) has it in the schema
    as a requestBody naming its model, so schemathesis generates bodies for it; the Central writes pyodk
    makes are among them."""
    store = open_store(tmp_path / "data")
    try:
        app = create_app(store)
        schema = app.openapi_schema.to_schema()
        with_body: set[tuple[str, str]] = set()
        for route in app.routes:
            for handler in getattr(route, "route_handlers", ()):
                data = handler.parsed_fn_signature.parameters.get("data")
                if data is None or not handler.include_in_schema:
                    continue
                assert data.kwarg_definition.media_type == RequestEncodingType.JSON, (route.path, data)
                for method in handler.http_methods:
                    path = re.sub(r":\w+}", "}", route.path)
                    with_body.add((path, method.lower()))
    finally:
        store.close()
    assert with_body >= {("/v1/sessions", "post"), ("/v1/projects/{pid}/datasets/{name}/entities", "post"),
                         ("/v1/projects/{pid}/datasets/{name}/entities/{uuid}", "patch"),
                         ("/v1/projects/{pid}/forms/{form_id}/submissions/{iid}", "patch")}
    for path, method in with_body:
        body = schema["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
        refs = [body, *body.get("oneOf", [])]
        assert any(r.get("$ref", "").startswith("#/components/schemas/") for r in refs), (path, method, body)


NO_BODY = {("/v1/projects/{pid}/forms/{form_id}/draft/publish", "post")}  # Central's publish takes none


def test_every_write_says_what_it_takes(schema: Any) -> None:
    """Every POST, PUT and PATCH of the schema names its body: a JSON model, or the media types of what its
    handler reads itself (an XML submission, an XLSForm, a file, OpenRosa's and the publish multipart)."""
    writes = [(p, m, op) for p, item in schema["paths"].items() for m, op in item.items()
              if m in ("post", "put", "patch") and (p, m) not in NO_BODY]
    assert len(writes) >= 16
    media = {}
    for path, method, op in writes:
        content = op.get("requestBody", {}).get("content", {})
        assert content, (path, method)
        media[path, method] = set(content)
    assert media["/v1/projects/{pid}/forms/{form_id}/submissions", "post"] == {"application/xml", "text/xml"}
    assert media["/api/v1/forms", "post"] == media["/v1/projects/{pid}/submission", "post"] == {
        "multipart/form-data"}
    assert "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" in media[
        "/v1/projects/{pid}/forms", "post"]


def test_odata_options_are_parameters(schema: Any) -> None:
    """The OData tables of forms and entity lists name their query options, so a client (and schemathesis)
    sees ``$top``, ``$filter``… with their types."""
    for path in ("/v1/projects/{pid}/forms/{svc}/{table}", "/v1/projects/{pid}/datasets/{name}/{table}"):
        params = {p["name"]: p["schema"] for p in schema["paths"][path]["get"]["parameters"]}
        wanted = {"$top", "$skip", "$count", "$filter", "$select", "$orderby", "$skiptoken"}
        assert wanted <= set(params), path
        assert any(s.get("type") == "integer" for s in params["$top"].get("oneOf", [params["$top"]]))
