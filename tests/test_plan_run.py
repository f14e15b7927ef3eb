"""Plans that run (agent.executor) on real SQLite with real tools: the built-in task tools and a few
typed functions. References between steps are resolved and type-checked, side effects wait for a yes,
a failed step stops the run, and running again continues from it."""

from __future__ import annotations

import pytest

from agent.executor import latest_run, run_plan
from agent.plans import PlanStore
from agent.tasks import TaskStore
from agent.tools import tool_spec
from andini.schema import Plan

CALLS: list[str] = []
BROKEN = {"shipping": True}


def find_customer(name: str) -> dict:
    """Look a customer up by name."""
    CALLS.append("find_customer")
    return {"id": 7, "name": name, "orders": [{"ref": "A-1"}, {"ref": "B-2"}]}


def ship(order_ref: str, customer_id: int) -> dict:
    """Ship an order."""
    CALLS.append("ship")
    if BROKEN["shipping"]:
        raise ConnectionError("shipping service unreachable")
    return {"shipped": order_ref, "to": customer_id}


@tool_spec(side_effect=True)
def notify(message: str) -> str:
    """Tell the customer."""
    CALLS.append("notify")
    return "sent: " + message


TOOLS = [find_customer, ship, notify]


@pytest.fixture(autouse=True)
def fresh():
    CALLS.clear()
    BROKEN["shipping"] = True


def save(*steps: dict) -> int:
    return PlanStore().save(Plan.model_validate({"goal": "Ship the order", "steps": list(steps)}))


def call(tool: str, **arguments) -> dict:
    return {"name": tool, "arguments": arguments}


def test_task_tools_chain_through_a_reference_after_a_yes():
    plan_id = save({"title": "Add the task", "tool_call": call("create_task", title="Write the report")},
                   {"title": "Write it", "detail": "by hand"},
                   {"title": "Close it", "tool_call": call("update_task", task_id="$var1.id$", status="done")})
    asked = []
    run = run_plan(plan_id, approve=lambda n, c: asked.append((n, c.name)) or True, confirm=True)
    assert run.status == "done" and run.stopped_at is None and asked == [(1, "create_task"), (3, "update_task")]
    assert [s.status for s in run.steps] == ["done", "manual", "done"]
    task_id = run.steps[0].result["id"]
    assert run.steps[2].call.arguments == {"task_id": task_id, "status": "done"}  # an int, as the schema says
    assert TaskStore().get(task_id).status == "done"
    assert latest_run(plan_id) == run  # recorded as returned
    assert run_plan(plan_id).id == run.id  # a finished run is not repeated without restart


def test_a_side_effect_step_waits_for_a_yes_and_a_no_stops_the_run():
    plan_id = save({"title": "Find", "tool_call": call("find_customer", name="Ada")},
                   {"title": "Tell", "tool_call": call("notify", message="Hello $var1.name$, order $var1.orders.1.ref$")})
    waiting = run_plan(plan_id, tools=TOOLS, confirm=True)
    assert waiting.status == "needs_confirmation" and waiting.stopped_at == 2 and CALLS == ["find_customer"]
    assert waiting.steps[1].call.arguments == {"message": "Hello Ada, order B-2"}
    refused = run_plan(plan_id, tools=TOOLS, confirm=True, approve=lambda n, c: False)
    assert refused.status == "refused" and "notify" not in CALLS
    done = run_plan(plan_id, tools=TOOLS, confirm=True, approve=lambda n, c: True)
    assert done.status == "done" and done.id == waiting.id and done.steps[1].result == "sent: Hello Ada, order B-2"
    assert CALLS == ["find_customer", "notify"]  # step 1 ran once: its recorded result was reused


def test_a_failed_step_stops_the_run_and_a_rerun_continues_from_it():
    plan_id = save({"title": "Find", "tool_call": call("find_customer", name="Ada")},
                   {"title": "Ship", "tool_call": call("ship", order_ref="$var1.orders.0.ref$", customer_id="$var1.id$")},
                   {"title": "Tell", "tool_call": call("notify", message="shipped $var2.shipped$")})
    failed = run_plan(plan_id, tools=TOOLS, confirm=False)
    assert failed.status == "failed" and failed.stopped_at == 2
    assert failed.error == "step 2 (ship) failed: ConnectionError: shipping service unreachable"
    assert [s.status for s in failed.steps] == ["done", "failed", "pending"] and CALLS == ["find_customer", "ship"]
    BROKEN["shipping"] = False
    done = run_plan(plan_id, tools=TOOLS, confirm=False)
    assert done.status == "done" and done.id == failed.id
    assert done.steps[1].result == {"shipped": "A-1", "to": 7} and done.steps[2].result == "sent: shipped A-1"
    assert CALLS == ["find_customer", "ship", "ship", "notify"]
    again = run_plan(plan_id, tools=TOOLS, confirm=False, restart=True)
    assert again.id != done.id and again.status == "done"


@pytest.mark.parametrize("arguments, error", [
    ({"order_ref": "$var1.id$", "customer_id": 7}, "step 2: with its references resolved, ship: argument "
                                                    "'order_ref': 7 is not of type 'string'"),
    ({"order_ref": "$var1.phone$", "customer_id": 7}, "step 2: $var1.phone$ does not resolve: step 1's result "
                                                       "has no 'phone' there (fields: id, name, orders)"),
    ({"order_ref": "$var1.orders.5.ref$", "customer_id": 7}, "has no '5' there (a list)"),
])
def test_references_are_resolved_and_type_checked_before_the_tool_runs(arguments, error):
    plan_id = save({"title": "Find", "tool_call": call("find_customer", name="Ada")},
                   {"title": "Ship", "tool_call": call("ship", **arguments)})
    run = run_plan(plan_id, tools=TOOLS, confirm=False)
    assert run.status == "failed" and run.stopped_at == 2 and error in run.error
    assert CALLS == ["find_customer"]


@pytest.mark.parametrize("step, error", [
    (call("ship", order_ref="A-1"), "step 2 does not validate: ship: argument 'customer_id': required, but missing"),
    (call("send_fax", to="x"), "step 2 does not validate: send_fax: not an offered tool"),
    (call("notify", message="$var3.x$"), "step 2 refers to $var3$, which is not an earlier step"),
])
def test_a_plan_that_cannot_run_is_refused_before_anything_runs(step, error):
    plan_id = save({"title": "Find", "tool_call": call("find_customer", name="Ada")}, {"title": "Next", "tool_call": step},
                   {"title": "Later", "detail": "by hand"})
    run = run_plan(plan_id, tools=TOOLS, confirm=False)
    assert run.status == "failed" and error in run.error and CALLS == []


def test_plan_run_command_waits_without_a_terminal_then_goes_on_with_yes(capsys):
    import json

    from andini.cli import main

    plan_id = save({"title": "Add the task", "tool_call": call("create_task", title="Call the bank")},
                   {"title": "List them", "tool_call": call("list_tasks", status="todo")})
    assert main(["plan", "run", str(plan_id)]) == 5
    captured = capsys.readouterr()
    assert "needs_confirmation" in captured.out and "stopped at step 1" in captured.err and TaskStore().list() == []
    assert main(["plan", "run", str(plan_id), "--yes", "--json"]) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["status"] == "done" and run["steps"][1]["result"][0]["title"] == "Call the bank"
    assert main(["plan", "list"]) == 0
    assert f"#{plan_id} Ship the order (2 steps)  [done]" in capsys.readouterr().out
    assert main(["plan", "run", "999"]) == 1
    assert "No plan 999" in capsys.readouterr().err
