"""Dialect forms normalize to one model, each rewrite leaving a note with its position."""

from pathlib import Path

from naftiko_runtime.capability.diagnostics import Diagnostics
from naftiko_runtime.capability.load import load_capability, load_text
from naftiko_runtime.capability.model import WithRef

ROOT = Path(__file__).resolve().parents[2]


def load(text: str, base: Path | None = None):
    d = Diagnostics()
    cap = load_text(text, "cap.yaml", base, d)
    return cap, d


def rules(d: Diagnostics, severity: str | None = None) -> list[str]:
    return [x.rule for x in d if severity is None or x.severity == severity]


def test_seed_capability_normalizes_with_no_errors():
    d = Diagnostics()
    cap = load_capability(ROOT / "capabilities" / "vapi-sessions.yaml", d)
    assert not d.errors
    ops = cap.consumes["sessions-sessions"].operations
    assert ops["sessioncontrollerfindone"].path == "/session/{{id}}"
    assert ops["sessioncontrollercreate"].path == "/session"
    auth = cap.consumes["sessions-sessions"].auth
    assert auth.kind == "apikey" and auth.entries[0].key == "Authorization"
    assert auth.entries[0].value == "Bearer {{env.VAPI_API_KEY}}"
    assert "dialect-bearer-keyvalue" in rules(d, "note")
    assert rules(d).count("path-param-appended") == 3
    rest_ops = cap.rest[0].operations
    assert rest_ops[2].action.with_ == {"id": WithRef("id")}
    # the seed declares `name` twice in the list operation: kept once, warned
    list_params = [p.name for p in ops["sessioncontrollerfindallpaginated"].params]
    assert len(list_params) == 28 and list_params.count("name") == 1
    assert "duplicate-parameter" in rules(d, "warning")


BASE = """naftiko: 1.0.0-alpha2
capability:
  consumes:
  - namespace: api
    baseUri: https://example.com/v1/
    authentication: {auth}
    resources:
    - name: items
      path: items/{{id}}/{{sub}}
      operations:
      - name: get
        inputParameters:
        - {{name: id, in: path}}
        - {{name: sub, in: path}}
        - {{name: extra, in: path}}
  exposes:
  - type: rest
    namespace: web
    port: 8080
    resources:
    - path: /items/{{{{id}}}}
      operations:
      - method: get
        call: api.get
"""


def test_paths_methods_and_base_uri_are_canonicalized():
    cap, d = load(BASE.replace("{{{{id}}}}", "{{id}}").format(auth="{type: bearer, token: x}"))
    assert not d.errors, [str(x) for x in d]
    op = cap.consumes["api"].operations["get"]
    assert cap.consumes["api"].base_uri == "https://example.com/v1"
    assert op.method == "GET"
    assert op.path == "/items/{{id}}/{{sub}}/{{extra}}"
    assert cap.rest[0].operations[0].path == "/items/{id}"
    assert cap.rest[0].operations[0].method == "GET"
    assert {"dialect-baseuri-slash", "dialect-path-slash", "path-param-appended", "missing-method"} <= set(rules(d))


def test_auth_dialects():
    cases = {
        "{type: bearer, token: '{{T}}'}": ("bearer", None),
        "{type: bearer, value: '{{T}}'}": ("bearer", "dialect-bearer-value"),
        "{type: apiKey, header: X-Key, token: '{{T}}'}": ("apikey", "dialect-auth-apikey"),
        "{type: header, header: X-Auth, value: '{{T}}'}": ("apikey", "dialect-auth-apikey"),
        "{type: query, parameters: [{name: a, value: '1'}, {name: b, value: '2'}]}": ("apikey", "dialect-auth-parameters"),
        "{type: basic, username: u, password: p}": ("basic", None),
        "{type: oauth1, consumerKey: k}": ("unsupported", None),
    }
    for auth, (kind, rule) in cases.items():
        cap, d = load(BASE.format(auth=auth))
        assert cap.consumes["api"].auth.kind == kind, auth
        if rule:
            assert rule in rules(d), auth
    cap, _ = load(BASE.format(auth="{type: query, parameters: [{name: a, value: '1'}, {name: b, value: '2'}]}"))
    assert [(e.key, e.placement) for e in cap.consumes["api"].auth.entries] == [("a", "query"), ("b", "query")]


def test_unsupported_version_and_missing_pieces_are_errors_with_positions():
    _, d = load("naftiko: 2.0.0\ncapability: {}\n")
    assert [str(x) for x in d.errors] == ["cap.yaml:1:10: error: format version '2.0.0' is not supported; this runtime reads 1.0.0-alpha1 .. 1.0.0-beta4 (every alpha and beta) [version]"]
    _, d = load("- a\n- b\n")
    assert d.errors[0].rule == "structure"
    _, d = load("naftiko: 1.0.0-alpha3\ncapability:\n  consumes:\n  - namespace: x\n    type: http\n")
    assert "missing `baseUri`" in d.errors[0].message and str(d.errors[0].pos) == "cap.yaml:4:5"


def test_imports_resolve_relative_to_the_capability_and_rename(tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "apis.yml").write_text(
        "naftiko: 1.0.0-alpha2\nconsumes:\n- namespace: graph\n  type: http\n  baseUri: https://g.example\n"
        "  resources:\n  - name: me\n    path: /me\n    operations:\n    - name: get-me\n      method: GET\n"
    )
    text = ("naftiko: 1.0.0-alpha2\ncapability:\n  consumes:\n  - location: ./shared/apis.yml\n    import: graph\n    as: g\n"
            "  exposes: []\n")
    cap, d = load(text, tmp_path)
    assert not d.errors
    assert cap.consumes["g"].operations["get-me"].namespace == "g"
    _, d = load(text.replace("import: graph", "import: nope"), tmp_path)
    assert d.errors[0].rule == "import-not-found" and "it has: graph" in d.errors[0].message


def test_with_prefix_note_is_given_once_per_exposure():
    text = BASE.replace("{{{{id}}}}", "{{id}}").format(auth="{type: bearer, token: x}") + "        with: {id: rest.id, sub: rest.sub}\n"
    cap, d = load(text)
    assert rules(d).count("dialect-with-prefix") == 1
    assert cap.rest[0].operations[0].action.with_ == {"id": WithRef("id"), "sub": WithRef("sub")}
