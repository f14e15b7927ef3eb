"""Dataset readers: each public tool-calling format -> `andini.schema.Example`.

Formats: bfcl, openai, sharegpt, glaive, seal, nestful, coplan, andini. Every reader yields
`(line, Example)` pairs internally so that a bad record becomes an `InputError` naming the file, the
1-based line where the record starts and the field; `read_examples` raises at the first one and
`iter_checked` reports each and goes on (what `andini data check` prints).

Type vocabularies differ: BFCL says `dict`/`float`/`tuple`/`any`, Seal-Tools says `str`/`int`/...,
NESTFUL says `String`/`Number`/`Enum`; all are mapped to JSON Schema here, once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from andini.errors import InputError
from andini.schema import Example, Message, Plan, Step, ToolCall, ToolSpec, plan_tool

FORMATS = ("bfcl", "openai", "sharegpt", "glaive", "seal", "nestful", "coplan", "andini")
IRRELEVANT_REPLY = "None of the available functions fits this request, so I can't call one."

# One table for every non-JSON-Schema type name the sources use.
_TYPE_MAP = {
    "dict": "object", "object": "object", "float": "number", "number": "number", "double": "number",
    "int": "integer", "integer": "integer", "long": "integer", "str": "string", "string": "string",
    "bool": "boolean", "boolean": "boolean", "list": "array", "array": "array", "tuple": "array",
    "enum": "string", "null": "null",
}


class _RecordError(Exception):
    """A problem inside one record; the caller adds file and line."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def to_json_schema(schema: Any) -> dict[str, Any]:
    """A source's parameter schema with its type names mapped to JSON Schema, recursively.

    `any` (BFCL) and unknown names such as 'Date (yyyy-mm-dd)' become unconstrained or string."""
    if not isinstance(schema, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type":
            mapped = _map_type(value)
            if mapped is not None:
                out["type"] = mapped
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = to_json_schema(value)
        elif key == "required" and not isinstance(value, list):
            continue  # a per-property `required: true` is collected by the caller
        else:
            out[key] = value
    return out


def _map_type(value: Any) -> str | list[str] | None:
    if isinstance(value, list):
        mapped = [m for m in (_map_type(v) for v in value) if isinstance(m, str)]
        return mapped or None
    name = str(value).strip().lower()
    if name == "any":
        return None
    if name in _TYPE_MAP:
        return _TYPE_MAP[name]
    return "string" if name.startswith("date") or name.startswith("str") else None


def _object_schema(params: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """An `object` schema from a flat {name: {type, description, required?, allowed_values?}} map."""
    properties: dict[str, Any] = {}
    required = list(required or [])
    for name, spec in params.items():
        spec = dict(spec) if isinstance(spec, dict) else {}
        if spec.pop("required", False) is True and name not in required:
            required.append(name)
        allowed = spec.pop("allowed_values", None)
        spec.pop("default_value", None)
        prop = to_json_schema(spec)
        if isinstance(allowed, list) and allowed:  # some specs write a range as a string: not an enum
            prop["enum"] = allowed
        properties[name] = prop
    return {"type": "object", "properties": properties, "required": required}


# ---------------------------------------------------------------- raw records with line numbers


def json_records(path: Path) -> Iterator[tuple[int, Any]]:
    """(line, record) from a JSON array file or a JSON Lines file, whatever the extension says."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=path) from exc
    except UnicodeDecodeError as exc:
        raise InputError("not UTF-8 text", path=path) from exc
    if text.lstrip().startswith("["):
        yield from _array_records(path, text)
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg} at column {exc.colno}", path=path, line=number) from exc


def _array_records(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    """Elements of a top-level JSON array with the line each starts on (decoded one by one)."""
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    ws = re.compile(r"[\s,]*")
    while True:
        skipped = ws.match(text, pos)  # [\s,]* matches everywhere, if only the empty string
        pos = skipped.end() if skipped else pos
        if pos >= len(text) or text[pos] == "]":
            return
        line = text.count("\n", 0, pos) + 1
        try:
            record, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg}", path=path, line=exc.lineno) from exc
        yield line, record


def _need(record: Any, key: str, kind: type | tuple[type, ...] = object, where: str = "") -> Any:
    if not isinstance(record, dict) or key not in record:
        raise _RecordError("missing", f"{where}{key}")
    value = record[key]
    if not isinstance(value, kind):
        raise _RecordError(f"expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}",
                           f"{where}{key}")
    return value


def _parse_json_field(value: Any, field: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value) if value.strip() else None
    except json.JSONDecodeError as exc:
        raise _RecordError(f"invalid JSON string: {exc.msg}", field) from exc


# ---------------------------------------------------------------- BFCL


def bfcl_category(path: Path) -> str:
    match = re.match(r"BFCL_v\d+_(.+)\.json$", path.name)
    return match.group(1) if match else path.stem


def bfcl_answer_path(data_file: Path) -> Path:
    """Where BFCL keeps a category file's answer key: possible_answer/ beside it, same name."""
    return data_file.parent / "possible_answer" / data_file.name


def bfcl_answers(data_file: Path) -> dict[str, tuple[int, list]] | None:
    """id -> (line, ground truth) from a BFCL file's answer key; None when the key is absent
    (irrelevance categories have none). The one reader of possible_answer/, for training and scoring."""
    path = bfcl_answer_path(data_file)
    if not path.exists():
        return None
    stat = path.stat()
    return _read_bfcl_answers(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=32)
def _read_bfcl_answers(path: Path, mtime_ns: int, size: int) -> dict[str, tuple[int, list]]:
    """Cached by modification time and size too, so an edited key is read again."""
    answers = {}
    for line, record in json_records(path):
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            raise InputError("an answer record needs a string 'id'", path=path, line=line, field="id")
        if not isinstance(record.get("ground_truth"), list):
            raise InputError("missing or not a list", path=path, line=line, field="ground_truth")
        answers[record["id"]] = (line, record["ground_truth"])
    return answers


def first_acceptable_call(truth: dict[str, dict[str, list]]) -> ToolCall:
    """The first acceptable value of each argument; `""` first means the argument may be left out."""
    (name, args), = truth.items()
    return ToolCall(name=name, arguments=_first_values(args))


def _first_values(options_by_arg: dict[str, Any]) -> dict[str, Any]:
    """{arg: [acceptable values]} -> {arg: first value}; nested objects list their options the same way."""
    chosen = {}
    for arg, options in options_by_arg.items():
        if not isinstance(options, list) or not options or options[0] == "":
            continue
        value = options[0]
        chosen[arg] = _first_values(value) if isinstance(value, dict) else value
    return chosen


def _bfcl(path: Path) -> Iterator[tuple[int, Example | InputError]]:
    category = bfcl_category(path)
    answers = {rid: truth for rid, (_, truth) in (bfcl_answers(path) or {}).items()}
    for line, rec in json_records(path):
        yield line, _guard(line, path, partial(_bfcl_record, rec, category, answers))


def _bfcl_record(rec: dict, category: str, answers: dict[str, list]) -> Example:
    rid = _need(rec, "id", str)
    turns = _need(rec, "question", list)
    messages = []
    for t, turn in enumerate(turns):
        for m, msg in enumerate(turn if isinstance(turn, list) else [turn]):
            messages.append(Message(role=_need(msg, "role", str, f"question[{t}][{m}]."),
                                    content=_need(msg, "content", str, f"question[{t}][{m}].")))
    tools = []
    for i, fn in enumerate(_need(rec, "function", list)):
        params = to_json_schema(fn.get("parameters") or {"type": "object", "properties": {}})
        tools.append(ToolSpec(name=_need(fn, "name", str, f"function[{i}]."),
                              description=fn.get("description", ""), parameters=params))
    meta: dict[str, Any] = {"category": category}
    truth = answers.get(rid)
    calls, text = [], None
    if truth is not None:
        meta["ground_truth"] = truth
        calls = [first_acceptable_call(t) for t in truth]
    elif category.startswith("irrelevance"):
        text = IRRELEVANT_REPLY
    return Example(id=rid, messages=messages, tools=tools, target_calls=calls, target_text=text, source="bfcl",
                   license="Apache-2.0", meta=meta)


# ---------------------------------------------------------------- OpenAI chat JSONL


def _openai(path: Path) -> Iterator[tuple[int, Example | InputError]]:
    for line, rec in json_records(path):
        yield line, _guard(line, path, partial(_openai_record, rec, f"{path.stem}-{line}"))


def _openai_record(rec: dict, default_id: str) -> Example:
    raw_messages = _need(rec, "messages", list)
    tools = [ToolSpec.from_openai(t) for t in rec.get("tools") or []]
    messages = []
    for i, m in enumerate(raw_messages):
        where = f"messages[{i}]."
        calls = []
        for j, tc in enumerate(m.get("tool_calls") or []):
            fn = _need(tc, "function", dict, f"{where}tool_calls[{j}].")
            args = _parse_json_field(fn.get("arguments") or {}, f"{where}tool_calls[{j}].function.arguments")
            calls.append(ToolCall(name=_need(fn, "name", str, f"{where}tool_calls[{j}].function."),
                                  arguments=args or {}))
        messages.append(Message(role=_need(m, "role", str, where), content=m.get("content") or "",
                                tool_calls=calls, name=m.get("name"), tool_call_id=m.get("tool_call_id")))
    return _split_last_assistant(messages, tools, str(rec.get("id", default_id)), rec.get("source", "openai"),
                                 rec.get("license", "unknown"))


def _split_last_assistant(messages: list[Message], tools: list[ToolSpec], rid: str, source: str,
                          license: str) -> Example:
    """Context is everything before the last assistant turn; that turn is the target."""
    if not messages or messages[-1].role != "assistant":
        raise _RecordError("the conversation must end with an assistant turn", "messages")
    last = messages[-1]
    return Example(id=rid, messages=messages[:-1], tools=tools, target_calls=last.tool_calls,
                   target_text=last.content or None, source=source, license=license)


# ---------------------------------------------------------------- ShareGPT / Glaive

_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "system": "system", "observation": "tool", "tool": "tool", "function_call": "call"}


def _sharegpt(path: Path, source: str) -> Iterator[tuple[int, Example | InputError]]:
    for line, rec in json_records(path):
        yield line, _guard(line, path, partial(_sharegpt_record, rec, f"{source}-{line}", source))


def _sharegpt_record(rec: dict, default_id: str, source: str) -> Example:
    turns = rec.get("conversations", rec.get("messages"))
    if not isinstance(turns, list):
        raise _RecordError("missing or not a list", "conversations")
    tools_raw = _parse_json_field(rec.get("tools") or [], "tools") or []
    tools = [ToolSpec.from_openai(t) for t in tools_raw]
    messages = [Message(role="system", content=rec["system"])] if rec.get("system") else []
    for i, turn in enumerate(turns):
        where = f"conversations[{i}]."
        sender = turn.get("from", turn.get("role"))
        value = turn.get("value", turn.get("content"))
        role = _SHAREGPT_ROLES.get(sender)
        if role is None:
            raise _RecordError(f"unknown speaker {sender!r}", f"{where}from")
        if not isinstance(value, str):
            raise _RecordError("missing text", f"{where}value")
        if role == "call":
            messages.append(_sharegpt_call(value, messages, f"{where}value"))
        else:
            name = messages[-1].tool_calls[-1].name if role == "tool" and messages and messages[-1].tool_calls else None
            messages.append(Message(role=role, content=value, name=name))
    return _split_last_assistant(messages, tools, str(rec.get("id", default_id)), source, "Apache-2.0")


def _sharegpt_call(value: str, messages: list[Message], field: str) -> Message:
    data = _parse_json_field(value, field)
    calls = data if isinstance(data, list) else [data]
    parsed = []
    for call in calls:
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise _RecordError("a function call needs a 'name'", field)
        args = _parse_json_field(call.get("arguments") or {}, f"{field}.arguments")
        if not isinstance(args, dict):
            raise _RecordError("arguments must be an object", f"{field}.arguments")
        parsed.append(ToolCall(name=call["name"], arguments=args))
    if messages and messages[-1].role == "assistant" and not messages[-1].tool_calls:
        # "Let me check that for you." then the call: one assistant turn, as a model would say it.
        previous = messages.pop()
        return Message(role="assistant", content=previous.content, tool_calls=parsed)
    return Message(role="assistant", tool_calls=parsed)


# ---------------------------------------------------------------- Seal-Tools


@lru_cache(maxsize=4)
def seal_tools(tool_file: Path) -> dict[str, ToolSpec]:
    """Seal-Tools' tool.jsonl as ToolSpecs by name."""
    if not tool_file.exists():
        raise InputError("Seal-Tools tool documentation not found", path=tool_file,
                         hint="keep tool.jsonl next to the data file, as the data set ships it")
    tools = {}
    for line, rec in json_records(tool_file):
        try:
            name = _need(rec, "api_name", str)
            params = _object_schema(rec.get("parameters") or {}, rec.get("required") or [])
            tools[name] = ToolSpec(name=name, description=rec.get("api_description", ""), parameters=params)
        except _RecordError as exc:
            raise InputError(str(exc), path=tool_file, line=line, field=exc.field) from exc
    return tools


def _seal(path: Path) -> Iterator[tuple[int, Example | InputError]]:
    docs = seal_tools(path.parent / "tool.jsonl")
    for line, rec in json_records(path):
        yield line, _guard(line, path, partial(_seal_record, rec, docs, f"{path.stem}-{line}"))


def _seal_record(rec: dict, docs: dict[str, ToolSpec], default_id: str) -> Example:
    query = _need(rec, "query", str)
    calls, tools = [], []
    for i, call in enumerate(_need(rec, "calling", list)):
        name = _need(call, "api", str, f"calling[{i}].")
        if name not in docs:
            raise _RecordError(f"tool {name!r} is not documented in tool.jsonl", f"calling[{i}].api")
        calls.append(ToolCall(name=name, arguments=_need(call, "parameters", dict, f"calling[{i}].")))
        if docs[name] not in tools:
            tools.append(docs[name])
    meta = {"responses": [c.get("responses", []) for c in rec["calling"]]}
    return Example(id=str(rec.get("id", default_id)), messages=[Message(role="user", content=query)],
                   tools=tools, target_calls=calls, source="seal-tools", license="Apache-2.0", meta=meta)


# ---------------------------------------------------------------- NESTFUL

_NESTFUL_PARAM_KEYS = ("path_parameters", "query_parameters", "parameters", "arguments")


@lru_cache(maxsize=8)
def nestful_tools(spec_file: Path) -> dict[str, ToolSpec]:
    if not spec_file.exists():
        raise InputError("NESTFUL spec file not found", path=spec_file,
                         hint="keep NAME-spec.json next to NAME-data.json, as the data set ships them")
    tools = {}
    for line, rec in json_records(spec_file):
        name = rec.get("name")
        if not isinstance(name, str):
            raise InputError("missing", path=spec_file, line=line, field="name")
        params: dict[str, Any] = {}
        for key in _NESTFUL_PARAM_KEYS:
            params.update(rec.get(key) or {})
        tools[name] = ToolSpec(name=name, description=rec.get("description", ""), parameters=_object_schema(params))
    return tools


def _nestful(path: Path) -> Iterator[tuple[int, Example | InputError]]:
    spec = path.with_name(path.name.replace("-data.json", "-spec.json"))
    docs = nestful_tools(spec)
    for index, (line, rec) in enumerate(json_records(path)):
        rid = f"nestful-{path.name.removesuffix('-data.json')}-{index}"
        yield line, _guard(line, path, partial(_nestful_record, rec, docs, rid))


def _nestful_record(rec: dict, docs: dict[str, ToolSpec], rid: str) -> Example:
    query = _need(rec, "input", str)
    calls, tools, labels, result = [], [], [], None
    for i, call in enumerate(_need(rec, "output", list)):
        name = _need(call, "name", str, f"output[{i}].")
        args = _need(call, "arguments", dict, f"output[{i}].")
        if name == "var_result":  # not a call: which labelled results make up the answer
            result = args
            continue
        if name not in docs:
            raise _RecordError(f"tool {name!r} is not in the spec file", f"output[{i}].name")
        calls.append(ToolCall(name=name, arguments=args))
        labels.append(call.get("label"))
        if docs[name] not in tools:
            tools.append(docs[name])
    meta = {"labels": labels, "result": result}
    return Example(id=rid, messages=[Message(role="user", content=query)], tools=tools, target_calls=calls,
                   source="nestful", license="Apache-2.0", meta=meta)


# ---------------------------------------------------------------- CoPlan

_STEP_SPLIT = re.compile(r"\s*Step \d+:\s*")


def parse_script(script: str) -> list[Step]:
    """'Step 1: a Step 2: b' -> [Step('a'), Step('b')]."""
    return [Step(title=part.strip()) for part in _STEP_SPLIT.split(script) if part.strip()]


def _coplan(path: Path) -> Iterator[tuple[int, Example | InputError]]:
    for line, rec in json_records(path):
        yield line, _guard(line, path, partial(_coplan_record, rec, f"coplan-{path.stem}-{line}"))


def _coplan_record(rec: dict, rid: str) -> Example:
    goal = _need(rec, "goal", str)
    condition = rec.get("condition")
    script = _need(rec, "updated_script" if condition else "script", str)
    steps = parse_script(script)
    if not steps:
        raise _RecordError("no 'Step N:' found", "updated_script" if condition else "script")
    ask = f"Make a step-by-step plan to {goal}." + (f" Keep in mind: {condition}." if condition else "")
    meta = {"goal": goal, "condition": condition, "generator": rec.get("source"), "category": rec.get("category")}
    # Offered `make_plan` and answered with that call, as the agent serves a planning request.
    return Example(id=rid, messages=[Message(role="user", content=ask)], tools=[plan_tool()],
                   target_plan=Plan(goal=goal, steps=steps, assumptions=[condition] if condition else []),
                   source="coplan", license="Apache-2.0", meta={k: v for k, v in meta.items() if v})


# ---------------------------------------------------------------- andini's own JSONL


def _andini(path: Path) -> Iterator[tuple[int, Example | InputError]]:
    for line, rec in json_records(path):
        yield line, _guard(line, path, partial(Example.model_validate, rec))


# ---------------------------------------------------------------- dispatch

_READERS: dict[str, Callable[[Path], Iterator[tuple[int, Example | InputError]]]] = {
    "bfcl": _bfcl, "openai": _openai, "sharegpt": lambda p: _sharegpt(p, "sharegpt"),
    "glaive": lambda p: _sharegpt(p, "glaive"), "seal": _seal, "nestful": _nestful, "coplan": _coplan,
    "andini": _andini,
}


def _guard(line: int, path: Path, build: Callable[[], Example]) -> Example | InputError:
    """Run one record's conversion; a failure becomes an InputError with file, line and field."""
    try:
        return build()
    except _RecordError as exc:
        return InputError(str(exc), path=path, line=line, field=exc.field)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        return InputError(err["msg"], path=path, line=line, field=field or None)
    except (AttributeError, TypeError, KeyError, ValueError) as exc:
        return InputError(f"malformed record: {exc}", path=path, line=line)


def iter_checked(path: Path | str, fmt: str) -> Iterator[tuple[int, Example | InputError]]:
    """(line, Example or InputError) for every record: a bad record does not stop the others."""
    path = Path(path)
    if fmt not in _READERS:
        raise InputError(f"unknown format {fmt!r}", path=path, hint=f"use one of: {', '.join(FORMATS)}")
    if not path.is_file():
        raise InputError("no such file", path=path)
    yield from _READERS[fmt](path)


def read_examples(path: Path | str, fmt: str) -> Iterator[Example]:
    """Examples from `path` in format `fmt`; raises InputError(path, line, field) at the first bad record."""
    for _, item in iter_checked(path, fmt):
        if isinstance(item, InputError):
            raise item
        yield item


def guess_format(path: Path | str) -> str:
    """The format a file most likely has, from its name (for `andini data check` without --format)."""
    name = Path(path).name.lower()
    for pattern, fmt in (("bfcl", "bfcl"), ("glaive", "glaive"), ("-data.json", "nestful"),
                         ("coplan", "coplan"), ("sharegpt", "sharegpt")):
        if pattern in name:
            return fmt
    if Path(path).with_name("tool.jsonl").exists():
        return "seal"
    return "andini"
