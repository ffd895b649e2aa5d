"""One small capability per rule: the finding, its severity, and the node it points at.

Each test starts from BASE (a clean file: no errors, no warnings), changes one thing, writes it to
tmp_path and checks it the way `naftiko validate` does.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from naftiko_runtime.check.runner import check_file
from naftiko_runtime.capability.diagnostics import Diagnostic

BASE: dict[str, Any] = {
    "naftiko": "1.0.0-alpha2",
    "info": {"label": "Items", "description": "A small capability for rule tests."},
    "binds": [{"namespace": "env", "keys": {"API_TOKEN": "API_TOKEN"}}],
    "capability": {
        "consumes": [{
            "type": "http",
            "namespace": "api",
            "baseUri": "https://api.example.com/v1",
            "authentication": {"type": "bearer", "token": "{{API_TOKEN}}"},
            "resources": [
                {"name": "items", "path": "/items", "operations": [
                    {"name": "list-items", "method": "GET",
                     "inputParameters": [{"name": "limit", "in": "query"}]},
                    {"name": "create-item", "method": "POST", "body": '{"name": "{{name}}"}'},
                ]},
                {"name": "item", "path": "/items/{{id}}", "operations": [
                    {"name": "get-item", "method": "GET"},
                ]},
            ],
        }],
        "exposes": [
            {"type": "rest", "namespace": "shop", "port": 8080, "resources": [
                {"path": "/items", "operations": [
                    {"method": "GET", "name": "list", "call": "api.list-items", "with": {"limit": "shop.limit"}},
                    {"method": "POST", "name": "create", "call": "api.create-item"},
                ]},
                {"path": "/items/{id}", "operations": [
                    {"method": "GET", "name": "get", "call": "api.get-item", "with": {"id": "shop.id"}},
                ]},
            ]},
            {"type": "mcp", "namespace": "shop-tools", "port": 9090, "tools": [
                {"name": "get-item", "description": "Get one item", "call": "api.get-item", "with": {"id": "shop-tools.id"}},
            ]},
        ],
    },
}


def doc() -> dict[str, Any]:
    return copy.deepcopy(BASE)


def consumes(d: dict) -> dict:
    return d["capability"]["consumes"][0]


def rest(d: dict) -> dict:
    return d["capability"]["exposes"][0]


def tool(d: dict) -> dict:
    return d["capability"]["exposes"][1]["tools"][0]


def check(tmp_path: Path, d: dict | str, name: str = "cap.yaml") -> tuple[list[Diagnostic], str]:
    text = d if isinstance(d, str) else yaml.safe_dump(d, sort_keys=False)
    path = tmp_path / name
    path.write_text(text)
    return check_file(path).diagnostics, text


def found(diags: list[Diagnostic], rule: str, severity: str | None = None) -> list[Diagnostic]:
    return [x for x in diags if x.rule == rule and (severity is None or x.severity == severity)]


def line_of(text: str, fragment: str, start: int = 1) -> int:
    """1-based number of the first line at or after `start` that contains `fragment`."""
    for number, line in enumerate(text.splitlines(), 1):
        if number >= start and fragment in line:
            return number
    raise AssertionError(f"{fragment!r} not in the document")


def test_base_capability_is_clean(tmp_path):
    diags, _ = check(tmp_path, doc())
    assert [x for x in diags if x.severity != "note"] == []


# --------------------------------------------------------------------------- call-unresolved

def test_call_to_a_missing_operation_is_an_error_with_did_you_mean(tmp_path):
    d = doc()
    tool(d)["call"] = "api.getItem"
    diags, text = check(tmp_path, d)
    [err] = found(diags, "call-unresolved", "error")
    assert "has no operation 'getItem'; did you mean 'get-item'?" in err.message
    assert err.pos.line == line_of(text, "call: api.getItem")
    assert not found(diags, "compile"), "the engine's own message is replaced, not repeated"


def test_call_to_a_missing_namespace_is_an_error_with_did_you_mean(tmp_path):
    d = doc()
    rest(d)["resources"][0]["operations"][0]["call"] = "apx.list-items"
    diags, _ = check(tmp_path, d)
    [err] = found(diags, "call-unresolved", "error")
    assert "no consumes namespace 'apx'; did you mean 'api'?" in err.message


def test_calls_into_a_failed_import_report_only_the_import(tmp_path):
    d = doc()
    d["capability"]["consumes"].append({"location": "./missing.yaml", "import": "other"})
    tool(d)["call"] = "other.op"
    diags, _ = check(tmp_path, d)
    assert found(diags, "import-not-found", "error")
    assert not found(diags, "call-unresolved") and not found(diags, "compile")


# --------------------------------------------------------------------------- with

def test_with_key_the_operation_does_not_read_is_a_warning(tmp_path):
    d = doc()
    tool(d)["with"]["idd"] = "shop-tools.id"
    diags, text = check(tmp_path, d)
    [w] = found(diags, "with-unknown-key", "warning")
    assert "'idd'" in w.message and "did you mean 'id'?" in w.message
    assert w.pos.line == line_of(text, "idd:")


def test_with_reference_to_an_undeclared_input_is_a_warning(tmp_path):
    d = doc()
    tool(d)["inputParameters"] = [{"name": "item", "type": "string", "description": "the item id"}]
    diags, _ = check(tmp_path, d)
    [w] = found(diags, "with-unresolved-ref", "warning")
    assert "copies input 'id', which it does not have (inputs: item)" in w.message


def test_with_value_naming_another_namespace_is_sent_literally(tmp_path):
    d = doc()
    tool(d)["with"]["id"] = "shop.id"  # the REST exposure's namespace, inside the MCP exposure
    diags, _ = check(tmp_path, d)
    [w] = found(diags, "with-unresolved-ref", "warning")
    assert "sent as the literal text 'shop.id'" in w.message and "'shop-tools.id'" in w.message


# --------------------------------------------------------------------------- input-unreachable

def test_url_variable_no_input_can_fill_is_an_error(tmp_path):
    d = doc()
    tool(d)["inputParameters"] = [{"name": "item", "type": "string", "description": "the item id"}]
    del tool(d)["with"]
    diags, text = check(tmp_path, d)
    [err] = found(diags, "input-unreachable", "error")
    assert "needs {{id}}" in err.message and "every call would fail with 400" in err.message
    assert err.pos.line == line_of(text, "call: api.get-item", line_of(text, "name: get-item", line_of(text, "tools:")))


def test_required_parameter_never_set_is_a_warning(tmp_path):
    d = doc()
    consumes(d)["resources"][0]["operations"][0]["inputParameters"] = [{"name": "limit", "in": "query", "required": True}]
    op = rest(d)["resources"][0]["operations"][0]
    op["inputParameters"] = [{"name": "page", "in": "query", "type": "integer", "description": "page"}]
    del op["with"]
    diags, _ = check(tmp_path, d)
    [w] = found(diags, "input-unreachable", "warning")
    assert "never sets 'limit', a required query parameter" in w.message


# --------------------------------------------------------------------------- path variables

def test_path_variable_the_call_does_not_use_is_a_warning(tmp_path):
    d = doc()
    rest(d)["resources"][0]["path"] = "/stores/{store}/items"
    diags, _ = check(tmp_path, d)
    warnings = found(diags, "path-var-unbound", "warning")
    assert len(warnings) == 2  # GET and POST on the path
    assert "path variable {store}" in warnings[0].message


def test_consumed_path_parameter_missing_from_the_path_is_appended_with_a_note(tmp_path):
    d = doc()
    item = consumes(d)["resources"][1]
    item["path"] = "/items"
    item["operations"][0]["inputParameters"] = [{"name": "id", "in": "path"}]
    diags, _ = check(tmp_path, d)
    [note] = found(diags, "path-param-appended", "note")
    assert "/items/{{id}}" in note.message
    assert [x for x in diags if x.severity == "error"] == []


def test_exposed_path_input_missing_from_the_route_is_appended_with_a_note(tmp_path):
    d = doc()
    res = rest(d)["resources"][1]
    res["path"] = "/item"
    res["operations"][0]["inputParameters"] = [{"name": "id", "in": "path", "type": "string", "description": "id"}]
    diags, _ = check(tmp_path, d)
    [note] = found(diags, "path-param-appended", "note")
    assert "served as '/item/{id}'" in note.message


# --------------------------------------------------------------------------- templates

def test_with_template_naming_nothing_is_a_warning(tmp_path):
    d = doc()
    tool(d)["inputParameters"] = [{"name": "id", "type": "string", "description": "the item id"}]
    tool(d)["with"] = {"id": "{{item_id}}"}
    diags, _ = check(tmp_path, d)
    [w] = found(diags, "template-var-undefined", "warning")
    assert "{{item_id}}" in w.message and "'id' is never set" in w.message


def test_bind_namespace_reference_to_an_undeclared_variable_is_a_warning(tmp_path):
    d = doc()
    consumes(d)["resources"][0]["operations"][0]["inputParameters"].append({"name": "X-Region", "in": "header", "value": "{{env.REGION}}"})
    diags, _ = check(tmp_path, d)
    [w] = found(diags, "template-var-undefined", "warning")
    assert "{{env.REGION}}" in w.message and "bind namespace 'env' declares API_TOKEN" in w.message


def test_body_template_a_declared_caller_does_not_provide_is_a_warning(tmp_path):
    d = doc()
    create = rest(d)["resources"][0]["operations"][1]
    create["inputParameters"] = [{"name": "title", "in": "body", "type": "string", "description": "the title"}]
    diags, text = check(tmp_path, d)
    [w] = found(diags, "template-var-undefined", "warning")
    assert w.message.startswith("api.create-item body uses {{name}}, which operation 'create'")
    assert w.pos.line == line_of(text, "body:")


def test_output_value_template_naming_no_input_is_a_warning(tmp_path):
    d = doc()
    d["capability"]["exposes"][1]["tools"].append(
        {"name": "hello", "description": "Static", "inputParameters": [{"name": "who", "type": "string", "description": "who"}],
         "outputParameters": [{"name": "greeting", "type": "string", "value": "hello {{whom}}"}]})
    diags, text = check(tmp_path, d)
    [w] = found(diags, "template-var-undefined", "warning")
    assert "tool 'hello' output uses {{whom}}" in w.message and "renders empty" in w.message
    assert w.pos.line == line_of(text, "value: hello")


def test_credential_variable_no_bind_declares_is_an_error(tmp_path):
    d = doc()
    consumes(d)["authentication"]["token"] = "{{API_TOKN}}"
    diags, _ = check(tmp_path, d)
    [err] = found(diags, "unbound-variable", "error")
    assert "{{API_TOKN}}" in err.message and "did you mean API_TOKEN?" in err.message
    assert found(diags, "bind-unused", "warning"), "API_TOKEN is now unused"


# --------------------------------------------------------------------------- duplicates

def test_two_operations_on_one_method_and_path_is_an_error(tmp_path):
    d = doc()
    rest(d)["resources"].append({"path": "/items", "operations": [{"method": "GET", "name": "list-again", "call": "api.list-items"}]})
    diags, _ = check(tmp_path, d)
    [err] = found(diags, "duplicate-route", "error")
    assert "GET /items is served twice" in err.message


def test_duplicate_tool_names_are_an_error(tmp_path):
    d = doc()
    d["capability"]["exposes"][1]["tools"].append(copy.deepcopy(tool(d)))
    diags, _ = check(tmp_path, d)
    [err] = found(diags, "duplicate-tool", "error")
    assert "tool 'get-item' is declared twice" in err.message


def test_duplicate_consumes_namespace_is_an_error(tmp_path):
    d = doc()
    d["capability"]["consumes"].append(copy.deepcopy(consumes(d)))
    diags, _ = check(tmp_path, d)
    assert found(diags, "duplicate-namespace", "error")


def test_duplicate_exposure_namespace_is_a_warning(tmp_path):
    d = doc()
    d["capability"]["exposes"][1]["namespace"] = "shop"
    tool(d)["with"]["id"] = "shop.id"
    diags, text = check(tmp_path, d)
    [w] = found(diags, "duplicate-namespace", "warning")
    assert "'shop' is already used by the exposure at line" in w.message
    assert w.pos.line == line_of(text, "namespace: shop", line_of(text, "type: mcp"))


def test_two_exposures_on_one_port_is_an_error(tmp_path):
    d = doc()
    d["capability"]["exposes"][1]["port"] = 8080
    diags, text = check(tmp_path, d)
    [err] = found(diags, "port-conflict", "error")
    assert "'shop' (line" in err.message and "both listen on port 8080" in err.message
    assert err.pos.line == line_of(text, "port: 8080", line_of(text, "type: mcp"))


# --------------------------------------------------------------------------- binds

def test_unused_bind_variable_is_a_warning(tmp_path):
    d = doc()
    d["binds"][0]["keys"]["UNUSED_KEY"] = "UNUSED_KEY"
    diags, text = check(tmp_path, d)
    [w] = found(diags, "bind-unused", "warning")
    assert "'UNUSED_KEY'" in w.message
    assert w.pos.line == line_of(text, "UNUSED_KEY:")


def test_bind_location_scheme_the_runtime_cannot_read_is_an_error(tmp_path):
    d = doc()
    d["binds"][0]["location"] = "vault://secrets/items"
    diags, _ = check(tmp_path, d)
    [err] = found(diags, "bind-location", "error")
    assert "'vault://' is not supported by this runtime" in err.message


def test_missing_environment_values_are_not_findings(tmp_path, monkeypatch):
    monkeypatch.delenv("API_TOKEN", raising=False)
    d = doc()
    d["binds"][0]["location"] = "file:///./does-not-exist.yaml"
    diags, _ = check(tmp_path, d)
    assert [x for x in diags if x.severity == "error"] == []


# --------------------------------------------------------------------------- auth

@pytest.mark.parametrize("kind", ["oauth1", "hmac"])
def test_unsupported_consumed_auth_is_an_error(tmp_path, kind):
    d = doc()
    consumes(d)["authentication"] = {"type": kind, "username": "{{API_TOKEN}}", "password": "{{API_TOKEN}}"}
    diags, _ = check(tmp_path, d)
    [err] = found(diags, "unsupported-auth", "error")
    assert f"'{kind}'" in err.message and "not supported by this runtime" in err.message


@pytest.mark.parametrize("block,missing", [
    ({"type": "aws-sig-v4", "accessKeyId": "{{API_TOKEN}}"}, "`secretAccessKey`"),
    ({"type": "oauth2", "clientId": "{{API_TOKEN}}"}, "`tokenEndpoint` and `clientSecret`"),
    ({"type": "certificate"}, "`certificate`"),
    ({"type": "digest", "username": "{{API_TOKEN}}"}, "`password`"),
])
def test_a_consumed_scheme_missing_its_keys_names_them(tmp_path, block, missing):
    d = doc()
    consumes(d)["authentication"] = block
    diags, _ = check(tmp_path, d)
    [err] = found(diags, "auth-incomplete", "error")
    assert err.message.endswith(f"authentication needs {missing}")


def test_unsupported_exposed_auth_is_an_error(tmp_path):
    d = doc()
    d["capability"]["exposes"][1]["authentication"] = {"type": "hmac", "key": "{{API_TOKEN}}"}
    diags, _ = check(tmp_path, d)
    [err] = found(diags, "unsupported-auth", "error")
    assert "not supported by this runtime" in err.message


# --------------------------------------------------------------------------- baseUri

@pytest.mark.parametrize("base", ["api.example.com/v1", "ftp://api.example.com", "https://"])
def test_base_uri_that_is_not_an_absolute_http_url_is_an_error(tmp_path, base):
    d = doc()
    consumes(d)["baseUri"] = base
    diags, text = check(tmp_path, d)
    [err] = found(diags, "baseuri-invalid", "error")
    assert "is not an absolute http(s) URL" in err.message
    assert err.pos.line == line_of(text, "baseUri:")


def test_templated_base_uri_is_fine_when_its_variables_are_bound(tmp_path):
    d = doc()
    d["binds"][0]["keys"]["API_HOST"] = "API_HOST"
    consumes(d)["baseUri"] = "https://{{API_HOST}}/v1"
    diags, _ = check(tmp_path, d)
    assert [x for x in diags if x.severity in ("error", "warning")] == []
    consumes(d)["baseUri"] = "{{env.API_HOST}}/v1"
    diags, _ = check(tmp_path, d)
    assert [x for x in diags if x.severity in ("error", "warning")] == []


def test_templated_base_uri_with_an_undeclared_variable_reads_the_environment(tmp_path):
    d = doc()
    consumes(d)["baseUri"] = "https://{{region}}.example.com"
    diags, _ = check(tmp_path, d)
    [warn] = found(diags, "bind-implicit", "warning")
    assert "{{region}}" in warn.message and "environment variable region" in warn.message
    assert not found(diags, "unbound-variable")
    assert not found(diags, "baseuri-invalid")


# --------------------------------------------------------------------------- engine, schemas

def test_tool_with_nothing_to_do_is_an_error(tmp_path):
    d = doc()
    del tool(d)["call"], tool(d)["with"]
    diags, _ = check(tmp_path, d)
    [err] = found(diags, "compile", "error")
    assert "has no `call` and no static outputs" in err.message


def test_lenient_schema_violation_is_an_error_at_the_value(tmp_path):
    d = doc()
    tool(d)["hints"] = {"readOnly": "yes"}
    diags, text = check(tmp_path, d)
    [err] = found(diags, "schema", "error")
    assert "`readOnly` must be boolean, found text" in err.message
    assert err.pos.line == line_of(text, "readOnly:")


def test_strict_names_the_canonical_form_and_says_the_runtime_accepts_it(tmp_path):
    d = doc()
    consumes(d)["resources"][0]["operations"][0]["inputParameters"][0]["type"] = "integer"
    path = tmp_path / "cap.yaml"
    text = yaml.safe_dump(d, sort_keys=False)
    path.write_text(text)
    assert not found(check_file(path).diagnostics, "strict-schema")
    diags = check_file(path, strict=True).diagnostics
    [err] = found(diags, "strict-schema", "error")
    assert err.message == "consumed inputParameters allow only name, in, value; remove `type` (the runtime accepts it)"
    assert (err.pos.line, err.pos.col) == (line_of(text, "type: integer"), text.splitlines()[line_of(text, "type: integer") - 1].index("type") + 1)


# --------------------------------------------------------------------------- docs

def _rule_ids_in_source() -> set[str]:
    """The rule id of every diagnostics call and CompileError in the loader, normalizer, engine and checker."""
    import ast

    root = Path(__file__).resolve().parents[2] / "naftiko_runtime"
    ids: set[str] = set()
    for module in root.rglob("*.py"):
        if module.relative_to(root).parts[0] == "authoring":
            continue  # findings about OpenAPI input, not capability files: docs/authoring.md lists them
        for node in ast.walk(ast.parse(module.read_text())):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            last = node.args[-1]
            if name in ("error", "warning", "note", "Diagnostic") and len(node.args) >= 3 and isinstance(last, ast.Constant) and isinstance(last.value, str):
                ids.add(last.value)
            rule = node.args[1] if name == "CompileError" and len(node.args) >= 2 else None
            if isinstance(rule, ast.Constant) and isinstance(rule.value, str):
                ids.add(rule.value)
    return ids


def test_every_rule_id_has_a_line_in_docs_validation_md():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "validation.md").read_text()
    ids = _rule_ids_in_source()
    assert {"call-unresolved", "yaml-duplicate-key", "duplicate-route", "bind-unused"} <= ids
    missing = sorted(i for i in ids if f"| `{i}` |" not in doc)
    assert missing == []
