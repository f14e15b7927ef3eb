"""The record schema every package speaks: tools, calls, plans and training/eval examples.

A tool is a JSON Schema in OpenAI `tools` form; a call is `{"name", "arguments"}`; a plan is
`{"goal", "steps": [{"title", "detail", "tool_call"?, "sources"?}], "assumptions"?}`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ToolSpec(BaseModel):
    """A function the model may call, described by a JSON Schema for its arguments."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="Function name the model must emit exactly.")
    description: str = Field("", description="What the function does, for the model.")
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}},
                                       description="JSON Schema of the arguments object.")

    def openai(self) -> dict[str, Any]:
        """The OpenAI / TGI `tools` entry."""
        return {"type": "function", "function": self.model_dump()}

    @classmethod
    def from_openai(cls, tool: dict[str, Any]) -> ToolSpec:
        fn = tool.get("function", tool)
        return cls(name=fn["name"], description=fn.get("description", "") or "",
                   parameters=fn.get("parameters") or {"type": "object", "properties": {}})


class ToolCall(BaseModel):
    """One function call: a name and its arguments."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="Name of an offered tool.")
    arguments: dict[str, Any] = Field(default_factory=dict, description="Arguments by name.")

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "arguments": self.arguments}, ensure_ascii=False)


class Source(BaseModel):
    """Where a piece of text came from: file, heading path and character span."""

    source: str = Field(description="Path of the document.")
    heading: str = Field("", description="Heading path inside the document, ' > '-joined.")
    start: int | None = Field(None, description="Start character offset in the document.")
    end: int | None = Field(None, description="End character offset in the document.")


class Step(BaseModel):
    """One step of a plan."""

    title: str = Field(min_length=1, description="Short imperative title of the step.")
    detail: str = Field("", description="What to do, concretely.")
    tool_call: ToolCall | None = Field(None, description="A tool call that performs this step, if any.")
    sources: list[str] = Field(default_factory=list, description="Documents this step relies on.")


class Plan(BaseModel):
    """A step-by-step plan for a goal: the product's main structured output."""

    goal: str = Field(min_length=1, description="What the person wants to achieve.")
    steps: list[Step] = Field(min_length=1, description="Ordered steps.")
    assumptions: list[str] = Field(default_factory=list, description="What the plan takes for granted.")


class Message(BaseModel):
    """One chat turn. Assistant turns may carry tool calls; tool turns carry a result."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    name: str | None = Field(None, description="Tool name, on tool turns.")
    tool_call_id: str | None = None


class Example(BaseModel):
    """One training or evaluation record, whatever its source format.

    `messages` end with the last user (or tool) turn; the target is what the assistant says next:
    `target_calls` (possibly several), or `target_plan`, or `target_text` (e.g. irrelevance).
    """

    model_config = ConfigDict(extra="forbid")
    id: str
    messages: list[Message]
    tools: list[ToolSpec] = Field(default_factory=list)
    target_calls: list[ToolCall] = Field(default_factory=list)
    target_plan: Plan | None = None
    target_text: str | None = None
    source: str = Field("andini", description="Data set it came from.")
    license: str = Field("unknown", description="License of the source.")
    meta: dict[str, Any] = Field(default_factory=dict)

    def target_message(self) -> Message:
        """The assistant turn the model should produce: a plan is a `make_plan` call, as served."""
        if self.target_plan is not None:
            return Message(role="assistant", tool_calls=[plan_call(self.target_plan)])
        return Message(role="assistant", content=self.target_text or "", tool_calls=self.target_calls)


MAKE_PLAN = "make_plan"
PLAN_DESCRIPTION = "Write a step-by-step plan for the goal. The plan is validated and saved."


def plan_tool(tools: Sequence[ToolSpec] = ()) -> ToolSpec:
    """The `make_plan` tool: the one definition the agent offers, the data builder trains on, the grammar
    compiles and eval scores. Its parameters are the `Plan` schema in served form (see `served_schema`),
    so the text a model is trained on is the text every backend is sent.

    `tools` are those offered beside it in a turn: a step's `tool_call` names one of them and its
    `arguments` follow that tool's schema (a union keyed by the name), so a plan can only call real
    tools; with none offered (the default, and how plan examples are trained), steps carry no tool call.
    A call valid here is also a valid `ToolCall`, so `Plan` still reads it."""
    parameters = served_schema(Plan.model_json_schema())
    step = parameters["properties"]["steps"]["items"]
    callable_tools = [t for t in tools if t.name != MAKE_PLAN]  # a step does not plan again
    if callable_tools:
        call = step["properties"]["tool_call"]
        call["anyOf"] = [tool_call_schema(t) for t in callable_tools] + [{"type": "null"}]
    else:
        del step["properties"]["tool_call"]
    return ToolSpec(name=MAKE_PLAN, description=PLAN_DESCRIPTION, parameters=parameters)


def tool_call_schema(tool: ToolSpec) -> dict[str, Any]:
    """JSON Schema of one call to `tool`: `{"name": <its name>, "arguments": <its parameters>}`."""
    arguments = dict(tool.parameters or {"type": "object", "properties": {}})
    arguments.setdefault("type", "object")
    return {"type": "object", "properties": {"name": {"const": tool.name}, "arguments": arguments},
            "required": ["name", "arguments"], "additionalProperties": False}


def served_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema as LangChain hands a tool's arguments to every backend: `$ref`s inlined, `$defs`,
    titles and the top-level description dropped. Unchanged by LangChain's own conversion, so a tool
    declared in this form reaches the model as declared. A cyclic reference becomes `{}` (any value)."""
    defs = schema.get("$defs", {})

    def walk(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [walk(v, seen) for v in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {} if name in seen else walk({**defs[name], **rest}, (*seen, name))
        return {k: ({p: walk(sub, seen) for p, sub in v.items()} if k == "properties" else walk(v, seen))
                for k, v in node.items() if k not in ("$defs", "title")}

    out = walk(schema, ())
    out.pop("description", None)
    return out


def plan_call(plan: Plan) -> ToolCall:
    """A plan as the `make_plan` call that carries it (defaults left out: fewer tokens to learn)."""
    return ToolCall(name=MAKE_PLAN, arguments=plan.model_dump(mode="json", exclude_defaults=True))
