"""Orchestration steps, lookups and mappings, run by the compiled pipeline against an in-process
transport: a `Runtime`-like object whose `send` answers from a table (no sockets), in the style of
httpx.MockTransport. What a caller sees (the value, the failure naming the step) is asserted."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from naftiko_runtime.binds import resolve_binds
from naftiko_runtime.capability.diagnostics import Diagnostics
from naftiko_runtime.capability.load import load_text
from naftiko_runtime.errors import InputError, StepFailure, UpstreamTimeout
from naftiko_runtime.pipeline import Invocation
from naftiko_runtime.plan import Plan, compile_plan
from naftiko_runtime.shaping import NOTHING
from naftiko_runtime.upstream.client import Response
from naftiko_runtime.upstream.request import Prepared

CONSUMES = """naftiko: 1.0.0-alpha2
capability:
  consumes:
  - namespace: registry
    type: http
    baseUri: http://registry.test
    resources:
    - name: ship
      path: /ships/{{imo_number}}
      operations:
      - {name: get-ship, method: GET}
    - name: ships
      path: /ships
      operations:
      - name: list-ships
        method: GET
        outputParameters:
        - {name: imo-number, type: string, value: $.imo_number}
    - name: crew
      path: /crew
      operations:
      - {name: list-crew, method: GET}
      - {name: add-crew, method: POST, body: '{"name": "{{name}}"}'}
    - name: voyage
      path: /voyages/{{voyageId}}
      operations:
      - name: get-voyage
        method: GET
        outputParameters:
        - {name: id, type: string, value: $.voyageId}
        - {name: ship, type: string, value: $.shipImo}
  exposes:
  - type: mcp
    namespace: tools
    port: 3001
    tools:
"""

SHIP = {"imo_number": "IMO-1", "vessel_name": "Northern Star", "dimensions": {"length": 200}, "assignedCrew": ["C1", "C3", "C9"]}
CREW = [{"crewId": "C1", "fullName": "Ann", "role": "captain", "age": 50},
        {"crewId": "C2", "fullName": "Bob", "role": "cook"},
        {"crewId": "C3", "fullName": "Cy", "role": "mate"}]
SHIPS = [{"imo_number": "IMO-1", "vessel_name": "Northern Star"}, {"imo_number": "IMO-2", "vessel_name": "Sea Breeze"}]


class FakeRuntime:
    """Answers `send` from `routes` ((method, path) -> status, JSON body), after `delay` seconds;
    records what was sent and when each request started and ended."""

    def __init__(self, routes: dict[tuple[str, str], tuple[int, Any]], delay: float = 0.0, fail: Callable[[Prepared], Exception | None] | None = None):
        self.routes = routes
        self.delay = delay
        self.fail = fail
        self.sent: list[Prepared] = []
        self.spans: dict[str, tuple[float, float]] = {}

    async def step(self, stage: Any, run: Any) -> None:  # Runtime.step: the seam observability wraps
        await stage.run(run, self)

    async def send(self, namespace: str, request: Prepared) -> Response:
        start = time.perf_counter()
        self.sent.append(request)
        path = request.url.split("registry.test", 1)[1].split("?")[0]
        await asyncio.sleep(self.delay)
        self.spans[f"{request.method} {path}"] = (start, time.perf_counter())
        problem = self.fail(request) if self.fail else None
        if problem is not None:
            raise problem
        status, body = self.routes.get((request.method, path), (404, {"message": f"no {path}"}))
        return Response(status, json.dumps(body).encode(), "application/json")


def compile_tool(tool_yaml: str) -> Invocation:
    text = CONSUMES + "\n".join("    " + line for line in tool_yaml.strip("\n").splitlines()) + "\n"
    d = Diagnostics()
    cap = load_text(text, "cap.yaml", None, d)
    assert not d.errors, [str(x) for x in d.errors]
    plan: Plan = compile_plan(cap, resolve_binds(cap, Path.cwd(), allow_missing=True))
    return plan.mcp[0].tools[0].invocation


def call(invocation: Invocation, runtime: FakeRuntime, **inputs: Any) -> Any:
    outcome = asyncio.run(invocation.invoke(inputs, runtime))  # type: ignore[arg-type]
    return outcome.value if outcome.value is not NOTHING else json.loads(outcome.body)


SHIP_WITH_CREW = """
- name: ship-with-crew
  description: A ship and its crew
  inputParameters:
  - {name: imo, type: string, required: true}
  steps:
  - {name: get-ship, type: call, call: registry.get-ship, with: {imo_number: "{{imo}}"}}
  - {name: list-crew, type: call, call: registry.list-crew}
  - {name: resolve-crew, type: lookup, index: list-crew, match: crewId, lookupValue: $.get-ship.assignedCrew, outputParameters: [fullName, role]}
  mappings:
  - {targetName: imo, value: $.get-ship.imo_number}
  - {targetName: specs.name, value: $.get-ship.vessel_name}
  - {targetName: specs.length, value: $.get-ship.dimensions.length}
  - {targetName: specs.flag, value: $.get-ship.flag_code}
  - {targetName: crew, value: $.resolve-crew}
"""
ROUTES = {("GET", "/ships/IMO-1"): (200, SHIP), ("GET", "/crew"): (200, CREW), ("GET", "/ships"): (200, SHIPS)}


def test_steps_lookup_of_an_array_and_nested_mappings():
    result = call(compile_tool(SHIP_WITH_CREW), FakeRuntime(ROUTES), imo="IMO-1")
    # every crew id looked up (C9 has no match and is skipped); dotted targets nest; a missing field is omitted
    assert result == {"imo": "IMO-1", "specs": {"name": "Northern Star", "length": 200},
                      "crew": [{"fullName": "Ann", "role": "captain"}, {"fullName": "Cy", "role": "mate"}]}


def test_scalar_lookup_no_match_and_a_lookup_output_in_later_templates():
    tool = """
- name: captain
  description: One crew member and the ship they are on
  inputParameters:
  - {name: who, type: string}
  steps:
  - {name: list-crew, type: call, call: registry.list-crew}
  - {name: member, type: lookup, index: list-crew, match: crewId, lookupValue: "{{who}}", outputParameters: [fullName]}
  - {name: ship, type: call, call: registry.get-ship, with: {imo_number: "IMO-{{member.fullName}}"}}
  mappings:
  - {target: name, value: $.member.fullName}
  - {target: ship, value: $.ship.vessel_name}
"""
    routes = {**ROUTES, ("GET", "/ships/IMO-Ann"): (200, {"vessel_name": "Ann's boat"}), ("GET", "/ships/IMO-"): (200, {})}
    assert call(compile_tool(tool), FakeRuntime(routes), who="C1") == {"name": "Ann", "ship": "Ann's boat"}
    runtime = FakeRuntime(routes)
    # no match: the lookup stores nothing, its mapping is omitted, the template renders empty
    assert call(compile_tool(tool), runtime, who="C7") == {}
    assert runtime.sent[-1].url == "http://registry.test/ships/IMO-"


def test_without_a_mapping_result_the_last_calls_answer_is_returned():
    tool = """
- name: crew-after-ship
  description: x
  steps:
  - {name: get-ship, type: call, call: registry.get-ship, with: {imo_number: IMO-1}}
  - {name: list-crew, type: call, call: registry.list-crew}
  mappings:
  - {targetName: nothing, value: $.get-ship.no_such_field}
"""
    assert call(compile_tool(tool), FakeRuntime(ROUTES)) == CREW
    shaped = tool.replace("  mappings:\n  - {targetName: nothing, value: $.get-ship.no_such_field}\n",
                          "  outputParameters:\n  - {type: array, mapping: $., items: {type: object, properties: {id: {type: string, mapping: $.crewId}}}}\n")
    assert call(compile_tool(shaped), FakeRuntime(ROUTES)) == [{"id": "C1"}, {"id": "C2"}, {"id": "C3"}]


def test_consumed_output_parameters_project_objects_and_augment_array_elements():
    tool = """
- name: voyage-ship
  description: x
  steps:
  - {name: voyage, type: call, call: registry.get-voyage, with: {voyageId: V1}}
  - {name: ships, type: call, call: registry.list-ships}
  - {name: ship, type: lookup, index: ships, match: imo-number, lookupValue: $.voyage.ship, outputParameters: [vessel_name, imo-number]}
  mappings:
  - {targetName: voyage, value: $.voyage}
  - {targetName: ship, value: $.ship}
"""
    routes = {**ROUTES, ("GET", "/voyages/V1"): (200, {"voyageId": "V1", "shipImo": "IMO-2", "secret": "x"})}
    assert call(compile_tool(tool), FakeRuntime(routes)) == {
        "voyage": {"id": "V1", "ship": "IMO-2"},  # only the declared names
        "ship": {"vessel_name": "Sea Breeze", "imo-number": "IMO-2"},  # matched on the added field
    }


def test_independent_steps_run_concurrently_and_dependent_ones_in_order():
    runtime = FakeRuntime(ROUTES, delay=0.2)
    started = time.perf_counter()
    result = call(compile_tool(SHIP_WITH_CREW), runtime, imo="IMO-1")
    elapsed = time.perf_counter() - started
    assert result["crew"][0]["fullName"] == "Ann"
    assert elapsed < 0.35, f"two independent 200 ms steps took {elapsed:.3f} s"
    chained = """
- name: ship-of-voyage
  description: x
  steps:
  - {name: voyage, type: call, call: registry.get-voyage, with: {voyageId: V1}}
  - {name: ship, type: call, call: registry.get-ship, with: {imo_number: "{{voyage.ship}}"}}
  mappings:
  - {targetName: name, value: $.ship.vessel_name}
"""
    routes = {**ROUTES, ("GET", "/voyages/V1"): (200, {"voyageId": "V1", "shipImo": "IMO-1"})}
    runtime = FakeRuntime(routes, delay=0.05)
    assert call(compile_tool(chained), runtime) == {"name": "Northern Star"}
    assert runtime.spans["GET /voyages/V1"][1] <= runtime.spans["GET /ships/IMO-1"][0]


def test_a_write_keeps_its_place_in_the_order():
    tool = """
- name: hire-then-list
  description: x
  steps:
  - {name: hire, type: call, call: registry.add-crew, with: {name: Dan}}
  - {name: list-crew, type: call, call: registry.list-crew}
  - {name: ship, type: call, call: registry.get-ship, with: {imo_number: IMO-1}}
"""
    routes = {**ROUTES, ("POST", "/crew"): (201, {"crewId": "C4"})}
    runtime = FakeRuntime(routes, delay=0.05)
    call(compile_tool(tool), runtime)
    post_end = runtime.spans["POST /crew"][1]
    # the reads name nothing of the write, yet may depend on it: both wait for it, then overlap
    assert post_end <= runtime.spans["GET /crew"][0] and post_end <= runtime.spans["GET /ships/IMO-1"][0]
    assert runtime.spans["GET /crew"][0] < runtime.spans["GET /ships/IMO-1"][1]


def test_a_failing_middle_step_stops_the_sequence_and_names_the_step():
    tool = """
- name: chain
  description: x
  steps:
  - {name: list-crew, type: call, call: registry.list-crew}
  - {name: get-ship, type: call, call: registry.get-ship, with: {imo_number: "{{list-crew.0.crewId}}"}}
  - {name: voyage, type: call, call: registry.get-voyage, with: {voyageId: "{{get-ship.vessel_name}}"}}
"""
    runtime = FakeRuntime(ROUTES)  # /ships/C1 is not in the table: 404
    with pytest.raises(StepFailure) as err:
        call(compile_tool(tool), runtime)
    assert (err.value.step, err.value.status, err.value.upstream_status) == ("get-ship", 404, 404)
    assert err.value.message == "step 'get-ship' failed: upstream 'registry' answered HTTP 404 Not Found"
    assert json.loads(err.value.body) == {"message": "no /ships/C1"}
    assert [r.url for r in runtime.sent] == ["http://registry.test/crew", "http://registry.test/ships/C1"]  # the third never ran

    runtime = FakeRuntime({**ROUTES, ("GET", "/ships/C1"): (503, {"down": True})})
    with pytest.raises(StepFailure) as err:
        call(compile_tool(tool), runtime)
    assert (err.value.step, err.value.status, err.value.upstream_status) == ("get-ship", 502, 503)

    timeout = lambda r: UpstreamTimeout("registry", "no data for 5s") if "/ships/" in r.url else None  # noqa: E731
    with pytest.raises(StepFailure) as err:
        call(compile_tool(tool), FakeRuntime(ROUTES, fail=timeout))
    assert err.value.status == 504 and err.value.message == "step 'get-ship' failed: upstream 'registry' did not answer in time: no data for 5s"


def test_with_concurrent_steps_the_first_failing_step_in_order_is_reported():
    runtime = FakeRuntime({("GET", "/crew"): (500, {})}, delay=0.01)  # /ships/IMO-1 is a 404 too
    with pytest.raises(StepFailure) as err:
        call(compile_tool(SHIP_WITH_CREW), runtime, imo="IMO-1")
    assert err.value.step == "get-ship"


def test_a_missing_url_value_is_the_callers_400_naming_the_step():
    with pytest.raises(InputError) as err:
        call(compile_tool(SHIP_WITH_CREW.replace("required: true", "required: false")), FakeRuntime(ROUTES))
    assert "(step 'get-ship')" in err.value.problems[0].detail


def test_a_refused_path_value_names_the_tools_input_and_the_step():
    with pytest.raises(InputError) as err:
        call(compile_tool(SHIP_WITH_CREW), FakeRuntime(ROUTES), imo="..")
    problem = err.value.problems[0]
    assert problem.name == "imo" and "(sent upstream as 'imo_number')" in problem.detail and "(step 'get-ship')" in problem.detail


def test_mock_outputs_build_nested_objects_and_arrays():
    tool = """
- name: mock-ship
  description: x
  inputParameters:
  - {name: imo, type: string}
  outputParameters:
  - {name: imo, type: string, value: "{{imo}}"}
  - name: specs
    type: object
    properties:
      tonnage: {type: number, value: 42}
      flag: {type: string, value: "NO"}
      empty: {type: object, properties: {x: {type: string}}}
  - {name: crew, type: array, items: {type: object, properties: {name: {type: string, value: Ann}}}}
  - {name: nothing, type: object, properties: {x: {type: string}}}
"""
    assert call(compile_tool(tool), FakeRuntime({}), imo="IMO-7") == {
        "imo": "IMO-7", "specs": {"tonnage": "42", "flag": "NO"}, "crew": [{"name": "Ann"}]}


BETA4 = """ikanos: "1.0.0-beta4"
capability:
  consumes:
  - namespace: registry
    type: http
    baseUri: http://registry.test
    resources:
      ship:
        path: /ships/{{imo_number}}
        operations:
          get-ship: {method: GET}
      crew:
        path: /crew
        operations:
          list-crew: {method: GET}
  aggregates:
  - display: Crew Resolver
    namespace: crew-resolver
    flows:
      resolve-crew-for-ship:
        description: Resolve crew member names and roles for a given ship
        semantics: {safe: true}
        inputParameters:
          imo: {type: string, description: IMO number}
        steps:
          get-ship: {type: call, call: registry.get-ship, with: {imo_number: crew-resolver.imo}}
          list-crew: {type: call, call: registry.list-crew}
          resolve-crew: {type: lookup, index: list-crew, match: crewId, lookupValue: $.get-ship.assignedCrew, outputParameters: [fullName, role]}
        mappings:
        - {target: imo, value: $.get-ship.imo_number}
        - {target: specs.name, value: $.get-ship.vessel_name}
        - {target: crew, value: $.resolve-crew}
  exposes:
  - type: mcp
    namespace: tools
    port: 3001
    tools:
      ship-with-crew:
        ref: crew-resolver.resolve-crew-for-ship
"""


def test_flows_keyed_steps_and_target_of_later_versions_run_the_same_pipeline():
    d = Diagnostics()
    cap = load_text(BETA4, "cap.yaml", None, d)
    assert not d.errors, [str(x) for x in d.errors]
    tool = cap.mcp[0].tools[0]
    assert (tool.description, tool.hints) == ("Resolve crew member names and roles for a given ship", {"readOnly": True, "destructive": False})
    invocation = compile_plan(cap, resolve_binds(cap, Path.cwd(), allow_missing=True)).mcp[0].tools[0].invocation
    assert invocation.input_schema == {"type": "object", "properties": {"imo": {"type": "string", "description": "IMO number"}}, "required": ["imo"]}
    assert call(invocation, FakeRuntime(ROUTES), imo="IMO-1") == {
        "imo": "IMO-1", "specs": {"name": "Northern Star"},
        "crew": [{"fullName": "Ann", "role": "captain"}, {"fullName": "Cy", "role": "mate"}]}


def test_paths_index_arrays_keep_explicit_nulls_and_a_lookup_on_no_output_names_itself():
    tool = """
- name: picks
  description: x
  steps:
  - {name: list-crew, type: call, call: registry.list-crew}
  - {name: ship, type: call, call: registry.get-ship, with: {imo_number: IMO-1}}
  mappings:
  - {targetName: second, value: "$.list-crew[1].fullName"}
  - {targetName: third, value: $.list-crew.2.role}
  - {targetName: flag, value: $.ship.flag}
"""
    routes = {**ROUTES, ("GET", "/ships/IMO-1"): (200, {**SHIP, "flag": None})}
    assert call(compile_tool(tool), FakeRuntime(routes)) == {"second": "Bob", "third": "mate", "flag": None}
    broken = """
- name: lookup-on-text
  description: x
  steps:
  - {name: list-crew, type: call, call: registry.list-crew}
  - {name: who, type: lookup, index: list-crew, match: crewId, lookupValue: C1}
"""

    class TextRuntime(FakeRuntime):
        async def send(self, namespace, request):
            return Response(200, b"not json", "text/plain")

    with pytest.raises(StepFailure) as err:
        call(compile_tool(broken), TextRuntime({}))
    assert (err.value.step, err.value.status) == ("who", 502) and "lookup index 'list-crew' has no output" in err.value.message


def test_orchestrated_outputs_document_the_mappings_and_never_reshape_the_fallback():
    tool = """
- name: crew-only
  description: x
  steps:
  - {name: list-crew, type: call, call: registry.list-crew}
  mappings:
  - {targetName: nothing, value: $.list-crew.none}
  outputParameters:
  - {name: crew, type: array, items: [{name: fullName, type: string}, {name: role, type: string}]}
"""
    assert call(compile_tool(tool), FakeRuntime(ROUTES)) == CREW  # not a list of {fullName: null, role: null}
