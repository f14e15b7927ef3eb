"""Tasks & plans: the task store as a table to filter and update, and the saved plans with their exports
and a Run button that carries out their tool calls. Reads and writes go through `agent.tasks.TaskStore`,
`agent.plans.PlanStore` and `agent.executor.run_plan`."""

from __future__ import annotations

from typing import get_args

import streamlit as st

from agent.tasks import TaskStatus
from ui.app import services
from ui.app.render import show_error, show_plan

STATUSES: tuple[TaskStatus, ...] = get_args(TaskStatus)


def _update(task_id: int) -> None:
    from agent.tasks import TaskStore

    fields = {"status": st.session_state[f"task-status-{task_id}"],
              "title": st.session_state[f"task-title-{task_id}"].strip()}
    try:
        TaskStore().update(task_id, **{k: v for k, v in fields.items() if v})
        st.session_state["task_note"] = f"Task {task_id} saved."
    except Exception as exc:  # noqa: BLE001 - shown to the person
        st.session_state["task_note"] = services.describe_error(exc)


def _create() -> None:
    from agent.tasks import TaskStore

    title = st.session_state.get("new-task-title", "").strip()
    if not title:
        st.session_state["task_note"] = "A task needs a title."
        return
    task = TaskStore().create(title, st.session_state.get("new-task-detail", "").strip())
    st.session_state["task_note"] = f"Task {task.id} created."
    st.session_state["new-task-title"] = st.session_state["new-task-detail"] = ""


def tasks_section() -> None:
    from agent.tasks import TaskStore

    st.subheader("Tasks")
    left, right = st.columns([1, 2])
    chosen = left.selectbox("Status", ("all", *STATUSES), key="task-filter")
    status = next((s for s in STATUSES if s == chosen), None)  # None: all
    text = right.text_input("Filter by text", key="task-text", placeholder="words in the title or detail")
    tasks = TaskStore().list(status=status)
    if text.strip():
        needle = text.strip().lower()
        tasks = [t for t in tasks if needle in t.title.lower() or needle in (t.detail or "").lower()]
    if note := st.session_state.pop("task_note", None):
        st.info(note)
    if tasks:
        st.dataframe([{"id": t.id, "title": t.title, "status": t.status, "plan": t.plan_id,
                       "detail": t.detail, "updated": t.updated_at} for t in tasks], hide_index=True)
        edit_task(tasks)
    else:
        st.caption("No tasks match. Turn a plan into tasks from the chat, or add one below.")
    with st.expander("Add a task", icon=":material/add:"):
        st.text_input("Title", key="new-task-title")
        st.text_area("Detail", key="new-task-detail")
        st.button("Add task", on_click=_create)


def edit_task(tasks: list) -> None:
    by_id = {t.id: t for t in tasks}
    chosen = st.selectbox("Update a task", list(by_id), format_func=lambda i: f"#{i} {by_id[i].title}",
                          key="task-pick")
    task = by_id[chosen]
    left, right, button = st.columns([3, 1, 1], vertical_alignment="bottom")
    left.text_input("Title", value=task.title, key=f"task-title-{task.id}")
    right.selectbox("Status", STATUSES, index=STATUSES.index(task.status), key=f"task-status-{task.id}")
    button.button("Save", on_click=_update, args=(task.id,), type="primary")


def plans_section() -> None:
    from agent.plans import PlanStore

    st.subheader("Plans")
    store = PlanStore()
    plans = store.list()
    if not plans:
        st.caption("No saved plans yet: ask the chat for a plan.")
        return
    for info in plans:
        plan = store.get(info.id)
        with st.expander(f"#{info.id} {plan.goal}"):
            show_plan(plan, info.id, key=f"stored-plan-{info.id}")
            if any(step.tool_call for step in plan.steps):
                run_section(info.id)


MARKS = {"done": ":green[done]", "manual": ":gray[yours to do]", "failed": ":red[failed]",
         "needs_confirmation": ":orange[waits for a yes]", "refused": ":orange[refused]", "pending": ":gray[not run]"}


def _run(plan_id: int) -> None:
    from agent.executor import run_plan

    approved = bool(st.session_state.get(f"plan-approve-{plan_id}"))
    try:
        run_plan(plan_id, approve=(lambda step, call: True) if approved else None,
                 confirm=services.current_settings().confirm_side_effects)
    except Exception as exc:  # noqa: BLE001 - shown to the person, with the fix
        st.session_state[f"plan-run-error-{plan_id}"] = services.describe_error(exc)


def run_section(plan_id: int) -> None:
    """The Run button and the latest run's steps with their status and results."""
    from agent.executor import latest_run

    run = latest_run(plan_id)
    left, right = st.columns([2, 1], vertical_alignment="bottom")
    left.checkbox("Approve steps with side effects", key=f"plan-approve-{plan_id}")
    label = "Run" if run is None or run.status == "done" else "Continue"
    right.button(label, key=f"plan-run-{plan_id}", on_click=_run, args=(plan_id,), type="primary",
                 disabled=run is not None and run.status == "done")
    if error := st.session_state.pop(f"plan-run-error-{plan_id}", None):
        show_error(error)
    if run is None:
        return
    for step in run.steps:
        call = f" `{step.call.name}`" if step.call else ""
        st.markdown(f"{step.step}. **{step.title}**{call} — {MARKS[step.status]}")
        if step.status == "done" and step.result is not None:
            st.json(step.result, expanded=False)
    if run.status == "done":
        st.success(f"Run {run.id}: every step done.")
    elif run.status in ("needs_confirmation", "refused"):
        st.warning(f"Stopped at step {run.stopped_at}: {run.error}. Tick the approval to go on.")
    elif run.status == "failed":
        st.error(f"Stopped at step {run.stopped_at}: {run.error}. Continue runs it again from there.")


st.title("Tasks & plans")
try:
    tasks_section()
    plans_section()
except Exception as exc:  # noqa: BLE001 - e.g. a store that cannot be opened: say why and how to fix
    show_error(services.describe_error(exc))
