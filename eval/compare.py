"""`andini eval compare RUN RUN [...]`: one report over several runs, the first being the baseline.

Writes report.md and report.html (the same tables), overall.png and categories.png (matplotlib bar
charts), and lists the items that flipped from pass to fail or back against the baseline.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from andini.errors import InputError
from eval.reports import load_run

# The one metric a category table shows, in order of preference.
_MAIN_METRICS = ("accuracy", "recall@5", "mrr", "schema_valid_rate", "rouge_l_f")
_LOWER_IS_BETTER = ("latency", "error", "failure")


def _label_runs(runs: list[dict[str, Any]]) -> list[str]:
    labels = []
    for index, run in enumerate(runs):
        label = str(run["summary"].get("name") or run["config"].get("name") or Path(run["path"]).name)
        labels.append(label if label not in labels else f"{label} ({index + 1})")
    return labels


def _numbers(mapping: Any) -> dict[str, float]:
    if not isinstance(mapping, dict):
        return {}
    return {k: v for k, v in mapping.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _overall(run: dict[str, Any]) -> dict[str, float]:
    summary = run["summary"]
    return _numbers(summary.get("overall")) or _numbers(summary)


def _main_metric(runs: list[dict[str, Any]]) -> str | None:
    for metric in _MAIN_METRICS:
        if any(metric in _numbers(c) for r in runs for c in (r["summary"].get("categories") or {}).values()):
            return metric
    return None


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _delta(value: float | None, base: float | None) -> str:
    if value is None or base is None:
        return "-"
    return f"{value - base:+.4g}"


def overall_table(runs: list[dict[str, Any]], labels: list[str]) -> tuple[list[str], list[list[str]]]:
    """Rows of overall metrics: each run's value, then each later run's delta against the first."""
    metrics: list[str] = []
    for run in runs:
        metrics += [m for m in _overall(run) if m not in metrics]
    header = ["metric", *labels, *[f"Δ {label}" for label in labels[1:]]]
    rows = []
    for metric in metrics:
        values = [_overall(r).get(metric) for r in runs]
        rows.append([metric, *map(_fmt, values), *[_delta(v, values[0]) for v in values[1:]]])
    return header, rows


def category_table(runs: list[dict[str, Any]], labels: list[str], metric: str) -> tuple[list[str], list[list[str]]]:
    """Rows per category of one metric (with item counts), and deltas against the first run."""
    categories: list[str] = []
    for run in runs:
        categories += [c for c in (run["summary"].get("categories") or {}) if c not in categories]
    header = ["category", "n", *labels, *[f"Δ {label}" for label in labels[1:]]]
    rows = []
    for category in categories:
        cells = [(run["summary"].get("categories") or {}).get(category) or {} for run in runs]
        values = [c.get(metric) for c in cells]
        counts = "/".join(str(c.get("items", "-")) for c in cells)
        rows.append([category, counts, *map(_fmt, values), *[_delta(v, values[0]) for v in values[1:]]])
    return header, rows


def flips(base: dict[str, Any], other: dict[str, Any]) -> dict[str, list[str]]:
    """Items scored in both runs whose verdict changed: {"pass_to_fail": [...], "fail_to_pass": [...]}."""
    def verdicts(run):
        return {(i.get("category", ""), i["id"]): bool(i.get("passed")) for i in run["items"]
                if "id" in i and "passed" in i}

    a, b = verdicts(base), verdicts(other)
    shared = sorted(set(a) & set(b))
    return {"pass_to_fail": [f"{c}/{i}" for c, i in shared if a[(c, i)] and not b[(c, i)]],
            "fail_to_pass": [f"{c}/{i}" for c, i in shared if not a[(c, i)] and b[(c, i)]]}


def _bar_chart(series: dict[str, dict[str, float]], title: str, path: Path) -> Path | None:
    """Grouped bars: one group per key, one bar per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in dict.fromkeys(k for values in series.values() for k in values)]
    if not keys:
        return None
    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(keys) * max(1, len(series)) ** 0.5), 4.0))
    for index, (label, values) in enumerate(series.items()):
        xs = [k + index * width for k in range(len(keys))]
        ax.bar(xs, [values.get(k, 0.0) for k in keys], width, label=label)
    ax.set_xticks([k + width * (len(series) - 1) / 2 for k in range(len(keys))], keys, rotation=20, ha="right")
    ax.set_title(title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _charts(runs, labels, metric, out: Path) -> list[Path]:
    charts = []
    if metric:
        series = {label: {c: v[metric] for c, v in (r["summary"].get("categories") or {}).items() if metric in v}
                  for label, r in zip(labels, runs, strict=True)}
        charts.append(_bar_chart(series, f"{metric} per category", out / "categories.png"))
    rates = {label: {m: v for m, v in _overall(r).items() if 0.0 <= v <= 1.0 and isinstance(v, float)
                     and not any(w in m for w in _LOWER_IS_BETTER)}
             for label, r in zip(labels, runs, strict=True)}
    charts.append(_bar_chart(rates, "overall rates", out / "overall.png"))
    return [c for c in charts if c]


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def compare_runs(paths: list[Path | str], out: Path | str) -> Path:
    """Compare runs (the first is the baseline); write report.md, report.html and PNGs to `out`.
    Returns the path of report.md."""
    if len(paths) < 2:
        raise InputError("compare needs at least two run folders")
    runs = [load_run(p) for p in paths]
    kinds = {r["summary"].get("kind") or r["config"].get("kind") for r in runs}
    if len(kinds) > 1:
        raise InputError(f"runs of different kinds cannot be compared: {sorted(map(str, kinds))}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    labels = _label_runs(runs)
    metric = _main_metric(runs)
    sections = [("Runs", ["run", "folder", "items"],
                 [[label, r["path"], str(len(r["items"]))] for label, r in zip(labels, runs, strict=True)]),
                ("Overall", *overall_table(runs, labels))]
    if metric:
        sections.append((f"Per category: {metric}", *category_table(runs, labels, metric)))
    flipped = {label: flips(runs[0], run) for label, run in zip(labels[1:], runs[1:], strict=True)}
    charts = _charts(runs, labels, metric, out)
    _write_markdown(out / "report.md", labels, sections, flipped, charts)
    _write_html(out / "report.html", labels, sections, flipped, charts)
    return out / "report.md"


def _flip_lines(flipped: dict[str, dict[str, list[str]]], baseline: str) -> list[tuple[str, list[str]]]:
    return [(f"{label} vs {baseline}: {direction.replace('_', ' ')} ({len(ids)})", ids)
            for label, both in flipped.items() for direction, ids in both.items()]


def _write_markdown(path: Path, labels, sections, flipped, charts) -> None:
    parts = [f"# Comparison: {' vs '.join(labels)}", "", f"Baseline: {labels[0]}. Δ = run minus baseline.", ""]
    for title, header, rows in sections:
        parts += [f"## {title}", "", _md_table(header, rows), ""]
    parts += [f"![{c.stem}]({c.name})" for c in charts] + [""]
    parts += ["## Items that flipped", ""]
    for title, ids in _flip_lines(flipped, labels[0]):
        parts += [f"**{title}**: " + (", ".join(ids) if ids else "none"), ""]
    path.write_text("\n".join(parts), encoding="utf-8")


def _write_html(path: Path, labels, sections, flipped, charts) -> None:
    title = html.escape(" vs ".join(labels))
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}</style>",
             f"</head><body><h1>Comparison: {title}</h1>",
             f"<p>Baseline: {html.escape(labels[0])}. Δ = run minus baseline.</p>"]
    for heading, header, rows in sections:
        parts += [f"<h2>{html.escape(heading)}</h2>", _html_table(header, rows)]
    parts += [f"<img src='{c.name}' alt='{c.stem}'>" for c in charts]
    parts.append("<h2>Items that flipped</h2>")
    for heading, ids in _flip_lines(flipped, labels[0]):
        parts.append(f"<p><b>{html.escape(heading)}</b>: {html.escape(', '.join(ids) or 'none')}</p>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
