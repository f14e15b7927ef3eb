"""Evaluation: the runs `andini eval ...` saved, as tables and charts, and two runs side by side.
Reads through `eval.reports.list_runs` / `load_run` and writes comparisons with `eval.compare.compare_runs`."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import streamlit as st

from ui import services
from ui.render import show_error


def flat_metrics(summary: Any, prefix: str = "") -> dict[str, float]:
    """The numbers of a run summary by dotted name (nested dicts flattened), for tables and charts."""
    out: dict[str, float] = {}
    if isinstance(summary, dict):
        for name, value in summary.items():
            out.update(flat_metrics(value, f"{prefix}{name}."))
    elif isinstance(summary, bool):
        pass
    elif isinstance(summary, int | float):
        out[prefix.rstrip(".")] = float(summary)
    return out


def run_label(run: Any) -> str:
    data = run.model_dump() if hasattr(run, "model_dump") else dict(run)
    name = data.get("name") or Path(str(data.get("path", "run"))).name
    kind = data.get("kind") or data.get("task") or ""
    when = data.get("created_at") or ""
    return " · ".join(str(p) for p in (name, kind, when) if p)


def run_path(run: Any) -> Path:
    return Path(getattr(run, "path", None) or getattr(run, "dir", None) or run["path"])


def show_run(path: Path) -> None:
    from eval.reports import load_run

    data = load_run(path)
    metrics = flat_metrics(data.get("summary", {}))
    if metrics:
        st.dataframe([{"metric": k, "value": v} for k, v in metrics.items()], hide_index=True)
        st.bar_chart({"value": metrics}, horizontal=True)
    items = data.get("items") or []
    if items:
        st.caption(f"{len(items)} items")
        st.dataframe(items[:2000], hide_index=True)


def compare(left: Path, right: Path) -> None:
    from eval.reports import load_run

    a = flat_metrics(load_run(left).get("summary", {}))
    b = flat_metrics(load_run(right).get("summary", {}))
    names = [n for n in a if n in b] + [n for n in a if n not in b] + [n for n in b if n not in a]
    rows = [{"metric": n, "A": a.get(n), "B": b.get(n),
             "B − A": (b[n] - a[n]) if n in a and n in b else None} for n in names]
    st.dataframe(rows, hide_index=True)
    shared = [n for n in names if n in a and n in b]
    if shared:
        st.bar_chart({"A": {n: a[n] for n in shared}, "B": {n: b[n] for n in shared}}, horizontal=True,
                     stack=False)
    if st.button("Write a comparison report (Markdown, HTML, charts)"):
        from eval.compare import compare_runs

        out = Path(tempfile.mkdtemp(prefix="andini-compare-"))
        report = compare_runs([left, right], out)
        st.success(f"Report written to {report}")
        for png in sorted(out.glob("*.png")):
            st.image(str(png), caption=png.name)


def main() -> None:
    st.title("Evaluation")
    from eval.reports import list_runs

    runs = list_runs()
    if not runs:
        st.info("No evaluation runs yet. Run one, for example `andini eval toolcalls --data FILE "
                "--format bfcl`, then reload this page.")
        return
    st.dataframe([r.model_dump(mode="json") if hasattr(r, "model_dump") else r for r in runs],
                 hide_index=True)
    by_label = {run_label(r): run_path(r) for r in runs}
    one, two = st.tabs(["One run", "Compare two runs"])
    with one:
        choice = st.selectbox("Run", list(by_label), key="eval-run")
        show_run(by_label[choice])
    with two:
        left, right = st.columns(2)
        a = left.selectbox("Run A", list(by_label), key="eval-a")
        b = right.selectbox("Run B", list(by_label), index=min(1, len(by_label) - 1), key="eval-b")
        compare(by_label[a], by_label[b])


try:
    main()
except Exception as exc:  # noqa: BLE001 - a broken run file should not blank the page
    show_error(services.describe_error(exc))
