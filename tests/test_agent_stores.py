"""Task and plan stores on real SQLite: migrations, validation, export, atomic writes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from agent import db as agent_db
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
    db = agent_db.connect(path)
    names = [r[0] for r in db.execute("SELECT name FROM _migrations ORDER BY name")]
    assert names == [name for name, _ in agent_db.MIGRATIONS]
    assert names[0].startswith("001_")
    assert agent_db.migrate(db) == []  # nothing pending the second time
    TaskStore(path).create("kept")
    assert TaskStore(path).list()[0].title == "kept"  # reopening does not re-run migrations


def test_failed_migration_leaves_the_previous_version(tmp_path, monkeypatch):
    path = tmp_path / "a.db"
    agent_db.connect(path).close()

    def broken(db):
        db.execute("CREATE TABLE half (x)")
        raise RuntimeError("boom")

    monkeypatch.setattr(agent_db, "MIGRATIONS", [*agent_db.MIGRATIONS, ("999_broken", broken)])
    with pytest.raises(RuntimeError):
        agent_db.connect(path)
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
from agent import db as agent_db
db = agent_db.connect({str(path)!r})
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT INTO tasks (title, detail, status, created_at, updated_at) VALUES ('half', '', 'todo', 'x', 'x')")
os._exit(9)
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=str(agent_db.Path(__file__).parent.parent))
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
