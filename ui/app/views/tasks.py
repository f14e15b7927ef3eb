"""Tasks & plans: the task store as a table to filter and update, and the saved plans with their exports.
Reads and writes go through `agent.tasks.TaskStore` and `agent.plans.PlanStore`."""

from __future__ import annotations

import streamlit as st

from ui.app import services
from ui.app.render import show_error, show_plan

STATUSES = ("todo", "doing", "done")


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
    status = left.selectbox("Status", ("all", *STATUSES), key="task-filter")
    text = right.text_input("Filter by text", key="task-text", placeholder="words in the title or detail")
    tasks = TaskStore().list(status=None if status == "all" else status)
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
    for item in plans:
        plan_id = getattr(item, "id", None)
        plan = store.get(plan_id) if plan_id is not None else item
        with st.expander(f"#{plan_id} {plan.goal}"):
            show_plan(plan, plan_id, key=f"stored-plan-{plan_id}")


st.title("Tasks & plans")
try:
    tasks_section()
    plans_section()
except Exception as exc:  # noqa: BLE001 - e.g. a store that cannot be opened: say why and how to fix
    show_error(services.describe_error(exc))
