"""The local backend with the real SmolLM2-135M model and constrained decoding.

One model load for the module. Untuned, this model picks tools badly; what is tested here is that
under the grammar every call it emits parses and validates, that it can still answer in plain text,
and that the agent loop works end to end with it.
"""

from __future__ import annotations

import json

import pytest

from agent.backends import complete
from andini.calls import calls_error
from andini.schema import Message, Plan, ToolSpec, plan_tool

pytestmark = pytest.mark.slow

TOOLS = [
    ToolSpec(name="search_knowledge_base", description="Search the person's documents.",
             parameters={"type": "object", "properties": {
                 "query": {"type": "string", "maxLength": 48, "description": "What to look for."},
                 "k": {"type": "integer", "minimum": 1, "maximum": 20}}, "required": ["query"]}),
    ToolSpec(name="create_task", description="Add a task.",
             parameters={"type": "object", "properties": {
                 "title": {"type": "string", "maxLength": 48}, "priority": {"type": "string", "enum": ["low", "high"]},
                 "due_days": {"type": "integer"}}, "required": ["title", "priority"]}),
    ToolSpec(name="get_weather", description="Weather for a city.",
             parameters={"type": "object", "properties": {
                 "city": {"type": "string", "maxLength": 32}, "unit": {"type": "string", "enum": ["c", "f"]}},
                 "required": ["city"]}),
]
PROMPTS = [
    "Find what my notes say about the installation.", "Add a high priority task to call the bank.",
    "What's the weather in Lisbon?", "Search the docs for the API token setting.",
    "Remind me to water the plants in 3 days.", "Is it raining in Paris, in fahrenheit?",
    "Look up the chunk size default.", "Create a low priority task: tidy the desk.",
    "hello!",
]


@pytest.fixture(scope="module")
def warm_model(tmp_path_factory):
    """Loads the model once (complete() caches it per process) under a module-wide home."""
    from agent.local import get_engine

    return get_engine()


@pytest.mark.parametrize("tool_choice", ["required", None])
def test_constrained_calls_always_validate(warm_model, tool_choice):
    # the grammar bounds every call to close within max_new_tokens, even one byte per token (agent/bounds.py)
    results = [complete([Message(role="user", content=p)], TOOLS, max_new_tokens=160, tool_choice=tool_choice)
               for p in PROMPTS]
    calls = [c for r in results for c in r.calls]
    assert all(r.error is None for r in results), [r.error for r in results if r.error]
    assert calls_error(calls, TOOLS) is None
    if tool_choice == "required":
        assert all(r.calls for r in results)  # a call is forced, and each one validates
    assert all(r.new_tokens > 0 and r.ttft_s > 0 for r in results)


def test_plain_text_stays_possible(warm_model):
    out = complete([Message(role="user", content="Say hello in one word.")], TOOLS, max_new_tokens=16)
    assert out.error is None and out.content and "<tool_call>" not in out.content


def test_unconstrained_output_is_checked_not_trusted(warm_model):
    """Without the grammar nothing guarantees validity; whatever comes back is parsed and checked."""
    out = complete([Message(role="user", content=PROMPTS[1])], TOOLS, max_new_tokens=48, constrained=False)
    assert out.error is None or isinstance(out.error, str)
    assert out.error is not None or calls_error(out.calls, TOOLS) is None


def test_plan_validates(warm_model):
    out = complete([Message(role="user", content="Plan a small birthday party for Sam.")], [plan_tool()],
                   max_new_tokens=400, tool_choice="required")
    assert out.error is None, out.text
    plan = Plan.model_validate(out.calls[0].arguments)
    assert plan.goal and plan.steps


def test_agent_loop_calls_a_tool_and_answers(warm_model, andini_home):
    from agent.run import Agent

    agent = Agent(first_tool_choice="list_tasks", max_new_tokens=120, max_model_calls=3)
    # read-only tools: the untuned model otherwise goes on to create_task, which waits for consent
    # (tests/test_agent_plumbing.py covers that path)
    agent.tools = [t for t in agent.tools if t.name in ("list_tasks", "search_knowledge_base")]
    events = list(agent.stream("Which tasks do I have?"))
    kinds = [e.kind for e in events]
    assert kinds[0] == "tool_call" and events[0].call.name == "list_tasks"
    assert kinds[1] == "tool_result" and events[1].ok and events[1].result == []
    assert kinds[-1] == "final", events[-1]


def test_answer_streams_as_tokens(warm_model):
    from agent.run import Agent

    events = list(Agent(max_new_tokens=24, max_model_calls=1).stream("Say hi."))
    tokens = "".join(e.text for e in events if e.kind == "token")
    assert events[-1].kind == "final"
    if not any(e.kind == "tool_call" for e in events):
        assert tokens and tokens.strip() == events[-1].text.strip()


def test_cli_run_json(warm_model, capsys):
    from andini.cli import main

    code = main(["run", "Say hi.", "--json", "--max-new-tokens", "16"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["status"] == "done" and out["answer"] and out["thread_id"]
