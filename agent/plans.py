"""The plan store: validated plans, listed, exported as JSON or YAML, and turned into tasks."""

from __future__ import annotations

import builtins
import json
import sqlite3
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from agent import storage
from agent.tasks import Task, TaskStore
from andini.errors import AndiniError
from andini.schema import Plan


class PlanInfo(BaseModel):
    id: int = Field(description="Plan number.")
    goal: str = Field(description="The plan's goal.")
    steps: int = Field(description="Number of steps.")
    thread_id: str | None = Field(None, description="Conversation that produced it.")
    created_at: str = Field(description="ISO time (UTC).")


class PlanStore:
    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path else storage.default_path()

    @property
    def db(self) -> sqlite3.Connection:
        return storage.connect(self.path)

    def save(self, plan: Plan | dict, thread_id: str | None = None) -> int:
        try:
            plan = plan if isinstance(plan, Plan) else Plan.model_validate(plan)
        except ValidationError as exc:
            raise AndiniError(f"Not a valid plan: {exc}") from exc
        with storage.transaction(self.db):
            return storage.insert(self.db, "INSERT INTO plans (goal, body, thread_id, created_at) VALUES (?, ?, ?, ?)",
                                  (plan.goal, plan.model_dump_json(exclude_none=True), thread_id, storage.now()))

    def list(self) -> list[PlanInfo]:
        rows = self.db.execute("SELECT id, goal, body, thread_id, created_at FROM plans ORDER BY id")
        return [PlanInfo(id=r["id"], goal=r["goal"], steps=len(json.loads(r["body"])["steps"]),
                         thread_id=r["thread_id"], created_at=r["created_at"]) for r in rows]

    def get(self, plan_id: int) -> Plan:
        row = self.db.execute("SELECT body FROM plans WHERE id = ?", (plan_id,)).fetchone()
        if row is None:
            raise AndiniError(f"No plan {plan_id}.", hint="list plans to see their numbers")
        return Plan.model_validate_json(row["body"])

    def export(self, plan_id: int, fmt: str = "json") -> str:
        data = self.get(plan_id).model_dump(mode="json", exclude_none=True)
        if fmt == "json":
            return json.dumps(data, indent=2, ensure_ascii=False)
        if fmt == "yaml":
            import yaml

            return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        raise AndiniError(f"Unknown export format '{fmt}'.", hint="use json or yaml")

    def to_tasks(self, plan_id: int) -> builtins.list[Task]:  # `list` in this class is the method above
        """One task per step, all in one transaction: either every step becomes a task or none does."""
        plan = self.get(plan_id)
        tasks = TaskStore(self.path)
        stamp = storage.now()
        with storage.transaction(tasks.db):
            ids = [storage.insert(
                tasks.db, "INSERT INTO tasks (title, detail, status, plan_id, created_at, updated_at) "
                "VALUES (?, ?, 'todo', ?, ?, ?)", (step.title, step.detail, plan_id, stamp, stamp))
                for step in plan.steps]
        return [tasks.get(i) for i in ids]
