"""End to end: `naftiko run` on the unedited seed, against Prism on the Vapi OpenAPI.

Prism validates every request against the OpenAPI (bearer auth, uuid path formats, bodies, enums)
and answers 401/422 otherwise, so a 2xx here proves the runtime sent a correct request.
"""

from __future__ import annotations

import uuid

from tests.support.servers import http_request

SID = str(uuid.uuid4())


def test_create_session(seed_on_prism):
    r = http_request("POST", f"{seed_on_prism}/v1/session", json_body={"name": "demo", "status": "active", "expirationSeconds": 3600})
    assert r.status == 201, r.text
    assert "id" in r.json()


def test_list_sessions_with_query_filters(seed_on_prism):
    r = http_request("GET", f"{seed_on_prism}/v1/session?limit=10&sortOrder=DESC&assistantId=a1")
    assert r.status == 200, r.text
    assert isinstance(r.json(), dict)


def test_get_update_delete_session_by_id(seed_on_prism):
    r = http_request("GET", f"{seed_on_prism}/v1/session/{SID}")
    assert r.status == 200, r.text
    r = http_request("PATCH", f"{seed_on_prism}/v1/session/{SID}", json_body={"name": "renamed", "status": "completed"})
    assert r.status == 200, r.text
    r = http_request("DELETE", f"{seed_on_prism}/v1/session/{SID}")
    assert r.status == 200, r.text


def test_upstream_422_passes_through_with_its_body(seed_on_prism):
    r = http_request("GET", f"{seed_on_prism}/v1/session/not-a-uuid")
    assert r.status == 422
    assert "validation" in r.json()  # Prism's own problem body, untouched
    r = http_request("POST", f"{seed_on_prism}/v1/session", json_body={"status": "paused"})
    assert r.status == 422, r.text


def test_runtime_errors_are_problem_json(seed_on_prism):
    r = http_request("POST", f"{seed_on_prism}/v1/session", body=b"{not json", headers={"content-type": "application/json"})
    assert r.status == 400 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["name"] == "body"
    r = http_request("PUT", f"{seed_on_prism}/v1/session")
    assert r.status == 405 and r.headers["allow"] == "GET, HEAD, POST"
    r = http_request("GET", f"{seed_on_prism}/v2/nothing")
    assert r.status == 404 and r.json()["title"] == "Not found"


def test_openapi_describes_the_served_routes(seed_on_prism):
    doc = http_request("GET", f"{seed_on_prism}/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) == {"/v1/session", "/v1/session/{id}"}
    assert set(doc["paths"]["/v1/session/{id}"]) == {"get", "patch", "delete"}
    listing = doc["paths"]["/v1/session"]["get"]["parameters"]
    assert len(listing) == 28 and all(p["in"] == "query" for p in listing)
    assert doc["paths"]["/v1/session"]["post"]["requestBody"]["required"] is True
