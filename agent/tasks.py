"""The task store: SQLite under $ANDINI_HOME, one atomic transaction per write."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from agent import storage
from andini.errors import AndiniError

TaskStatus = Literal["todo", "doing", "done"]
_EDITABLE = {"title", "detail", "status", "plan_id"}


class Task(BaseModel):
    """One task, possibly made from a plan step."""

    id: int = Field(description="Task number.")
    title: str = Field(min_length=1, description="What to do, in a line.")
    detail: str = Field("", description="More about it.")
    status: TaskStatus = Field("todo", description="todo, doing or done.")
    plan_id: int | None = Field(None, description="The plan it came from, if any.")
    created_at: str = Field(description="ISO time of creation (UTC).")
    updated_at: str = Field(description="ISO time of the last change (UTC).")


class TaskStore:
    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path else storage.default_path()

    @property
    def db(self) -> sqlite3.Connection:
        """The calling thread's connection (a store may be made in one thread and used in another)."""
        return storage.connect(self.path)

    def create(self, title: str, detail: str = "", plan_id: int | None = None) -> Task:
        if not title.strip():
            raise AndiniError("A task needs a non-empty title.")
        stamp = storage.now()
        with storage.transaction(self.db):
            task_id = storage.insert(
                self.db, "INSERT INTO tasks (title, detail, status, plan_id, created_at, updated_at) "
                "VALUES (?, ?, 'todo', ?, ?, ?)", (title.strip(), detail, plan_id, stamp, stamp))
        return self.get(task_id)

    def list(self, status: TaskStatus | None = None) -> list[Task]:
        if status is not None and status not in ("todo", "doing", "done"):
            raise AndiniError(f"Unknown task status '{status}'.", hint="use todo, doing or done")
        where, args = (" WHERE status = ?", (status,)) if status else ("", ())
        return [Task(**dict(row)) for row in self.db.execute(f"SELECT * FROM tasks{where} ORDER BY id", args)]

    def get(self, task_id: int) -> Task:
        row = self.db.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
        if row is None:
            raise AndiniError(f"No task {task_id}.", hint="list tasks to see their numbers")
        return Task(**dict(row))

    def update(self, task_id: int, **fields) -> Task:
        unknown = set(fields) - _EDITABLE
        if unknown:
            raise AndiniError(f"Cannot change {', '.join(sorted(unknown))} of a task.",
                              hint=f"editable fields: {', '.join(sorted(_EDITABLE))}")
        current = self.get(task_id)
        updated = Task(**{**current.model_dump(), **fields, "updated_at": storage.now()})  # validates
        with storage.transaction(self.db):
            self.db.execute("UPDATE tasks SET title=?, detail=?, status=?, plan_id=?, updated_at=? WHERE id=?",
                            (updated.title, updated.detail, updated.status, updated.plan_id,
                             updated.updated_at, task_id))
        return updated

    def delete(self, task_id: int) -> None:
        self.get(task_id)
        with storage.transaction(self.db):
            self.db.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
