"""`python tests/api_scripted_agent.py PORT`: the real API app on uvicorn, with a scripted agent in place of
the model-driven one. For plumbing tests of the confirm flow only (which call waits, what resumes it);
it is no evidence that the agent works — test_api_roundtrip.py runs the real one."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import uvicorn

from agent.events import Event
from andini.schema import ToolCall
from andini.settings import get_settings
from ui.api.runs import AgentRunner
from ui.api.server import create_app

CALL = ToolCall(name="create_task", arguments={"title": "water the plants"})


class ScriptedAgent:
    """Every turn asks to run one side-effect call; approving runs it, refusing skips it."""

    def stream(self, intent: str, thread_id: str | None = None) -> Iterator[Event]:
        yield Event(kind="token", thread_id=thread_id, text="On it.")
        yield Event(kind="tool_call", thread_id=thread_id, call=CALL, call_id="c1")
        yield Event(kind="confirm", thread_id=thread_id, call=CALL, call_id="c1")

    def pending(self, thread_id: str) -> list[dict]:
        return [{"name": CALL.name, "args": CALL.arguments}]

    def resume(self, thread_id: str, approve: bool) -> Iterator[Event]:
        if approve:
            yield Event(kind="tool_result", thread_id=thread_id, call_id="c1", result={"id": 1}, ok=True)
            yield Event(kind="final", thread_id=thread_id, text="Added the task.")
        else:
            yield Event(kind="final", thread_id=thread_id, text="Nothing was added.")


if __name__ == "__main__":
    settings = get_settings()
    app = create_app(settings, runner=AgentRunner(settings, agent=ScriptedAgent()))
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
