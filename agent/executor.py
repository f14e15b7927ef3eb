"""Plans that run: a stored plan's tool calls carried out step by step, and each run recorded.

- Before anything runs, every remaining call is validated against its tool's schema by the one
  validator (`andini.calls`, through `agent.validate.tool_specs`), and every reference must point to an
  earlier step that has a call: a plan that cannot run is refused whole, nothing half done.
- A step may use an earlier step's result with a NESTFUL reference, `$varN$` or `$varN.field.0$`:
  N is the step's number (1-based), the path walks the result's JSON (keys, list indexes). A whole-value
  reference takes the value with its type; one inside a longer string is written into it. The resolved
  call is validated again, so a field of the wrong type stops the step before its tool runs.
- Tools with side effects wait for the person's yes (settings.confirm_side_effects): `approve` is asked,
  or, with none, the run stops at that step with status `needs_confirmation`. A "no" stops it `refused`.
- A step that fails (its tool raises, a reference does not resolve) stops the run with its error; nothing
  after it runs. Running the plan again continues from that step, with the earlier results as recorded.
- Steps without a tool call are the person's to do: recorded as `manual`, and the run goes on.

Runs live in the agent's SQLite file (agent.storage migration 006).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from agent import storage
from andini.calls import REFERENCE, calls_error
from andini.errors import AndiniError
from andini.schema import Plan, ToolCall

RunStatus = Literal["running", "done", "failed", "needs_confirmation", "refused"]
StepStatus = Literal["pending", "done", "manual", "failed", "needs_confirmation", "refused"]
#: Asked before a side-effect step runs: (step number, the resolved call) -> yes?
Approve = Callable[[int, ToolCall], bool]


class StepRun(BaseModel):
    step: int = Field(description="Step number, 1-based (the N of `$varN$`).")
    title: str
    status: StepStatus = "pending"
    call: ToolCall | None = Field(None, description="The call as run, references resolved.")
    result: Any = Field(None, description="What the tool returned (parsed when it is JSON).")
    error: str | None = None


class PlanRun(BaseModel):
    """One run of a plan: its status, where it stopped, and each step's outcome."""

    id: int = Field(description="Run number.")
    plan_id: int
    status: RunStatus
    stopped_at: int | None = Field(None, description="Step number it stopped at (None when done).")
    error: str | None = Field(None, description="Why it stopped, when it did not finish.")
    steps: list[StepRun]
    created_at: str
    updated_at: str


class PlanRunError(AndiniError):
    """A reference that does not resolve, or a resolved call of the wrong type."""


class RunInProgress(AndiniError):
    """The plan's run is being carried out now, by another request or process."""


def run_plan(plan_id: int, *, approve: Approve | None = None, confirm: bool | None = None,
             restart: bool = False, tools: Sequence[Any] | None = None, path: Path | str | None = None) -> PlanRun:
    """Run (or continue) plan `plan_id`; returns the run as it now stands.

    The plan's latest run continues from where it stopped unless it is done or `restart` is given
    (then a new run starts at step 1). `confirm` (default: settings.confirm_side_effects) says whether
    side-effect steps ask first; `tools` replaces the agent's own tools (builtins and user tools)."""
    from agent.plans import PlanStore
    from andini.settings import get_settings

    settings = get_settings()
    path = Path(path) if path else storage.default_path()
    plan = PlanStore(path).get(plan_id)
    runs = RunStore(path)
    run = runs.latest(plan_id)
    if run is not None and run.status == "done" and not restart:
        return run
    if run is None or restart or run.status == "done":
        run = runs.start(plan_id, plan)
    else:
        runs.claim(run)
    offered = _tools(tools, path)
    confirm = settings.confirm_side_effects if confirm is None else confirm
    return _Runner(plan, run, offered, runs, approve, confirm).go()


def latest_run(plan_id: int, path: Path | str | None = None) -> PlanRun | None:
    """The plan's most recent run, or None."""
    return RunStore(path).latest(plan_id)


def _tools(tools: Sequence[Any] | None, path: Path) -> dict[str, Any]:
    from agent.tools import ToolContext, as_tool, builtin_tools, user_tools
    from andini.settings import get_settings

    if tools is None:
        tools = builtin_tools(ToolContext(db_path=path)) + user_tools(get_settings().tools)
    return {t.name: t for t in (as_tool(t) for t in tools)}


class _Runner:
    def __init__(self, plan: Plan, run: PlanRun, tools: dict[str, Any], runs: RunStore,
                 approve: Approve | None, confirm: bool):
        from agent.validate import tool_specs

        self.plan, self.run, self.tools, self.runs = plan, run, tools, runs
        self.specs = tool_specs(list(tools.values()))
        self.approve, self.confirm = approve, confirm

    def go(self) -> PlanRun:
        start = next((s.step - 1 for s in self.run.steps if s.status not in ("done", "manual")), len(self.run.steps))
        problem = self.preflight(start)
        if problem is not None:
            return self.stop(*problem, status="failed", step_status="failed")
        for index in range(start, len(self.plan.steps)):
            stopped = self.step(index)
            if stopped is not None:
                return stopped
        return self.runs.save(self.run, "done", None, None)

    def preflight(self, start: int) -> tuple[int, str, ToolCall | None] | None:
        """The first remaining step whose call cannot run (unknown tool, bad arguments, a reference
        to a later step or to one without a call), with why."""
        for index in range(start, len(self.plan.steps)):
            call = self.plan.steps[index].tool_call
            if call is None:
                continue
            found = calls_error([call], self.specs, references=True)
            if found:
                return index, f"step {index + 1} does not validate: {found}", call
            for label in _labels(call.arguments):
                target = int(label[3:]) - 1
                if not 0 <= target < index or self.plan.steps[target].tool_call is None:
                    return index, (f"step {index + 1} refers to ${label}$, which is not an earlier step with "
                                   "a tool call"), call
        return None

    def step(self, index: int) -> PlanRun | None:
        from agent.tools import is_side_effect

        record = self.run.steps[index]
        call = self.plan.steps[index].tool_call
        if call is None:
            record.status, record.error = "manual", None
            self.runs.save_step(self.run.id, record)
            return None
        try:
            resolved = self.resolve(index, call)
        except PlanRunError as exc:
            return self.stop(index, str(exc), call, status="failed", step_status="failed")
        tool = self.tools[resolved.name]
        if self.confirm and is_side_effect(tool):
            if self.approve is None:
                return self.stop(index, f"step {index + 1} ({resolved.name}) has side effects: it waits for "
                                        "a yes", resolved, status="needs_confirmation", step_status="needs_confirmation")
            if not self.approve(index + 1, resolved):
                return self.stop(index, f"step {index + 1} ({resolved.name}) was refused", resolved,
                                 status="refused", step_status="refused")
        try:
            result = tool.invoke(resolved.arguments)
        except Exception as exc:  # any tool failure is the step's error, recorded with its type
            return self.stop(index, f"step {index + 1} ({resolved.name}) failed: {type(exc).__name__}: {exc}",
                             resolved, status="failed", step_status="failed")
        record.status, record.call, record.result, record.error = "done", resolved, _parse(result), None
        self.runs.save_step(self.run.id, record)
        return None

    def resolve(self, index: int, call: ToolCall) -> ToolCall:
        """The call with its references replaced by earlier results, validated again with their types."""
        arguments = _substitute(call.arguments, lambda label, path: self.lookup(index, label, path))
        resolved = ToolCall(name=call.name, arguments=arguments)
        found = calls_error([resolved], self.specs)
        if found:
            raise PlanRunError(f"step {index + 1}: with its references resolved, {found}")
        return resolved

    def lookup(self, index: int, label: str, path: str) -> Any:
        source = self.run.steps[int(label[3:]) - 1]
        value = source.result
        walked = []
        for part in [p for p in path.split(".") if p]:
            walked.append(part)
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                have = (f"fields: {', '.join(map(str, value))}" if isinstance(value, dict)
                        else f"a {type(value).__name__}")
                raise PlanRunError(f"step {index + 1}: ${label}.{'.'.join(walked)}$ does not resolve: step "
                                   f"{source.step}'s result has no '{part}' there ({have})")
        return value

    def stop(self, index: int, error: str, call: ToolCall | None, *, status: RunStatus,
             step_status: StepStatus) -> PlanRun:
        record = self.run.steps[index]
        record.status, record.call, record.result, record.error = step_status, call, None, error
        self.runs.save_step(self.run.id, record)
        return self.runs.save(self.run, status, index, error)


def _labels(value: Any) -> list[str]:
    if isinstance(value, str):
        return [m.group(1).replace("_", "") for m in REFERENCE.finditer(value)]
    if isinstance(value, list):
        return [label for v in value for label in _labels(v)]
    if isinstance(value, dict):
        return [label for v in value.values() for label in _labels(v)]
    return []


def _substitute(value: Any, lookup: Callable[[str, str], Any]) -> Any:
    """`value` with each reference replaced: a whole-value one by the value, others written in."""
    if isinstance(value, str):
        whole = REFERENCE.fullmatch(value.strip())
        if whole:
            return lookup(whole.group(1).replace("_", ""), whole.group(2))
        return REFERENCE.sub(lambda m: _text(lookup(m.group(1).replace("_", ""), m.group(2))), value)
    if isinstance(value, list):
        return [_substitute(v, lookup) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, lookup) for k, v in value.items()}
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _parse(result: Any) -> Any:
    if isinstance(result, str):
        try:
            return json.loads(result)
        except ValueError:
            return result
    return result if isinstance(result, dict | list | int | float | bool) or result is None else str(result)


# ---------------------------------------------------------------- the record


class RunStore:
    """Plan runs in SQLite: one row per run, one per step reached."""

    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path else storage.default_path()

    @property
    def db(self) -> sqlite3.Connection:
        return storage.connect(self.path)

    def start(self, plan_id: int, plan: Plan) -> PlanRun:
        stamp = storage.now()
        with storage.transaction(self.db):
            run_id = storage.insert(self.db, "INSERT INTO plan_runs (plan_id, status, next_step, created_at, "
                                    "updated_at) VALUES (?, 'running', 0, ?, ?)", (plan_id, stamp, stamp))
        return self.get(run_id, plan)

    def claim(self, run: PlanRun) -> None:
        """Mark a stopped run as running again; refuses one that is running now (in another process)."""
        with storage.transaction(self.db):
            claimed = self.db.execute("UPDATE plan_runs SET status = 'running', updated_at = ? "
                                      "WHERE id = ? AND status != 'running'", (storage.now(), run.id)).rowcount
        if not claimed:
            raise RunInProgress(f"Run {run.id} of plan {run.plan_id} is already running (since {run.updated_at}).",
                              hint="wait for it to finish; if its process died, start over with --restart")
        run.status = "running"

    def latest(self, plan_id: int) -> PlanRun | None:
        row = self.db.execute("SELECT id FROM plan_runs WHERE plan_id = ? ORDER BY id DESC LIMIT 1",
                              (plan_id,)).fetchone()
        if row is None:
            return None
        from agent.plans import PlanStore

        return self.get(int(row["id"]), PlanStore(self.path).get(plan_id))

    def get(self, run_id: int, plan: Plan) -> PlanRun:
        row = self.db.execute("SELECT * FROM plan_runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise AndiniError(f"No plan run {run_id}.")
        done = {r["step"]: r for r in self.db.execute("SELECT * FROM plan_run_steps WHERE run_id = ?", (run_id,))}
        steps = []
        for i, step in enumerate(plan.steps):
            r = done.get(i)
            steps.append(StepRun(step=i + 1, title=step.title) if r is None else StepRun(
                step=i + 1, title=step.title, status=r["status"], error=r["error"],
                call=ToolCall.model_validate_json(r["call"]) if r["call"] else None,
                result=json.loads(r["result"]) if r["result"] is not None else None))
        stopped = row["next_step"] + 1 if row["status"] not in ("done", "running") else None
        return PlanRun(id=row["id"], plan_id=row["plan_id"], status=row["status"], stopped_at=stopped,
                       error=row["error"], steps=steps, created_at=row["created_at"], updated_at=row["updated_at"])

    def save_step(self, run_id: int, record: StepRun) -> None:
        with storage.transaction(self.db):
            self.db.execute(
                "INSERT OR REPLACE INTO plan_run_steps (run_id, step, status, call, result, error, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, record.step - 1, record.status, record.call.model_dump_json() if record.call else None,
                 json.dumps(record.result, ensure_ascii=False, default=str) if record.status == "done" else None,
                 record.error, storage.now()))

    def save(self, run: PlanRun, status: RunStatus, index: int | None, error: str | None) -> PlanRun:
        next_step = len(run.steps) if index is None else index
        with storage.transaction(self.db):
            self.db.execute("UPDATE plan_runs SET status = ?, next_step = ?, error = ?, updated_at = ? "
                            "WHERE id = ?", (status, next_step, error, storage.now(), run.id))
        from agent.plans import PlanStore

        return self.get(run.id, PlanStore(self.path).get(run.plan_id))
