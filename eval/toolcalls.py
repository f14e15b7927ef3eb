"""`andini eval toolcalls`: ask a backend for tool calls on a data set and score every answer.

BFCL items are scored with our BFCL-rule AST scorer (eval/bfcl_ast.py); Seal-Tools, NESTFUL and
andini JSONL items with call-level precision/recall (`andini.calls.match_calls`). Every item also records
whether the output parsed, whether each call validates against its tool's JSON Schema, and its latency
and token count. One model call per item (no agent loop): this measures the model, not the agent.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from andini.errors import InputError
from andini.schema import Example, ToolCall
from eval.runs import ModelRunConfig, RunWriter, map_in_order, new_run_dir, timing_summary, wilson_interval

FORMATS = ("bfcl", "seal", "nestful", "andini")
# The leaderboard's order; other BFCL categories found in a folder follow alphabetically.
BFCL_ORDER = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance")
_BFCL_FILE = re.compile(r"BFCL_v\d+_(.+)\.json$")


class ToolcallsConfig(ModelRunConfig):
    """What one `andini eval toolcalls` run evaluates, and how. Saved as the run's config.json."""

    data: Path = Field(description="A data file, or a BFCL folder of BFCL_v4_<category>.json files.")
    format: Literal["bfcl", "seal", "nestful", "andini"] = Field(description="Format of the data.")
    tool_choice: Literal["auto", "required"] = Field(
        "auto", description="'required' makes the model call a tool on every item: a diagnostic of call "
                            "quality apart from the decision to call (the local backend enforces it "
                            "through the grammar, so only with constrained decoding).")
    categories: list[str] | None = Field(None, description="Only these BFCL categories (folder input).")

    def label(self, *suffixes: str) -> str:
        return super().label("-required" if self.tool_choice == "required" else "", *suffixes)


@dataclass
class EvalItem:
    """One example to ask the model, with where it came from and (BFCL) its answer key."""

    example: Example
    category: str
    file: Path
    line: int
    ground_truth: list | None = None


# ---------------------------------------------------------------- loading


def bfcl_files(folder: Path, categories: list[str] | None = None) -> list[Path]:
    """The BFCL category files in a folder, in the leaderboard's order."""
    found = {m.group(1): p for p in folder.glob("BFCL_v*_*.json") if (m := _BFCL_FILE.match(p.name))}
    if not found:
        raise InputError("no BFCL_v<N>_<category>.json files here", path=folder,
                         hint="give the folder that holds the category files and possible_answer/")
    if categories:
        missing = [c for c in categories if c not in found]
        if missing:
            raise InputError(f"no file for categories {missing}; found {sorted(found)}", path=folder)
        found = {c: found[c] for c in categories}
    order = {c: i for i, c in enumerate(BFCL_ORDER)}
    return [found[c] for c in sorted(found, key=lambda c: (order.get(c, len(order)), c))]


def _checked(path: Path, fmt: str) -> Iterator[tuple[int, Example]]:
    from finetune.readers import iter_checked

    for line, item in iter_checked(path, fmt):
        if isinstance(item, InputError):
            raise item
        yield line, item


def load_bfcl_file(path: Path, limit: int | None = None) -> list[EvalItem]:
    """Items of one BFCL category file joined with their answers; every id is checked both ways."""
    category = named.group(1) if (named := _BFCL_FILE.match(path.name)) else path.stem
    from finetune.readers import bfcl_answer_path, bfcl_answers

    answers = bfcl_answers(path)
    if answers is None and "irrelevance" not in category:
        raise InputError("answers file not found", path=bfcl_answer_path(path),
                         hint=f"BFCL keeps the answer key of {path.name} in possible_answer/ beside it")
    items, seen = [], set()
    for line, example in _checked(path, "bfcl"):
        truth = None
        if answers is not None:
            if example.id not in answers:
                raise InputError(f"item {example.id!r} has no answer in {path.parent / 'possible_answer'}",
                                 path=path, line=line, field="id")
            truth = answers[example.id][1]
        seen.add(example.id)
        items.append(EvalItem(example, category, path, line, truth))
    for answer_id, (line, _) in (answers or {}).items():
        if answer_id not in seen:
            raise InputError(f"answer for {answer_id!r}, which {path.name} does not have", field="id",
                             path=bfcl_answer_path(path), line=line)
    return items[:limit]


def load_items(config: ToolcallsConfig) -> list[EvalItem]:
    """Every item the run will ask about, `limit` per category."""
    data = Path(config.data)
    if not data.exists():
        raise InputError("no such file or folder", path=data)
    if config.format == "bfcl":
        files = bfcl_files(data, config.categories) if data.is_dir() else [data]
        return [item for f in files for item in load_bfcl_file(f, config.limit)]
    if data.is_dir():
        raise InputError(f"--format {config.format} reads one file, not a folder", path=data)
    per_category: Counter[str] = Counter()
    items = []
    for line, example in _checked(data, config.format):
        category = str(example.meta.get("category") or data.stem)
        if config.limit is None or per_category[category] < config.limit:
            per_category[category] += 1
            items.append(EvalItem(example, category, data, line))
    return items


# ---------------------------------------------------------------- scoring


def score(item: EvalItem, calls: list[ToolCall], parse_error: str | None, fmt: str) -> dict[str, Any]:
    """Verdict, error type and reason (and call counts for multi-call formats) for one answer."""
    from andini.calls import invalid_calls, match_calls
    from eval.bfcl_ast import score_item

    example = item.example
    # NESTFUL references stand for results of earlier calls: any type, checked for presence.
    result: dict[str, Any] = {"schema_errors": invalid_calls(calls, example.tools, references=fmt == "nestful")}
    if fmt == "bfcl":
        if parse_error and "irrelevance" not in item.category:
            return {**result, "passed": False, "error_type": "parse_error", "error": parse_error}
        # A parse failure on an irrelevance item counts as "no call", as the leaderboard counts it.
        verdict = score_item(example.tools, [] if parse_error else calls, item.ground_truth or [],
                             item.category)
        return {**result, "passed": verdict.valid, "error_type": verdict.error_type, "error": verdict.error}
    # NESTFUL: references are resolved first, so independent calls may come in any order while a
    # reference to a call not made yet stays unresolved and cannot match.
    match = match_calls(calls, example.target_calls, references=fmt == "nestful",
                        expected_labels=example.meta.get("labels"))
    result["match"] = match.model_dump(exclude={"exact"})
    if parse_error:
        return {**result, "passed": False, "error_type": "parse_error", "error": parse_error}
    if match.exact:
        return {**result, "passed": True, "error_type": None, "error": ""}
    kind = "no_call" if not calls else "wrong_tools" if match.tool.matched < match.tool.expected else "wrong_arguments"
    if calls and not example.target_calls:
        kind = "irrelevance:called"
    return {**result, "passed": False, "error_type": kind,
            "error": f"{match.call.matched} of {match.call.expected} expected calls made exactly, "
                     f"{match.call.predicted} made"}


def summarise(records: list[dict[str, Any]], fmt: str) -> dict[str, Any]:
    """Metrics per category and overall."""
    categories: dict[str, list[dict]] = {}
    for record in records:
        categories.setdefault(record["category"], []).append(record)
    per_category = {name: _metrics(rows, fmt) for name, rows in categories.items()}
    overall = _metrics(records, fmt)
    if per_category:
        accuracies = [m["accuracy"] for m in per_category.values()]
        overall["mean_category_accuracy"] = round(sum(accuracies) / len(accuracies), 4)
    return {"kind": "toolcalls", "format": fmt, "overall": overall, "categories": per_category}


def _metrics(rows: list[dict[str, Any]], fmt: str) -> dict[str, Any]:
    from andini.calls import Counts

    n = len(rows)
    passed = sum(r["passed"] for r in rows)
    calls = sum(len(r["calls"]) for r in rows)
    invalid_calls = sum(len(r["schema_errors"]) for r in rows)
    metrics: dict[str, Any] = {
        "items": n,
        "passed": passed,
        "accuracy": round(passed / n, 4) if n else 0.0,
        "accuracy_ci95": wilson_interval(passed, n),
        **decline_metrics(rows),
        "parse_failure_rate": round(sum(bool(r["parse_error"]) for r in rows) / n, 4) if n else 0.0,
        "calls": calls,
        "schema_valid_rate": round(1 - invalid_calls / calls, 4) if calls else None,
        **timing_summary([r["latency_s"] for r in rows], [r["new_tokens"] for r in rows]),
        "error_types": dict(Counter(r["error_type"] for r in rows if r["error_type"]).most_common()),
        # items whose output the budget ended before a call the model began: a fail here may be the budget's
        "stopped_before_call": sum(bool(r.get("stopped_before_call")) for r in rows),
    }
    if fmt != "bfcl":
        for grain in ("tool", "param", "call"):
            total = Counts()
            for r in rows:
                total.add(Counts(**r["match"][grain]))
            metrics.update({f"{grain}_{k}": v for k, v in total.scores().items()})
    return metrics


def decline_metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Declining scored from both sides: of the items that expect a call, the share answered with no
    call at all (a model that learned to refuse); of the items that expect none, the share answered
    with a call (a model that calls whatever it is offered). Each with its item count and 95% CI, so
    a category's accuracy can be read as "wrong call" versus "wrongly declined" or "wrongly called"."""
    expect_call = [r for r in rows if r["expected"]]
    expect_none = [r for r in rows if not r["expected"]]
    declined = sum(not r["calls"] for r in expect_call)
    called = sum(bool(r["calls"]) for r in expect_none)
    return {
        "expect_call_items": len(expect_call),
        "no_call_where_expected": round(declined / len(expect_call), 4) if expect_call else None,
        "no_call_where_expected_ci95": wilson_interval(declined, len(expect_call)),
        "expect_none_items": len(expect_none),
        "call_where_none_expected": round(called / len(expect_none), 4) if expect_none else None,
        "call_where_none_expected_ci95": wilson_interval(called, len(expect_none)),
    }


# ---------------------------------------------------------------- running


def _prompt_text(config: ToolcallsConfig, example: Example) -> str | None:
    """The exact prompt the local backend renders (servers render their own, so None there)."""
    from agent.backends import get_backend
    from andini.settings import get_settings

    settings = get_settings()
    if not get_backend(config.backend, settings).in_process:
        return None
    from andini.formats import detect_format, get_format, prompt_text

    fmt = get_format(detect_format(config.model or settings.model))  # the format the engine detects
    return prompt_text(fmt, example.messages, example.tools)


def ask(config: ToolcallsConfig, item: EvalItem, complete: Callable[..., Any]) -> dict[str, Any]:
    """One model call and its scored record."""
    example = item.example
    options = {"tool_choice": config.tool_choice} if config.tool_choice != "auto" else {}
    completion = complete(example.messages, example.tools, backend=config.backend, model=config.model,
                          adapter=config.adapter, constrained=config.constrained,
                          max_new_tokens=config.max_new_tokens, **options)
    # The backend reports parse and schema problems in one `error`; a parse failure is one with no
    # call recovered. Schema validity is measured on its own (`schema_errors`), calls are still scored.
    parse_error = completion.error if completion.error and not completion.calls else None
    record = {
        "id": example.id, "category": item.category, "file": str(item.file), "line": item.line,
        "messages": [m.model_dump(exclude_defaults=True) for m in example.messages],
        "prompt": _prompt_text(config, example),
        "tools": [t.name for t in example.tools],
        "expected": item.ground_truth if item.ground_truth is not None
        else [c.model_dump() for c in example.target_calls],
        "raw_output": completion.text, "content": completion.content,
        "calls": [c.model_dump() for c in completion.calls], "parse_error": parse_error,
        "backend_error": completion.error,
        "latency_s": round(completion.latency_s, 4), "ttft_s": completion.ttft_s,
        "new_tokens": completion.new_tokens, "stopped_before_call": completion.stopped_before_call,
    }
    record.update(score(item, list(completion.calls), parse_error, config.format))
    return record


def run_toolcalls(config: ToolcallsConfig, out: Path | None = None, complete: Callable[..., Any] | None = None,
                  progress: Callable[[int, int, dict], None] | None = None) -> tuple[Path, dict[str, Any]]:
    """Evaluate, write the run folder, and return (folder, summary).

    `complete` defaults to `agent.backends.complete`; tests of plumbing may pass a scripted one."""
    items = load_items(config)
    if complete is None:
        from agent.backends import complete as backend_complete

        complete = backend_complete
    run_dir = new_run_dir("toolcalls", config.label(), out)
    writer = RunWriter(run_dir)
    writer.write_config({"kind": "toolcalls", "name": config.label(), **config.model_dump(mode="json"),
                         "resolved": _resolved_settings(config), "items": len(items)})
    records = []
    try:
        asked = map_in_order(lambda item: ask(config, item, complete), items, config.batch)
        for index, record in enumerate(asked, start=1):
            writer.add_item(record)
            records.append(record)
            if progress:
                progress(index, len(items), record)
    finally:
        writer.close()
    summary = {"name": config.label(), **summarise(records, config.format)}
    writer.write_summary(summary)
    return run_dir, summary


def _resolved_settings(config: ToolcallsConfig) -> dict[str, Any]:
    """The settings that shaped the run, as they were (so a run can be repeated)."""
    from andini.settings import get_settings

    s = get_settings()
    return {"backend": config.backend or s.backend, "model": config.model or s.model,
            "adapter": config.adapter or s.adapter, "temperature": s.temperature,
            "max_new_tokens": config.max_new_tokens or s.max_new_tokens}
