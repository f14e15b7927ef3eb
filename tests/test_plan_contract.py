"""One `make_plan` contract: the tool the agent offers is the tool plan examples are trained with and
the tool eval scores, rendered by the same chat format; a plan target is that tool's call."""

import json

from agent.tools import ToolContext, builtin_tools
from agent.validate import tool_specs
from andini.calls import call_problems
from andini.formats import get_format, prompt_text
from andini.schema import Plan, plan_tool
from finetune.readers import read_examples


def agent_plan_spec():
    (tool,) = [t for t in builtin_tools(ToolContext()) if t.name == "make_plan"]
    return tool, tool_specs([tool])[0]


def test_agent_offers_exactly_the_schema_tool():
    _, spec = agent_plan_spec()
    assert spec == plan_tool()
    assert "$defs" not in json.dumps(spec.parameters)  # served form: what LangChain sends every backend


def test_agent_make_plan_validates_and_saves():
    tool, _ = agent_plan_spec()
    out = json.loads(tool.invoke({"goal": "Ship v1", "steps": [{"title": "Tag release"}]}))
    assert out["plan_id"] == 1 and Plan.model_validate(out["plan"]).steps[0].title == "Tag release"


def test_coplan_example_is_trained_as_the_served_call(tmp_path):
    path = tmp_path / "coplan.jsonl"
    path.write_text(json.dumps({"goal": "bake bread", "script": "Step 1: mix flour Step 2: bake"}) + "\n")
    (example,) = read_examples(path, "coplan")
    assert example.tools == [plan_tool()]
    (call,) = example.target_message().tool_calls
    assert call.name == "make_plan" and call_problems(call, [plan_tool()]) == []
    fmt = get_format("chatml")
    trained = "".join(s.text for s in fmt.render([*example.messages, example.target_message()], example.tools))
    _, spec = agent_plan_spec()
    served = prompt_text(fmt, example.messages, [spec])
    assert trained.startswith(served)  # the training text continues exactly the prompt the agent sends
    assert fmt.parse(trained[len(served):])[1] == [call]
