"""TGI and OpenAI-compatible backends against a real local HTTP server.

These are CONTRACT tests: TGI cannot run on these machines (no GPU, no model download), so
`tests/agent_support.FakeServer` answers with TGI's documented Messages API wire format (tool calls
with string or object arguments, SSE streaming chunks, 422/503 errors). The client side is the real one:
huggingface_hub's InferenceClient (tgi) and langchain-openai's ChatOpenAI (openai), over real HTTP.
"""

from __future__ import annotations

import pytest

from agent.backends import complete
from agent.run import Agent
from andini.errors import AndiniError
from andini.schema import Message, ToolSpec, plan_tool
from andini.settings import get_settings

SEARCH = ToolSpec(name="search_knowledge_base", description="Search documents.",
                  parameters={"type": "object", "properties": {"query": {"type": "string"},
                                                                "k": {"type": "integer"}},
                              "required": ["query"]})
ASK = [Message(role="user", content="How do I install andini?")]


@pytest.mark.parametrize("backend", ["tgi", "openai"])
@pytest.mark.parametrize("args_as_object", [False, True])
def test_tool_call_round_trip(model_server, backend, args_as_object):
    model_server.replies.append({"calls": [("search_knowledge_base", {"query": "install"})],
                           "args_as_object": args_as_object})
    out = complete(ASK, [SEARCH], backend=backend, adapter="my-lora")
    assert out.error is None, out
    assert [(c.name, c.arguments) for c in out.calls] == [("search_knowledge_base", {"query": "install"})]
    sent = model_server.requests[-1]
    assert sent["model"] == "my-lora"  # TGI routes to a --lora-adapters adapter by the model field
    assert sent["tools"][0]["function"]["name"] == "search_knowledge_base"
    assert sent["stream"] is True  # complete() streams to measure time to first token
    # the server's grammar gets the bounded schema, so its calls close within max_tokens too
    sent_args = sent["tools"][0]["function"]["parameters"]["properties"]
    assert "pattern" in sent_args["query"] and "maximum" in sent_args["k"]


@pytest.mark.parametrize("backend", ["tgi", "openai"])
def test_a_required_call_that_cannot_fit_is_refused_before_any_request(model_server, backend):
    from agent.bounds import BudgetError

    with pytest.raises(BudgetError, match="make_plan.*budget of 40 tokens"):
        complete(ASK, [plan_tool()], backend=backend, tool_choice="required", max_new_tokens=40)
    assert model_server.requests == []


@pytest.mark.parametrize("backend", ["tgi", "openai"])
def test_streamed_text_and_invalid_call_reported(model_server, backend):
    model_server.replies.append({"text": "Run pip install andini"})
    out = complete(ASK, [SEARCH], backend=backend)
    assert out.content.strip() == "Run pip install andini" and out.calls == [] and out.error is None
    model_server.replies.append({"calls": [("search_knowledge_base", {"k": 3})]})  # missing required query
    bad = complete(ASK, [SEARCH], backend=backend)
    assert "query" in bad.error and "required" in bad.error


def test_plan_requires_a_call(model_server):
    plan = {"goal": "Install andini", "steps": [{"title": "pip install andini"}]}
    model_server.replies.append({"calls": [("make_plan", plan)]})
    out = complete(ASK, [plan_tool()], backend="tgi", tool_choice="required")
    assert out.error is None and out.calls[0].arguments == plan
    assert model_server.requests[-1]["tool_choice"] == "required"


def test_503_while_loading_is_retried(model_server):
    model_server.replies += [{"status": 503, "error": "Model is currently loading", "error_type": "overloaded"},
                       {"text": "ready now"}]
    out = complete(ASK, [], backend="tgi")
    assert out.content.strip() == "ready now" and len(model_server.requests) == 2


def test_422_is_a_clear_error(model_server):
    model_server.replies.append({"status": 422, "error": "Input validation error: tools not supported",
                           "error_type": "validation"})
    with pytest.raises(AndiniError) as err:
        complete(ASK, [SEARCH], backend="tgi")
    assert model_server.url in str(err.value) and "422" in str(err.value) and "validation error" in str(err.value)


@pytest.mark.parametrize("backend,env", [("tgi", "ANDINI_TGI_URL"), ("openai", "ANDINI_OPENAI_URL")])
def test_unreachable_server_names_the_url(free_port, monkeypatch, backend, env):
    url = f"http://127.0.0.1:{free_port}" + ("/v1" if backend == "openai" else "")
    monkeypatch.setenv(env, url)
    monkeypatch.setenv("ANDINI_MODEL", "some-model")
    get_settings.cache_clear()
    with pytest.raises(AndiniError) as err:
        complete(ASK, [SEARCH], backend=backend)
    assert url in str(err.value)
    events = list(Agent(backend=backend).stream("hello"))
    assert events[-1].kind == "error" and url in events[-1].text


def test_agent_turn_over_tgi(model_server):
    """The whole loop on the tgi backend: call a tool, see its result, answer."""
    model_server.replies += [{"calls": [("list_tasks", {})]}, {"text": "You have no tasks."}]
    events = list(Agent(backend="tgi").stream("What are my tasks?"))
    kinds = [e.kind for e in events]
    assert "tool_call" in kinds and "tool_result" in kinds and kinds[-1] == "final"
    assert events[-1].text.strip() == "You have no tasks."
    tool_turn = model_server.requests[-1]["messages"]
    assert tool_turn[-1]["role"] == "tool" and tool_turn[-1]["content"] == "[]"


def test_health(model_server, monkeypatch):
    from agent import health

    monkeypatch.setenv("ANDINI_BACKEND", "tgi")
    get_settings.cache_clear()
    assert health()["ok"] is True
    server_down = {"ANDINI_TGI_URL": "http://127.0.0.1:9"}
    monkeypatch.setenv("ANDINI_TGI_URL", server_down["ANDINI_TGI_URL"])
    get_settings.cache_clear()
    report = health()
    assert report["ok"] is False and "127.0.0.1:9" in report["detail"]


def test_the_tgi_stand_in_refuses_what_tgi_could_not_deserialize(model_server):
    """The stand-in checks bodies against TGI's ChatRequest schema, so the client tests above mean
    that the client's requests (tools, tool_choice, response_format, streaming) are TGI-shaped."""
    import httpx

    from tests.agent_support import wire_problem

    good = {"messages": [{"role": "user", "content": "hi"}], "tools": [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": "required", "response_format": {"type": "json_object", "value": {"type": "object"}}}
    assert wire_problem(good) is None
    bad = {**good, "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}
    reply = httpx.post(model_server.url + "/v1/chat/completions", json=bad)
    assert reply.status_code == 422 and "response_format" in reply.text
    assert "messages" in wire_problem({"messages": [{"role": "user"}]})
    assert model_server.malformed and all("response_format" in m for m in model_server.malformed)
    model_server.malformed.clear()  # refused on purpose; the fixture fails a test that leaves any
