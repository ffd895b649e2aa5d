"""The segment-trie router: literal before pattern before variable, independent of route count."""

from naftiko_runtime.exposes.router import Router


def build(*templates: str) -> Router[str]:
    router: Router[str] = Router()
    for t in templates:
        router.add(t, t)
    return router


def test_static_and_variable_routes():
    r = build("/v1/session", "/v1/session/{id}", "/v1/session/search", "/")
    assert r.match("/v1/session") == ("/v1/session", {})
    assert r.match("/v1/session/") == ("/v1/session", {})
    assert r.match("/v1/session/search") == ("/v1/session/search", {})
    assert r.match("/v1/session/abc") == ("/v1/session/{id}", {"id": "abc"})
    assert r.match("/") == ("/", {})
    assert r.match("/v1/session/a/b") is None
    assert r.match("/v1/nothing") is None


def test_backtracking_and_differently_named_variables():
    r = build("/items/{id}/parts", "/items/{itemId}", "/items/special/parts/{n}")
    assert r.match("/items/special/parts") == ("/items/{id}/parts", {"id": "special"})
    assert r.match("/items/special/parts/3") == ("/items/special/parts/{n}", {"n": "3"})
    assert r.match("/items/42") == ("/items/{itemId}", {"itemId": "42"})


def test_segments_mixing_text_and_variables():
    r = build("/{tag}", "/{tag}.{format}", "/api/v{n}/x")
    assert r.match("/logs.json") == ("/{tag}.{format}", {"tag": "logs", "format": "json"})
    assert r.match("/logs") == ("/{tag}", {"tag": "logs"})
    assert r.match("/api/v2/x") == ("/api/v{n}/x", {"n": "2"})


def test_many_routes_match_the_last_one():
    r = build(*[f"/v1/r{k}/session/{{id}}" for k in range(500)])
    assert r.match("/v1/r499/session/z") == ("/v1/r499/session/{id}", {"id": "z"})


def test_a_tail_takes_any_deeper_path_only_when_nothing_else_matches():
    r = build("/proxy/{path}", "/proxy/special/x", "/{tenant}/files")
    r.add_tail("/proxy", "path", "forward")
    r.add_tail("/{tenant}/files", "rest", "files")
    assert r.match("/proxy/a") == ("/proxy/{path}", {"path": "a"})
    assert r.match("/proxy/special/x") == ("/proxy/special/x", {})
    assert r.match("/proxy/special/y/z") == ("forward", {"path": "special/y/z"})
    assert r.match("/acme/files/a/b.txt") == ("files", {"tenant": "acme", "rest": "a/b.txt"})
    assert r.match("/proxy") is None
