"""The agent's SQLite file (tasks, plans, thread titles) and its numbered, recorded migrations.

Every migration runs once, in order, inside one transaction together with the row that records it, so a
killed process leaves the file at the previous version, never half-migrated (STYLE 10, after simonw/llm's
`migrations.py`). Writes elsewhere use `with conn:` transactions for the same reason.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

MIGRATIONS: list[tuple[str, Callable[[sqlite3.Connection], None]]] = []


def migration(fn: Callable[[sqlite3.Connection], None]) -> Callable[[sqlite3.Connection], None]:
    MIGRATIONS.append((f"{len(MIGRATIONS) + 1:03d}_{fn.__name__}", fn))
    return fn


@migration
def create_tasks(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE tasks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        title TEXT NOT NULL CHECK (length(title) > 0),
        detail TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'todo' CHECK (status IN ('todo', 'doing', 'done')),
        plan_id INTEGER,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL)""")


@migration
def create_plans(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE plans (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        goal TEXT NOT NULL,
        body TEXT NOT NULL,
        thread_id TEXT,
        created_at TEXT NOT NULL)""")


@migration
def create_threads(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE threads (
        thread_id TEXT PRIMARY KEY,
        title TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL)""")


@migration
def index_tasks_by_status(db: sqlite3.Connection) -> None:
    db.execute("CREATE INDEX tasks_status ON tasks (status)")


def default_path() -> Path:
    from andini.settings import get_settings

    return get_settings().path("agent.db")


def connect(path: Path | str | None = None) -> sqlite3.Connection:
    """An open, migrated connection. Rows read as sqlite3.Row."""
    # check_same_thread off: LangGraph runs tools in worker threads; each write is its own transaction.
    db = sqlite3.connect(str(path or default_path()), timeout=30, isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA foreign_keys=ON")
    migrate(db)
    return db


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply pending migrations; returns their names."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
    applied = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                db.execute("ROLLBACK")  # another process applied it meanwhile
                continue
            fn(db)
            db.execute("INSERT INTO _migrations VALUES (?, datetime('now'))", (name,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


def now() -> str:
    from datetime import datetime

    return datetime.now(UTC).isoformat(timespec="seconds")


class transaction:
    """`with transaction(db):` runs the block as one atomic write (rolled back on any error)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
