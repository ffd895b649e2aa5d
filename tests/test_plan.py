"""Compiling a capability: routes, derived inputs, and every startup error at once."""

from pathlib import Path

import pytest

from naftiko_runtime.binds import resolve_binds
from naftiko_runtime.plan import Plan, compile_plan
from naftiko_runtime.runtime import Runtime
from naftiko_runtime.errors import CapabilityError
from naftiko_runtime.capability.diagnostics import Diagnostics
from naftiko_runtime.capability.load import load_capability, load_text

ROOT = Path(__file__).resolve().parents[1]


def engine_for(text: str, mock: bool = True) -> Plan:
    d = Diagnostics()
    cap = load_text(text, "cap.yaml", None, d)
    assert not d.errors, [str(x) for x in d.errors]
    return compile_plan(cap, resolve_binds(cap, Path.cwd(), allow_missing=True), mock=mock)


def test_seed_routes_take_the_vapi_shape():
    cap = load_capability(ROOT / "capabilities" / "vapi-sessions.yaml")
    engine = compile_plan(cap, resolve_binds(cap, ROOT, allow_missing=True), mock=True)
    routes = [(r.method, r.path) for r in engine.rest[0].routes]
    assert routes == [("POST", "/v1/session"), ("GET", "/v1/session"), ("GET", "/v1/session/{id}"),
                      ("PATCH", "/v1/session/{id}"), ("DELETE", "/v1/session/{id}")]
    listing = engine.rest[0].routes[1].invocation.inputs
    assert len(listing) == 28 and {i.location for i in listing} == {"query"}
    findone = engine.rest[0].routes[2].invocation.inputs
    assert [(i.name, i.location, i.required, i.description) for i in findone] == [("id", "path", True, "The unique identifier for the resource.")]


OPS = """naftiko: 1.0.0-alpha2
capability:
  consumes:
  - namespace: api
    baseUri: https://x.example
    resources:
    - name: r
      path: /items
      operations:
      - {name: list, method: GET}
      - {name: other, method: GET}
  exposes:
  - type: rest
    namespace: web
    port: 1
    resources:
    - path: /items
      operations:
      - {method: GET, name: first, call: api.list}
      - {method: GET, name: second, call: api.other}
      - {method: POST, name: third, call: api.lst}
"""


def test_startup_errors_are_all_reported_with_positions():
    with pytest.raises(CapabilityError) as err:
        engine_for(OPS)
    messages = [str(d) for d in err.value.diagnostics]
    assert any("GET /items is served twice in 'web': 'second' here and 'first' at line 19" in m for m in messages)
    assert any(m.startswith("cap.yaml:21:") and "consumes 'api' has no operation" in m and "(it has: list, other)" in m for m in messages)


def test_declared_inputs_and_route_variables():
    engine = engine_for(OPS.replace("      - {method: GET, name: second, call: api.other}\n", "").replace("call: api.lst", "call: api.list").replace(
        "    - path: /items\n", "    - path: /items/{{kind}}\n"))
    [get, post] = engine.rest[0].routes
    assert get.path == "/items/{kind}"
    assert [(i.name, i.location, i.required) for i in get.invocation.inputs] == [("kind", "path", True)]


def test_unsupported_upstream_auth_stops_a_real_run_but_not_a_mock():
    text = OPS.replace("    baseUri: https://x.example\n", "    baseUri: https://x.example\n    authentication: {type: oauth1, consumerKey: k}\n")
    text = text.replace("      - {method: GET, name: second, call: api.other}\n", "").replace("api.lst", "api.list")
    with pytest.raises(CapabilityError) as err:
        engine_for(text, mock=False)
    assert "authentication type 'oauth1' on consumes 'api' is not supported" in str(err.value)
    engine_for(text, mock=True)


STATIC = """naftiko: 1.0.0-alpha2
capability:
  consumes: []
  exposes:
  - type: mcp
    namespace: tools
    port: 1
    tools:
    - name: get-ship
      description: A mock tool (no call) whose outputs are templates over its inputs.
      inputParameters:
      - {name: imo, type: string, description: The ship.}
      outputParameters:
      - {name: imo, type: string, value: '{{imo}}'}
      - {name: label, type: string, value: 'Ship {{imo}} ({{missing}})'}
"""


def test_mock_outputs_render_their_templates_with_the_inputs():
    import asyncio

    engine = engine_for(STATIC)
    [tool] = engine.mcp[0].tools
    outcome = asyncio.run(tool.invocation.invoke({"imo": "IMO-9321483"}, Runtime(engine)))
    assert outcome.status == 200 and outcome.value == {"imo": "IMO-9321483", "label": "Ship IMO-9321483 ()"}
