"""Guard rails around the model call (LangChain agent middleware).

`ValidateCalls`: every tool call the model makes is checked against the offered tools' JSON Schemas
before any tool runs. An invalid call goes back to the model with the validation message for another
try; after `max_attempts` the turn fails with an error that carries the last output and the number of
attempts (STYLE 5, after instructor's `retry.py`). Limits and tool errors use LangChain's own
middleware (ModelCallLimit, ToolCallLimit, ToolError), assembled in `agent.run`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool

from agent.messages import new_call_id
from agent.tools import SEARCH
from agent.validate import tool_specs
from andini.calls import calls_error
from andini.errors import AndiniError
from andini.schema import MAKE_PLAN, ToolCall


class ValidationFailed(AndiniError):
    """The model's tool calls never validated; `last_output` and `attempts` say what it last tried."""

    def __init__(self, problems: str, last_output: str, attempts: int):
        super().__init__(f"The model's tool call did not validate after {attempts} attempts: {problems}\n"
                         f"  last output: {last_output[:500]}",
                         hint="use a fine-tuned adapter or a larger model; the local backend's grammar "
                              "prevents this unless the output was cut by max_new_tokens")
        self.last_output, self.attempts = last_output, attempts


def problems_in(message: AIMessage, tools: list[Any]) -> str | None:
    """What is wrong with the calls in `message`, or None."""
    bad = [f"{c.get('name') or 'call'}: {c.get('error') or 'arguments are not valid JSON'}"
           for c in message.invalid_tool_calls]
    calls = [ToolCall(name=c["name"], arguments=c.get("args") or {}) for c in message.tool_calls]
    found = calls_error(calls, tool_specs(tools)) if calls else None
    return "; ".join(bad + ([found] if found else [])) or None


def raw_output(message: AIMessage) -> str:
    raw = (message.response_metadata or {}).get("raw")
    if raw:
        return raw
    calls = [ToolCall(name=c["name"], arguments=c.get("args") or {}).to_json() for c in message.tool_calls]
    calls += [str(c.get("args")) for c in message.invalid_tool_calls]
    return "\n".join([str(message.content)] + calls).strip()


class FirstCallChoice(AgentMiddleware):
    """Sets `tool_choice` for the first model call after the person's message (e.g. "required", or a
    tool name): small untuned models rarely call a tool on their own. Later calls stay on auto."""

    def __init__(self, tool_choice: str):
        super().__init__()
        self.tool_choice = tool_choice

    def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]) -> ModelResponse:
        if request.messages and isinstance(request.messages[-1], HumanMessage):
            request = request.override(tool_choice=self.tool_choice)
        return handler(request)


class SearchFirst(AgentMiddleware):
    """Grounds a turn: the person's own words go to the knowledge-base search before the model speaks,
    and the model's next call answers from the passages in plain text.

    Small untuned models asked to search copy the field description as the query and search again
    and again until the call limit ends the turn. Here retrieval is deterministic and the model keeps
    the job it can do at that size: the call after the search is offered `then_offer` (make_plan)
    alone, so it answers from what was found in text or grounds a plan in it. Offering no tool there
    made plans impossible whenever search-first was on (the UI's default); offering every tool had the
    untuned model file tasks titled with field descriptions. Later calls in the turn (after another
    tool) are the model's own choice again."""

    def __init__(self, tool_name: str = SEARCH, then_offer: tuple[str, ...] = (MAKE_PLAN,)):
        super().__init__()
        self.tool_name, self.then_offer = tool_name, then_offer

    def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]) -> ModelResponse:
        last = request.messages[-1] if request.messages else None
        if isinstance(last, HumanMessage) and any(isinstance(t, BaseTool) and t.name == self.tool_name
                                                  for t in request.tools):
            call = {"name": self.tool_name, "args": {"query": last.text}, "id": new_call_id(),
                    "type": "tool_call"}
            return ModelResponse(result=[AIMessage(content="", tool_calls=[call])])
        if isinstance(last, ToolMessage) and last.name == self.tool_name:
            grounded: list[BaseTool | dict[str, Any]] = [t for t in request.tools
                                                         if isinstance(t, BaseTool) and t.name in self.then_offer]
            request = request.override(tools=grounded, tool_choice="auto" if grounded else "none")
        return handler(request)


class ValidateCalls(AgentMiddleware):
    """Re-asks the model, with the validation message, until its tool calls validate."""

    def __init__(self, max_attempts: int = 3):
        super().__init__()
        self.max_attempts = max_attempts

    def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]) -> ModelResponse:
        attempt_request = request
        for attempt in range(1, self.max_attempts + 1):
            response = handler(attempt_request)
            message = next((m for m in reversed(response.result) if isinstance(m, AIMessage)), None)
            problems = problems_in(message, request.tools) if message is not None else None
            if message is None or not problems:
                return response
            if attempt == self.max_attempts:
                raise ValidationFailed(problems, raw_output(message), attempt)
            feedback: list[AnyMessage] = [AIMessage(raw_output(message)),
                        HumanMessage(f"That tool call is invalid: {problems}. Call an offered tool with "
                                     "arguments that match its schema, or answer in plain text.")]
            attempt_request = request.override(messages=[*request.messages, *feedback])
        raise AssertionError("unreachable")
