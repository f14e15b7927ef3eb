"""Record validation: every offered tool's schema is a JSON Schema, and every target call passes the
one call validator (`andini.calls`, which the agent and the evaluator use too): it names an offered
tool, has its required arguments, and its arguments validate against that tool's schema.

NESTFUL arguments may hold references to earlier results (`$var1.x$`); their value is only known at
run time, so such arguments are checked for presence, not type.

`repair_types` fixes one kind of problem losslessly before validation, for `andini data build`: a
number or boolean written as a string where the schema declares integer, number or boolean (Seal-Tools
writes `'63'` for an integer age). The value is converted only when the text is exactly that value
(`'63'` -> 63, `'2.5'` -> 2.5, `'true'` -> true; never `'063'`, `'1e3'` or `'yes'`), and each repair is
counted in the dataset card. `andini data check` reports the raw file, unrepaired.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")


def _declared(schema: dict) -> set[str]:
    kind = schema.get("type")
    return set(kind) if isinstance(kind, list) else {kind} if isinstance(kind, str) else set()


def _repaired(value: Any, schema: Any, counts: Counter) -> Any:
    """`value` with every lossless string -> integer/number/boolean conversion its schema asks for."""
    if not isinstance(schema, dict):
        return value
    kinds = _declared(schema)
    if isinstance(value, str) and kinds and "string" not in kinds:
        text = value.strip()
        if "integer" in kinds and _INTEGER.fullmatch(text):
            counts["integer"] += 1
            return int(text)
        if "number" in kinds and _NUMBER.fullmatch(text):
            counts["number"] += 1
            return int(text) if _INTEGER.fullmatch(text) else float(text)
        if "boolean" in kinds and text in ("true", "false"):
            counts["boolean"] += 1
            return text == "true"
        return value
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        return {k: _repaired(v, props.get(k), counts) for k, v in value.items()}
    if isinstance(value, list):
        return [_repaired(v, schema.get("items"), counts) for v in value]
    return value


def repair_types(example: Example) -> tuple[Example, Counter]:
    """The example with its target calls' numbers and booleans un-stringed where the schema declares
    them, and the count of repairs by declared type (empty when nothing changed)."""
    tools = {t.name: t for t in example.tools}
    counts: Counter = Counter()
    calls = [c.model_copy(update={"arguments": _repaired(c.arguments, tools[c.name].parameters, counts)})
             if c.name in tools else c for c in example.target_calls]
    return (example.model_copy(update={"target_calls": calls}) if counts else example), counts


def check_file(path: Path | str, fmt: str, strict: bool = False,
               repair: bool = False) -> Iterator[tuple[Example | None, Problem | None]]:
    """Each record of a file as (example, None) or (None, problem). `strict` raises at the first problem.
    With `repair`, lossless type repairs are made first (see `repair_types`); a repaired example keeps
    its counts in meta['repaired'] and is yielded only when it then validates."""
    for line, item in iter_checked(path, fmt):
        if isinstance(item, InputError):
            problem = Problem(path=str(path), line=line, field=item.field, reason=_reason(item))
        else:
            if repair:
                fixed, counts = repair_types(item)
                if counts and not example_problems(fixed):
                    item = fixed.model_copy(update={"meta": {**fixed.meta, "repaired": dict(counts)}})
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
    for _, problem in check_file(path, fmt, strict=strict):
        if problem is None:
            ok += 1
        else:
            problems.append(problem)
    reasons = Counter(p.kind for p in problems)
    return {"file": str(path), "format": fmt, "valid": ok, "invalid": len(problems),
            "by_reason": dict(reasons.most_common()), "problems": [p.model_dump() for p in problems[:limit]]}
