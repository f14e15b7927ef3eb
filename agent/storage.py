"""The agent's one SQLite file: its connections, its numbered migrations and the LangGraph checkpointer.

Tasks, plans, thread titles and the conversations' checkpoints all live in `$ANDINI_HOME/agent.db`, so one
file is backed up, moved or deleted as a whole, and deleting a thread cannot leave half of it elsewhere.

- Migrations: each runs once, in order, inside one transaction together with the row that records it, so
  a killed process leaves the file at the previous version, never half-migrated (STYLE 10, after
  simonw/llm's `migrations.py`). The checkpointer's own tables are LangGraph's (its `setup()` makes them);
  migration 005 only copies a store from before this file held them (`threads.db` beside it).
- Connections: `connect()` gives each thread one migrated connection per file, opened on first use and
  closed when the thread has ended (checked whenever another opens) or at exit. `checkpointer()` is one
  `SqliteSaver` per process and file, on a connection of its own (the saver serializes it with a lock).
"""

from __future__ import annotations

import atexit
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from langgraph.checkpoint.sqlite import SqliteSaver

MIGRATIONS: list[tuple[str, Callable[[sqlite3.Connection], None]]] = []
#: The file conversations were kept in before they moved into agent.db (read once by migration 005).
LEGACY_THREADS_FILE = "threads.db"


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


@migration
def adopt_legacy_checkpoints(db: sqlite3.Connection) -> None:
    """Copy the checkpoints of an older `threads.db` beside this file into it (the old file stays as it
    was). Its tables are created from the old file's own DDL, which LangGraph wrote, so the schema stays
    LangGraph's; the saver's `setup()` adds any column a newer LangGraph wants."""
    main_file = next(row[2] for row in db.execute("PRAGMA database_list") if row[1] == "main")
    legacy = Path(main_file).with_name(LEGACY_THREADS_FILE) if main_file else None
    if legacy is None or not legacy.is_file():
        return
    old = sqlite3.connect(f"file:{legacy}?mode=ro", uri=True)
    try:
        tables = old.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' "
                             "AND name IN ('checkpoints', 'writes')").fetchall()
        for name, ddl in tables:
            db.execute(ddl)
            columns = [row[1] for row in old.execute(f"PRAGMA table_info({name})")]
            marks = ", ".join("?" * len(columns))
            db.executemany(f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})",
                           old.execute(f"SELECT {', '.join(columns)} FROM {name}"))
    finally:
        old.close()



@migration
def create_plan_runs(db: sqlite3.Connection) -> None:
    """A plan's runs (agent.executor): where each stopped, and what each step returned. `next_step` is the
    0-based index of the first step not done, where a re-run continues."""
    db.execute("""CREATE TABLE plan_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        plan_id INTEGER NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
        status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'needs_confirmation', 'refused')),
        next_step INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL)""")
    db.execute("CREATE INDEX plan_runs_plan ON plan_runs (plan_id)")
    db.execute("""CREATE TABLE plan_run_steps (
        run_id INTEGER NOT NULL REFERENCES plan_runs (id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('done', 'manual', 'failed', 'needs_confirmation', 'refused')),
        call TEXT,
        result TEXT,
        error TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (run_id, step))""")

def default_path() -> Path:
    from andini.settings import get_settings

    return get_settings().path("agent.db")


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


def open_db(path: Path | str | None = None) -> sqlite3.Connection:
    """A new migrated connection that the caller closes. Rows read as sqlite3.Row; autocommit, so writes
    group themselves with `transaction(db)`. Most code wants the shared `connect()` instead."""
    # check_same_thread off only so that close_all() may close it from another thread; it is used by one.
    db = sqlite3.connect(str(path or default_path()), timeout=30, isolation_level=None, check_same_thread=False)
    try:
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        migrate(db)
    except BaseException:
        db.close()
        raise
    return db


_lock = threading.Lock()
#: (process id, thread, file) -> that thread's connection; a forked child opens its own.
_connections: dict[tuple[int, threading.Thread, str], sqlite3.Connection] = {}
_savers: dict[tuple[int, str], SqliteSaver] = {}


def connect(path: Path | str | None = None) -> sqlite3.Connection:
    """This thread's migrated connection to the file (the default: `$ANDINI_HOME/agent.db`)."""
    key = (os.getpid(), threading.current_thread(), str(Path(path or default_path()).resolve()))
    with _lock:
        db = _connections.get(key)
    if db is not None:
        return db
    db = open_db(key[2])
    with _lock:
        _connections[key] = db
        ended = [k for k in _connections if not k[1].is_alive() or k[0] != key[0]]
        for k in ended:
            if k[0] == key[0]:
                _connections[k].close()
            del _connections[k]
    return db


def checkpointer(path: Path | str | None = None) -> SqliteSaver:
    """The process's LangGraph checkpointer on the file, where every conversation's messages are kept."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    connect(path)  # migrations first: 005 must copy an older store before the saver makes empty tables
    key = (os.getpid(), str(Path(path or default_path()).resolve()))
    with _lock:
        if key not in _savers:
            conn = sqlite3.connect(key[1], timeout=30, check_same_thread=False)
            _savers[key] = SqliteSaver(conn)
        return _savers[key]


@atexit.register
def close_all() -> None:
    """Close every connection this process opened (at exit, and between tests that change ANDINI_HOME)."""
    with _lock:
        pid = os.getpid()
        for (owner, *_), db in list(_connections.items()):
            if owner == pid:
                db.close()
        for (owner, _), saver in list(_savers.items()):
            if owner == pid:
                saver.conn.close()
        _connections.clear()
        _savers.clear()


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def insert(db: sqlite3.Connection, sql: str, args: Sequence[object]) -> int:
    """Run one INSERT and return the new row's id (`lastrowid`, which sqlite3 leaves None only when
    the statement inserted nothing)."""
    row_id = db.execute(sql, args).lastrowid
    if row_id is None:
        raise RuntimeError(f"no row inserted by {sql.split('(')[0].strip()!r}")
    return row_id


class transaction:
    """`with transaction(db):` runs the block as one atomic write (rolled back on any error)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
