"""Agent turns for the API: one event stream per request, folded into a `TurnResult` or sent as SSE.

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
        from agent.backends import get_backend

        self._slots = threading.BoundedSemaphore(get_backend(settings.backend, settings).max_concurrent_turns)

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
        from agent.turns import waiting_calls

        return waiting_calls(self.agent().pending(thread_id))

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

