"""Structured output over real HTTP. POST /v1/generate: the real local model writes a document valid
against the caller's schema; a bad schema is a 400 naming its JSON pointer; a schema may not reach the
server's files; a reply that never validates is a 422 carrying the last output and the number of
attempts. POST /v1/plans/{id}/run: a stored plan's calls run on the real task store, side effects
waiting for `approve`."""

from __future__ import annotations

import httpx
import pytest
import yaml
from api_support import ApiServer, link_model_cache

from andini.docschema import load_schema

TRIP = {"type": "object", "properties": {"city": {"enum": ["Paris", "Rome", "Oslo"]},
                                         "days": {"type": "integer", "minimum": 1, "maximum": 14}},
        "required": ["city", "days"], "additionalProperties": False}


@pytest.fixture(scope="module")
def local(tmp_path_factory, model_cache):
    home = tmp_path_factory.mktemp("api-generate")
    link_model_cache(home, model_cache)
    with ApiServer(home, backend="local", api_rate_limit="100000/second") as running, \
            httpx.Client(base_url=running.url, headers=running.headers, timeout=600) as client:
        client.home = home
        yield client


@pytest.mark.slow
def test_the_real_model_answers_with_a_valid_document_and_its_yaml(local):
    answer = local.post("/v1/generate", json={"schema": TRIP, "intent": "Five days in Paris.", "yaml": True,
                                              "max_new_tokens": 48})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert load_schema(TRIP).errors(body["document"]) == []
    assert yaml.safe_load(body["text"]) == body["document"] and body["format"] == "yaml"
    assert body["enforcement"] == "grammar" and body["backend"] == "local" and body["passages"] == []


@pytest.mark.parametrize("schema, expected", [
    ({"properties": {"n": {"type": "integr"}}}, "not a valid JSON Schema: at /properties/n/type"),
    ({"properties": {"x": {"$ref": "#/$defs/nope"}}}, "at /properties/x/$ref: cannot resolve '#/$defs/nope'"),
    ({"properties": {"x": {"$ref": "file:///etc/hostname"}}}, "at /properties/x/$ref: cannot resolve 'file:///etc/"),
])
def test_a_bad_schema_is_a_400_naming_the_pointer(local, schema, expected):
    answer = local.post("/v1/generate", json={"schema": schema, "intent": "anything"})
    assert answer.status_code == 400, answer.text
    assert expected in answer.json()["detail"]


def test_strict_refuses_what_the_grammar_cannot_honour(local):
    schema = {"type": "object", "properties": {"m": {"oneOf": [{"type": "integer"}, {"type": "number"}]}}}
    answer = local.post("/v1/generate", json={"schema": schema, "intent": "x", "strict_grammar": True})
    assert answer.status_code == 400 and "cannot honour oneOf at /properties/m/oneOf" in answer.json()["detail"]


def test_no_valid_reply_is_a_422_with_the_last_output(tmp_path, model_server):
    model_server.replies += [{"text": '{"city": "Lyon", "days": 3}'}, {"text": '{"city": "Rome"}'}]
    with ApiServer(tmp_path / "home", backend="tgi", tgi_url=model_server.url) as server:
        answer = httpx.post(f"{server.url}/v1/generate", headers=server.headers, timeout=60,
                            json={"schema": TRIP, "intent": "Three days in Lyon", "attempts": 2})
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["kind"] == "generation_failed" and body["attempts"] == 2
    assert body["last_output"] == '{"city": "Rome"}' and "'days' is a required property" in body["errors"][0]


def test_a_plan_runs_over_the_api_after_approval(local):
    from agent.plans import PlanStore

    plan_id = PlanStore(local.home / "agent.db").save({"goal": "Remember the bank", "steps": [
        {"title": "Add", "tool_call": {"name": "create_task", "arguments": {"title": "Call the bank"}}},
        {"title": "Start it", "tool_call": {"name": "update_task",
                                            "arguments": {"task_id": "$var1.id$", "status": "doing"}}}]})
    assert local.get(f"/v1/plans/{plan_id}/run").status_code == 404  # not run yet
    waiting = local.post(f"/v1/plans/{plan_id}/run", json={})
    assert waiting.status_code == 200, waiting.text
    assert waiting.json()["status"] == "needs_confirmation" and waiting.json()["stopped_at"] == 1
    assert local.get("/v1/tasks").json() == []
    done = local.post(f"/v1/plans/{plan_id}/run", json={"approve": True}).json()
    assert done["status"] == "done" and done["id"] == waiting.json()["id"]
    task = local.get(f"/v1/tasks/{done['steps'][0]['result']['id']}").json()
    assert task["status"] == "doing" and done["steps"][1]["call"]["arguments"]["task_id"] == task["id"]
    assert local.get(f"/v1/plans/{plan_id}/run").json() == done
    assert local.post("/v1/plans/4242/run", json={}).status_code == 404
