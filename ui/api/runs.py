"""Agent turns for the API: one event stream per request, folded into a `RunResult` or sent as SSE.

The agent is built once per server process (its model stays loaded). Turns on the in-process `local`
backend run one at a time: two CPU generations at once only slow each other down, and the model is
shared. Remote backends (TGI, OpenAI-compatible) batch on their side, so several turns may wait on them.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from andini.errors import AndiniError
from andini.schema import ToolCall
from ui.api.models import RunResult, ToolCallRecord

if TYPE_CHECKING:
    from agent.events import Event
    from andini.settings import Settings

#: A turn that keeps asking for confirmations is cut off after this many, so a request always ends.
MAX_CONFIRMATIONS = 8


class AgentRunner:
    """Owns the process's agent and how many turns may run at once."""

    def __init__(self, settings: Settings, agent=None):
        self.settings = settings
        self._agent = agent  # built on first use unless given (a scripted agent, for plumbing tests)
        self._build_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(1 if settings.backend == "local" else 8)

    def agent(self):
        with self._build_lock:
            if self._agent is None:
                from agent.run import Agent

                # The API's rule, whatever ANDINI_CONFIRM_SIDE_EFFECTS says: side effects wait for `confirm`.
                self._agent = Agent(settings=self.settings, confirm=True)
            return self._agent

    def turn(self, intent: str, thread_id: str | None, confirm: bool) -> Iterator[Event]:
        """The events of one turn. With `confirm`, side-effect calls are approved as they come."""
        thread_id = thread_id or uuid.uuid4().hex
        with self._slots:
            yield from self._approving(self.agent().stream(intent, thread_id=thread_id), thread_id, confirm)

    def pending(self, thread_id: str) -> list[ToolCall]:
        """The calls this thread is waiting on, so a resumed run can report them with their results."""
        requests = self.agent().pending(thread_id)
        return [ToolCall(name=r["name"], arguments=r.get("args") or {}) for r in requests]

    def resume(self, thread_id: str, approve: bool) -> Iterator[Event]:
        """The rest of a turn that stopped at a `confirm` event, after the person's yes or no."""
        with self._slots:
            yield from self._approving(self.agent().resume(thread_id, approve=approve), thread_id, False)

    def _approving(self, events: Iterable[Event], thread_id: str, confirm: bool) -> Iterator[Event]:
        for _ in range(MAX_CONFIRMATIONS + 1):
            waiting = False
            for event in events:
                yield event
                waiting = event.kind == "confirm"
            if not (waiting and confirm):
                return
            events = self.agent().resume(thread_id, approve=True)
        from agent.events import Event

        yield Event(kind="error", thread_id=thread_id,
                    text=f"Stopped after {MAX_CONFIRMATIONS} confirmed side-effect calls in one turn.")


def fold(events: Iterable[Event], thread_id: str | None = None, waiting: list[ToolCall] | None = None) -> RunResult:
    """The run as one JSON object: answer, tool calls with results, plan, sources, pending call.
    `waiting`: calls a resumed turn was stopped at; their results arrive without a tool_call event."""
    result = RunResult(thread_id=thread_id, status="done",
                       tool_calls=[ToolCallRecord(call=call) for call in waiting or []])
    by_call_id: dict[str, ToolCallRecord] = {}
    for event in events:
        result.thread_id = event.thread_id or result.thread_id
        if event.kind == "tool_call" and event.call is not None:
            record = ToolCallRecord(call=event.call, call_id=event.call_id)
            result.tool_calls.append(record)
            if event.call_id:
                by_call_id[event.call_id] = record
        elif event.kind == "tool_result":
            record = by_call_id.get(event.call_id or "") or _first_open(result.tool_calls)
            if record is not None:
                record.ok, record.result = event.ok, event.result
            result.sources.extend(s for s in event.sources if s not in result.sources)
        elif event.kind == "plan":
            result.plan, result.plan_id = event.plan, event.plan_id
        elif event.kind == "final":
            result.status, result.answer, result.pending = "done", event.text, None
            result.sources.extend(s for s in event.sources if s not in result.sources)
        elif event.kind == "error":
            result.status, result.error = "error", event.text
        elif event.kind == "confirm":
            result.status, result.pending = "needs_confirmation", event.call
    return result


def sse_messages(events: Iterable[Event]) -> Iterator[dict[str, str]]:
    """Server-sent events, one per agent event. The headers are sent by now, so a failure inside the
    turn becomes a last `error` event instead of a broken stream."""
    import json

    from agent.events import Event

    thread_id = None
    try:
        for event in events:
            thread_id = event.thread_id or thread_id
            yield {"event": event.kind, "data": json.dumps(event.to_json(), ensure_ascii=False)}
    except Exception as exc:  # reported to the client, who can no longer get a status code
        text = str(exc) if isinstance(exc, AndiniError) else f"{type(exc).__name__}: {exc}"
        error = Event(kind="error", thread_id=thread_id, text=text)
        yield {"event": "error", "data": json.dumps(error.to_json(), ensure_ascii=False)}


def _first_open(records: list[ToolCallRecord]) -> ToolCallRecord | None:
    return next((r for r in records if r.ok is None), None)
