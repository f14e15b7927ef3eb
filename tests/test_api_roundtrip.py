"""The API doing real work over HTTP: tasks and plans in the real SQLite store, documents through the real
ingest (embedded Chroma, MiniLM embeddings) and back out of search, and one real agent turn on the
local model, as JSON and as server-sent events."""

from __future__ import annotations

import json

import httpx
import pytest
import yaml
from api_support import ApiServer, link_model_cache

RUNBOOK = """# Restarting the ingest worker

When the ingest worker stalls, drain its queue first, then restart it with `systemctl restart
andini-ingest`. Check the heartbeat page afterwards; a green heartbeat means the worker is back.
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory, model_cache):
    home = tmp_path_factory.mktemp("api-roundtrip")
    link_model_cache(home, model_cache)
    with ApiServer(home, api_rate_limit="100000/second") as running:
        with httpx.Client(base_url=running.url, headers=running.headers, timeout=600) as client:
            running.client = client
            yield running


def test_ready_reports_the_store_and_the_model(server):
    ready = server.client.get("/ready")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["ready"] and body["checks"]["store"]["ok"] and body["checks"]["model"]["ok"]
    assert "embedded Chroma" in body["checks"]["store"]["detail"]


def test_tasks_round_trip(server):
    client = server.client
    created = [client.post("/v1/tasks", json={"title": f"task {i}", "detail": "d"}) for i in range(3)]
    assert [c.status_code for c in created] == [201, 201, 201]
    first = created[0].json()
    assert first["status"] == "todo" and first["title"] == "task 0"
    assert client.get(f"/v1/tasks/{first['id']}").json() == first
    moved = client.patch(f"/v1/tasks/{first['id']}", json={"status": "doing"})
    assert moved.status_code == 200 and moved.json()["status"] == "doing"
    assert [t["id"] for t in client.get("/v1/tasks", params={"status": "doing"}).json()] == [first["id"]]
    assert len(client.get("/v1/tasks").json()) >= 3


def test_plans_read_export_and_become_tasks(server):
    from agent.plans import PlanStore

    plan = {"goal": "Ship the release", "steps": [{"title": "Tag it", "detail": "git tag v1"},
                                                  {"title": "Announce it"}]}
    plan_id = PlanStore(server.home / "agent.db").save(plan)
    client = server.client
    assert any(p["id"] == plan_id and p["steps"] == 2 for p in client.get("/v1/plans").json())
    fetched = client.get(f"/v1/plans/{plan_id}").json()
    assert fetched["id"] == plan_id and fetched["plan"]["goal"] == "Ship the release"
    exported = client.get(f"/v1/plans/{plan_id}/export", params={"format": "yaml"})
    assert exported.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(exported.text)["steps"][0]["title"] == "Tag it"
    tasks = client.post(f"/v1/plans/{plan_id}/tasks")
    assert tasks.status_code == 201
    assert [(t["title"], t["plan_id"]) for t in tasks.json()] == [("Tag it", plan_id), ("Announce it", plan_id)]
    assert client.get("/v1/plans/987654").status_code == 404


@pytest.mark.slow
def test_ingest_then_search_finds_the_document(server):
    client = server.client
    body = {"documents": [{"name": "runbook.md", "content": RUNBOOK}]}
    first = client.post("/v1/documents", json=body)
    assert first.status_code == 200, first.text
    assert first.json()["files_added"] == 1 and first.json()["chunks_written"] >= 1 and first.json()["ok"]
    again = client.post("/v1/documents", json=body).json()
    assert again["files_unchanged"] == 1 and again["chunks_written"] == 0
    listed = client.get("/v1/documents").json()
    assert [d["source"].endswith("runbook.md") for d in listed] == [True]
    hits = client.get("/v1/search", params={"q": "how do I restart the ingest worker", "k": 3}).json()
    assert hits and hits[0]["source"]["source"].endswith("runbook.md")
    assert "systemctl restart" in hits[0]["text"]


@pytest.mark.slow
def test_ingest_of_a_document_without_indexable_words(server):
    """Found by schemathesis: a fresh collection whose only document has no word BM25 indexes ("0")
    must still ingest and search, not fail with a 500."""
    body = {"collection": "wordless", "documents": [{"name": "zero.md", "content": "0"}]}
    answer = server.client.post("/v1/documents", json=body)
    assert answer.status_code == 200, answer.text
    assert server.client.get("/v1/search", params={"q": "0", "collection": "wordless"}).status_code == 200


@pytest.mark.slow
def test_a_real_turn_on_the_local_model(tmp_path, model_cache):
    """One real turn, streamed: each SSE message is one agent event, and the same events fold into the
    JSON that POST /v1/runs returns. Short generations keep it to one small turn on a loaded CPU."""
    from agent.events import Event
    from agent.turns import TurnResult

    link_model_cache(tmp_path / "home", model_cache)
    with ApiServer(tmp_path / "home", backend="local", max_new_tokens="32") as server, \
            httpx.Client(base_url=server.url, headers=server.headers, timeout=900) as client:
        with client.stream("POST", "/v1/runs/stream", json={"intent": "Make a short plan to water the plants."}) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = list(stream.iter_lines())
    kinds = [line.removeprefix("event:").strip() for line in lines if line.startswith("event:")]
    events = [Event.model_validate(json.loads(line.removeprefix("data:"))) for line in lines if line.startswith("data:")]
    assert [e.kind for e in events] == kinds
    assert kinds and kinds[-1] in ("final", "confirm"), events[-1]
    assert kinds.count("final") + kinds.count("confirm") == 1
    run = TurnResult.fold(events)
    assert run.thread_id and run.status in ("done", "needs_confirmation")
    assert run.answer or run.plan or run.pending
    for record in run.tool_calls:
        assert record.call.name and isinstance(record.call.arguments, dict)
