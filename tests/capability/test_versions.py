"""Every format version alpha1..beta4 reads into the same model: keyed maps or lists, renamed keys,
imports with `from:` or `location:`, shared-parts files; errors at the line that needs fixing."""

from pathlib import Path

import pytest

from naftiko_runtime.binds import resolve_binds
from naftiko_runtime.capability.diagnostics import Diagnostics
from naftiko_runtime.capability.load import load_capability, load_text
from naftiko_runtime.capability.versions import VERSIONS
from naftiko_runtime.exposes.openapi import openapi_document
from naftiko_runtime.plan import compile_plan

ROOT = Path(__file__).resolve().parents[2]
PAIR = ROOT / "tests" / "fixtures" / "versions"


def load(text: str, base: Path | None = None):
    d = Diagnostics()
    return load_text(text, "cap.yaml", base, d), d


def plan_of(path: Path):
    d = Diagnostics()
    cap = load_capability(path, d)
    assert not d.errors, [str(x) for x in d.errors]
    return compile_plan(cap, resolve_binds(cap, path.parent, allow_missing=True))


def served(plan) -> dict:
    """What a client can observe of a plan: routes with their inputs, tools with their schemas."""
    routes = {(r.method, r.path): [(i.name, i.location, i.type, i.required) for i in r.invocation.inputs]
              for api in plan.rest for r in api.routes}
    tools = {t.tool.name: (t.tool.label, t.tool.description, t.invocation.input_schema, t.invocation.output_schema)
             for api in plan.mcp for t in api.tools}
    requests = {}
    for api in plan.rest:
        for r in api.routes:
            stage = r.invocation._handler
            prepared = stage.plan.build(r.invocation.arguments({"imo": "9321483", "status": "active"}))
            requests[(r.method, r.path)] = (prepared.method, prepared.url, sorted(prepared.headers))
    return {"routes": routes, "tools": tools, "requests": requests}


def test_alpha2_and_beta4_shapes_of_one_capability_compile_to_the_same_routes_and_tools():
    alpha2, beta4 = plan_of(PAIR / "shipyard-alpha2.yaml"), plan_of(PAIR / "shipyard-beta4.yaml")
    assert served(alpha2) == served(beta4)
    assert set(served(beta4)["tools"]) == {"list-ships", "get-ship"}
    assert served(beta4)["tools"]["get-ship"][0] == "Get ship"  # `display` is the tool title, as `label` was


def test_beta4_info_version_and_tags_reach_the_openapi_document():
    plan = plan_of(PAIR / "shipyard-beta4.yaml")
    doc = openapi_document(plan, plan.rest[0])
    assert doc["info"]["version"] == "2.1.0" and doc["info"]["title"] == "Shipyard"
    assert doc["paths"]["/ships"]["get"]["tags"] == ["fleet", "read"]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_version_is_read_under_either_root_key(version):
    for key in ("naftiko", "ikanos"):
        cap, d = load(f"{key}: {version}\nconsumes:\n- namespace: x\n  type: http\n  baseUri: http://x.invalid\n")
        assert not d.errors and cap.version == version
        expected = "ikanos" if VERSIONS.index(version) >= 2 else "naftiko"
        assert ("version-root-key" in [x.rule for x in d]) == (key != expected)


def test_unknown_version_names_the_version_and_the_range():
    _, d = load('ikanos: "1.1.0"\nconsumes: []\n')
    [err] = d.errors
    assert str(err.pos) == "cap.yaml:1:9" and "'1.1.0'" in err.message and "1.0.0-alpha1 .. 1.0.0-beta4" in err.message
    _, d = load("info: {}\n")
    assert d.errors[0].rule == "version" and 'ikanos: "1.0.0-beta4"' in d.errors[0].message


KEYED = """ikanos: 1.0.0-beta4
capability:
  consumes:
  - namespace: api
    type: http
    baseUri: http://api.invalid
    resources:
      things:
        path: /things
        operations:
          list-things:
            method: GET
            inputParameters:
              limit: {{in: query}}
  exposes:
  - type: mcp
    namespace: tools
    port: 3001
    tools:
      list:
        name: {other}
        description: List things
        call: api.list-things
"""


def test_a_keyed_entry_with_a_different_name_warns_and_the_key_wins():
    cap, d = load(KEYED.format(other="list-all"))
    assert [t.name for t in cap.mcp[0].tools] == ["list"]
    [warn] = [x for x in d if x.rule == "keyed-name-mismatch"]
    assert warn.severity == "warning" and str(warn.pos) == "cap.yaml:21:9" and "the key wins" in warn.message
    _, d = load(KEYED.format(other="list"))
    assert "keyed-name-mismatch" not in [x.rule for x in d]


def test_renamed_keys_are_read_in_either_spelling_and_noted_in_the_wrong_version():
    cap, d = load(KEYED.replace("description: List things", "label: Things").format(other="list"))
    assert cap.mcp[0].tools[0].label == "Things"
    [note] = [x for x in d if x.rule == "version-renamed-key"]
    assert "1.0.0-beta4 calls it `display`" in note.message and note.pos.line == 22
    old = KEYED.replace("ikanos: 1.0.0-beta4", "naftiko: 1.0.0-alpha2").replace("description: List things", "display: Things")
    cap, d = load(old.format(other="list"))
    assert cap.mcp[0].tools[0].label == "Things"
    assert any(x.rule == "version-renamed-key" and "calls it `label`" in x.message for x in d)
    assert any(x.rule == "version-keyed-map" for x in d)  # keyed maps in an alpha2 file: read, noted


@pytest.mark.parametrize("fallback,severity", [("fail", "error"), (None, "error"), ("direct", "warning")])
def test_tunnel_is_refused_unless_it_may_fall_back_to_a_direct_call(fallback, severity):
    tunnel = "{type: ziti, service: crm, identity: x" + (f", fallback: {fallback}}}" if fallback else "}")
    _, d = load(KEYED.format(other="list").replace("    baseUri: http://api.invalid\n", f"    baseUri: http://api.invalid\n    tunnel: {tunnel}\n"))
    [x] = [x for x in d if x.rule == "unsupported-tunnel"]
    assert x.severity == severity and str(x.pos) == "cap.yaml:7:5"
    assert ("go directly" in x.message) == (fallback == "direct")


# ------------------------------------------------------------------------------------- imports

CONSUMES = """ikanos: 1.0.0-beta4
consumes:
- namespace: api
  type: http
  baseUri: http://api.invalid
  resources:
    things: {path: /things, operations: {list-things: {method: GET}}}
"""


def write(tmp_path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)


def importing(entry: str, version: str = "ikanos: 1.0.0-beta4") -> str:
    return f"{version}\ncapability:\n  consumes:\n  - {entry}\n  exposes: []\n"


def test_from_and_location_import_consumes_relative_to_the_importing_file(tmp_path):
    write(tmp_path, {"shared/api.yml": CONSUMES})
    for version, key in (("ikanos: 1.0.0-beta4", "from"), ("naftiko: 1.0.0-alpha2", "location")):
        cap, d = load(importing(f"{{import: api, {key}: ./shared/api.yml, as: a}}", version), tmp_path)
        assert not d.errors and cap.consumes["a"].operations["list-things"].namespace == "a"
    cap, d = load(importing("{import: api, location: ./shared/api.yml}"), tmp_path)
    assert cap.consumes["api"] and any(x.rule == "version-renamed-key" and "calls it `from`" in x.message for x in d)
    _, d = load(importing("{import: api, location: ./shared/api.yml, from: ./shared/api.yml}"), tmp_path)
    assert [x.rule for x in d.errors] == ["import-both-keys"]


def test_import_errors_are_reported_at_the_import_entry(tmp_path):
    write(tmp_path, {"shared/api.yml": CONSUMES})
    _, d = load(importing("{import: api, from: ./shared/missing.yml}"), tmp_path)
    [err] = d.errors
    assert err.rule == "import-not-found" and str(err.pos) == "cap.yaml:4:25" and "no such file" in err.message
    _, d = load(importing("{import: nope, from: ./shared/api.yml}"), tmp_path)
    [err] = d.errors
    assert err.rule == "import-not-found" and err.pos.line == 4 and "defines no consumes namespace 'nope'; it has: api" in err.message


def test_nested_imports_load_and_cycles_name_the_chain_at_the_import(tmp_path):
    write(tmp_path, {
        "shared/api.yml": CONSUMES,
        "shared/relay.yml": "ikanos: 1.0.0-beta4\nconsumes:\n- {import: api, from: ./api.yml}\n",
        "a.yml": "ikanos: 1.0.0-beta4\nconsumes:\n- {import: api, from: ./b.yml}\n",
        "b.yml": "ikanos: 1.0.0-beta4\nconsumes:\n- {import: api, from: ./a.yml}\n",
    })
    cap, d = load(importing("{import: api, from: ./shared/relay.yml}"), tmp_path)
    assert not d.errors and "list-things" in cap.consumes["api"].operations
    d = Diagnostics()
    load_capability(tmp_path / "a.yml", d)
    cycle = [x for x in d.errors if x.rule == "import-cycle"]
    assert cycle and cycle[0].pos.file.endswith("b.yml") and cycle[0].pos.line == 3
    assert "a.yml -> " in cycle[0].message and "b.yml -> " in cycle[0].message


def test_exposes_and_binds_import_from_files_of_shared_parts(tmp_path):
    write(tmp_path, {
        "shared/api.yml": CONSUMES,
        "shared/binds.yml": "ikanos: 1.0.0-beta4\nbinds:\n- namespace: secrets\n  location: file:///./secrets.yaml\n  keys: {TOKEN: token}\n",
        "shared/secrets.yaml": "token: t-123\n",
        "shared/exposes.yml": "ikanos: 1.0.0-beta4\nexposes:\n- type: mcp\n  namespace: tools\n  port: 3001\n  tools:\n    list: {description: List, call: api.list-things}\n",
    })
    text = ("ikanos: 1.0.0-beta4\nbinds:\n- {import: secrets, from: ./shared/binds.yml}\ncapability:\n  consumes:\n"
            "  - {import: api, from: ./shared/api.yml}\n  exposes:\n  - {import: tools, from: ./shared/exposes.yml, as: mine}\n")
    cap, d = load(text, tmp_path)
    assert not d.errors, [str(x) for x in d.errors]
    assert [(e.namespace, [t.name for t in e.tools]) for e in cap.mcp] == [("mine", ["list"])]
    # the bind's file location is relative to the file that declares it, not to the importer
    assert resolve_binds(cap, tmp_path).flat == {"TOKEN": "t-123"}
    _, d = load(text.replace("import: tools", "import: nope"), tmp_path)
    assert any(x.rule == "import-not-found" and "defines no exposure 'nope'; it has: tools" in x.message for x in d.errors)


def test_aggregates_import_from_a_file_of_shared_aggregates_and_refs_reach_them(tmp_path):
    write(tmp_path, {
        "shared/api.yml": CONSUMES,
        "shared/aggregates.yml": ("ikanos: 1.0.0-beta4\naggregates:\n- display: Things\n  namespace: things\n  flows:\n"
                                  "    list-all:\n      description: Every thing.\n      call: api.list-things\n"),
    })
    text = ("ikanos: 1.0.0-beta4\ncapability:\n  consumes:\n  - {import: api, from: ./shared/api.yml}\n"
            "  aggregates:\n  - {import: things, from: ./shared/aggregates.yml, as: stuff}\n"
            "  exposes:\n  - type: mcp\n    namespace: tools\n    port: 3001\n    tools:\n      list: {ref: stuff.list-all}\n")
    cap, d = load(text, tmp_path)
    assert not d.errors, [str(x) for x in d.errors]
    function = cap.function(("stuff", "list-all"))
    assert function is not None and function.namespace == "stuff" and function.action.call == ("api", "list-things")
    assert cap.mcp[0].tools[0].description == "Every thing."  # inherited through the ref
    _, d = load(text.replace("import: things", "import: nope"), tmp_path)
    assert any(x.rule == "import-not-found" and "defines no aggregate namespace 'nope'; it has: things" in x.message for x in d.errors)


def test_functions_and_target_name_in_an_ikanos_file_are_read_and_noted():
    text = ("ikanos: 1.0.0-beta4\ncapability:\n  consumes:\n  - namespace: api\n    type: http\n    baseUri: http://api.invalid\n"
            "    resources: {things: {path: /things, operations: {list-things: {method: GET}}}}\n"
            "  aggregates:\n  - label: Things\n    namespace: things\n    functions:\n    - name: list-all\n      description: All.\n      call: api.list-things\n"
            "  exposes:\n  - type: mcp\n    namespace: tools\n    port: 3001\n    tools:\n      list: {ref: things.list-all}\n")
    cap, d = load(text)
    assert not d.errors and cap.function(("things", "list-all")) is not None
    notes = [x.message for x in d if x.rule == "version-renamed-key"]
    assert any("calls it `flows`" in m for m in notes) and any("calls it `display`" in m for m in notes)


def test_orchestrated_array_items_keyed_by_field_name_are_an_object_element():
    text = KEYED.format(other="list").replace("        call: api.list-things\n", "        call: api.list-things\n        outputParameters:\n"
                                              "        - type: array\n          mapping: $.\n          items:\n            type: {type: string, mapping: $.kind}\n"
                                              "            label: {type: string, mapping: $.label}\n")
    cap, d = load(text)
    assert not [x for x in d if x.severity != "note"], [str(x) for x in d]
    items = cap.mcp[0].tools[0].action.outputs[0].items
    assert items.type == "object" and sorted(items.properties) == ["label", "type"]  # a field named `type` too
