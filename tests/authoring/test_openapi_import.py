"""`naftiko import openapi`: small descriptions of our own for each parameter location, body kind,
security scheme and `$ref` form; each imported capability is compiled as `naftiko run` compiles it
and called against the echo upstream (a real socket), so what is checked is what the API receives.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import uuid
from urllib.parse import parse_qsl
from pathlib import Path

import pytest
import yaml

from naftiko_runtime.authoring.capability_yaml import dump, output_versions
from naftiko_runtime.authoring.openapi_import import import_openapi, kebab
from naftiko_runtime.call import parse_values
from naftiko_runtime.errors import InputError
from tests.authoring.support import OPENAPI, VAPI_OPENAPI, imported, invoke, plan_of, tool_schema


R = uuid.uuid4().hex  # credentials are masked process-wide once used (redact.py): random ones collide with nothing


def sent(echo) -> dict:
    return echo.last


def warnings_of(result) -> list[str]:
    return [f"{d.pos.line}: {d.message}" for d in result.warnings]


# ---------------------------------------------------------------------------- parameters


def test_every_parameter_location_reaches_the_upstream_typed(tmp_path, echo):
    cap, result = imported(OPENAPI / "params.yaml", tmp_path)
    assert result.document["capability"]["consumes"][0]["baseUri"] == "https://api.example.com/v2"  # server variables' defaults
    plan = plan_of(cap, echo.base_url)
    schema = tool_schema(plan, "get-store-item")
    props = schema["properties"]
    assert {n: p["type"] for n, p in props.items()} == {
        "X-Tenant": "string", "storeId": "string", "itemId": "integer", "includeHistory": "boolean",
        "maxPrice": "number", "color": "string", "sizes": "array", "X-Request-Id": "string", "session": "string"}
    assert props["color"]["enum"] == ["red", "green", "blue"] and props["includeHistory"]["default"] is False
    assert props["itemId"]["minimum"] == 1 and props["itemId"]["description"] == "The item number."
    assert sorted(schema["required"]) == ["X-Tenant", "itemId", "storeId"]  # path-item level $ref parameter included

    outcome = invoke(plan, "get-store-item", {
        "X-Tenant": "acme", "storeId": "s 1", "itemId": 7, "includeHistory": True, "maxPrice": 9.5,
        "color": "red", "sizes": ["S", "M"], "X-Request-Id": "r-1", "session": "abc"})
    assert outcome.status == 200
    got = sent(echo)
    assert got["raw_path"].split("?")[0] == "/stores/s%201/items/7"
    assert got["query"] == [["includeHistory", "true"], ["maxPrice", "9.5"], ["color", "red"], ["sizes", "S"], ["sizes", "M"]]
    assert got["headers"]["x-tenant"] == "acme" and got["headers"]["x-request-id"] == "r-1"
    assert got["cookies"] == {"session": "abc"}


def test_the_same_message_as_the_rest_exposure_for_a_wrong_type(tmp_path):
    cap, _ = imported(OPENAPI / "params.yaml", tmp_path)
    plan = plan_of(cap, mock=True)
    with pytest.raises(InputError) as bad:
        parse_values(next(t.invocation for t in plan.mcp[0].tools), ["itemId=seven"])
    assert str(bad.value) == "itemId: must be an integer, got 'seven'"
    with pytest.raises(InputError) as enum:
        invoke(plan, "get-store-item", {"X-Tenant": "t", "storeId": "s", "itemId": 1, "color": "purple"})
    assert "color" in str(enum.value) and "'purple' is not one of ['red', 'green', 'blue']" in str(enum.value)


def test_what_cannot_be_expressed_is_skipped_with_one_warning_each(tmp_path):
    _, result = imported(OPENAPI / "params.yaml", tmp_path)
    assert warnings_of(result) == [
        "65: TRACE /stores/{storeId}/items/{itemId} skipped: the capability format declares GET, POST, PUT, PATCH and DELETE",
        "58: GET /stores/{storeId}/items/{itemId}: its callbacks are skipped (a capability does not receive requests from the API); the operation itself is imported",
        "49: GET /stores/{storeId}/items/{itemId}: optional parameter 'filter' skipped: it is an object in the query with style 'deepObject', which the runtime does not serialize",
        "76: GET /stores/{storeId}/crumbs skipped: its required parameter 'trail' is a cookie with a complex (array) value, which the runtime does not serialize",
        "92: 1 webhook(s) skipped: a capability consumes requests it sends, it does not receive callbacks",
    ]
    names = [p["name"] for p in result.document["capability"]["consumes"][0]["resources"][0]["operations"][0]["inputParameters"]]
    assert "Accept" not in names and "filter" not in names  # OpenAPI ignores Accept/Content-Type/Authorization parameters


# ---------------------------------------------------------------------------- bodies


def test_json_body_fields_are_inputs_and_the_json_the_upstream_gets(tmp_path, echo):
    cap, _ = imported(OPENAPI / "bodies.yaml", tmp_path)
    plan = plan_of(cap, echo.base_url)
    props = tool_schema(plan, "create-pet")["properties"]
    assert set(props) == {"name", "kind", "age", "vaccinated"}  # allOf merged, readOnly `id` dropped
    assert props["name"]["maxLength"] == 20 and tool_schema(plan, "create-pet")["required"] == ["name"]
    assert invoke(plan, "create-pet", {"name": "Rex", "age": 3, "vaccinated": True}).status == 200
    assert sent(echo)["json"] == {"name": "Rex", "age": 3, "vaccinated": True}
    assert sent(echo)["headers"]["content-type"] == "application/json"


def test_a_non_object_json_body_is_one_body_input(tmp_path, echo):
    cap, _ = imported(OPENAPI / "bodies.yaml", tmp_path)
    plan = plan_of(cap, echo.base_url)
    body = tool_schema(plan, "replace-pets")["properties"]["body"]
    assert body["type"] == "array" and body["items"]["properties"]["kind"]["enum"] == ["cat", "dog", None]
    invoke(plan, "replace-pets", {"body": [{"name": "a"}, {"name": "b"}]})
    assert sent(echo)["method"] == "PUT" and sent(echo)["json"] == [{"name": "a"}, {"name": "b"}]


def test_form_body(tmp_path, echo):
    cap, _ = imported(OPENAPI / "bodies.yaml", tmp_path)
    plan = plan_of(cap, echo.base_url)
    invoke(plan, "login", {"username": "ann", "password": "p&ss word", "remember": True})
    assert sent(echo)["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert sent(echo)["body"] == "username=ann&password=p%26ss+word&remember=true"


def test_multipart_body_with_a_file(tmp_path, echo):
    cap, _ = imported(OPENAPI / "bodies.yaml", tmp_path)
    plan = plan_of(cap, echo.base_url)
    png = b"\x89PNG\r\n\x1a\n\x00binary"
    invoke(plan, "upload-photo", {"caption": "a cat", "file": base64.b64encode(png).decode()})
    got = sent(echo)
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {got['headers']['content-type']}\r\n\r\n".encode() + got["body"].encode("utf-8", "surrogateescape"))
    parts = {p.get_param("name", header="content-disposition"): p for p in message.iter_parts()}
    assert parts["caption"].get_content() == "a cat"
    assert parts["file"].get_filename() == "file" and parts["file"].get_content_type() == "image/png"
    with pytest.raises(InputError, match="base64"):
        invoke(plan, "upload-photo", {"file": "not base64!"})


def test_unsupported_body_media_type_skips_the_operation(tmp_path):
    _, result = imported(OPENAPI / "bodies.yaml", tmp_path)
    assert warnings_of(result) == ["73: POST /reports skipped: its request body is application/xml; JSON, form and multipart bodies are imported"]


# ---------------------------------------------------------------------------- security


def _secured(tmp_path: Path, scheme: dict, requirement: list | None = None, extra: dict | None = None) -> Path:
    schemes = {"main": scheme, **(extra or {})}
    spec = {"openapi": "3.0.3", "info": {"title": "Secured Thing API", "version": "1"}, "servers": [{"url": "https://s.example.com"}],
            "security": requirement or [{"main": []}],
            "paths": {"/things": {"get": {"operationId": "listThings", "responses": {"200": {"description": "ok"}}}}},
            "components": {"securitySchemes": schemes}}
    path = tmp_path / "secured.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize("scheme, env, check", [
    ({"type": "http", "scheme": "bearer"}, {"SECURED_THING_API_KEY": f"tok-{R}"},
     lambda got: got["headers"]["authorization"] == f"Bearer tok-{R}"),
    ({"type": "http", "scheme": "basic"}, {"SECURED_THING_USERNAME": f"ann-{R}", "SECURED_THING_PASSWORD": f"pw-{R}"},
     lambda got: got["headers"]["authorization"] == "Basic " + base64.b64encode(f"ann-{R}:pw-{R}".encode()).decode()),
    ({"type": "apiKey", "in": "header", "name": "X-Key"}, {"SECURED_THING_API_KEY": f"k1-{R}"},
     lambda got: got["headers"]["x-key"] == f"k1-{R}"),
    ({"type": "apiKey", "in": "query", "name": "api_key"}, {"SECURED_THING_API_KEY": f"k2-{R}"},
     lambda got: got["query"] == [["api_key", f"k2-{R}"]]),
    ({"type": "apiKey", "in": "cookie", "name": "sid"}, {"SECURED_THING_API_KEY": f"k3-{R}"},
     lambda got: got["cookies"] == {"sid": f"k3-{R}"}),
], ids=["bearer", "basic", "apikey-header", "apikey-query", "apikey-cookie"])
def test_security_schemes_become_authentication_with_binds_named_after_the_api(tmp_path, echo, monkeypatch, scheme, env, check):
    cap, result = imported(_secured(tmp_path, scheme), tmp_path)
    assert sorted(s.name for s in result.secrets) == sorted(env)
    assert result.document["binds"][0]["keys"] == {name: name for name in env}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    invoke(plan_of(cap, echo.base_url), "list-things", {})
    assert check(sent(echo))


def test_two_schemes_required_together(tmp_path, echo, monkeypatch):
    spec = _secured(tmp_path, {"type": "apiKey", "in": "header", "name": "X-App"}, [{"main": [], "user": []}],
                    {"user": {"type": "http", "scheme": "bearer"}})
    cap, result = imported(spec, tmp_path)
    assert [s.name for s in result.secrets] == ["SECURED_THING_MAIN_API_KEY", "SECURED_THING_USER_API_KEY"]
    monkeypatch.setenv("SECURED_THING_MAIN_API_KEY", f"app-{R}")
    monkeypatch.setenv("SECURED_THING_USER_API_KEY", f"user-{R}")
    invoke(plan_of(cap, echo.base_url), "list-things", {})
    assert sent(echo)["headers"]["x-app"] == f"app-{R}" and sent(echo)["headers"]["authorization"] == f"Bearer user-{R}"


def test_oauth2_client_credentials(tmp_path, echo, monkeypatch):
    flows = {"clientCredentials": {"tokenUrl": f"{echo.base_url}/token", "scopes": {"things:read": "read"}}}
    cap, result = imported(_secured(tmp_path, {"type": "oauth2", "flows": flows}, [{"main": ["things:read"]}]), tmp_path)
    auth = result.document["capability"]["consumes"][0]["authentication"]
    assert auth == {"type": "oauth2", "tokenEndpoint": f"{echo.base_url}/token",
                    "clientId": "{{SECURED_THING_CLIENT_ID}}", "clientSecret": "{{SECURED_THING_CLIENT_SECRET}}", "scopes": ["things:read"]}
    monkeypatch.setenv("SECURED_THING_CLIENT_ID", f"app-{R}")
    monkeypatch.setenv("SECURED_THING_CLIENT_SECRET", f"s3cret-{R}")
    token_value = f"tok-{uuid.uuid4().hex}"  # random: tokens are masked process-wide once issued (redact.py)
    echo.respond_with(200, {"access_token": token_value, "token_type": "Bearer", "expires_in": 3600})
    assert invoke(plan_of(cap, echo.base_url), "list-things", {}).status == 200
    token, call = echo.received
    assert token["path"] == "/token" and ("grant_type", "client_credentials") in parse_qsl(token["body"])
    assert token["headers"]["authorization"] == "Basic " + base64.b64encode(f"app-{R}:s3cret-{R}".encode()).decode()
    assert call["path"] == "/things" and call["headers"]["authorization"] == f"Bearer {token_value}"


def test_namespace_option_names_the_secrets(tmp_path):
    _, result = imported(_secured(tmp_path, {"type": "http", "scheme": "bearer"}), tmp_path, namespace="vapi")
    assert [s.name for s in result.secrets] == ["VAPI_API_KEY"]
    assert result.document["capability"]["consumes"][0]["namespace"] == "vapi"


# ---------------------------------------------------------------------------- $ref forms


def test_ref_forms(tmp_path, echo):
    """Local, external file + pointer, whole external JSON file, chains, a path item and a recursive schema."""
    cap, result = imported(OPENAPI / "refs" / "main.yaml", tmp_path)
    assert not list(result.warnings)
    plan = plan_of(cap, echo.base_url)
    update = tool_schema(plan, "update-pet")["properties"]
    assert update["petId"]["type"] == "integer" and update["petId"]["format"] == "int64"  # path item in paths.yaml -> components.yaml
    assert update["weight"] == {"type": "number", "description": "Weight in kg."}  # a ref inside the external file
    limit = tool_schema(plan, "list-owners")["properties"]["limit"]
    assert (limit["type"], limit["default"], limit["maximum"], limit["description"]) == ("integer", 10, 50, "Page size.")  # chain + schemas/limit.json
    tree = tool_schema(plan, "plant-tree")["properties"]
    assert tree["children"] == {"type": "array", "items": {"type": "object"}}  # the recursion is cut
    invoke(plan, "update-pet", {"petId": 3, "weight": 4.5})
    assert sent(echo)["method"] == "PATCH" and sent(echo)["path"] == "/pets/3" and sent(echo)["json"] == {"weight": 4.5}


# ---------------------------------------------------------------------------- names, filters


def test_tool_names_are_readable_kebab_case_and_unique(tmp_path):
    assert kebab("SessionController_findAllPaginated") == "session-controller-find-all-paginated"
    assert kebab("getHTTPResponse") == "get-http-response"
    spec = {"openapi": "3.1.0", "info": {"title": "N", "version": "1"}, "servers": [{"url": "https://n.example.com"}], "paths": {
        "/a": {"get": {"operationId": "list_items", "responses": {}}, "post": {"operationId": "listItems", "responses": {}}},
        "/a/{id}": {"delete": {"responses": {}}}}}
    path = tmp_path / "names.json"
    path.write_text(json.dumps(spec))
    _, result = imported(path, tmp_path)
    tools = result.document["capability"]["exposes"][1]["tools"]
    assert [t["name"] for t in tools] == ["list-items", "list-items-2", "delete-a-id"]
    assert [t["hints"] for t in tools][2] == {"readOnly": False, "destructive": True, "idempotent": True}


def test_tag_and_path_filters(tmp_path):
    _, by_path = imported(VAPI_OPENAPI, tmp_path, include_paths=["/session/*"])
    assert [t["name"] for t in by_path.document["capability"]["exposes"][1]["tools"]] == [
        "session-controller-find-one", "session-controller-update", "session-controller-remove"]
    _, by_tag = imported(VAPI_OPENAPI, tmp_path, tags=["Sessions"])
    assert by_tag.operations == 5


# ---------------------------------------------------------------------------- the Vapi description


def test_vapi_types_descriptions_and_no_duplicate_input(tmp_path):
    cap, result = imported(VAPI_OPENAPI, tmp_path)
    assert [str(w).split(": warning: ")[1] for w in result.warnings] == [
        "GET /session: parameter 'name' (in query) is declared twice; the second is skipped [openapi-duplicate-parameter]"]
    plan = plan_of(cap, mock=True)
    listing = tool_schema(plan, "session-controller-find-all-paginated")["properties"]
    assert listing["numberE164CheckEnabled"]["type"] == "boolean" and listing["numberE164CheckEnabled"]["default"] is True
    assert listing["page"]["type"] == "number" and listing["limit"]["maximum"] == 1000
    assert listing["phoneNumberIdAny"]["type"] == "array" and listing["sortOrder"]["enum"] == ["ASC", "DESC"]
    assert len(listing["numberE164CheckEnabled"]["description"]) > 500  # the full text, not cut at 200 characters
    create = tool_schema(plan, "session-controller-create")["properties"]
    assert create["expirationSeconds"]["type"] == "number" and create["status"]["enum"] == ["active", "completed"]
    assert create["assistant"]["type"] == "object" and "firstMessage" in create["assistant"]["properties"]
    assert len(json.dumps(create)) < 200_000  # nested configuration is cut at depth 2, not inlined (585 KB)


# ---------------------------------------------------------------------------- round trip


def _surface(plan) -> dict:
    """What a client sees: routes with their inputs (name, place, type, required)."""
    return {f"{r.method} {r.path}": sorted((i.name, i.location or "body", i.type, i.required) for i in r.invocation.inputs)
            for api in plan.rest for r in api.routes}


@pytest.mark.parametrize("version", output_versions())
def test_every_output_version_serves_the_same(tmp_path, version):
    result = import_openapi(VAPI_OPENAPI)
    text = dump(result.document, result.header, version)
    assert text.splitlines()[len(result.header)] == f"{'naftiko' if version < '1.0.0-alpha3' else 'ikanos'}: {version}"
    path = tmp_path / "vapi.yaml"
    path.write_text(text)
    plan = plan_of(path, mock=True)
    latest = tmp_path / "latest.yaml"
    latest.write_text(dump(result.document, result.header))
    assert _surface(plan) == _surface(plan_of(latest, mock=True))
    assert [t.invocation.input_schema for t in plan.mcp[0].tools] == [t.invocation.input_schema for t in plan_of(latest, mock=True).mcp[0].tools]


def test_import_export_import_is_stable(tmp_path):
    from naftiko_runtime.exposes.openapi import openapi_document

    first_cap, _ = imported(VAPI_OPENAPI, tmp_path)
    first = plan_of(first_cap, mock=True)
    exported = tmp_path / "exported.json"
    exported.write_text(json.dumps(openapi_document(first, first.rest[0])))
    (tmp_path / "again").mkdir()
    second_cap, _ = imported(exported, tmp_path / "again")
    second = plan_of(second_cap, mock=True)
    assert _surface(second) == _surface(first)
    assert [t.tool.name for t in second.mcp[0].tools] == [t.tool.name for t in first.mcp[0].tools]
    assert openapi_document(second, second.rest[0])["paths"] == openapi_document(first, first.rest[0])["paths"]
