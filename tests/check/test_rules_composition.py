"""`naftiko validate` on steps, lookups, mappings, aggregates and `ref`: each finding, its severity,
and the node it points at; whatever `run` refuses is an error here too (and only that)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from naftiko_runtime.binds import resolve_binds
from naftiko_runtime.capability.diagnostics import Diagnostics
from naftiko_runtime.capability.load import load_capability
from naftiko_runtime.errors import CapabilityError
from naftiko_runtime.plan import compile_plan
from tests.check.test_rules import check, consumes, doc, found, line_of, rest, tool

STEPS = [
    {"name": "list", "type": "call", "call": "api.list-items", "with": {"limit": 10}},
    {"name": "one", "type": "call", "call": "api.get-item", "with": {"id": "{{id}}"}},
    {"name": "match", "type": "lookup", "index": "list", "match": "id", "lookupValue": "$.one.id", "outputParameters": ["name"]},
]
MAPPINGS = [{"targetName": "item", "value": "$.one"}, {"targetName": "also.name", "value": "$.match.name"}]


def with_steps(d: dict) -> dict:
    t = tool(d)
    for key in ("call", "with"):
        t.pop(key)
    t["inputParameters"] = [{"name": "id", "type": "string", "description": "the item id"}]
    t["steps"] = copy.deepcopy(STEPS)
    t["mappings"] = copy.deepcopy(MAPPINGS)
    return d


def with_aggregate(d: dict) -> dict:
    d["capability"]["aggregates"] = [{"label": "Items", "namespace": "items", "functions": [{
        "name": "item-with-match", "description": "An item and its match in the list",
        "semantics": {"safe": True, "idempotent": True},
        "inputParameters": [{"name": "id", "type": "string", "description": "the item id"}],
        "steps": copy.deepcopy(STEPS), "mappings": copy.deepcopy(MAPPINGS),
    }]}]
    t = tool(d)
    for key in ("call", "with", "description"):
        t.pop(key)
    t["ref"] = "items.item-with-match"
    return d


def run_refuses(tmp_path: Path, text: str) -> bool:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    d = Diagnostics()
    cap = load_capability(path, d)
    if cap is None or d.errors:
        return True
    try:
        compile_plan(cap, resolve_binds(cap, tmp_path, allow_missing=True))
    except CapabilityError:
        return True
    return False


@pytest.mark.parametrize("build", [with_steps, with_aggregate])
def test_steps_and_refs_written_right_are_clean(tmp_path, build):
    diags, text = check(tmp_path, build(doc()))
    assert [str(x) for x in diags if x.severity != "note"] == []
    assert not run_refuses(tmp_path, text)


def test_script_steps_are_refused_by_validate_and_run(tmp_path):
    d = with_steps(doc())
    tool(d)["steps"].insert(1, {"name": "compute", "type": "script", "file": "x.js", "location": "file:///scripts"})
    diags, text = check(tmp_path, d)
    [err] = found(diags, "script-step", "error")
    assert "step 'compute' is a `script` step, and this runtime does not run scripts" in err.message
    assert err.pos.line == line_of(text, "name: compute")
    assert run_refuses(tmp_path, text)


def test_a_lookup_on_a_later_or_unknown_step_is_an_error(tmp_path):
    d = with_steps(doc())
    tool(d)["steps"][2]["index"] = "lst"
    diags, text = check(tmp_path, d)
    [err] = found(diags, "lookup-index-unresolved", "error")
    assert "index 'lst' is no step; did you mean 'list'?" in err.message and err.pos.line == line_of(text, "index: lst")
    assert run_refuses(tmp_path, text)
    d = with_steps(doc())
    tool(d)["steps"].reverse()
    diags, _ = check(tmp_path, d)
    [err] = found(diags, "lookup-index-unresolved", "error")
    assert "index 'list' comes later" in err.message


def test_two_steps_with_one_name_is_an_error(tmp_path):
    d = with_steps(doc())
    tool(d)["steps"][1]["name"] = "list"
    diags, text = check(tmp_path, d)
    [err] = found(diags, "duplicate-step", "error")
    assert "two steps are named 'list'" in err.message
    assert run_refuses(tmp_path, text)


def test_a_step_calling_a_missing_operation_is_an_error_with_did_you_mean(tmp_path):
    d = with_steps(doc())
    tool(d)["steps"][1]["call"] = "api.get-itm"
    diags, text = check(tmp_path, d)
    [err] = found(diags, "call-unresolved", "error")
    assert "tool 'get-item' step 'one': call 'api.get-itm'" in err.message and "did you mean 'get-item'?" in err.message
    assert err.pos.line == line_of(text, "call: api.get-itm")
    assert not found(diags, "compile")
    assert run_refuses(tmp_path, text)


def test_mapping_and_lookup_paths_naming_no_step_are_warnings(tmp_path):
    d = with_steps(doc())
    tool(d)["mappings"][0]["value"] = "$.onee.name"
    tool(d)["mappings"][1]["value"] = "match.name"
    tool(d)["steps"][2]["lookupValue"] = "$.match.id"
    diags, text = check(tmp_path, d)
    warnings = found(diags, "step-ref-unresolved", "warning")
    assert len(warnings) == 3
    assert any("names no step 'onee'; did you mean 'one'?" in w.message and w.pos.line == line_of(text, "value: $.onee.name") for w in warnings)
    assert any("'match.name' is not a `$.<step>.<field>` path" in w.message for w in warnings)
    assert any("lookupValue '$.match.id': 'match' comes later" in w.message for w in warnings)
    assert not run_refuses(tmp_path, text)


def test_step_templates_see_earlier_steps_only(tmp_path):
    d = with_steps(doc())
    tool(d)["steps"][0]["with"]["limit"] = "{{one.count}}"  # `one` runs after `list`
    diags, text = check(tmp_path, d)
    [w] = found(diags, "template-var-undefined", "warning")
    assert "{{one.count}}" in w.message and w.pos.line == line_of(text, "limit: '{{one.count}}'")


def test_a_ref_to_no_function_is_an_error_with_did_you_mean(tmp_path):
    d = with_aggregate(doc())
    tool(d)["ref"] = "items.item-with-mach"
    diags, text = check(tmp_path, d)
    [err] = found(diags, "ref-unresolved", "error")
    assert "ref 'items.item-with-mach' names no aggregate function; did you mean 'items.item-with-match'?" in err.message
    assert err.pos.line == line_of(text, "ref: items.item-with-mach")
    assert run_refuses(tmp_path, text)


def test_duplicate_functions_and_ignored_keys(tmp_path):
    d = with_aggregate(doc())
    functions = d["capability"]["aggregates"][0]["functions"]
    functions.append(dict(functions[0]))
    tool(d)["call"] = "api.get-item"
    diags, text = check(tmp_path, d)
    [err] = found(diags, "duplicate-function", "error")
    assert "'items.item-with-match' is declared twice" in err.message
    [w] = found(diags, "ref-ignores", "warning")
    assert "`call` ignored: `ref` delegates to the aggregate function" in w.message
    assert run_refuses(tmp_path, text)


def test_steps_next_to_a_call_are_ignored_with_a_warning(tmp_path):
    d = doc()
    rest(d)["resources"][0]["operations"][0]["steps"] = copy.deepcopy(STEPS[:1])
    diags, text = check(tmp_path, d)
    [w] = found(diags, "steps-ignored", "warning")
    assert "`steps` ignored: `call` is set" in w.message
    assert not run_refuses(tmp_path, text)


def with_forward(d: dict, target: str = "api", trusted: list[str] | None = None) -> dict:
    rest(d)["resources"].append({"path": "/proxy/{{path}}", "forward": {"targetNamespace": target, "trustedHeaders": trusted or ["X-Request-Id"]}})
    return d


def test_a_forward_written_right_is_clean(tmp_path):
    diags, text = check(tmp_path, with_forward(doc()))
    assert [str(x) for x in diags if x.severity != "note"] == []
    assert not run_refuses(tmp_path, text)


def test_a_forward_to_no_consumes_namespace_is_an_error_with_did_you_mean(tmp_path):
    diags, text = check(tmp_path, with_forward(doc(), target="apii"))
    [err] = found(diags, "forward-unresolved", "error")
    assert "targetNamespace 'apii' names no consumes namespace; did you mean 'api'?" in err.message
    assert err.pos.line == line_of(text, "targetNamespace: apii")
    assert run_refuses(tmp_path, text)


def test_connection_headers_are_never_trusted_and_body_credentials_cannot_be_forwarded(tmp_path):
    diags, text = check(tmp_path, with_forward(doc(), trusted=["X-Request-Id", "Connection", "Host"]))
    [w] = found(diags, "forward-header-ignored", "warning")
    assert "Connection, Host describe the connection" in w.message
    assert not run_refuses(tmp_path, text)
    d = with_forward(doc())
    consumes(d)["authentication"] = {"type": "apikey", "key": "api_key", "value": "{{API_TOKEN}}", "placement": "body"}
    diags, text = check(tmp_path, d)
    [err] = found(diags, "forward-auth-body", "error")
    assert "goes in the request body" in err.message and run_refuses(tmp_path, text)


def test_orchestrated_outputs_with_keyed_items_are_read_without_findings(tmp_path):
    d = with_steps(doc())
    tool(d)["outputParameters"] = [{"name": "item", "type": "array", "items": {"name": {"type": "string"}, "type": {"type": "string"}}}]
    diags, _ = check(tmp_path, d)
    assert [str(x) for x in diags if x.severity != "note"] == []
