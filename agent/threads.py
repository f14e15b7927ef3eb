"""Conversation threads: titles in the `threads` table, messages in the LangGraph checkpointer, both in
the agent's one SQLite file (`agent.storage`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from agent import storage
from andini.errors import AndiniError
from andini.schema import Message

if TYPE_CHECKING:
    from agent.turns import Turn

TITLE_CHARS = 80


class ThreadInfo(BaseModel):
    thread_id: str = Field(description="The thread's id.")
    title: str = Field(description="Its title (the first intent, unless renamed).")
    updated_at: str = Field(description="ISO time of the last turn (UTC).")


def touch(thread_id: str, title: str = "", path: Path | None = None) -> None:
    """Record a turn on the thread; the first intent becomes its title."""
    stamp = storage.now()
    db = storage.connect(path)
    with storage.transaction(db):
        db.execute("INSERT INTO threads (thread_id, title, created_at, updated_at) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT(thread_id) DO UPDATE SET updated_at = excluded.updated_at",
                   (thread_id, " ".join(title.split())[:TITLE_CHARS], stamp, stamp))


def list_threads() -> list[ThreadInfo]:
    rows = storage.connect().execute("SELECT thread_id, title, updated_at FROM threads ORDER BY updated_at DESC")
    return [ThreadInfo(**dict(r)) for r in rows]


def _require(db: sqlite3.Connection, thread_id: str) -> None:
    if db.execute("SELECT 1 FROM threads WHERE thread_id = ?", (thread_id,)).fetchone() is None:
        raise AndiniError(f"No thread {thread_id}.", hint="list threads to see their ids")


def rename_thread(thread_id: str, title: str) -> None:
    db = storage.connect()
    _require(db, thread_id)
    with storage.transaction(db):
        db.execute("UPDATE threads SET title = ? WHERE thread_id = ?", (title.strip()[:TITLE_CHARS], thread_id))


def delete_thread(thread_id: str) -> None:
    """Forget the thread: its title and every checkpoint of it."""
    db = storage.connect()
    _require(db, thread_id)
    storage.checkpointer().delete_thread(thread_id)
    with storage.transaction(db):
        db.execute("DELETE FROM threads WHERE thread_id = ?", (thread_id,))


def _messages(thread_id: str) -> list[Any]:
    """The thread's LangChain messages as last checkpointed (empty for an unknown thread)."""
    saved = storage.checkpointer().get_tuple({"configurable": {"thread_id": thread_id}})
    return [] if saved is None else list(saved.checkpoint.get("channel_values", {}).get("messages", []))


def history(thread_id: str) -> list[Message]:
    """The thread's messages, oldest first (system prompt excluded)."""
    from agent.messages import from_langchain

    # The checkpoint holds no system prompt today; filtering keeps this true if that changes.
    return [m for m in from_langchain(_messages(thread_id)) if m.role != "system"]


def turns(thread_id: str) -> list[Turn]:
    """The thread's turns as the events they streamed live: what a reopened conversation shows."""
    from agent.turns import replay

    return replay(_messages(thread_id), thread_id)
