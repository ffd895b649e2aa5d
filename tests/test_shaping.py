"""Output shaping (SEMANTICS 4.5): identity passthrough, JSONPath, objects, arrays, alternatives."""

import json

from naftiko_runtime.shaping import NOTHING, JsonPath, Shaper, decode
from naftiko_runtime.capability.model import OutputParam
from naftiko_runtime.capability.diagnostics import Pos

P = Pos("t", 1, 1)
DATA = {"id": "1", "ship": {"name": "Star", "crew": [{"n": "a", "r": 1}, {"n": "b", "r": 2}]}, "tags": ["x", "y"]}
BODY = json.dumps(DATA).encode()


def out(type_="object", mapping=None, **kw) -> OutputParam:
    return OutputParam(type=type_, pos=P, mapping=mapping, **kw)


def test_identity_is_detected_so_bytes_pass_through():
    assert Shaper([out(mapping="$.")]).identity
    assert Shaper([]).identity
    assert not Shaper([out(mapping="$.id")]).identity


def test_jsonpath_simple_and_complex():
    assert JsonPath("$.ship.crew[1].n").find(DATA) == "b"
    assert JsonPath("$.ship.crew[*].n").find(DATA) == ["a", "b"]
    assert JsonPath("$.ship.crew[?(@.r > 1)].n").find(DATA) == ["b"]
    assert JsonPath("$.nope.x").find(DATA) is None


def test_object_properties_arrays_and_nested_objects():
    shaper = Shaper([out(properties={
        "name": out("string", "$.ship.name"),
        "crew": out("array", "$.ship.crew", items=out(properties={"who": out("string", "$.n")})),
        "meta": out(properties={"id": out("string", "$.id")}),
        "missing": out("string", "$.nope"),
    })])
    assert shaper.shape(BODY, "application/json") == {
        "name": "Star", "crew": [{"who": "a"}, {"who": "b"}], "meta": {"id": "1"}, "missing": None,
    }
    assert shaper.output_schema["properties"]["crew"]["type"] == ["array", "null"]


def test_alternatives_first_non_null_wins_else_nothing():
    shaper = Shaper([out("string", "$.nope"), out("array", "$.tags")])
    assert shaper.shape(BODY, None) == ["x", "y"]
    assert Shaper([out("string", "$.nope")]).shape(BODY, None) is NOTHING
    assert Shaper([out("string", "$.id")]).shape(b"not json", None) is NOTHING


def test_formats():
    assert decode(b"a,b\n1,2\n", "csv") == [{"a": "1", "b": "2"}]
    assert decode(b"<vessels><vessel><n>1</n></vessel><vessel><n>2</n></vessel></vessels>", "xml") == {"vessel": [{"n": "1"}, {"n": "2"}]}
    assert decode(b"a: 1\n", "yaml") == {"a": 1}
