"""One agent turn, from LangGraph's messages to events to its result.

`TurnEvents` turns the messages of a turn into `Event`s; the live stream (`Agent.stream`) and a stored
thread read back (`replay`) both go through it, so a reloaded conversation has the same tool steps,
sources and plan as the one just watched. `TurnResult.fold` folds any turn's events into the one result
the CLI (`andini run --json`), the HTTP API and the chat page report.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from agent.events import Event, EventKind
from agent.messages import text_of
from andini.schema import MAKE_PLAN, Plan, Source, ToolCall


class ToolCallRecord(BaseModel):
    """A tool call the agent made during the turn, with its result once it ran."""

    call: ToolCall
    call_id: str | None = None
    ok: bool | None = Field(None, description="False when the tool raised; null when it has not run.")
    result: Any = Field(None, description="The tool's output (JSON).")


class TurnResult(BaseModel):
    """Everything one agent turn produced."""

    thread_id: str | None = Field(description="Conversation id: pass it back to continue or to confirm.")
    status: Literal["done", "needs_confirmation", "error"]
    answer: str = Field("", description="The final answer text.")
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    plan: Plan | None = Field(None, description="The validated plan, when the turn produced one.")
    plan_id: int | None = Field(None, description="Id of the plan in the plan store.")
    sources: list[Source] = Field(default_factory=list, description="Passages the answer rests on.")
    pending: ToolCall | None = Field(None, description="The side-effect call waiting for confirmation.")
    error: str | None = Field(None, description="What went wrong, when status is 'error'.")

    @classmethod
    def fold(cls, events: Iterable[Event], thread_id: str | None = None,
             waiting: Sequence[ToolCall] = ()) -> TurnResult:
        """The turn's events folded into one result. `waiting`: the calls a resumed turn stopped at;
        their results arrive without a tool_call event."""
        result = cls(thread_id=thread_id, status="done", tool_calls=[ToolCallRecord(call=c) for c in waiting])
        by_call_id: dict[str, ToolCallRecord] = {}
        for event in events:
            result.thread_id = event.thread_id or result.thread_id
            if event.kind == "tool_call" and event.call is not None:
                record = ToolCallRecord(call=event.call, call_id=event.call_id)
                result.tool_calls.append(record)
                if event.call_id:
                    by_call_id[event.call_id] = record
            elif event.kind == "tool_result":
                answered = by_call_id.get(event.call_id or "") or _first_open(result.tool_calls)
                if answered is not None:
                    answered.ok, answered.result = event.ok, event.result
                result._cite(event.sources)
            elif event.kind == "plan":
                result.plan, result.plan_id = event.plan, event.plan_id
            elif event.kind == "final":
                result.status, result.answer, result.pending = "done", event.text, None
                result._cite(event.sources)
            elif event.kind == "error":
                result.status, result.error = "error", event.text
            elif event.kind == "confirm":
                result.status, result.pending = "needs_confirmation", event.call
        return result

    def _cite(self, sources: Iterable[Source]) -> None:
        self.sources.extend(s for s in sources if s not in self.sources)


def _first_open(records: list[ToolCallRecord]) -> ToolCallRecord | None:
    return next((r for r in records if r.ok is None), None)


def waiting_calls(requests: Iterable[dict[str, Any]]) -> list[ToolCall]:
    """The calls of LangGraph's human-in-the-loop action requests (`Agent.pending`)."""
    return [ToolCall(name=r["name"], arguments=r.get("args") or {}) for r in requests]


class TurnEvents:
    """Turns LangGraph stream items (or stored messages) into Events, in order, once each."""

    def __init__(self, thread_id: str):
        self.thread_id = thread_id
        self.seen: set[str] = set()
        self.sources: list[Source] = []
        self.answer = ""
        self.plan_note = ""
        self.confirm: Event | None = None

    def event(self, kind: EventKind, **fields: Any) -> Event:
        return Event(kind=kind, thread_id=self.thread_id, **fields)

    def on_messages(self, data: Any) -> Iterator[Event]:
        """A `messages` stream item: streamed text becomes token events."""
        from langchain_core.messages import AIMessageChunk

        chunk, _meta = data
        if isinstance(chunk, AIMessageChunk) and isinstance(chunk.content, str) and chunk.content:
            yield self.event("token", text=chunk.content)

    def on_update(self, update: dict[str, Any]) -> Iterator[Event]:
        """An `updates` stream item: new messages of a node, or the interrupt asking for a decision."""
        for node, value in update.items():
            if node == "__interrupt__":
                self.confirm = self._confirm(value)
                return
            for message in (value or {}).get("messages", []) if isinstance(value, dict) else []:
                yield from self.message(message)

    def message(self, message: Any) -> Iterator[Event]:
        """The events of one LangChain message (each message once, however often it is sent)."""
        if getattr(message, "id", None) in self.seen:
            return
        self.seen.add(message.id)
        kind = getattr(message, "type", "")
        if kind == "ai":
            for call in message.tool_calls:
                yield self.event("tool_call", call=ToolCall(name=call["name"], arguments=call["args"]),
                                 call_id=call["id"])
            if not message.tool_calls and isinstance(message.content, str):
                self.answer = message.content
        elif kind == "tool":
            yield from self._tool_result(message)

    def _tool_result(self, message: Any) -> Iterator[Event]:
        from agent.tools import SEARCH, sources_of

        ok = getattr(message, "status", "success") != "error"
        result = _maybe_json(message.content)
        sources = sources_of(result) if message.name == SEARCH and ok else []
        self.sources.extend(s for s in sources if s not in self.sources)
        yield self.event("tool_result", call_id=message.tool_call_id, result=result, ok=ok, sources=sources,
                         text=message.name or "")
        if message.name == MAKE_PLAN and ok and isinstance(result, dict) and "plan" in result:
            plan = Plan.model_validate(result["plan"])
            self.plan_note = f"Plan #{result['plan_id']} saved: {plan.goal} ({len(plan.steps)} steps)."
            yield self.event("plan", plan=plan, plan_id=result["plan_id"])

    def _confirm(self, interrupts: Any) -> Event:
        calls = waiting_calls(r for it in interrupts for r in (it.value or {}).get("action_requests", []))
        more = f" (and {len(calls) - 1} more)" if len(calls) > 1 else ""
        return self.event("confirm", call=calls[0], text=f"Run {calls[0].name}{more}? It changes your data.")

    def final(self) -> Event:
        text = self.answer or self.plan_note or "(no answer)"
        return self.event("final", text=text, sources=self.sources)


class Turn(BaseModel):
    """A stored turn read back: the person's words and the events the agent's messages make."""

    intent: str
    events: list[Event] = Field(default_factory=list)


def replay(messages: Sequence[Any], thread_id: str) -> list[Turn]:
    """A thread's stored LangChain messages as turns of the events a live turn would have streamed
    (tool calls, results, sources, plans, the final answer). A turn that stopped at a confirmation or an
    error has no final event; the text an AI message gave beside its tool calls comes back as a token."""
    turns: list[Turn] = []
    folder: TurnEvents | None = None
    for message in messages:
        kind = getattr(message, "type", "")
        if kind == "human":
            _finish(turns, folder)
            folder = TurnEvents(thread_id)
            turns.append(Turn(intent=text_of(message.content)))
        elif folder is not None and kind in ("ai", "tool"):
            if kind == "ai" and message.tool_calls and text_of(message.content):
                turns[-1].events.append(folder.event("token", text=text_of(message.content)))
            turns[-1].events.extend(folder.message(message))
    _finish(turns, folder)
    return turns


def _finish(turns: list[Turn], folder: TurnEvents | None) -> None:
    """Close the last turn with its final event when it reached one (an answer, or a saved plan)."""
    if folder is None or not turns:
        return
    events = turns[-1].events
    ran = {e.call_id for e in events if e.kind == "tool_result"}
    waiting = any(e.kind == "tool_call" and e.call_id not in ran for e in events)
    if not waiting and (folder.answer or folder.plan_note):
        events.append(folder.final())


def _maybe_json(content: Any) -> Any:
    if isinstance(content, str):
        try:
            return json.loads(content)
        except ValueError:
            return content
    return content
