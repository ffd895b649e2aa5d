"""Request plans: placement, encoding and auth, decided at load and applied per call."""

import base64
import json

import pytest

from naftiko_runtime.binds import BoundValues
from naftiko_runtime.errors import InputError
from naftiko_runtime.capability.load import load_text
from naftiko_runtime.settings import Settings
from naftiko_runtime.upstream.request import CompileContext, RequestPlan, Upstream

CAP = """naftiko: 1.0.0-alpha2
capability:
  consumes:
  - namespace: api
    type: http
    baseUri: https://api.example.com/v2
    authentication: {auth}
    inputParameters:
    - {{name: Accept, in: header, value: application/json}}
    resources:
    - name: things
      path: /things/{{{{id}}}}
      operations:
      - name: get
        method: GET
        inputParameters:
        - {{name: id, in: path}}
        - {{name: q, in: query}}
        - {{name: tags, in: query}}
        - {{name: X-Trace, in: header}}
        - {{name: session, in: cookie}}
      - name: create
        method: POST
        inputParameters:
        - {{name: body, in: body}}
      - name: fields
        method: POST
        inputParameters:
        - {{name: title, in: body}}
        - {{name: count, in: body}}
      - name: templated
        method: POST
        body:
          type: json
          data:
            who: '{{{{tools.name}}}}'
            ids: '{{{{ids}}}}'
            note: 'hello {{{{name}}}}'
            tenant: '{{{{env.TENANT}}}}'
      - name: raw
        method: POST
        body: |
          {{"name": "{{{{name}}}}", "ids": {{{{ids}}}}}}
  exposes: []
"""

BINDS = BoundValues({"TOKEN": "tok-1", "TENANT": "acme"}, {"env": {"TOKEN": "tok-1", "TENANT": "acme"}})


def plan(op: str, auth: str = "{type: bearer, token: '{{TOKEN}}'}", mock: bool = False) -> RequestPlan:
    cap = load_text(CAP.format(auth=auth), "cap.yaml")
    ctx = CompileContext(BINDS, frozenset({"tools", "rest"}), mock=mock)
    consumes = cap.consumes["api"]
    return RequestPlan(Upstream.compile(consumes, ctx, Settings()), consumes.operations[op], ctx)


def test_path_values_are_encoded_per_segment_and_absent_query_omitted():
    req = plan("get").build({"id": "a/b?c#d"})
    assert req.url == "https://api.example.com/v2/things/a%2Fb%3Fc%23d"
    assert req.headers["Authorization"] == "Bearer tok-1"
    assert req.headers["Accept"] == "application/json"
    assert req.body is None and req.path_values == ["a/b?c#d"] and req.item


@pytest.mark.parametrize("value", [".", "..", "../a", "a/../b", "a/.", "..\\a"])
def test_dot_segments_are_refused(value):  # even encoded, an upstream that decodes %2F would walk up
    with pytest.raises(InputError) as err:
        plan("get").build({"id": value})
    assert err.value.problems[0].name == "id"


def test_missing_path_value_is_an_input_error():
    with pytest.raises(InputError) as err:
        plan("get").build({})
    assert "required" in err.value.problems[0].detail


def test_query_header_cookie_placement_and_template_text_stays_literal():
    req = plan("get").build({"id": "1", "q": "{{env.TOKEN}} & x=1", "tags": ["a", "b"], "X-Trace": "t", "session": "s;1"})
    assert req.url == "https://api.example.com/v2/things/1?q=%7B%7Benv.TOKEN%7D%7D%20%26%20x%3D1&tags=a&tags=b"
    assert req.headers["X-Trace"] == "t"
    assert req.headers["Cookie"] == "session=s%3B1"
    assert "tok-1" not in req.url


def test_header_values_with_line_breaks_are_refused():
    with pytest.raises(InputError) as err:
        plan("get").build({"id": "1", "X-Trace": "a\r\nX-Evil: 1"})
    assert err.value.problems[0].location == "header"


def test_whole_body_and_body_fields():
    req = plan("create").build({"id": "1", "body": {"name": "{{env.TOKEN}}"}})
    assert json.loads(req.body) == {"name": "{{env.TOKEN}}"} and req.headers["Content-Type"] == "application/json"
    req = plan("fields").build({"id": "1", "title": "t", "count": 2})
    assert json.loads(req.body) == {"title": "t", "count": 2}


def test_structured_body_keeps_types_drops_missing_and_uses_binds():
    req = plan("templated").build({"id": "1", "name": "Ann", "ids": [1, 2]})
    assert json.loads(req.body) == {"who": "Ann", "ids": [1, 2], "note": "hello Ann", "tenant": "acme"}
    req = plan("templated").build({"id": "1", "name": "Ann"})
    assert "ids" not in json.loads(req.body)


def test_raw_json_body_cannot_be_broken_by_quotes():
    req = plan("raw").build({"id": "1", "name": 'a"b', "ids": ["x"]})
    assert json.loads(req.body) == {"name": 'a"b', "ids": ["x"]}


def test_auth_forms():
    assert plan("get", "{type: basic, username: u, password: '{{TOKEN}}'}").build({"id": "1"}).headers["Authorization"] == "Basic " + base64.b64encode(b"u:tok-1").decode()
    req = plan("get", "{type: apikey, key: api_key, value: '{{TOKEN}}', placement: query}").build({"id": "1"})
    assert req.url.endswith("?api_key=tok-1")
    req = plan("get", "{type: bearer, key: X-Api-Key, value: 'Key {{env.TOKEN}}', placement: header}").build({"id": "1"})
    assert req.headers["X-Api-Key"] == "Key tok-1"


def test_auth_naming_an_unknown_variable_is_a_startup_error():
    cap = load_text(CAP.format(auth="{type: bearer, token: '{{NOPE}}'}"), "cap.yaml")
    ctx = CompileContext(BINDS, frozenset({"tools", "rest"}))
    assert Upstream.compile(cap.consumes["api"], ctx, Settings()) is None
    [error] = ctx.diagnostics.errors
    assert "{{NOPE}}, which no bind declares" in error.message and error.rule == "unbound-variable"
    plan("get", "{type: bearer, token: '{{NOPE}}'}", mock=True)  # mock mode does not need credentials
