"""Helpers for eval tests: real BFCL items, and model outputs built from their answer keys, correct
and deliberately broken, to compare our scorer with the leaderboard's checker."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple")


def bfcl_items(folder: Path, category: str) -> Iterator[dict]:
    """Raw BFCL items of one category, each with its `ground_truth` joined in."""
    answers = {}
    for line in (folder / "possible_answer" / f"BFCL_v4_{category}.json").read_text().splitlines():
        record = json.loads(line)
        answers[record["id"]] = record["ground_truth"]
    for line in (folder / f"BFCL_v4_{category}.json").read_text().splitlines():
        item = json.loads(line)
        item["ground_truth"] = answers.get(item["id"], [])
        yield item


def _first(acceptable: list) -> Any:
    """The first acceptable value; a dict's own keys hold lists of acceptable values, resolved alike."""
    value = next((v for v in acceptable if v != ""), "")
    return _resolve(value)


def _resolve(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _first(v) for k, v in value.items() if isinstance(v, list) and _first(v) != ""}
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [_resolve(v) for v in value]
    return value


def correct_calls(ground_truth: list[dict], minimal: bool = False) -> list[dict]:
    """One correct output: the first acceptable value of each argument (omittable ones left out
    when `minimal`)."""
    calls = []
    for answer in ground_truth:
        (name, params), = answer.items()
        args = {p: _first(v) for p, v in params.items()
                if not ("" in v and (minimal or _first(v) == ""))}
        calls.append({name: args})
    return calls


def _function(functions: list[dict], name: str) -> dict:
    return next(f for f in functions if f["name"] == name)


def _other_type(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return 12345
    if isinstance(value, list):
        return "not a list"
    if isinstance(value, dict):
        return [value]
    return "x"


def _wrong_value(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 7919
    if isinstance(value, str):
        return value + " zebra"
    if isinstance(value, list):
        return value + value if value else ["zebra"]
    if isinstance(value, dict):
        return {**value, "zebra": 1}
    return value


def _styled(value: Any) -> Any:
    """The same value as the normalisation sees it: upper-case, spaces and punctuation added."""
    if isinstance(value, str):
        return f" {value.upper()}_."
    if isinstance(value, list):
        return [_styled(v) for v in value]
    if isinstance(value, dict):
        return {k: _styled(v) for k, v in value.items()}
    return value


def _int_for_float(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_int_for_float(v) for v in value]
    return value


def _each_argument(calls: list[dict]) -> Iterator[tuple[int, str, str]]:
    for index, call in enumerate(calls):
        (name, args), = call.items()
        for param in args:
            yield index, name, param


def _with_name(calls: list[dict], index: int, new_name: str) -> list[dict]:
    out = copy.deepcopy(calls)
    (_, args), = out[index].items()
    out[index] = {new_name: args}
    return out


def _with_arg(calls: list[dict], index: int, param: str, change=None, drop: bool = False,
              **extra: Any) -> list[dict]:
    """A copy of `calls` with one argument of call `index` changed by `change`, dropped, or extras added."""
    out = copy.deepcopy(calls)
    (_, args), = out[index].items()
    if drop:
        del args[param]
    elif change is not None:
        args[param] = change(args[param])
    args.update(extra)
    return out


def mutations(item: dict) -> Iterator[tuple[str, list[dict]]]:
    """(label, model output) pairs for one item: correct forms and broken ones."""
    truth, functions = item["ground_truth"], item["function"]
    base = correct_calls(truth)
    yield "correct", base
    yield "correct_minimal", correct_calls(truth, minimal=True)
    yield "no_call", []
    yield "extra_call", base + base[:1]
    if len(base) > 1:
        yield "reversed", list(reversed(base))
        yield "dropped_call", base[1:]
    yield "wrong_name", _with_name(base, 0, next(iter(base[0])) + "_v2")
    yield "unknown_arg", _with_arg(base, 0, "", zebra_arg=1)
    changes = {"type": _other_type, "value": _wrong_value, "styled": _styled, "int_for_float": _int_for_float}
    for index, name, param in _each_argument(base):
        required = param in _function(functions, name)["parameters"].get("required", [])
        tag = f"{name}.{param}"
        yield f"drop:{tag}:{'req' if required else 'opt'}", _with_arg(base, index, param, drop=True)
        for label, change in changes.items():
            yield f"{label}:{tag}", _with_arg(base, index, param, change)
        second = _second_acceptable(truth[index], name, param)
        if second is not None:
            yield f"alternative:{tag}", _with_arg(base, index, param, lambda _, v=second: v)


def _second_acceptable(answer: dict, name: str, param: str) -> Any:
    values = [v for v in answer[name][param] if v != ""]
    return values[1] if len(values) > 1 else None


def reference_verdict(item: dict, output: list[dict], category: str) -> bool:
    """The leaderboard's verdict (the `nvidia-bfcl` package's AST checker, imported directly)."""
    if "irrelevance" in category:
        return not output  # the leaderboard's irrelevance rule: no function call decoded
    from bfcl.eval_checker.ast_eval.ast_checker import ast_checker

    result = ast_checker(copy.deepcopy(item["function"]), copy.deepcopy(output),
                         copy.deepcopy(item["ground_truth"]), "Python", category, "andini-eval")
    return bool(result["valid"])


class ScriptedBackend:
    """A stand-in for `agent.backends.complete` for plumbing tests (reports, folders, errors) only:
    it answers each item with its first correct call when `right(index)` says so, else with text."""

    def __init__(self, right=lambda index: index % 2 == 0):
        self.right, self.calls = right, 0

    def __call__(self, messages, tools, **options):
        from agent.backends import Completion
        from andini.schema import ToolCall

        index, self.calls = self.calls, self.calls + 1
        answer = self.answers.get(messages[-1].content) if self.right(index) else None
        calls = [ToolCall(name=n, arguments=a) for call in answer or [] for n, a in call.items()]
        return Completion(text=str(answer), content="" if calls else "I cannot help.", calls=calls,
                          latency_s=0.5 + index % 3, ttft_s=0.1, new_tokens=20)

    def learn(self, items: list[dict]) -> ScriptedBackend:
        """Remember a correct output for each raw BFCL item, keyed by its question."""
        self.answers = {item["question"][0][-1]["content"]: correct_calls(item["ground_truth"])
                        for item in items}
        return self
