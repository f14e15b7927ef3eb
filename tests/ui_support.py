"""Helpers for the UI tests: a scripted agent (plumbing only: it proves the pages draw and route
events, never that the agent works) and an AppTest factory for ui/app/main.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from agent.events import Event
from andini.schema import Plan, Source, Step, ToolCall

APP = Path(__file__).resolve().parent.parent / "ui" / "app" / "main.py"


class ScriptedAgent:
    """Plays back fixed event scripts: a search turn, a plan turn, a confirmation, an error."""

    def __init__(self, docs: Path):
        self.doc = str(docs / "guide.md")
        self.calls: list[tuple] = []

    def stream(self, intent: str, thread_id: str | None = None) -> Iterator[Event]:
        self.calls.append(("stream", intent, thread_id))
        tid = thread_id or "t-1"
        if "fail" in intent:
            raise RuntimeError("model server refused the connection")
        if "down" in intent:
            yield Event(kind="error", thread_id=tid,
                        text="No TGI server at http://127.0.0.1:8080\n  fix: start one or pick Local")
            return
        if "task" in intent:
            call = ToolCall(name="create_task", arguments={"title": "Write the report"})
            yield Event(kind="tool_call", thread_id=tid, call=call, call_id="c1")
            yield Event(kind="confirm", thread_id=tid, call=call, call_id="c1")
            return
        if "plan" in intent:
            plan = Plan(goal="Ship the release", steps=[Step(title="Run the tests", detail="make test"),
                                                        Step(title="Tag the version")])
            yield Event(kind="plan", thread_id=tid, plan=plan)
            yield Event(kind="final", thread_id=tid, text="Here is a plan.")
            return
        yield from self._search_turn(intent, tid)

    def _search_turn(self, intent: str, tid: str) -> Iterator[Event]:
        source = Source(source=self.doc, heading="Guide > Install", start=0, end=20)
        yield Event(kind="tool_call", thread_id=tid, call_id="s1",
                    call=ToolCall(name="search_knowledge_base", arguments={"query": intent}))
        yield Event(kind="tool_result", thread_id=tid, call_id="s1", sources=[source],
                    result={"passages": [{**source.model_dump(), "text": "Install with make setup."}]})
        for piece in ("Run ", "`make setup`", "."):
            yield Event(kind="token", thread_id=tid, text=piece)
        yield Event(kind="final", thread_id=tid, text="Run `make setup`.", sources=[source])

    def resume(self, thread_id: str, approve: bool) -> Iterator[Event]:
        self.calls.append(("resume", thread_id, approve))
        if approve:
            yield Event(kind="tool_result", thread_id=thread_id, call_id="c1", result={"id": 1})
            yield Event(kind="final", thread_id=thread_id, text="Task created.")
        else:
            yield Event(kind="final", thread_id=thread_id, text="Fine, I did not create it.")


def app_test(monkeypatch, agent: ScriptedAgent | None = None):
    """An AppTest of ui/app/main.py with the bundled-docs ingest off and, when given, a scripted agent."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    import ui.app.services

    st.cache_resource.clear()
    st.cache_data.clear()
    monkeypatch.setattr(ui.app.services, "bundled_docs_dir", lambda: None)
    if agent is not None:
        built: list = []
        agent.settings_seen = built  # type: ignore[attr-defined]
        monkeypatch.setattr(ui.app.services, "build_agent",
                            lambda settings, first_search=True: built.append(settings) or agent)
        monkeypatch.setattr(ui.app.services, "_load_local_model", lambda model, adapter: True)
    return AppTest.from_file(str(APP), default_timeout=60)
