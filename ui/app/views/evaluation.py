"""Evaluation: the runs `andini eval ...` saved, as tables and charts, and two runs side by side.
Reads through `eval.reports.list_runs` / `load_run`; the report on disk is `eval.compare.compare_runs`."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import streamlit as st

from ui.app import services
from ui.app.render import show_error


def numbers(mapping: Any) -> dict[str, float]:
    """The numeric entries of a summary section (booleans and texts left out)."""
    if not isinstance(mapping, dict):
        return {}
    return {k: v for k, v in mapping.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def rates(metrics: dict[str, float]) -> dict[str, float]:
    """Metrics on a 0..1 scale (accuracy and the like, not seconds), the ones that share one chart axis."""
    return {k: v for k, v in metrics.items() if 0.0 <= v <= 1.0 and k != "items" and not k.endswith("_s")}


def overall(run: dict[str, Any]) -> dict[str, float]:
    return numbers(run["summary"].get("overall")) or numbers(run["summary"])


def category_rows(run: dict[str, Any]) -> list[dict[str, Any]]:
    cats = run["summary"].get("categories") or {}
    return [{"category": name, **numbers(values)} for name, values in cats.items()]


def runs_table(runs: list) -> None:
    st.dataframe([{"run": r.name, "kind": r.kind, "started": r.created_at, "items": r.items,
                   "complete": r.complete, **r.headline} for r in runs], hide_index=True)


def show_run(path: Path) -> None:
    from eval.reports import load_run

    run = load_run(path)
    metrics = overall(run)
    left, right = st.columns(2)
    left.dataframe([{"metric": k, "value": v} for k, v in metrics.items()], hide_index=True)
    if rates(metrics):
        right.bar_chart(rates(metrics), horizontal=True, y_label="", x_label="overall")
    if rows := category_rows(run):
        st.markdown("**Per category**")
        st.dataframe(rows, hide_index=True)
    if run["items"]:
        st.markdown(f"**Items** ({len(run['items'])})")
        st.dataframe(run["items"][:2000], hide_index=True)


def compare(path_a: Path, path_b: Path) -> None:
    from eval.reports import load_run

    run_a, run_b = load_run(path_a), load_run(path_b)
    a, b = overall(run_a), overall(run_b)
    names = list(dict.fromkeys([*a, *b]))
    st.dataframe([{"metric": n, "A": a.get(n), "B": b.get(n),
                   "B − A": round(b[n] - a[n], 6) if n in a and n in b else None} for n in names],
                 hide_index=True)
    shared = [n for n in rates(a) if n in rates(b)]
    if shared:
        st.bar_chart([{"metric": n, "run": run, "value": vals[n]} for n in shared
                      for run, vals in (("A", a), ("B", b))], x="metric", y="value", color="run",
                     horizontal=True, stack=False)
    left, right = st.columns(2)
    for column, label, run in ((left, "A", run_a), (right, "B", run_b)):
        if rows := category_rows(run):
            column.markdown(f"**{label}: per category**")
            column.dataframe(rows, hide_index=True)
    if st.button("Write a comparison report (Markdown, HTML, charts)"):
        write_report(path_a, path_b)


def write_report(path_a: Path, path_b: Path) -> None:
    from eval.compare import compare_runs

    try:
        report = compare_runs([path_a, path_b], Path(tempfile.mkdtemp(prefix="andini-compare-")))
    except Exception as exc:  # noqa: BLE001 - e.g. runs of different kinds: say so
        show_error(services.describe_error(exc))
        return
    st.success(f"Report written to {report} (and report.html beside it)")
    for png in sorted(report.parent.glob("*.png")):
        st.image(str(png), caption=png.name)


def main() -> None:
    st.title("Evaluation")
    from eval.reports import list_runs

    runs = list_runs()
    if not runs:
        st.info("No evaluation runs yet. Run one, for example `andini eval toolcalls --data FILE "
                "--format bfcl`, then reload this page.")
        return
    runs_table(runs)
    labels = {f"{r.name} — {r.path.name}": r.path for r in runs}
    one, two = st.tabs(["One run", "Compare two runs"])
    with one:
        choice = st.selectbox("Run", list(labels), key="eval-run")
        show_run(labels[choice])
    with two:
        left, right = st.columns(2)
        a = left.selectbox("Run A (baseline)", list(labels), index=min(1, len(labels) - 1), key="eval-a")
        b = right.selectbox("Run B", list(labels), index=0, key="eval-b")
        compare(labels[a], labels[b])


try:
    main()
except Exception as exc:  # noqa: BLE001 - a broken run file should not blank the page
    show_error(services.describe_error(exc))
