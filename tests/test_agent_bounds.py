"""Bounded grammars (agent/bounds.py): every constrained call closes inside its token budget, proven
with an adversarial model driving the local backend's own decode loop and grammar (tests/adversary.py)
over the tool schemas in ../shared/data and the plan schema, and every `andini generate` document over
the benchmark's real public schemas (benchmarks/schemas/).

CI runs a seeded sample of the corpus; `ANDINI_ADVERSARY_ALL=1` runs all of it (about an hour on two
cores: docs/agent.md gives the full run's numbers).
"""

from __future__ import annotations

import json
import os
import random

import pytest

from agent.bounds import BudgetError, bound_schema, string_pattern, worst_case_bytes
from andini.schema import Plan, ToolSpec, plan_tool

BUDGET = 512  # Settings.max_new_tokens' default
SAMPLE = 16


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from andini.models import model_dir

    return AutoTokenizer.from_pretrained(model_dir())


@pytest.fixture(scope="module")
def schemas() -> list[ToolSpec]:
    """Every tool schema in ../shared/data, then the plan schemas (read once for the module)."""
    from tests import adversary
    from tests.conftest import SHARED_DATA

    if not (SHARED_DATA / "bfcl").is_dir():
        pytest.skip(f"BFCL not found under {SHARED_DATA} (set ANDINI_SHARED_DATA)")
    return list(adversary.corpus(SHARED_DATA))


def test_worst_case_is_the_longest_text_admitted():
    schema = {"type": "object", "properties": {"s": {"type": "string", "pattern": string_pattern(0, 3)},
                                               "n": {"type": "integer", "minimum": -5, "maximum": 100},
                                               "e": {"enum": ["ab", "abcd"]}}}
    longest = json.dumps({"s": "abc", "n": 100, "e": "abcd"})
    assert worst_case_bytes(schema) == len(longest)


def test_free_form_objects_are_bounded_keys_values_and_count():
    """The issue's failure: a step's free-form arguments with one ever-longer key."""
    bounded = bound_schema({"type": "object"}, 200, name="free").schema
    assert bounded["maxProperties"] >= 1 and "pattern" in bounded["propertyNames"]
    assert all("pattern" in b or b["type"] != "string" for b in bounded["additionalProperties"]["anyOf"])
    assert worst_case_bytes(bounded) <= 200


def test_required_names_of_a_free_form_object_are_generated():
    """BFCL's waste_calculation.calculate: `required` keys on an object that declares no properties."""
    bounded = bound_schema({"type": "object", "required": ["adults", "children"]}, 200).schema
    assert list(bounded["properties"]) == ["adults", "children"] and bounded["required"] == ["adults", "children"]
    assert bounded["maxProperties"] >= 2


def test_budget_refused_naming_schema_and_budget():
    with pytest.raises(BudgetError, match=r"make_plan cannot fit a budget of 40 tokens") as info:
        bound_schema(plan_tool().parameters, 40, name="make_plan", overhead_bytes=62)
    assert "raise max_new_tokens to at least" in str(info.value)


def test_plans_keep_several_steps_at_the_default_budget():
    """Strings and arrays are budgeted apart, so a plan is not cut to one step."""
    bounded = bound_schema(plan_tool().parameters, BUDGET, name="make_plan", overhead_bytes=62)
    assert bounded.schema["properties"]["steps"]["maxItems"] >= 3 and bounded.string_chars >= 12


def test_optional_parts_give_way_before_required_ones():
    """A plan's optional details, sources and assumptions get a share of the caps, its titles all of them."""
    bounded = bound_schema(plan_tool().parameters, BUDGET, name="make_plan", overhead_bytes=62)
    step = bounded.schema["properties"]["steps"]["items"]["properties"]
    title_chars, detail_chars = (_longest(step[key]["pattern"]) for key in ("title", "detail"))
    assert bounded.optional_share < 1 and title_chars == bounded.string_chars > detail_chars
    assert bounded.worst_tokens <= BUDGET
    # a schema that fits whole keeps its optional parts whole
    small = bound_schema({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                          "required": ["a"]}, BUDGET)
    assert small.optional_share == 1 and _longest(small.schema["properties"]["b"]["pattern"]) == small.string_chars


def _longest(pattern: str) -> int:
    """The longest match of a bounded string pattern (runs of `CHAR{m,n}`)."""
    import re

    return sum(int(high) for high in re.findall(r"\{(?:\d+,)?(\d+)\}", pattern))


def test_plan_steps_call_only_offered_tools():
    tool = ToolSpec(name="create_task", parameters={"type": "object", "properties": {
        "title": {"type": "string"}}, "required": ["title"]})
    spec = plan_tool([tool, plan_tool()])
    call = spec.parameters["properties"]["steps"]["items"]["properties"]["tool_call"]
    names = [b["properties"]["name"].get("const") for b in call["anyOf"] if b.get("type") == "object"]
    assert names == ["create_task"]  # a step never calls make_plan itself
    from andini.calls import call_problems
    from andini.schema import ToolCall

    good = {"goal": "g", "steps": [{"title": "t", "tool_call": {"name": "create_task", "arguments": {"title": "x"}}}]}
    assert call_problems(ToolCall(name="make_plan", arguments=good), [spec]) == []
    Plan.model_validate(good)
    for wrong in ({"name": "delete_all", "arguments": {}}, {"name": "create_task", "arguments": {}}):
        bad = {"goal": "g", "steps": [{"title": "t", "tool_call": wrong}]}
        assert call_problems(ToolCall(name="make_plan", arguments=bad), [spec])
    assert "tool_call" not in plan_tool().parameters["properties"]["steps"]["items"]["properties"]


def _sample(tools: list[ToolSpec]) -> list[ToolSpec]:
    *data, plain_plan, agent_plan = tools
    if os.environ.get("ANDINI_ADVERSARY_ALL"):
        return tools
    return random.Random(14).sample(data, min(SAMPLE, len(data))) + [plain_plan, agent_plan]


@pytest.mark.parametrize("kind", ["open", "random"])
def test_adversary_always_closes_parses_and_validates(tokenizer, schemas, kind):
    from tests import adversary

    tools = schemas
    eng = adversary.engine(tokenizer, kind, seed=14)
    outcomes = [adversary.run(eng, tool, BUDGET, kind) for tool in _sample(tools)]
    failed = [o for o in outcomes if o.error or not o.finished or o.tokens > BUDGET]
    assert not failed, failed[:5]
    if kind == "open":  # the adversary does push outputs toward the worst case
        assert max(o.tokens for o in outcomes) > BUDGET // 2


@pytest.mark.parametrize("kind", ["open", "random"])
def test_adversary_closes_at_the_tightest_budget(tokenizer, schemas, kind):
    """A budget exactly the worst case: the call still closes, counted from the tag's first token."""
    from agent.grammar import bounded_calls, call_reserve
    from tests import adversary

    tools = schemas
    eng = adversary.engine(tokenizer, kind, seed=7)
    for tool in random.Random(7).sample(tools[:-2], 4) + tools[-2:-1]:
        tight = call_reserve(eng.fmt, bounded_calls(eng.fmt, [tool], BUDGET), BUDGET, 1)
        outcome = adversary.run(eng, tool, tight, kind)
        assert outcome.error is None and outcome.finished and outcome.tokens <= tight, outcome


@pytest.mark.parametrize("kind", ["open", "random"])
def test_adversary_documents_close_parse_and_validate(tokenizer, kind):
    """`andini generate`'s local path on every benchmark schema, with and without the decline object,
    at the default budget and at exactly the grammar's worst case: each document ends inside the
    budget, parses, and validates against the person's schema (not only the bounded copy)."""
    from agent.generate import grammar_schema
    from tests import adversary

    eng = adversary.engine(tokenizer, kind, seed=18)
    token_bytes = eng.grammar_factory("xgrammar").token_bytes
    outcomes = []
    for doc in adversary.documents():
        for decline in (False, True):
            tight = grammar_schema(doc, decline, BUDGET, token_bytes).worst_tokens
            outcomes += [adversary.run_document(eng, doc, budget, kind, decline) for budget in (BUDGET, tight)]
    assert len(outcomes) == 16
    failed = [o for o in outcomes if o.error or not o.finished or o.tokens > o.budget]
    assert not failed, failed[:5]
    if kind == "open":  # the adversary does push documents toward the worst case
        assert max(o.tokens / o.budget for o in outcomes) > 0.5


def test_a_call_the_budget_cannot_hold_ends_the_output_and_says_so(tokenizer):
    """After one call, a second opens only if the tokens left hold its worst case; otherwise the
    output ends before it and the generation says that the budget stopped it (eval counts these)."""
    from agent.grammar import bounded_calls, call_reserve
    from andini.schema import Message
    from tests import adversary

    tool = ToolSpec(name="play", description="Play an artist", parameters={
        "type": "object", "properties": {"artist": {"type": "string"}}, "required": ["artist"]})
    call = '<tool_call>\n{{"name": "play", "arguments": {{"artist": "{}"}}}}\n</tool_call>'
    script = call.format("Taylor Swift") + "\n" + call.format("Maroon 5")

    def generate(budget):
        eng = adversary.text_engine(tokenizer, script)
        gen = eng.generate([Message(role="user", content="play both")], [tool], max_new_tokens=budget)
        return gen, eng.fmt.parse(gen.text)[1], call_reserve(eng.fmt, bounded_calls(eng.fmt, [tool], budget), budget, 1)

    roomy, calls, reserve = generate(BUDGET)
    assert [c.arguments["artist"] for c in calls] == ["Taylor Swift", "Maroon 5"]
    assert roomy.finished and not roomy.stopped_before_call and roomy.new_tokens + reserve < BUDGET
    tight, calls, reserve = generate(96)
    assert [c.arguments["artist"] for c in calls] == ["Taylor Swift"]  # the second could not have closed
    assert tight.finished and tight.stopped_before_call and 96 - tight.new_tokens < reserve
