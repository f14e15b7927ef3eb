"""The agent's event stream: what one turn produces, in order, for the CLI, the UI and the HTTP API.

A front end renders these and owns no agent logic. A turn ends with exactly one `final`, `error` or
`confirm` event; after `confirm`, the front end asks the person and calls `Agent.resume(...)`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from andini.schema import Plan, Source, ToolCall

EventKind = Literal["token", "tool_call", "tool_result", "plan", "final", "error", "confirm"]


class Event(BaseModel):
    kind: EventKind
    thread_id: str | None = None
    #: token: the new text; final: the whole answer; error: what went wrong and what to do.
    text: str = ""
    #: tool_call / confirm: the call (confirm: the call waiting for the person's yes or no).
    call: ToolCall | None = None
    call_id: str | None = None
    #: tool_result: the tool's output (JSON-able); `ok` is False when the tool raised.
    result: Any = None
    ok: bool = True
    #: plan: the validated plan (also stored; `plan_id` names it in the plan store).
    plan: Plan | None = None
    plan_id: int | None = None
    #: final / tool_result of a search: the passages the answer rests on.
    sources: list[Source] = Field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_defaults=True)
