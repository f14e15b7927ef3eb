"""Chat: ask, watch the agent search and call tools, and get an answer with its sources or a plan.

The page keeps each conversation as turns of events (`agent.events.Event`) in the session, draws them
with `ui.app.render`, and asks the agent for everything else: streaming a turn, resuming after a
confirmation, and the thread list (`agent.threads`), which outlives the session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import streamlit as st

from agent.events import Event
from agent.turns import TurnResult, waiting_calls
from andini.settings import get_settings
from ui.app import render, services

EXAMPLES = ("How do I ingest a folder of documents?",
            "Plan the steps to fine-tune a small model on my own tool-calling data.",
            "Which model backends can andini use?")


def transcripts() -> dict[str, list[dict[str, Any]]]:
    """Turns by thread id ('' for a conversation not started yet); a turn is a user text or events."""
    return st.session_state.setdefault("transcripts", {})


def transcript(thread_id: str | None) -> list[dict[str, Any]]:
    key = thread_id or ""
    if key not in transcripts():
        transcripts()[key] = turns_from_history(thread_id) if thread_id else []
        if thread_id:
            restore_pending(thread_id)
    return transcripts()[key]


def restore_pending(thread_id: str) -> None:
    """A reopened thread that stopped at a confirmation shows its Approve / Deny buttons again."""
    try:
        waiting = waiting_calls(services.get_agent().pending(thread_id))
    except Exception:  # noqa: BLE001 - without the agent the thread still reads; the turn will say why
        return
    if waiting:
        st.session_state["pending_confirm"] = {"thread_id": thread_id, "call": waiting[0]}


def turns_from_history(thread_id: str) -> list[dict[str, Any]]:
    """A stored thread as turns: the person's words, and the events its turn streamed (replayed by the
    agent through the same path as a live turn, so tool steps, sources and plans come back)."""
    try:
        from agent.threads import turns

        stored = turns(thread_id)
    except Exception as exc:  # noqa: BLE001 - the page shows why the thread could not be loaded
        return [{"role": "assistant", "events": [Event(kind="error", text=services.describe_error(exc))]}]
    out: list[dict[str, Any]] = []
    for turn in stored:
        out.append({"role": "user", "text": turn.intent})
        if turn.events:
            out.append({"role": "assistant", "events": turn.events})
    return out


# --- conversations in the sidebar -------------------------------------------------------------------

def _open_thread(thread_id: str | None) -> None:
    st.session_state["thread_id"] = thread_id


def _picked() -> None:
    _open_thread(st.session_state["thread_pick"])


def _rename(thread_id: str) -> None:
    from agent.threads import rename_thread

    title = st.session_state.get(f"title-{thread_id}", "").strip()
    if title:
        rename_thread(thread_id, title)


def _delete(thread_id: str) -> None:
    from agent.threads import delete_thread

    delete_thread(thread_id)
    transcripts().pop(thread_id, None)
    if (st.session_state.get("pending_confirm") or {}).get("thread_id") == thread_id:
        st.session_state.pop("pending_confirm")
    _open_thread(None)


def conversations_sidebar() -> None:
    with st.sidebar:
        st.subheader("Conversations")
        st.button("New conversation", icon=":material/add:", on_click=_open_thread, args=(None,),
                  width="stretch")
        try:
            from agent.threads import list_threads

            threads = list_threads()
        except Exception as exc:  # noqa: BLE001 - the list is optional; the chat still works
            st.caption(f"Saved conversations unavailable: {services.describe_error(exc)}")
            return
        if not threads:
            st.caption("Your conversations will be listed here.")
            return
        titles = {t.thread_id: t.title or "Untitled" for t in threads}
        current = st.session_state.get("thread_id")
        st.session_state["thread_pick"] = current if current in titles else None
        st.selectbox("Resume", list(titles), format_func=lambda tid: titles[tid], key="thread_pick",
                     on_change=_picked, placeholder="Pick a conversation")
        if current in titles:
            with st.expander("Rename or delete"):
                st.text_input("Title", value=titles[current], key=f"title-{current}")
                left, right = st.columns(2)
                left.button("Rename", on_click=_rename, args=(current,))
                right.button("Delete", on_click=_delete, args=(current,), type="primary")


# --- one turn ---------------------------------------------------------------------------------------

def run_turn(start: Callable[[Any], Iterator[Event]], thread_id: str | None, key: str) -> None:
    """Stream one agent turn into an assistant message and record it under its thread."""
    seen: list[Event] = []
    with st.chat_message("assistant"):
        waiting = st.empty()
        try:
            agent = services.get_agent()
            waiting.caption("Thinking…")
            render.render_events(_until_first(start(agent), waiting), key, live=True, seen=seen)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a readable error in the chat
            error = Event(kind="error", text=services.describe_error(exc))
            seen.append(error)
            waiting.empty()
            render.show_error(error.text)
            if get_settings().debug:
                st.exception(exc)
    result = TurnResult.fold(seen, thread_id)
    new_id = result.thread_id
    turns = transcript(thread_id)
    turns.append({"role": "assistant", "events": seen})
    if new_id and new_id != thread_id:
        transcripts()[new_id] = transcripts().pop(thread_id or "", turns)
    st.session_state["thread_id"] = new_id
    if result.status == "needs_confirmation" and new_id:
        st.session_state["pending_confirm"] = {"thread_id": new_id, "call": result.pending}
    st.rerun()


def _until_first(events: Iterator[Event], waiting: Any) -> Iterator[Event]:
    """The events, with the 'Thinking…' line removed when the first one arrives."""
    for event in events:
        waiting.empty()
        yield event
    waiting.empty()


def _answer(approve: bool) -> None:
    pending = st.session_state.pop("pending_confirm", None)
    if pending:
        st.session_state["resume"] = {"thread_id": pending["thread_id"], "approve": approve,
                                      "name": pending["call"].name if pending["call"] else "the tool"}


def confirmation_buttons() -> None:
    pending = st.session_state.get("pending_confirm")
    if not pending or pending["thread_id"] != st.session_state.get("thread_id"):
        return
    left, right, _ = st.columns([1, 1, 4])
    left.button("Approve", type="primary", icon=":material/check:", on_click=_answer, args=(True,))
    right.button("Deny", icon=":material/close:", on_click=_answer, args=(False,))


def draw_transcript(thread_id: str | None) -> None:
    for i, turn in enumerate(transcript(thread_id)):
        with st.chat_message(turn["role"]):
            if turn["role"] == "user":
                st.markdown(turn["text"])
            else:
                render.render_events(turn["events"], key=f"{thread_id}-{i}")


def main() -> None:
    conversations_sidebar()
    thread_id = st.session_state.get("thread_id")
    if not transcript(thread_id):
        st.markdown("#### Ask about your documents, or describe what you want to get done")
        st.caption("Try: " + " · ".join(f"*{e}*" for e in EXAMPLES))
    draw_transcript(thread_id)
    confirmation_buttons()
    prompt = st.chat_input("Ask a question or describe a goal")
    resume = st.session_state.pop("resume", None)
    key = f"{thread_id}-{len(transcript(thread_id))}"
    if resume:
        verdict = "Approved" if resume["approve"] else "Denied"
        transcript(resume["thread_id"]).append({"role": "user", "text": f"{verdict}: run {resume['name']}"})
        with st.chat_message("user"):
            st.markdown(f"{verdict}: run {resume['name']}")
        run_turn(lambda agent: agent.resume(resume["thread_id"], resume["approve"]), resume["thread_id"], key)
    elif prompt:
        st.session_state.pop("pending_confirm", None)  # a new request supersedes an unanswered one
        transcript(thread_id).append({"role": "user", "text": prompt})
        with st.chat_message("user"):
            st.markdown(prompt)
        run_turn(lambda agent: agent.stream(prompt, thread_id=thread_id), thread_id, key)


main()
