"""A process killed (SIGKILL: no cleanup, no rollback of its own) in the middle of turning a plan into
tasks leaves nothing half-written in the real SQLite file: the next process sees the plan and no task
of it, and can do the conversion whole (issue 12, part 4: the app container killed during plan → tasks)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from agent.plans import PlanStore
from agent.tasks import TaskStore
from tests.conftest import REPO

STEPS = 6
KILL_AT = 4  # the kill lands while the 4th step's INSERT starts, three already written in the transaction

# The child's script: SQLite's trace hook fires as each statement starts, so `stop` runs inside the
# transaction of PlanStore.to_tasks, after some of its INSERTs and before its COMMIT. argv: the database
# ("" for $ANDINI_HOME/agent.db) and the plan's id ("new": save a plan of STEPS steps and print its id).
def writer_stopped_inside_to_tasks(stop: str) -> str:
    return textwrap.dedent(f"""
        import os, signal, sys, time
        from agent import storage
        from agent.plans import PlanStore

        store = PlanStore(sys.argv[1] or None)
        if sys.argv[2] == "new":
            plan_id = store.save({{"goal": "Release v2", "steps": [{{"title": f"Step {{i}}"}} for i in range(1, {STEPS + 1})]}})
            print(f"plan {{plan_id}}", flush=True)
        else:
            plan_id = int(sys.argv[2])
        inserts = 0

        def trace(sql):
            global inserts
            if sql.lstrip().upper().startswith("INSERT INTO TASKS"):
                inserts += 1
                if inserts == {KILL_AT}:
                    {stop}

        storage.connect(store.path).set_trace_callback(trace)
        store.to_tasks(plan_id)
        print("not stopped", flush=True)
    """)


SELF_KILL = "os.kill(os.getpid(), signal.SIGKILL)"
#: for a kill from outside (the container's): says so, then holds the transaction open
HOLD = 'print("inside the transaction", flush=True); time.sleep(600)'


def test_a_kill_during_plan_to_tasks_leaves_no_half_written_tasks(andini_home):
    db_path = andini_home / "agent.db"
    plans = PlanStore(db_path)
    plan_id = plans.save({"goal": "Release v2", "steps": [{"title": f"Step {i}"} for i in range(1, STEPS + 1)]})
    unrelated = TaskStore(db_path).create("Water the plants")

    done = subprocess.run([sys.executable, "-c", writer_stopped_inside_to_tasks(SELF_KILL), str(db_path), str(plan_id)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, (done.returncode, done.stdout, done.stderr)

    from agent import storage

    storage.close_all()  # read the file as a fresh process would
    tasks = TaskStore(db_path)
    assert [t.title for t in tasks.list()] == [unrelated.title]
    assert plans.get(plan_id).goal == "Release v2"

    made = plans.to_tasks(plan_id)
    assert [t.title for t in made] == [f"Step {i}" for i in range(1, STEPS + 1)]
    assert {t.plan_id for t in made} == {plan_id}
