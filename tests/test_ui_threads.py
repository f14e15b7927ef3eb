"""The chat page on the REAL agent (LangGraph loop, SQLite threads, task store, confirmation) with a
scripted chat model: plumbing between the UI and agent/, not evidence of the model's quality."""

from __future__ import annotations

from langchain_core.messages import AIMessage

from tests.agent_support import ScriptedChatModel, call
from tests.ui_support import app_test


def ui_on_real_agent(monkeypatch, *script):
    """The app with `agent.run.Agent` driven by `script`; returns (AppTest, model)."""
    import ui.app.services
    from agent.run import Agent

    model = ScriptedChatModel(script=list(script), calls=[])
    at = app_test(monkeypatch)
    monkeypatch.setattr(ui.app.services, "build_agent",
                        lambda settings, first_search=True: Agent(settings=settings, chat_model=model))
    monkeypatch.setattr(ui.app.services, "_load_local_model", lambda name, adapter: True)  # not used here
    return at.run(), model


def send(at, text: str):
    at.chat_input[0].set_value(text).run()
    assert not at.exception, at.exception
    return at


def test_confirmed_tool_runs_and_the_thread_persists(monkeypatch):
    from agent.tasks import TaskStore
    from agent.threads import list_threads

    at, _ = ui_on_real_agent(monkeypatch, call("create_task", title="buy milk"), AIMessage("Added."))
    send(at, "remind me to buy milk")
    assert [s.label for s in at.status] == ["Tool: create_task (waiting for your approval)"]
    assert TaskStore().list() == []  # nothing ran before the person said yes
    next(b for b in at.button if b.label == "Approve").click().run()
    assert not at.exception, at.exception
    assert [t.title for t in TaskStore().list()] == ["buy milk"]
    assert any(m.value == "Added." for m in at.chat_message[-1].markdown)
    assert [t.title for t in list_threads()] == ["remind me to buy milk"]
    assert at.sidebar.selectbox(key="thread_pick").value == list_threads()[0].thread_id


def test_denied_tool_never_runs(monkeypatch):
    from agent.tasks import TaskStore

    at, _ = ui_on_real_agent(monkeypatch, call("create_task", title="buy milk"), AIMessage("Not added."))
    send(at, "remind me to buy milk")
    next(b for b in at.button if b.label == "Deny").click().run()
    assert TaskStore().list() == []
    assert any(m.value == "Not added." for m in at.chat_message[-1].markdown)


def test_threads_resume_rename_and_delete(monkeypatch):
    from agent.threads import list_threads

    at, _ = ui_on_real_agent(monkeypatch, AIMessage("Hello there."), AIMessage("Second answer."))
    send(at, "first conversation")
    thread_id = list_threads()[0].thread_id
    next(b for b in at.sidebar.button if b.label == "New conversation").click().run()
    assert not at.chat_message
    send(at, "second conversation")
    assert len(list_threads()) == 2

    at.session_state["transcripts"] = {}  # forget what this session saw: reopen from the store
    at.sidebar.selectbox(key="thread_pick").select(thread_id).run()
    assert not at.exception, at.exception
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assert at.chat_message[0].markdown[0].value == "first conversation"
    assert at.chat_message[1].markdown[0].value == "Hello there."

    at.sidebar.text_input(key=f"title-{thread_id}").input("Greetings").run()
    next(b for b in at.sidebar.button if b.label == "Rename").click().run()
    assert {t.thread_id: t.title for t in list_threads()}[thread_id] == "Greetings"

    next(b for b in at.sidebar.button if b.label == "Delete").click().run()
    assert thread_id not in {t.thread_id for t in list_threads()}
    assert not at.chat_message


def test_reopened_thread_still_waiting_asks_again(monkeypatch):
    from agent.tasks import TaskStore

    at, _ = ui_on_real_agent(monkeypatch, call("create_task", title="call Ana"), AIMessage("Done."))
    send(at, "remind me to call Ana")
    thread_id = at.session_state["thread_id"]
    next(b for b in at.sidebar.button if b.label == "New conversation").click().run()
    del at.session_state["pending_confirm"]  # as after a browser reload
    at.session_state["transcripts"] = {}
    at.sidebar.selectbox(key="thread_pick").select(thread_id).run()
    next(b for b in at.button if b.label == "Approve").click().run()
    assert not at.exception, at.exception
    assert [t.title for t in TaskStore().list()] == ["call Ana"]


def test_reopened_thread_shows_its_tool_steps_sources_and_plan(monkeypatch, tmp_path):
    """A conversation read back from the store is drawn from the same events as the live one."""
    from agent.threads import list_threads
    from retrieval.ingest import ingest

    doc = tmp_path / "release.md"
    doc.write_text("# Release\n\n## Tagging\n\nTag the release with git tag, then announce it.\n")
    assert ingest([doc]).ok
    plan = {"goal": "Ship v1", "steps": [{"title": "Tag it"}, {"title": "Announce it"}]}
    at, _ = ui_on_real_agent(monkeypatch, call("search_knowledge_base", "s1", query="tag a release"),
                             call("make_plan", "p1", **plan), AIMessage("Tag it, then announce it."))
    send(at, "plan the release")
    live = _drawn(at)
    thread_id = list_threads()[0].thread_id
    next(b for b in at.sidebar.button if b.label == "New conversation").click().run()

    at.session_state["transcripts"] = {}  # as after a browser reload: only the store remembers
    at.sidebar.selectbox(key="thread_pick").select(thread_id).run()
    assert not at.exception, at.exception
    assert _drawn(at) == live
    assert live["steps"] == ["Tool: search_knowledge_base", "Tool: make_plan"]
    assert "**Plan:** Ship v1" in live["text"] and "**Sources**" in live["text"]
    assert live["sources"] == ["release.md › Release > Tagging"]
    assert any("Tag the release with git tag" in m.value for m in at.chat_message[1].expander[-1].markdown)


def _drawn(at) -> dict:
    """What the assistant's message shows: tool steps, markdown, source expanders, download buttons."""
    message = at.chat_message[1]
    return {"steps": [s.label for s in message.status],
            "text": [m.value for m in message.markdown],
            "sources": [e.label.removeprefix(":material/description: ") for e in message.expander],
            "downloads": len(message.get("download_button"))}
