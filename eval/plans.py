"""`andini eval plans`: plans generated for CoPlan goals, scored against the human-written plans.

Metrics, and what they cannot say:
- schema validity: the output is a `make_plan` call (or a JSON object) that validates as an
  `andini.schema.Plan`. Exact, and what the product needs first.
- step count error: |steps generated - steps in the human plan|. Many good plans differ in grain
  (one human step is two of ours), so this measures verbosity, not quality.
- ROUGE-L F1 of the step titles (one line per step, Google's `rouge-score`, stemmed): longest common
  subsequence of words. It rewards the human plan's wording and order; a correct plan in other words
  scores low, and a fluent wrong one can score fairly well. Compare runs with it; never read it as
  "percent correct". Only schema-valid plans are scored; invalid ones count in the validity rate.

By default it scores the held-out plan split that `andini data build` writes (goals no training split
holds, finetune.data.plan_heldout_path); a CoPlan file given with --data is read as raw CoPlan.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from andini.errors import InputError
from andini.schema import Example, Plan
from eval.runs import (
    ModelRunConfig,
    RunWriter,
    bootstrap_interval,
    map_in_order,
    new_run_dir,
    timing_summary,
    wilson_interval,
)
from finetune.data import plan_heldout_path


class PlansConfig(ModelRunConfig):
    """What one `andini eval plans` run evaluates. Saved as the run's config.json."""

    data: Path = Field(default_factory=plan_heldout_path,
                       description="The plan examples: andini JSONL (default: the held-out plan split that "
                                   "`andini data build` writes) or a CoPlan JSONL file (goal, script[, ...]).")
    tool_choice: Literal["auto", "required"] = Field(
        "required", description="'required' (default) asks for the make_plan call outright: this scores "
                                "plans, not the decision to plan; 'auto' lets the model answer in prose.")


def extract_plan(calls: list[Any], content: str) -> tuple[Plan | None, str | None]:
    """(plan, None) when the output holds a valid plan, else (None, why not)."""
    if calls:
        candidate: Any = calls[0].arguments
    else:
        try:
            candidate = json.loads(content.strip() or "null")
        except json.JSONDecodeError as exc:
            return None, f"no make_plan call and the text is not JSON ({exc.msg})"
    try:
        return Plan.model_validate(candidate), None
    except ValidationError as exc:
        first = exc.errors()[0]
        return None, f"{'.'.join(map(str, first['loc'])) or 'plan'}: {first['msg']}"


def rouge_l(predicted: list[str], reference: list[str]) -> float:
    """ROUGE-L F1 between two step lists (steps as lines; rouge-score with stemming)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=True)
    return scorer.score("\n".join(reference), "\n".join(predicted))["rougeLsum"].fmeasure


def score_plan(example: Example, calls: list[Any], content: str, parse_error: str | None) -> dict[str, Any]:
    reference = [s.title for s in example.target_plan.steps] if example.target_plan else []
    plan, why = (None, parse_error) if parse_error and not calls else extract_plan(calls, content)
    if plan is None:
        return {"passed": False, "error_type": "parse_error" if parse_error else "schema_invalid", "error": why,
                "reference_steps": reference}
    steps = [s.title for s in plan.steps]
    return {"passed": True, "error_type": None, "error": "", "plan": plan.model_dump(exclude_none=True),
            "reference_steps": reference, "step_count_error": abs(len(steps) - len(reference)),
            "rouge_l_f": round(rouge_l(steps, reference), 4)}


def summarise_plans(records: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(records)
    valid = [r for r in records if r["passed"]]
    overall = {
        "items": n,
        "passed": len(valid),
        "schema_valid_rate": round(len(valid) / n, 4) if n else 0.0,
        "schema_valid_ci95": wilson_interval(len(valid), n),
        "parse_failure_rate": round(sum(bool(r["parse_error"]) for r in records) / n, 4) if n else 0.0,
        "step_count_mae": round(sum(r["step_count_error"] for r in valid) / len(valid), 3) if valid else None,
        "rouge_l_f": round(sum(r["rouge_l_f"] for r in valid) / len(valid), 4) if valid else None,
        "rouge_l_f_ci95": bootstrap_interval([r["rouge_l_f"] for r in valid]),
        **timing_summary([r["latency_s"] for r in records], [r["new_tokens"] for r in records]),
    }
    return {"kind": "plans", "overall": overall}


def read_plan_examples(path: Path) -> list[Example]:
    """Plan examples from the held-out split (andini JSONL) or a raw CoPlan file."""
    from finetune.readers import guess_format, read_examples

    if not path.is_file():
        held = path == plan_heldout_path()
        raise InputError("no held-out plan split yet" if held else "no such file", path=path,
                         hint="run `andini data build CONFIG.yaml` with a CoPlan source (configs/smollm2-cpu.yaml)"
                              if held else None)
    fmt = guess_format(path)
    examples = list(read_examples(path, "coplan" if fmt == "coplan" else "andini"))
    for ex in examples:
        if ex.target_plan is None:
            raise InputError(f"example {ex.id} holds no plan to score against", path=path,
                             hint="give a plan file: the held-out split or a CoPlan JSONL file")
    return examples


def ask_plan(config: PlansConfig, example: Example, complete: Callable[..., Any]) -> dict[str, Any]:
    """One plan request and its scored record. The prompt is the one a plan example is trained on:
    the request, with `make_plan` offered."""
    messages = example.messages
    completion = complete(messages, example.tools, backend=config.backend, model=config.model,
                          adapter=config.adapter, constrained=config.constrained,
                          max_new_tokens=config.max_new_tokens, tool_choice=config.tool_choice)
    return {"id": example.id, "category": "coplan", "goal": example.meta.get("goal"),
            "messages": [m.model_dump(exclude_defaults=True) for m in messages],
            "raw_output": completion.text, "calls": [c.model_dump() for c in completion.calls],
            "parse_error": completion.error, "latency_s": round(completion.latency_s, 4),
            "new_tokens": completion.new_tokens,
            **score_plan(example, list(completion.calls), completion.content, completion.error)}


def run_plans(config: PlansConfig, out: Path | None = None, complete: Callable[..., Any] | None = None,
              progress: Callable[[int, int, dict], None] | None = None) -> tuple[Path, dict[str, Any]]:
    """Generate a plan per goal, score it, write the run folder; returns (folder, summary)."""
    examples = read_plan_examples(Path(config.data))[: config.limit]
    if complete is None:
        from agent.backends import complete as backend_complete

        complete = backend_complete
    run_dir = new_run_dir("plans", config.label(), out)
    writer = RunWriter(run_dir)
    writer.write_config({"kind": "plans", "name": config.label(), **config.model_dump(mode="json"),
                         "items": len(examples)})
    records = []
    try:
        for index, record in enumerate(map_in_order(lambda ex: ask_plan(config, ex, complete), examples,
                                                    config.batch), start=1):
            writer.add_item(record)
            records.append(record)
            if progress:
                progress(index, len(examples), record)
    finally:
        writer.close()
    summary = {"name": config.label(), **summarise_plans(records)}
    writer.write_summary(summary)
    return run_dir, summary
