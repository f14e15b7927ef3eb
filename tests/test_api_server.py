"""`andini serve` over real HTTP: the token rules, malformed bodies, size and rate limits, start-up refusal.
No model is loaded here; see test_api_roundtrip.py for documents and a real agent turn."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from api_support import TOKEN, ApiServer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ApiServer(tmp_path_factory.mktemp("api-home"), api_rate_limit="1000/second",
                   api_max_body_bytes="65536") as running:
        yield running


@pytest.fixture(scope="module")
def operations(server) -> list[tuple[str, str]]:
    schema = httpx.get(f"{server.url}/openapi.json").json()
    return [(method.upper(), path.replace("{plan_id}", "1").replace("{task_id}", "1").replace("{thread_id}", "t1"))
            for path, item in schema["paths"].items() for method in item]


def test_health_needs_no_token(server):
    answer = httpx.get(f"{server.url}/health")
    assert answer.status_code == 200 and answer.json()["status"] == "ok"


def test_every_other_route_needs_the_token(server, operations):
    guarded = [(m, p) for m, p in operations if p != "/health"]
    assert len(guarded) >= 10
    for method, path in guarded:
        missing = httpx.request(method, server.url + path, json={})
        assert missing.status_code == 401, (method, path, missing.text)
        assert missing.headers["www-authenticate"] == "Bearer"
        assert "bearer token" in missing.json()["detail"].lower()
        wrong = httpx.request(method, server.url + path, json={}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403, (method, path, wrong.text)
        basic = httpx.request(method, server.url + path, json={}, headers={"Authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 401, (method, path)


def test_openapi_document_declares_the_bearer_scheme(server):
    schema = httpx.get(f"{server.url}/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert schema["paths"]["/health"]["get"]["security"] == []
    assert schema["paths"]["/v1/runs"]["post"]["security"] == [{"bearer": []}]
    assert {"401", "403", "413", "422", "429"} <= set(schema["paths"]["/v1/runs"]["post"]["responses"])


def test_openapi_constraints_use_json_schema_keywords(server):
    """pydantic writes a constraint it cannot place as a raw "ge"/"le", which JSON Schema ignores: a client
    reading the document would then send values the server refuses (schemathesis found plan_id=0)."""
    schema = httpx.get(f"{server.url}/openapi.json").json()
    stray = []

    def walk(node, where):
        if isinstance(node, dict):
            stray.extend(f"{where}/{k}" for k in ("ge", "gt", "le", "lt") if k in node and where.split("/")[-1] != "properties")
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(schema, "")
    assert not stray
    plan_id = schema["components"]["schemas"]["TaskCreate"]["properties"]["plan_id"]["anyOf"][0]
    assert plan_id["minimum"] == 1
    # a bound JSON readers hold as a double must be one exactly, or values above it pass as equal
    assert int(float(plan_id["maximum"])) == plan_id["maximum"]


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/runs", {}, "body.intent"),
    ("/v1/runs", {"intent": "plan a trip", "confirm": [1]}, "body.confirm"),
    ("/v1/runs", {"intent": "plan a trip", "intnt": "typo"}, "body.intnt"),
    ("/v1/runs", {"intent": "   "}, "body.intent"),
    ("/v1/tasks", {"title": ""}, "body.title"),
    ("/v1/tasks", {"title": "ok", "plan_id": "seven"}, "body.plan_id"),
    ("/v1/documents", {"documents": [{"name": "../../etc/passwd.md", "content": "x"}]}, "body.documents.0.name"),
    ("/v1/documents", {"documents": []}, "body.documents"),
    ("/v1/runs/t1/confirm", {"approve": "perhaps"}, "body.approve"),
])
def test_malformed_bodies_get_422_naming_the_field(server, path, body, field):
    answer = httpx.post(server.url + path, json=body, headers=server.headers)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert field in problem["message"]
    assert any(".".join(map(str, e["loc"])) == field for e in problem["detail"])


def test_invalid_json_gets_422(server):
    answer = httpx.post(f"{server.url}/v1/runs", content=b'{"intent": ', headers={
        **server.headers, "Content-Type": "application/json"})
    assert answer.status_code == 422 and "body" in answer.json()["message"]


def test_bad_query_parameters_get_422(server):
    answer = httpx.get(f"{server.url}/v1/search", params={"q": "x", "mode": "fuzzy", "k": 0}, headers=server.headers)
    assert answer.status_code == 422
    assert "query.mode" in answer.json()["message"] and "query.k" in answer.json()["message"]


def test_oversized_body_gets_413_declared_or_streamed(server):
    big = b'{"intent": "' + b"x" * 70_000 + b'"}'
    declared = httpx.post(f"{server.url}/v1/runs", content=big, headers={
        **server.headers, "Content-Type": "application/json"})
    assert declared.status_code == 413 and "65536" in declared.json()["detail"]

    def chunks():  # no Content-Length: the server has to count
        for start in range(0, len(big), 8192):
            yield big[start:start + 8192]

    streamed = httpx.post(f"{server.url}/v1/runs", content=chunks(), headers={
        **server.headers, "Content-Type": "application/json"})
    assert streamed.status_code == 413 and "65536" in streamed.json()["detail"]
    assert "ANDINI_API_MAX_BODY_BYTES" in streamed.json()["hint"]


def test_wrong_method_gets_405_listing_every_allowed_method(server):
    answer = httpx.request("DELETE", f"{server.url}/v1/documents", headers=server.headers)
    assert answer.status_code == 405 and answer.headers["allow"] == "GET, POST"


def test_unknown_items_get_404(server):
    answer = httpx.get(f"{server.url}/v1/tasks/999999", headers=server.headers)
    assert answer.status_code == 404 and "999999" in answer.json()["detail"]


def test_rate_limit_answers_429_with_retry_after(tmp_path):
    with ApiServer(tmp_path / "home", api_rate_limit="5/minute") as limited:
        codes = [httpx.get(f"{limited.url}/v1/tasks", headers=limited.headers).status_code for _ in range(7)]
        assert 429 not in codes[:5] and codes[5:] == [429, 429]
        refused = httpx.get(f"{limited.url}/v1/tasks", headers={"Authorization": "Bearer wrong"})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert "ANDINI_API_RATE_LIMIT" in refused.json()["hint"]
        assert httpx.get(f"{limited.url}/health").status_code == 200  # health stays reachable


def test_serve_refuses_to_start_without_a_token(tmp_path):
    unset = ApiServer(tmp_path / "home", token=None)
    done = subprocess.run(unset.command(), env=unset.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "ANDINI_API_TOKEN is not set" in done.stderr and "fix:" in done.stderr


def test_serve_refuses_a_malformed_rate_limit(tmp_path):
    bad = ApiServer(tmp_path / "home", api_rate_limit="lots")
    done = subprocess.run(bad.command(), env=bad.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "ANDINI_API_RATE_LIMIT" in done.stderr


def test_side_effect_calls_wait_for_an_explicit_confirm(tmp_path):
    """Plumbing, on a scripted agent: without `confirm` the run stops at the call; /confirm finishes it."""
    script = Path(__file__).parent / "api_scripted_agent.py"
    with ApiServer(tmp_path / "home", script=script) as scripted, \
            httpx.Client(base_url=scripted.url, headers=scripted.headers) as client:
        waiting = client.post("/v1/runs", json={"intent": "add a task", "thread_id": "t-1"}).json()
        assert waiting["status"] == "needs_confirmation" and waiting["pending"]["name"] == "create_task"
        assert waiting["tool_calls"][0]["ok"] is None  # nothing ran
        done = client.post("/v1/runs/t-1/confirm", json={"approve": True}).json()
        assert done["status"] == "done" and done["answer"] == "Added the task." and done["pending"] is None
        assert done["tool_calls"][0]["result"] == {"id": 1} and done["tool_calls"][0]["ok"] is True
        refused = client.post("/v1/runs/t-1/confirm", json={"approve": False}).json()
        assert refused["answer"] == "Nothing was added." and refused["tool_calls"] == []
        upfront = client.post("/v1/runs", json={"intent": "add a task", "confirm": True}).json()
        assert upfront["status"] == "done" and upfront["tool_calls"][0]["ok"] is True
        streamed = client.post("/v1/runs/stream", json={"intent": "add a task"})
        kinds = [line.removeprefix("event:").strip() for line in streamed.text.splitlines()
                 if line.startswith("event:")]
        assert kinds == ["token", "tool_call", "confirm"]
