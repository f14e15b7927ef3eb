"""AST scoring of tool calls by the Berkeley Function Calling Leaderboard's published rules.

Our own implementation (the leaderboard's checker is the reference a test compares us with):

- the function name matches; every required argument is present; no argument the function or the
  answer key does not know;
- types: the schema's type, where an int is accepted for a float (top level, as the leaderboard does),
  a tuple is a list, and array items must have the item type; a value of the answer key's own type is
  accepted too (the data writes variables such as `"x"` for numeric arguments);
- values: each argument must equal one of its acceptable values; strings are compared after
  lower-casing and removing spaces and `,./-_*^`; lists and dicts are compared element by element
  (a dict key by key against its own acceptable values), normalising the strings that are list items
  or dict values; deeper strings (a list inside a dict) are compared exactly, as the leaderboard does;
- an argument may be omitted only where `""` is among its acceptable values (an empty list or dict
  counts as omitted there);
- categories: `parallel*` match the expected calls in any order, `multiple` picks the right function
  among several, `irrelevance` passes when no call is made; otherwise exactly one call.

Functions may be given in BFCL form (`dict`, `float`, `tuple`, `any`) or JSON Schema form
(`object`, `number`, `array`); both map to the same Python types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, Field

from andini.calls import normalise_string

# BFCL and JSON Schema type names -> the Python type a decoded value must have. `any` is checked as
# a string, as the leaderboard does.
PY_TYPES: dict[str, type] = {
    "string": str, "any": str,
    "integer": int,
    "float": float, "number": float,
    "boolean": bool,
    "array": list, "tuple": list,
    "dict": dict, "object": dict,
}
OMITTED = ""  # the answer key's marker for "may be left out"


class Verdict(BaseModel):
    """Whether model calls match the answer key, and if not, the first reason found."""

    valid: bool = Field(description="True when the calls pass every rule.")
    error_type: str | None = Field(None, description="Short machine-readable reason, e.g. 'value_error:string'.")
    error: str = Field("", description="Human-readable reason, naming the argument and value.")


def _fail(error_type: str, error: str) -> Verdict:
    return Verdict(valid=False, error_type=error_type, error=error)


PASS = Verdict(valid=True)


def _answer_type(acceptable: Iterable[Any]) -> type | None:
    """The type of the first non-omitted acceptable value (None when only "" is there)."""
    for value in acceptable:
        if value != OMITTED:
            return type(value)
    return None


# --- values -----------------------------------------------------------------------------------------

def _norm(value: Any) -> Any:
    """A string normalised; anything else as is. The leaderboard normalises one level only: an
    argument, the items of a list argument and the values of a dict argument, not deeper."""
    return normalise_string(value) if isinstance(value, str) else value


def _norm_list(value: Any) -> Any:
    return [_norm(v) for v in value] if isinstance(value, list | tuple) else _norm(value)


def _dict_matches(value: dict, answer: Mapping[str, list]) -> str | None:
    """None when a dict argument matches one acceptable dict (each key with its own list of values)."""
    for key, item in value.items():
        if key not in answer:
            return f"unexpected dict key {key!r}"
        if _norm(item) not in [_norm(a) for a in answer[key]]:
            return f"invalid value for dict key {key!r}: {item!r}, expected one of {answer[key]}"
    for key, options in answer.items():
        if key not in value and OMITTED not in options:
            return f"missing dict key {key!r}"
    return None


def _check_dict(param: str, value: dict, acceptable: list) -> Verdict:
    reason = f"no acceptable dict for {param!r}"
    for answer in acceptable:
        if answer == OMITTED:  # the leaderboard does not let an empty dict stand for an omitted one
            continue
        reason = _dict_matches(value, answer) or ""
        if not reason:
            return PASS
    return _fail("value_error:dict", f"{param!r}: {reason}")


def _check_list_of_dicts(param: str, value: list, acceptable: list) -> Verdict:
    reason = f"no acceptable list of dicts for {param!r}"
    for answer in acceptable:
        answer_list = [] if answer == OMITTED else answer
        if len(value) != len(answer_list):
            reason = f"{param!r}: {len(value)} dicts, expected {len(answer_list)}"
            continue
        problems = [_dict_matches(v, a) if isinstance(v, dict) else "not a dict"
                    for v, a in zip(value, answer_list, strict=True)]
        first = next((p for p in problems if p), None)
        if first is None:
            return PASS
        reason = f"{param!r}: {first}"
    return _fail("value_error:list_dict", reason)


def _check_value(param: str, value: Any, acceptable: list, py_type: type, item_type: type | None) -> Verdict:
    """Compare one (type-checked) argument with its acceptable values."""
    if py_type is dict:
        return _check_dict(param, value, acceptable)
    if py_type is list and item_type is dict:
        return _check_list_of_dicts(param, value, acceptable)
    if py_type is str:
        options = [normalise_string(a) for a in acceptable if isinstance(a, str)]
        if normalise_string(value) in options:
            return PASS
        return _fail("value_error:string", f"{param!r}: {value!r} is not one of {acceptable} (normalised)")
    if py_type is list:
        options = [[] if a == OMITTED else _norm_list(a) for a in acceptable]
        if _norm_list(value) in options:
            return PASS
        return _fail("value_error:list", f"{param!r}: {value!r} is not one of {acceptable}")
    if value in acceptable:
        return PASS
    return _fail("value_error:other", f"{param!r}: {value!r} is not one of {acceptable}")


# --- types ------------------------------------------------------------------------------------------

def _items_typed(value: list, answer: Any, item_type: type) -> bool:
    """Every item has the item type, or the type of the acceptable list's own items."""
    if not isinstance(answer, list):
        return True  # an omittable argument ("") constrains no item type
    fallback = _answer_type(answer)
    return all(type(v) is item_type or type(v) is fallback for v in value)


def _type_check(param: str, value: Any, acceptable: list, py_type: type,
                item_type: type | None) -> tuple[Verdict, bool]:
    """(verdict, is_variable). A value of the answer key's type counts as a variable, compared as is."""
    answer_type = _answer_type(acceptable)
    is_variable = answer_type is not None and answer_type is not py_type
    if type(value) is py_type:
        # an item type comes only with py_type list (`_schema_types`)
        if item_type is None or (isinstance(value, list) and any(_items_typed(value, a, item_type)
                                                                 for a in acceptable)):
            return PASS, is_variable
        return _fail("type_error:nested", f"{param!r}: items of {value!r} are not all "
                                          f"{item_type.__name__}"), is_variable
    if answer_type is not None and type(value) is answer_type:
        return PASS, True
    return _fail("type_error:simple", f"{param!r}: expected {py_type.__name__}, got "
                                      f"{type(value).__name__} ({value!r})"), is_variable


def _schema_types(schema: Mapping[str, Any]) -> tuple[type, type | None]:
    """(type, item type) of one argument schema; a missing type is treated as `any`."""
    type_name = schema.get("type", "any")
    py_type = PY_TYPES.get(type_name, str)
    item_type = None
    if py_type is list and "items" in schema:
        item_type = PY_TYPES.get(schema["items"].get("type", "any"), str)
    return py_type, item_type


# --- one call ---------------------------------------------------------------------------------------

def check_call(function: Mapping[str, Any], call: tuple[str, dict], answer: Mapping[str, dict]) -> Verdict:
    """Check one call `(name, arguments)` against one answer `{name: {param: [acceptable...]}}`."""
    expected_name, expected_args = next(iter(answer.items()))
    name, args = call
    if name != expected_name:
        return _fail("wrong_func_name", f"called {name!r}, expected {expected_name!r}")
    params = function.get("parameters") or {}
    properties = params.get("properties") or {}
    for required in params.get("required") or []:
        if required not in args:
            return _fail("missing_required", f"missing required argument {required!r}")
    for param, value in args.items():
        if param not in properties or param not in expected_args:
            return _fail("unexpected_param", f"unexpected argument {param!r}")
        verdict = _check_argument(param, value, expected_args[param], properties[param])
        if not verdict.valid:
            return verdict
    for param, acceptable in expected_args.items():
        if param not in args and OMITTED not in acceptable:
            return _fail("missing_optional", f"argument {param!r} left out, but the answer needs it")
    return PASS


def _check_argument(param: str, value: Any, acceptable: list, schema: Mapping[str, Any]) -> Verdict:
    py_type, item_type = _schema_types(schema)
    if isinstance(value, tuple):
        value = list(value)
    if py_type is float and type(value) is int:  # Python would accept 5 for 5.0; so does the leaderboard
        value = float(value)
    verdict, is_variable = _type_check(param, value, acceptable, py_type, item_type)
    if not verdict.valid:
        return verdict
    if is_variable:
        if value in acceptable:
            return PASS
        return _fail("value_error:other", f"{param!r}: {value!r} is not one of {acceptable}")
    return _check_value(param, value, acceptable, py_type, item_type)


# --- a whole item -----------------------------------------------------------------------------------

def _as_pairs(calls: Iterable[Any]) -> list[tuple[str, dict]]:
    """Calls as (name, arguments): accepts ToolCall objects, {"name", "arguments"} or {name: args}."""
    pairs = []
    for call in calls:
        if hasattr(call, "name") and hasattr(call, "arguments"):
            pairs.append((call.name, dict(call.arguments)))
        elif isinstance(call, Mapping) and "name" in call and "arguments" in call:
            pairs.append((call["name"], dict(call["arguments"] or {})))
        else:
            (name, args), = call.items()
            pairs.append((name, dict(args)))
    return pairs


def _function_named(functions: list[Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    for function in functions:
        if function["name"] == name:
            return function
    raise ValueError(f"the answer key calls {name!r}, which the item does not offer")


def score_item(functions: Iterable[Any], calls: Iterable[Any], ground_truth: list[Mapping[str, dict]],
               category: str) -> Verdict:
    """Score one BFCL item: `functions` offered, `calls` made, `ground_truth` from possible_answer."""
    fns = [f.model_dump() if hasattr(f, "model_dump") else dict(f) for f in functions]
    pairs = _as_pairs(calls)
    if "irrelevance" in category:
        if pairs:
            return _fail("irrelevance:called", f"made {len(pairs)} call(s) where none fits")
        return PASS
    if not pairs:
        return _fail("no_call", f"made no call, expected {len(ground_truth)}")
    if len(pairs) != len(ground_truth):
        return _fail("wrong_count", f"made {len(pairs)} call(s), expected {len(ground_truth)}")
    if "parallel" in category:
        return _match_any_order(fns, pairs, ground_truth)
    answer = ground_truth[0]
    return check_call(_function_named(fns, next(iter(answer))), pairs[0], answer)


def _match_any_order(fns: list, pairs: list[tuple[str, dict]], ground_truth: list) -> Verdict:
    """Each expected call takes the first unclaimed model call that passes (the leaderboard's greedy rule)."""
    claimed: set[int] = set()
    for index, answer in enumerate(ground_truth):
        function = _function_named(fns, next(iter(answer)))
        reasons = []
        for i, pair in enumerate(pairs):
            if i in claimed:
                continue
            verdict = check_call(function, pair, answer)
            if verdict.valid:
                claimed.add(i)
                break
            reasons.append(f"call {i}: {verdict.error}")
        else:
            return _fail("parallel:no_match", f"no call matches expected call {index} "
                                              f"({next(iter(answer))}): " + "; ".join(reasons))
    return PASS
