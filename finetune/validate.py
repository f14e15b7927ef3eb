"""Record validation: every target call names an offered tool, has its required arguments, and its
arguments validate against that tool's JSON Schema (the `jsonschema` library, Draft 2020-12).

NESTFUL arguments may hold references to earlier results (`$var1.x$`); their value is only known at
run time, so such arguments are checked for presence, not type.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field

from andini.errors import InputError
from andini.schema import Example, ToolSpec
from finetune.readers import NESTFUL_REF, iter_checked


class Problem(BaseModel):
    """Why one record is unusable."""

    path: str = Field(description="File the record came from.")
    line: int | None = Field(None, description="1-based line where the record starts.")
    field: str | None = Field(None, description="Field at fault, e.g. target_calls[0].arguments.unit.")
    reason: str = Field(description="What is wrong.")

    def __str__(self) -> str:
        return str(InputError(self.reason, path=self.path, line=self.line, field=self.field))


def _validator(tool: ToolSpec):
    from jsonschema import Draft202012Validator

    return Draft202012Validator(tool.parameters)


def example_problems(example: Example) -> list[tuple[str, str]]:
    """(field, reason) for everything wrong with one example; empty when it is usable."""
    from jsonschema.exceptions import SchemaError

    problems: list[tuple[str, str]] = []
    if not example.target_calls and example.target_plan is None and not example.target_text:
        problems.append(("target", "no target: needs tool calls, a plan or a text answer"))
    tools = {t.name: t for t in example.tools}
    for i, tool in enumerate(example.tools):
        try:
            _validator(tool).check_schema(tool.parameters)
        except SchemaError as exc:
            problems.append((f"tools[{i}].parameters", f"not a valid JSON Schema: {exc.message}"))
            tools.pop(tool.name, None)
    for i, call in enumerate(example.target_calls):
        where = f"target_calls[{i}]"
        if call.name not in tools:
            problems.append((f"{where}.name", f"calls {call.name!r}, which is not an offered tool"))
            continue
        args = {k: v for k, v in call.arguments.items() if not (isinstance(v, str) and NESTFUL_REF.match(v))}
        schema_required = tools[call.name].parameters.get("required") or []
        for name in schema_required:
            if name not in call.arguments:
                problems.append((f"{where}.arguments.{name}", "required argument missing"))
        for err in _validator(tools[call.name]).iter_errors(args):
            if err.validator == "required":
                continue  # reported above, references included
            loc = ".".join(str(p) for p in err.absolute_path)
            problems.append((f"{where}.arguments{'.' + loc if loc else ''}", err.message[:200]))
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
            field, reason = found[0]
            problem = Problem(path=str(path), line=line, field=field, reason=reason)
        if strict:
            raise InputError(problem.reason, path=problem.path, line=problem.line, field=problem.field)
        yield None, problem


def reason_kind(reason: str) -> str:
    """A reason without the offending value, to count problems by kind."""
    reason = re.sub(r"^tool '.*' is not", "tool is not", reason)
    reason = re.sub(r"^.* is not (of type|one of)", r"value is not \1", reason)
    return reason.split(":")[0][:80]


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
    reasons = Counter(reason_kind(p.reason) for p in problems)
    return {"file": str(path), "format": fmt, "valid": ok, "invalid": len(problems),
            "by_reason": dict(reasons.most_common()), "problems": [p.model_dump() for p in problems[:limit]]}
