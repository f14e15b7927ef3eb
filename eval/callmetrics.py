"""Call-level metrics for multi-call data sets (Seal-Tools, NESTFUL, andini JSONL), and schema validity.

Precision and recall are counted over multisets, micro-averaged over a run, at three grains (the
Seal-Tools paper's tool and parameter scores, plus whole calls):

- `tool`: function names;
- `param`: (function, argument, value) triples;
- `call`: whole calls, name and all arguments equal.

Values are compared with the BFCL string normalisation (case, spaces and `,./-_*^` ignored) and 5 == 5.0.
NESTFUL references such as `$var2.skyId$` name an earlier call by its label; each is replaced by the
referenced call's own canonical form, so a correct chain scores as correct whatever labels or order
the model chose. Seal-Tools' `API_call_N` references stay plain strings (they name a position).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from andini.schema import ToolCall, ToolSpec
from eval.bfcl_ast import normalise_string

_NESTFUL_REF = re.compile(r"\$(var_?\d+)((?:\.[^$]*)?)\$")


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


def resolve_references(calls: Sequence[ToolCall], labels: Sequence[str | None] | None = None) -> list[ToolCall]:
    """Calls with every `$label.path$` replaced by `$<canonical referenced call>.path$`.

    `labels` are the calls' own labels (NESTFUL's `var1`...); by default `var1`, `var2`... in order."""
    labels = list(labels or [f"var{i + 1}" for i in range(len(calls))])
    resolved: dict[str, str] = {}
    out = []
    for call, label in zip(calls, labels, strict=False):
        args = _replace_refs(call.arguments, resolved)
        new = ToolCall(name=call.name, arguments=args)
        out.append(new)
        if label:
            resolved[label.strip("$").replace("_", "")] = _key([new.name, canonical_value(args)])
    return out


def _replace_refs(value: Any, resolved: dict[str, str]) -> Any:
    if isinstance(value, str):
        def swap(match: re.Match) -> str:
            target = resolved.get(match.group(1).replace("_", ""))
            return f"${target}{match.group(2)}$" if target else match.group(0)
        return _NESTFUL_REF.sub(swap, value)
    if isinstance(value, list):
        return [_replace_refs(v, resolved) for v in value]
    if isinstance(value, dict):
        return {k: _replace_refs(v, resolved) for k, v in value.items()}
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
    pred_calls = [_key([c.name, canonical_value(c.arguments)]) for c in predicted]
    exp_calls = [_key([c.name, canonical_value(c.arguments)]) for c in expected]
    result = CallMatch(
        tool=_overlap([c.name for c in predicted], [c.name for c in expected]),
        param=_overlap(_triples(predicted), _triples(expected)),
        call=_overlap(pred_calls, exp_calls),
    )
    result.exact = pred_calls == exp_calls if ordered else Counter(pred_calls) == Counter(exp_calls)
    return result


def _triples(calls: Sequence[ToolCall]) -> list[str]:
    return [_key([c.name, k, canonical_value(v)]) for c in calls for k, v in c.arguments.items()]


def schema_errors(calls: Sequence[ToolCall], tools: Sequence[ToolSpec]) -> list[str]:
    """Why each invalid call is invalid: an unknown function or arguments that break its JSON Schema."""
    from jsonschema import Draft202012Validator

    by_name = {t.name: t for t in tools}
    errors = []
    for call in calls:
        tool = by_name.get(call.name)
        if tool is None:
            errors.append(f"{call.name}: not an offered function")
            continue
        schema = dict(tool.parameters)
        schema.setdefault("type", "object")
        first = next(iter(Draft202012Validator(schema).iter_errors(call.arguments)), None)
        if first is not None:
            where = "/".join(str(p) for p in first.absolute_path) or "arguments"
            errors.append(f"{call.name}: {where}: {first.message}")
    return errors
