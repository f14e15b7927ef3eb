"""Record validation: every offered tool's schema is a JSON Schema, and every target call passes the
one call validator (`andini.calls`, which the agent and the evaluator use too): it names an offered
tool, has its required arguments, and its arguments validate against that tool's schema.

NESTFUL arguments may hold references to earlier results (`$var1.x$`); their value is only known at
run time, so such arguments are checked for presence, not type.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field

from andini.calls import call_problems
from andini.errors import InputError
from andini.schema import Example
from finetune.readers import iter_checked


class Problem(BaseModel):
    """Why one record is unusable."""

    path: str = Field(description="File the record came from.")
    line: int | None = Field(None, description="1-based line where the record starts.")
    field: str | None = Field(None, description="Field at fault, e.g. target_calls[0].arguments.unit.")
    reason: str = Field(description="What is wrong.")
    kind: str = Field("record", description="The rule broken, to count problems by: a JSON Schema keyword "
                                            "('type', 'enum', 'required', ...), 'unknown_tool', 'schema' "
                                            "(a tool's own schema), 'target' or 'record' (unreadable).")

    def __str__(self) -> str:
        return str(InputError(self.reason, path=self.path, line=self.line, field=self.field))


def example_problems(example: Example) -> list[tuple[str, str, str]]:
    """(field, reason, kind) for everything wrong with one example; empty when it is usable."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    problems: list[tuple[str, str, str]] = []
    if not example.target_calls and example.target_plan is None and not example.target_text:
        problems.append(("target", "no target: needs tool calls, a plan or a text answer", "target"))
    tools = list(example.tools)
    for i, tool in enumerate(example.tools):
        try:
            Draft202012Validator.check_schema(tool.parameters)
        except SchemaError as exc:
            problems.append((f"tools[{i}].parameters", f"{tool.name}: not a valid JSON Schema: {exc.message}",
                             "schema"))
            tools.remove(tool)
    invalid = {t.name for t in example.tools} - {t.name for t in tools}
    for i, call in enumerate(example.target_calls):
        if call.name in invalid:
            continue  # its tool's schema is reported above
        for problem in call_problems(call, tools, references=True):
            field = f"target_calls[{i}]." + (f"arguments.{problem.argument}" if problem.argument else "name")
            problems.append((field, str(problem), problem.rule))
    return problems


def check_file(path: Path | str, fmt: str, strict: bool = False) -> Iterator[tuple[Example | None, Problem | None]]:
    """Each record of a file as (example, None) or (None, problem). `strict` raises at the first problem."""
    for line, item in iter_checked(path, fmt):
        if isinstance(item, InputError):
            problem = Problem(path=str(path), line=line, field=item.field, reason=_reason(item))
        else:
            found = example_problems(item)
            if not found:
                yield item, None
                continue
            field, reason, kind = found[0]
            problem = Problem(path=str(path), line=line, field=field, reason=reason, kind=kind)
        if strict:
            raise InputError(problem.reason, path=problem.path, line=problem.line, field=problem.field)
        yield None, problem


def _reason(err: InputError) -> str:
    text = str(err).split(": ", 1)[-1] if err.line is not None or err.path is not None else str(err)
    return text.split(" (field '")[0]


def check_report(path: Path | str, fmt: str, strict: bool = False, limit: int = 20) -> dict:
    """`andini data check`: counts, problems by reason, and the first `limit` problems in full."""
    ok = 0
    problems: list[Problem] = []
    for example, problem in check_file(path, fmt, strict=strict):
        if example is not None:
            ok += 1
        else:
            problems.append(problem)
    reasons = Counter(p.kind for p in problems)
    return {"file": str(path), "format": fmt, "valid": ok, "invalid": len(problems),
            "by_reason": dict(reasons.most_common()), "problems": [p.model_dump() for p in problems[:limit]]}
