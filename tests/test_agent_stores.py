"""The agent's one SQLite file on real SQLite: migrations (an older threads.db adopted), connections per
thread, task and plan stores (validation, export, atomic writes)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from agent import storage
from agent.plans import PlanStore
from agent.tasks import TaskStore
from andini.errors import AndiniError
from andini.schema import Plan

PLAN = {"goal": "Move house", "steps": [{"title": "Book a van", "detail": "for Saturday"},
                                        {"title": "Pack", "sources": ["checklist.md"]}],
        "assumptions": ["two people help"]}


def test_tasks_crud(andini_home):
    store = TaskStore()
    task = store.create("Book a van", "for Saturday")
    assert (task.id, task.status, task.plan_id) == (1, "todo", None)
    assert (andini_home / "agent.db").exists()
    doing = store.update(1, status="doing")
    assert doing.status == "doing" and store.get(1).status == "doing"
    assert [t.id for t in store.list("doing")] == [1] and store.list("done") == []
    with pytest.raises(AndiniError, match="No task 7"):
        store.update(7, status="done")
    with pytest.raises(AndiniError, match="Cannot change id"):
        store.update(1, id=5)
    with pytest.raises(ValueError):
        store.update(1, status="finished")
    assert store.get(1).status == "doing"  # a rejected update changed nothing
    with pytest.raises(AndiniError):
        store.create("   ")


def test_migrations_are_numbered_recorded_and_run_once(tmp_path):
    path = tmp_path / "a.db"
    db = storage.open_db(path)
    names = [r[0] for r in db.execute("SELECT name FROM _migrations ORDER BY name")]
    assert names == [name for name, _ in storage.MIGRATIONS]
    assert names[0].startswith("001_")
    assert storage.migrate(db) == []  # nothing pending the second time
    db.close()
    TaskStore(path).create("kept")
    assert TaskStore(path).list()[0].title == "kept"  # reopening does not re-run migrations


def test_failed_migration_leaves_the_previous_version(tmp_path, monkeypatch):
    path = tmp_path / "a.db"
    storage.open_db(path).close()

    def broken(db):
        db.execute("CREATE TABLE half (x)")
        raise RuntimeError("boom")

    monkeypatch.setattr(storage, "MIGRATIONS", [*storage.MIGRATIONS, ("999_broken", broken)])
    with pytest.raises(RuntimeError):
        storage.open_db(path)
    import sqlite3

    raw = sqlite3.connect(path)
    assert raw.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchone() is None
    assert raw.execute("SELECT 1 FROM _migrations WHERE name = '999_broken'").fetchone() is None


def test_killed_process_leaves_no_half_written_task(tmp_path):
    """A writer killed inside its transaction leaves the store as it was."""
    path = tmp_path / "a.db"
    TaskStore(path).create("before")
    code = f"""
import os
from agent import storage
db = storage.open_db({str(path)!r})
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT INTO tasks (title, detail, status, created_at, updated_at) VALUES ('half', '', 'todo', 'x', 'x')")
os._exit(9)
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=str(Path(__file__).parent.parent))
    assert result.returncode == 9
    assert [t.title for t in TaskStore(path).list()] == ["before"]


def test_plans_save_list_export_and_tasks():
    plans = PlanStore()
    plan_id = plans.save(PLAN, thread_id="t1")
    assert plans.get(plan_id) == Plan.model_validate(PLAN)
    assert [(p.id, p.goal, p.steps, p.thread_id) for p in plans.list()] == [(1, "Move house", 2, "t1")]
    assert Plan.model_validate(json.loads(plans.export(plan_id, "json"))) == plans.get(plan_id)
    assert Plan.model_validate(yaml.safe_load(plans.export(plan_id, "yaml"))) == plans.get(plan_id)
    with pytest.raises(AndiniError, match="Unknown export format"):
        plans.export(plan_id, "xml")
    tasks = plans.to_tasks(plan_id)
    assert [(t.title, t.detail, t.plan_id) for t in tasks] == [("Book a van", "for Saturday", 1), ("Pack", "", 1)]


def test_invalid_plan_is_refused_and_nothing_stored():
    plans = PlanStore()
    with pytest.raises(AndiniError, match="steps"):
        plans.save({"goal": "x", "steps": []})
    with pytest.raises(AndiniError, match="No plan 3"):
        plans.get(3)
    assert plans.list() == []


def _legacy_threads_db(home: Path, thread_id: str) -> None:
    """A threads.db as andini kept conversations before they moved into agent.db: written by LangGraph's
    own SqliteSaver, with one checkpoint holding a question and its answer."""
    import sqlite3

    from langchain_core.messages import AIMessage, HumanMessage
    from langgraph.checkpoint.base import empty_checkpoint
    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(home / "threads.db", check_same_thread=False)
    saver = SqliteSaver(conn)
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"messages": [HumanMessage("Where is the van?", id="m1"),
                                                 AIMessage("In the garage.", id="m2")]}
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    saver.put(config, checkpoint, {"source": "loop", "step": 1}, {})
    conn.close()


def test_an_older_threads_db_is_adopted_not_lost(andini_home):
    from agent import threads

    _legacy_threads_db(andini_home, "old-thread")
    before = (andini_home / "threads.db").read_bytes()
    names = [name for name, _ in storage.MIGRATIONS]
    assert "005_adopt_legacy_checkpoints" in names
    messages = threads.history("old-thread")
    assert [(m.role, m.content) for m in messages] == [("user", "Where is the van?"), ("assistant", "In the garage.")]
    assert (andini_home / "threads.db").read_bytes() == before  # the old file is left as it was
    # Deleting the thread now removes its checkpoints from the one file.
    storage.connect().execute("INSERT INTO threads VALUES ('old-thread', 'Van', 'x', 'x')")
    threads.delete_thread("old-thread")
    assert threads.history("old-thread") == []
    raw = storage.open_db()
    assert raw.execute("SELECT count(*) FROM checkpoints").fetchone()[0] == 0
    raw.close()


def test_one_connection_per_thread_closed_when_the_thread_ends(tmp_path):
    path = tmp_path / "a.db"
    assert storage.connect(path) is storage.connect(path)  # opened once for this thread
    theirs: list = []
    worker = threading.Thread(target=lambda: theirs.append(storage.connect(path)))
    worker.start()
    worker.join()
    assert theirs[0] is not storage.connect(path)
    storage.connect(tmp_path / "b.db")  # opening another prunes the ended thread's connection
    with pytest.raises(Exception, match="closed"):
        theirs[0].execute("SELECT 1")
    assert storage.checkpointer(path) is storage.checkpointer(path)
    storage.close_all()
    with pytest.raises(Exception, match="closed"):
        theirs[0].execute("SELECT 1")
