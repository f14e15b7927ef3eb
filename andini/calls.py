"""Tool calls checked and compared, once for everyone: the agent (before a call runs), the data
builder (records it trains on) and the evaluator (scores).

Validation uses the `jsonschema` library (Draft 2020-12) on the offered tool's JSON Schema. Every
problem names the call, the argument and the rule, in one style:

    get_weather: argument 'unit': 'kelvin' is not one of ['c', 'f']
    get_weather: argument 'city': required, but missing
    get_wether: not an offered tool (offered: get_time, get_weather)

Matching compares calls by name and arguments with the Berkeley Function Calling Leaderboard's string
normalisation (case, spaces and `,./-_*^` ignored) and 5 == 5.0, and counts precision and recall over
multisets at three grains (function names; (function, argument, value) triples; whole calls).

NESTFUL chains calls: an argument `$var1.skyId$` (models also write `$var_1.skyId$`) stands for a
field of an earlier call's result. Its value is only known at run time, so validation checks such an
argument for presence, not type; matching replaces the label by the referenced call's own canonical
form, so a correct chain matches whatever labels or order the model chose.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, Field

from andini.schema import ToolCall, ToolSpec

# ---------------------------------------------------------------- NESTFUL references

#: `$<label>.<path>$`, label `var1` or `var_1`; the one pattern for validation and matching.
REFERENCE = re.compile(r"\$(var_?\d+)((?:\.[^$]*)?)\$")


def reference_label(value: Any) -> str | None:
    """The label a whole-value reference points to (`var_1` read as `var1`), else None."""
    if not isinstance(value, str):
        return None
    match = REFERENCE.fullmatch(value.strip())
    return _label(match.group(1)) if match else None


def _label(raw: str) -> str:
    return raw.strip("$").replace("_", "")


# ---------------------------------------------------------------- validation


class CallProblem(BaseModel):
    """One thing wrong with one call."""

    call: str = Field(description="The function the call names.")
    argument: str | None = Field(None, description="The argument at fault, dotted for nested ones; None "
                                                   "when the call as a whole is at fault.")
    rule: str = Field(description="The rule broken: 'unknown_tool' or a JSON Schema keyword "
                                  "('required', 'type', 'enum', 'additionalProperties', ...).")
    detail: str = Field(description="What is wrong, with the offending value.")

    def __str__(self) -> str:
        where = f"argument '{self.argument}': " if self.argument else ""
        return f"{self.call}: {where}{self.detail}"


@lru_cache(maxsize=512)
def _validator(schema_json: str) -> Any:
    from jsonschema import Draft202012Validator

    schema = json.loads(schema_json)
    if isinstance(schema, dict):
        schema.setdefault("type", "object")
    return Draft202012Validator(schema)


def call_problems(call: ToolCall, tools: Sequence[ToolSpec], *, references: bool = False) -> list[CallProblem]:
    """Everything wrong with `call` against the offered `tools`; empty when it is valid.

    With `references`, NESTFUL references stand for values of any type (presence still counts)."""
    by_name = {t.name: t for t in tools}
    tool = by_name.get(call.name)
    if tool is None:
        offered = ", ".join(sorted(by_name)) or "none"
        return [CallProblem(call=call.name, rule="unknown_tool", detail=f"not an offered tool (offered: {offered})")]
    arguments = call.arguments
    if references:
        arguments = {k: v for k, v in arguments.items() if reference_label(v) is None}
    validator = _validator(json.dumps(tool.parameters or {}, sort_keys=True))
    problems: list[CallProblem] = []
    for error in sorted(validator.iter_errors(arguments), key=lambda e: [str(p) for p in e.absolute_path]):
        problems.extend(p for p in _problems(call, tool, error)
                        if not (p.rule == "required" and p.argument in call.arguments))  # a reference
    return problems


def _problems(call: ToolCall, tool: ToolSpec, error: Any) -> list[CallProblem]:
    """A jsonschema error in the house style: each argument named, the rule kept."""
    path = [str(p) for p in error.absolute_path]
    rule = str(error.validator)

    def problem(names: list[str], detail: str) -> CallProblem:
        return CallProblem(call=call.name, argument=".".join(names) or None, rule=rule, detail=detail[:300])

    if rule == "required":  # one error per missing name, worded "'city' is a required property"
        name = next((n for n in error.validator_value if error.message.startswith(repr(n))), None)
        if name is not None:
            return [problem([*path, str(name)], "required, but missing")]
    if rule == "additionalProperties" and isinstance(error.instance, dict):
        known = set((error.schema or {}).get("properties") or {})
        extra = [name for name in error.instance if name not in known]
        listed = ", ".join(sorted(known)) or "none"
        scope = tool.name if not path else f"'{'.'.join(path)}'"
        if extra:
            return [problem([*path, name], f"not a parameter of {scope} (parameters: {listed})") for name in extra]
    return [problem(path, error.message)]


def calls_error(calls: Sequence[ToolCall], tools: Sequence[ToolSpec], *, references: bool = False) -> str | None:
    """One message for every problem of every call (what goes back to the model), or None."""
    problems = [str(p) for c in calls for p in call_problems(c, tools, references=references)]
    return "; ".join(problems) or None


def invalid_calls(calls: Sequence[ToolCall], tools: Sequence[ToolSpec], *, references: bool = False) -> list[str]:
    """The first problem of each invalid call: as many entries as there are invalid calls."""
    found = []
    for call in calls:
        problems = call_problems(call, tools, references=references)
        if problems:
            found.append(str(problems[0]))
    return found


# ---------------------------------------------------------------- matching

_NORMALISE = re.compile(r"[ ,./\-_*^]")


def normalise_string(text: str) -> str:
    """Lower-case, drop spaces and `,./-_*^`, and read ' as \" (the leaderboard's string rule)."""
    return _NORMALISE.sub("", text).lower().replace("'", '"')


def canonical_value(value: Any) -> Any:
    """A value in comparable form: strings normalised, integral floats as ints, recursively."""
    if isinstance(value, str):
        return normalise_string(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list | tuple):
        return [canonical_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): canonical_value(v) for k, v in value.items()}
    return value


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def call_key(call: ToolCall) -> str:
    """A call as one comparable string: equal keys, equal calls."""
    return _key([call.name, canonical_value(call.arguments)])


def resolve_references(calls: Sequence[ToolCall], labels: Sequence[str | None] | None = None) -> list[ToolCall]:
    """Calls with every `$label.path$` replaced by `$<canonical referenced call>.path$`.

    `labels` are the calls' own labels (NESTFUL's `var1`...); by default `var1`, `var2`... in order.
    A reference to a call not made (yet) stays as written, so it cannot match."""
    labels = list(labels or [f"var{i + 1}" for i in range(len(calls))])
    resolved: dict[str, str] = {}
    out = []
    for call, label in zip(calls, labels, strict=False):
        new = ToolCall(name=call.name, arguments=_replace_references(call.arguments, resolved))
        out.append(new)
        if label:
            resolved[_label(label)] = call_key(new)
    return out


def _replace_references(value: Any, resolved: dict[str, str]) -> Any:
    if isinstance(value, str):
        def swap(match: re.Match) -> str:
            target = resolved.get(_label(match.group(1)))
            return f"${target}{match.group(2)}$" if target else match.group(0)
        return REFERENCE.sub(swap, value)
    if isinstance(value, list):
        return [_replace_references(v, resolved) for v in value]
    if isinstance(value, dict):
        return {k: _replace_references(v, resolved) for k, v in value.items()}
    return value


class Counts(BaseModel):
    """Matched, predicted and expected counts at one grain."""

    matched: int = 0
    predicted: int = 0
    expected: int = 0

    def add(self, other: Counts) -> None:
        self.matched += other.matched
        self.predicted += other.predicted
        self.expected += other.expected

    def scores(self) -> dict[str, float]:
        precision = self.matched / self.predicted if self.predicted else (1.0 if not self.expected else 0.0)
        recall = self.matched / self.expected if self.expected else (1.0 if not self.predicted else 0.0)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def _overlap(predicted: Iterable[str], expected: Iterable[str]) -> Counts:
    p, e = Counter(predicted), Counter(expected)
    return Counts(matched=sum((p & e).values()), predicted=sum(p.values()), expected=sum(e.values()))


class CallMatch(BaseModel):
    """How one item's predicted calls compare with the expected ones."""

    tool: Counts = Field(default_factory=Counts, description="Function names.")
    param: Counts = Field(default_factory=Counts, description="(function, argument, value) triples.")
    call: Counts = Field(default_factory=Counts, description="Whole calls.")
    exact: bool = Field(False, description="Same calls, as a multiset (same sequence when ordered).")


def match_calls(predicted: Sequence[ToolCall], expected: Sequence[ToolCall], *, ordered: bool = False,
                expected_labels: Sequence[str | None] | None = None, references: bool = False) -> CallMatch:
    """Compare two call lists. `references` resolves NESTFUL labels first; `ordered` demands the
    same sequence for `exact`."""
    if references:
        predicted = resolve_references(predicted)
        expected = resolve_references(expected, expected_labels)
    pred_calls = [call_key(c) for c in predicted]
    exp_calls = [call_key(c) for c in expected]
    result = CallMatch(
        tool=_overlap([c.name for c in predicted], [c.name for c in expected]),
        param=_overlap(_triples(predicted), _triples(expected)),
        call=_overlap(pred_calls, exp_calls),
    )
    result.exact = pred_calls == exp_calls if ordered else Counter(pred_calls) == Counter(exp_calls)
    return result


def _triples(calls: Sequence[ToolCall]) -> list[str]:
    return [_key([c.name, k, canonical_value(v)]) for c in calls for k, v in c.arguments.items()]
