"""Draw an agent turn (a list or a live stream of `agent.events.Event`) with Streamlit elements.

One function draws both a live turn and a saved one, so a reloaded conversation looks exactly like the
one just watched: tokens as text (streamed with `st.write_stream` when live), each tool call as a
collapsible `st.status` step with its arguments and result, a plan as a checklist with downloads, and
the answer's sources with the quoted passage on expand.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import streamlit as st

from agent.events import Event
from andini.schema import Plan, Source


class _Pushback:
    """An iterator that can take back one item: token runs end at the first event that is not a token."""

    def __init__(self, items: Iterable[Event]):
        self._it = iter(items)
        self._back: list[Event] = []

    def __iter__(self) -> _Pushback:
        return self

    def __next__(self) -> Event:
        return self._back.pop() if self._back else next(self._it)

    def push(self, item: Event) -> None:
        self._back.append(item)


def render_events(events: Iterable[Event], key: str, *, live: bool = False,
                  seen: list[Event] | None = None) -> list[Event]:
    """Draw `events` in the current container; returns them (also appended to `seen` as they arrive,
    so a caller still has the partial turn when the stream raises)."""
    seen = [] if seen is None else seen
    steps: dict[str, tuple[Any, str]] = {}
    streamed = ""  # the text streamed since the last tool step: the final answer when it matches
    stream = _Pushback(events)
    for event in stream:
        seen.append(event)
        if event.kind == "token":
            run = _token_run(event, stream, seen)
            streamed = _written(st.write_stream(run)) if live else _markdown("".join(run))
        elif event.kind == "tool_call":
            steps[event.call_id or f"step{len(steps)}"] = _open_step(event, live)
            streamed = ""
        elif event.kind == "tool_result":
            _close_step(steps, event)
        elif event.kind == "plan" and event.plan is not None:
            show_plan(event.plan, event.plan_id, key=f"{key}-plan{len(seen)}")
        elif event.kind == "final":
            if event.text and event.text.strip() != str(streamed).strip():
                st.markdown(event.text)
            show_sources(event.sources, seen, key=key)
        elif event.kind == "error":
            show_error(event.text or "The agent stopped with an error.")
        elif event.kind == "confirm" and event.call is not None:
            _await_approval(steps, event)
            st.warning(f"The agent wants to run **{event.call.name}**, which changes something. "
                       "Approve or deny below.", icon=":material/front_hand:")
            st.json(event.call.arguments)
    return seen


def _markdown(text: str) -> str:
    st.markdown(text)
    return text


def _written(out: list[Any] | str) -> str:
    """What `st.write_stream` wrote: the text itself when every chunk was text, as tokens are."""
    return out if isinstance(out, str) else "".join(map(str, out))


def show_error(text: str) -> None:
    """An error box with the cause on top and the fix (the part after 'fix:') on its own line."""
    cause, _, fix = text.partition("\n  fix: ")
    st.error(cause + (f"  \n**What to do:** {fix}" if fix else ""), icon=":material/error:")


def _await_approval(steps: dict[str, tuple[Any, str]], event: Event) -> None:
    # The waiting call: by id when the event names one, else the last open step of that tool.
    name = f"Tool: {event.call.name}" if event.call else ""
    key = event.call_id if event.call_id in steps else next(
        (k for k, (_, label) in reversed(steps.items()) if label == name), None)
    if key is not None:
        step, label = steps.pop(key)
        step.update(label=f"{label} (waiting for your approval)", state="complete")


def _token_run(first: Event, stream: _Pushback, seen: list[Event]) -> Iterator[str]:
    yield first.text
    for event in stream:
        if event.kind != "token":
            stream.push(event)
            return
        seen.append(event)
        yield event.text


def _open_step(event: Event, live: bool) -> tuple[Any, str]:
    label = f"Tool: {event.call.name if event.call else 'unknown'}"
    step = st.status(label, state="running" if live else "complete", expanded=False)
    step.markdown("**Arguments**")
    step.json(event.call.arguments if event.call else {}, expanded=True)
    return step, label


def _close_step(steps: dict[str, tuple[Any, str]], event: Event) -> None:
    key = event.call_id if event.call_id in steps else next(reversed(steps), None)
    if key is None:  # a result without its call (e.g. after resume): give it its own step
        label = "Tool result"
        step = st.status(label, state="complete", expanded=False)
    else:
        step, label = steps.pop(key)
    step.markdown("**Result**" if event.ok else "**Failed**")
    if isinstance(event.result, dict | list):
        step.json(event.result, expanded=1)
    else:
        step.code(str(event.result), language=None, wrap_lines=True)
    step.update(label=label if event.ok else f"{label} (failed)", state="complete" if event.ok else "error")


def show_sources(sources: list[Source], seen: list[Event], key: str) -> None:
    """The passages an answer rests on: file and heading, the quoted passage on expand."""
    unique = list({(s.source, s.heading, s.start): s for s in sources}.values())
    if not unique:
        return
    st.markdown("**Sources**")
    for src in unique:
        label = Path(src.source).name + (f" › {src.heading}" if src.heading else "")
        with st.expander(f":material/description: {label}"):
            st.caption(src.source)
            passage = find_passage(src, seen)
            st.markdown(quote(passage) if passage else "_The passage is no longer available._")


def quote(passage: str) -> str:
    """A passage as a Markdown block quote; its headings become bold lines so they don't outshout the answer."""
    lines = [f"**{line.lstrip('#').strip()}**" if line.startswith("#") else line for line in passage.splitlines()]
    return "\n".join("> " + line for line in lines)


def find_passage(src: Source, seen: list[Event]) -> str:
    """The quoted text of a source: from the search results of this turn, else from the file itself."""
    for event in seen:
        if event.kind == "tool_result":
            for hit in _hits(event.result):
                where = hit.get("source")
                start = where.get("start") if isinstance(where, dict) else hit.get("start")
                where = where.get("source") if isinstance(where, dict) else where
                if where == src.source and (src.start is None or start in (None, src.start)):
                    return str(hit.get("text", ""))
    path = Path(src.source)
    if src.start is not None and src.end is not None and path.is_file():
        try:
            return path.read_text(encoding="utf-8", errors="replace")[src.start:src.end]
        except OSError:
            return ""
    return ""


def _hits(result: Any) -> list[dict[str, Any]]:
    """Passages in a search result: `{"passages": [...]}` (the agent's search tool) or a list of hits."""
    items = result.get("passages") if isinstance(result, dict) else result
    return [h for h in items if isinstance(h, dict)] if isinstance(items, list) else []


def plan_export(plan: Plan, plan_id: int | None, fmt: str) -> str:
    """The plan as JSON or YAML: the plan store's export when stored, else the same dump made here."""
    if plan_id is not None:
        try:
            from agent.plans import PlanStore

            return PlanStore().export(plan_id, fmt)
        except Exception:  # noqa: BLE001 - a store hiccup must not hide the plan; dump it directly
            pass
    data = plan.model_dump(mode="json", exclude_none=True)
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    import json

    return json.dumps(data, indent=2, ensure_ascii=False)


def show_plan(plan: Plan, plan_id: int | None, key: str) -> None:
    """A plan as a checklist, with downloads and a button that turns its steps into tasks."""
    with st.container(border=True):
        st.markdown(f"**Plan:** {plan.goal}")
        for i, step in enumerate(plan.steps):
            detail = f" — {step.detail}" if step.detail else ""
            st.checkbox(f"**{step.title}**{detail}", key=f"{key}-step{i}")
            if step.tool_call:
                st.code(step.tool_call.to_json(), language="json")
        if plan.assumptions:
            st.caption("Assumes: " + "; ".join(plan.assumptions))
        left, mid, right = st.columns(3)
        left.download_button("Download JSON", plan_export(plan, plan_id, "json"), file_name="plan.json",
                             mime="application/json", key=f"{key}-json", on_click="ignore")
        mid.download_button("Download YAML", plan_export(plan, plan_id, "yaml"), file_name="plan.yaml",
                            mime="application/yaml", key=f"{key}-yaml", on_click="ignore")
        right.button("Turn into tasks", key=f"{key}-totasks", on_click=_plan_to_tasks,
                     args=(plan, plan_id, key))
        done = st.session_state.get(f"{key}-tasks")
        if isinstance(done, int):
            st.success(f"Added {done} tasks: see the Tasks & plans page.")
        elif done:
            st.error(done)


def _plan_to_tasks(plan: Plan, plan_id: int | None, key: str) -> None:
    from ui.app.services import describe_error

    try:
        from agent.plans import PlanStore

        store = PlanStore()
        stored_id = plan_id if plan_id is not None else store.save(plan)
        st.session_state[f"{key}-tasks"] = len(store.to_tasks(stored_id))
    except Exception as exc:  # noqa: BLE001 - shown to the person, with the fix
        st.session_state[f"{key}-tasks"] = describe_error(exc)
