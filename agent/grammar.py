"""Constrained decoding for the local backend: the model may answer in plain text, but any tool call it
opens is generated under a grammar built from the offered tools' JSON Schemas, so it always parses and
validates (name from the set of offered tools, argument names, types and required fields).

The grammar has the shape `TEXT (CALL TEXT)*`, where TEXT never contains the chat format's call-open
tag and CALL is `<tool_call>\\n{"name": "<one offered name>", "arguments": <schema-constrained JSON>}
\\n</tool_call>` (exactly the text the chat format renders for training, so train/serve parity holds).
With `require_call=True` (tool_choice "required", e.g. a plan) the output is exactly one call.

Two maintained libraries implement it behind one small `Constraint` interface: xgrammar (the default:
its structural tags express this shape directly) and llguidance (a Lark grammar with embedded
`%json`). `benchmarks/bench_agent.py` measures both; docs/agent.md records why xgrammar is kept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Protocol

from andini.formats import ChatFormat
from andini.schema import ToolSpec

#: Consecutive whitespace allowed inside JSON: a tiny model can otherwise loop on newlines forever.
MAX_JSON_WHITESPACE = 2
#: Generation bounds added to schemas that set none, so a looping small model still closes its call
#: (the call still validates against the unbounded schema).
MAX_STRING_CHARS = 160
MAX_ARRAY_ITEMS = 8
MAX_INTEGER = 10**9
#: A free-form object (no declared properties, e.g. a plan step's tool arguments) is generated flat:
#: scalar values only, so a small model cannot nest forever. It still validates against "any object".
FLAT_OBJECT = {"type": "object", "maxProperties": 8,
               "additionalProperties": {"type": ["string", "number", "boolean", "null"], "maxLength": 80}}


class Constraint(Protocol):
    """One generation's grammar state: masks logits, then advances by the sampled token."""

    def mask(self, logits: Any) -> None: ...

    def accept(self, token_id: int) -> None: ...

    def done(self) -> bool: ...


def call_prefix(fmt: ChatFormat, name: str) -> str:
    """The fixed text before a tool's arguments, as `ToolCall.to_json` renders it."""
    return f'{fmt.call_open}{{"name": {json.dumps(name, ensure_ascii=False)}, "arguments": '


def call_suffix(fmt: ChatFormat) -> str:
    return "}" + fmt.call_close


def _trigger(fmt: ChatFormat) -> str:
    return fmt.call_open.strip()


def _params(tool: ToolSpec) -> dict[str, Any]:
    schema = dict(tool.parameters or {"type": "object", "properties": {}})
    schema.setdefault("type", "object")
    return bounded(schema)


def bounded(schema: Any) -> Any:
    """A copy of `schema` with maxLength / maxItems on strings and arrays that have none."""
    if isinstance(schema, list):
        return [bounded(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: (v if k in ("enum", "const", "default", "examples", "required") else bounded(v))
           for k, v in schema.items()}
    if out.get("type") == "string" and "maxLength" not in out and "enum" not in out and "pattern" not in out:
        out["maxLength"] = max(MAX_STRING_CHARS, out.get("minLength", 0))
    if out.get("type") == "array" and "maxItems" not in out:
        out["maxItems"] = max(MAX_ARRAY_ITEMS, out.get("minItems", 0))
    if out.get("type") == "integer":
        out.setdefault("maximum", MAX_INTEGER)
        out.setdefault("minimum", -MAX_INTEGER)
    if out.get("type") == "object" and not out.get("properties") and out.get("additionalProperties", True) is True:
        return {**FLAT_OBJECT, **{k: v for k, v in out.items() if k in ("description", "title")}}
    return out


# ---------------------------------------------------------------- xgrammar

class XGrammarConstraint:
    def __init__(self, compiled: Any, vocab_size: int):
        import xgrammar as xgr

        self._xgr = xgr
        self.matcher = xgr.GrammarMatcher(compiled)
        self.bitmask = xgr.allocate_token_bitmask(1, vocab_size)

    def mask(self, logits: Any) -> None:
        self.matcher.fill_next_token_bitmask(self.bitmask)
        self._xgr.apply_token_bitmask_inplace(logits, self.bitmask.to(logits.device))

    def accept(self, token_id: int) -> None:
        if not self.matcher.accept_token(token_id):
            raise RuntimeError(f"grammar rejected token {token_id}")

    def done(self) -> bool:
        return self.matcher.is_terminated()


def _array_of_calls(tools: Sequence[ToolSpec]) -> dict[str, Any]:
    """JSON Schema of a list of calls, `[{"name": <offered>, "arguments": <its schema>}, ...]`."""
    items = [{"type": "object", "properties": {"name": {"const": t.name}, "arguments": _params(t)},
              "required": ["name", "arguments"], "additionalProperties": False} for t in tools]
    return {"type": "array", "items": {"anyOf": items}, "minItems": 1, "maxItems": MAX_ARRAY_ITEMS}


def xgrammar_structural_tag(fmt: ChatFormat, tools: Sequence[ToolSpec], require_call: bool) -> dict:
    """The xgrammar structural tag for `TEXT (CALL TEXT)*` over these tools.

    ChatML: one tag per tool, `<tool_call>\n{"name": "X", "arguments": ` + schema + `}\n</tool_call>`.
    Mistral v3: a single `[TOOL_CALLS] ` followed by a JSON list of calls, and nothing after it.
    """
    whitespace = {"max_whitespace_cnt": MAX_JSON_WHITESPACE}
    if fmt.name == "mistral":
        tags = [{"type": "tag", "begin": fmt.call_open, "end": "",
                 "content": {"type": "json_schema", "json_schema": _array_of_calls(tools), **whitespace}}]
        stop_after_first = True
    else:
        tags = [{"type": "tag", "begin": call_prefix(fmt, t.name), "end": call_suffix(fmt),
                 "content": {"type": "json_schema", "json_schema": _params(t), **whitespace}} for t in tools]
        # a required call (plans, tool_choice="required") is exactly one call, and the turn ends there
        stop_after_first = require_call
    return {"type": "structural_tag",
            "format": {"type": "triggered_tags", "triggers": [_trigger(fmt)], "tags": tags,
                       "at_least_one": require_call, "stop_after_first": stop_after_first}}


class XGrammarFactory:
    """Compiles grammars for one tokenizer; compiled grammars are cached by their tool set."""

    name = "xgrammar"

    def __init__(self, tokenizer: Any, vocab_size: int, stop_token_ids: list[int]):
        import xgrammar as xgr

        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size,
                                                  stop_token_ids=stop_token_ids)
        self.compiler = xgr.GrammarCompiler(info, max_threads=2)
        self.vocab_size = vocab_size
        self._compile = lru_cache(maxsize=64)(self._compile_uncached)

    def _compile_uncached(self, tag_json: str) -> Any:
        return self.compiler.compile_structural_tag(tag_json)

    def constraint(self, fmt: ChatFormat, tools: Sequence[ToolSpec], require_call: bool = False):
        tag = xgrammar_structural_tag(fmt, tools, require_call)
        # key order matters: properties are generated in the order the schema (and the prompt) lists them
        return XGrammarConstraint(self._compile(json.dumps(tag)), self.vocab_size)


# ---------------------------------------------------------------- llguidance

class LLGuidanceConstraint:
    def __init__(self, tokenizer: Any, grammar: str, vocab_size: int):
        import llguidance
        import llguidance.torch as llt

        self._llt = llt
        self.matcher = llguidance.LLMatcher(tokenizer, grammar)
        if self.matcher.is_error():
            raise ValueError(self.matcher.get_error())
        self.bitmask = llt.allocate_token_bitmask(1, vocab_size)

    def mask(self, logits: Any) -> None:
        self._llt.fill_next_token_bitmask(self.matcher, self.bitmask, 0)
        self._llt.apply_token_bitmask_inplace(logits, self.bitmask.to(logits.device))

    def accept(self, token_id: int) -> None:
        if not self.matcher.consume_token(token_id):
            raise RuntimeError(f"grammar rejected token {token_id}: {self.matcher.get_error()}")

    def done(self) -> bool:
        return self.matcher.is_stopped()


def llguidance_lark(fmt: ChatFormat, tools: Sequence[ToolSpec], require_call: bool) -> str:
    """The same language as the xgrammar structural tag, in llguidance's Lark dialect."""
    trigger = json.dumps(_trigger(fmt))[1:-1]
    lines = [f"TEXT: /(?s:.*)/ & ~/(?s:.*{trigger}.*)/"]
    strict = {"x-guidance": {"whitespace_pattern": "[ \\n]{0,2}"}}
    if fmt.name == "mistral":
        lines.append(f"calls: %json {json.dumps({**_array_of_calls(tools), **strict})}")
        head = f"start: {json.dumps(fmt.call_open)} calls" if require_call else \
            f"start: TEXT | {json.dumps(fmt.call_open)} calls"
        return "\n".join([head, *lines])
    names = []
    for i, t in enumerate(tools):
        lines.append(f"args{i}: %json {json.dumps({**_params(t), **strict})}")
        lines.append(f"call{i}: {json.dumps(call_prefix(fmt, t.name))} args{i} {json.dumps(call_suffix(fmt))}")
        names.append(f"call{i}")
    lines.append(f"call: {' | '.join(names)}")
    # as with xgrammar: a required call is exactly one call with nothing around it
    start = "start: call" if require_call else "start: TEXT (call TEXT)*"
    return "\n".join([start, *lines])


class LLGuidanceFactory:
    name = "llguidance"

    def __init__(self, tokenizer: Any, vocab_size: int, stop_token_ids: list[int]):
        import llguidance.hf

        self.tokenizer = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size)
        self.vocab_size = vocab_size

    def constraint(self, fmt: ChatFormat, tools: Sequence[ToolSpec], require_call: bool = False):
        import llguidance

        grammar = llguidance.LLMatcher.grammar_from_lark(llguidance_lark(fmt, tools, require_call))
        return LLGuidanceConstraint(self.tokenizer, grammar, self.vocab_size)


FACTORIES = {"xgrammar": XGrammarFactory, "llguidance": LLGuidanceFactory}
