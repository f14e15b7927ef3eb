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

Every call's arguments are generated under a bounded copy of its schema (agent/bounds.py), sized so
that the whole call, its fixed text included, fits the generation budget even if the model picks the
shortest token at every step; a tool set that cannot fit is refused with `BudgetError` before any
token is generated. The JSON is written with `json.dumps`'s separators and no other whitespace (the
text the chat format renders), which is what makes its worst-case length exact.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Protocol

from agent.bounds import Bounded, BudgetError, bound_schema, min_token_bytes, tokens_for
from andini.formats import ChatFormat
from andini.schema import ToolSpec

#: The budget a grammar is bounded for when the caller names none (Settings.max_new_tokens' default).
DEFAULT_BUDGET = 512

#: Most calls in one Mistral `[TOOL_CALLS]` list.
MAX_ARRAY_ITEMS = 8


class Constraint(Protocol):
    """One generation's grammar state: masks logits, then advances by the sampled token.

    `reserve` is the worst-case tokens of the largest call: a call may only open while that many
    tokens are left (`may_open`), so every call that opens closes within the budget."""

    reserve: int

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
    return schema


def _call_frame(fmt: ChatFormat, name: str) -> int:
    """Bytes of a call's fixed text: what each format writes around the arguments."""
    if fmt.calls_as_list:
        return len(f'{{"name": {json.dumps(name, ensure_ascii=False)}, "arguments": }}'.encode())
    return len((call_prefix(fmt, name) + call_suffix(fmt)).encode())


def bounded_calls(fmt: ChatFormat, tools: Sequence[ToolSpec], budget: int, token_bytes: int = 1,
                  required: bool = True) -> list[tuple[ToolSpec, Bounded]]:
    """Each tool with its arguments schema bounded so that one call fits `budget` tokens
    (Mistral: `[TOOL_CALLS] ` and the list brackets counted too). When a call is required, a tool
    that cannot fit is a BudgetError; otherwise it is left out: its call could never close, so it
    cannot open (as a call that would start too late cannot, see `CallWatch`)."""
    extra = len(fmt.call_open.encode()) + 2 if fmt.calls_as_list else 0
    out = []
    for t in tools:
        try:
            out.append((t, bound_schema(_params(t), budget, token_bytes, name=f"tool '{t.name}'",
                                        overhead_bytes=_call_frame(fmt, t.name) + extra)))
        except BudgetError:
            if required:
                raise
    return out


def _max_calls(fmt: ChatFormat, calls: list[tuple[ToolSpec, Bounded]], budget: int, token_bytes: int) -> int:
    """Mistral's list of calls: as many worst-case calls as fit the budget (at least the one)."""
    widest = max(_call_frame(fmt, t.name) + b.worst_bytes for t, b in calls)
    room = (budget - 1) * token_bytes - len(fmt.call_open.encode()) - 2
    return max(1, min(MAX_ARRAY_ITEMS, (room + 2) // (widest + 2)))


def call_reserve(fmt: ChatFormat, calls: list[tuple[ToolSpec, Bounded]], budget: int, token_bytes: int) -> int:
    """Worst-case tokens of the longest call text the grammar admits (Mistral: the whole list)."""
    if not calls:
        return 0
    if fmt.calls_as_list:
        n = _max_calls(fmt, calls, budget, token_bytes)
        widest = max(_call_frame(fmt, t.name) + b.worst_bytes for t, b in calls)
        return tokens_for(len(fmt.call_open.encode()) + 2 + n * widest + 2 * (n - 1), token_bytes)
    return max(tokens_for(_call_frame(fmt, t.name) + b.worst_bytes, token_bytes) for t, b in calls)


# ---------------------------------------------------------------- xgrammar

class CallWatch:
    """Knows, from the accepted tokens' bytes, whether a call is open: after the call-open tag and
    before the call's closing text (`}` + newline + close tag, which no JSON string can hold, since
    the grammar admits no raw newline in one). A call may only open while `reserve` tokens are left."""

    def __init__(self, vocab: Sequence[bytes], fmt: ChatFormat, reserve: int):
        self.vocab, self.reserve = vocab, reserve
        self.open = _trigger(fmt).encode()
        self.close = call_suffix(fmt).encode() if fmt.call_close.strip() else b""
        self.text, self.at, self.open_now = b"", 0, False
        self.pending: int | None = None

    def seen(self, token_id: int) -> None:
        self.text += self.vocab[token_id] if token_id < len(self.vocab) else b""
        while True:  # walk the markers in order: open, close, open, ...
            marker = self.close if self.open_now else self.open
            if not marker:
                return
            found = self.text.find(marker, self.at)
            if found < 0:
                return
            self.at, self.open_now = found + len(marker), not self.open_now

    def in_call(self) -> bool:
        return self.open_now

    def may_open(self, tokens_left: int) -> bool:
        """False when no call is open, the text ends with the start of the open tag, and the call it
        starts could not close inside the budget: generation then ends before the call. The budget is
        counted from the token where the tag began (`pending`: the tokens left after it)."""
        if self.in_call():
            self.pending = None
            return True
        tail = self.text[self.at:]
        started = any(tail.endswith(self.open[:n]) for n in range(1, len(self.open) + 1))
        if not started:
            self.pending = None
            return True
        if self.pending is None:
            self.pending = tokens_left
        return self.pending + 1 >= self.reserve  # the tag's first token already holds one of its bytes


class XGrammarConstraint:
    def __init__(self, compiled: Any, vocab_size: int, watch: CallWatch | None = None):
        import xgrammar as xgr

        self._xgr = xgr
        self.matcher = xgr.GrammarMatcher(compiled)
        self.bitmask = xgr.allocate_token_bitmask(1, vocab_size)
        self.watch = watch
        self.reserve = watch.reserve if watch else 0

    def may_open(self, tokens_left: int) -> bool:
        return self.watch is None or self.watch.may_open(tokens_left)

    def mask(self, logits: Any) -> None:
        self.matcher.fill_next_token_bitmask(self.bitmask)
        self._xgr.apply_token_bitmask_inplace(logits, self.bitmask.to(logits.device))

    def accept(self, token_id: int) -> None:
        if not self.matcher.accept_token(token_id):
            raise RuntimeError(f"grammar rejected token {token_id}")
        if self.watch is not None:
            self.watch.seen(token_id)

    def done(self) -> bool:
        return self.matcher.is_terminated()


def _array_of_calls(calls: list[tuple[ToolSpec, Bounded]], max_items: int) -> dict[str, Any]:
    """JSON Schema of a list of calls, `[{"name": <offered>, "arguments": <its schema>}, ...]`."""
    items = [{"type": "object", "properties": {"name": {"const": t.name}, "arguments": b.schema},
              "required": ["name", "arguments"], "additionalProperties": False} for t, b in calls]
    return {"type": "array", "items": {"anyOf": items}, "minItems": 1, "maxItems": max_items}


def _exact_json(schema: dict[str, Any]) -> dict[str, Any]:
    """A structural-tag content for `schema` written exactly as json.dumps writes it: xgrammar's own
    grammar for the schema without free whitespace (its json_schema content admits runs of it)."""
    import xgrammar as xgr

    grammar = xgr.Grammar.from_json_schema(json.dumps(schema), any_whitespace=False, strict_mode=True)
    return {"type": "grammar", "grammar": str(grammar)}


def xgrammar_structural_tag(fmt: ChatFormat, tools: Sequence[ToolSpec], require_call: bool,
                            budget: int = DEFAULT_BUDGET, token_bytes: int = 1) -> dict:
    """The xgrammar structural tag for `TEXT (CALL TEXT)*` over these tools, each call bounded to fit
    `budget` tokens.

    ChatML: one tag per tool, `<tool_call>\n{"name": "X", "arguments": ` + schema + `}\n</tool_call>`.
    Mistral v3: a single `[TOOL_CALLS] ` followed by a JSON list of calls, and nothing after it.
    """
    calls = bounded_calls(fmt, tools, budget, token_bytes, require_call)
    if not calls:  # no call fits: plain text, without the call-open tag
        return {"type": "structural_tag", "format": {"type": "any_text", "excludes": [_trigger(fmt)]}}
    if fmt.calls_as_list:
        listed = _array_of_calls(calls, _max_calls(fmt, calls, budget, token_bytes))
        tags = [{"type": "tag", "begin": fmt.call_open, "end": "", "content": _exact_json(listed)}]
        stop_after_first = True
    else:
        tags = [{"type": "tag", "begin": call_prefix(fmt, t.name), "end": call_suffix(fmt),
                 "content": _exact_json(b.schema)} for t, b in calls]
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
        self.vocab = info.decoded_vocab
        #: fewest bytes a token carries: how many tokens a text can take at most (agent/bounds.py)
        self.token_bytes = min_token_bytes(self.vocab, info.special_token_ids)
        self._compile = lru_cache(maxsize=64)(self._compile_uncached)

    def _compile_uncached(self, tag_json: str) -> Any:
        return self.compiler.compile_structural_tag(tag_json)

    def constraint(self, fmt: ChatFormat, tools: Sequence[ToolSpec], require_call: bool = False,
                   budget: int = DEFAULT_BUDGET) -> XGrammarConstraint:
        """A fresh grammar state for one generation of at most `budget` tokens (BudgetError when
        a call over these tools cannot fit)."""
        tag = xgrammar_structural_tag(fmt, tools, require_call, budget, self.token_bytes)
        calls = bounded_calls(fmt, tools, budget, self.token_bytes, require_call)
        reserve = call_reserve(fmt, calls, budget, self.token_bytes)
        # key order matters: properties are generated in the order the schema (and the prompt) lists them
        return XGrammarConstraint(self._compile(json.dumps(tag)), self.vocab_size,
                                  CallWatch(self.vocab, fmt, reserve))


# ---------------------------------------------------------------- llguidance

class LLGuidanceConstraint:
    def __init__(self, tokenizer: Any, grammar: str, vocab_size: int, reserve: int = 0):
        import llguidance
        import llguidance.torch as llt

        self._llt = llt
        self.matcher = llguidance.LLMatcher(tokenizer, grammar)
        if self.matcher.is_error():
            raise ValueError(self.matcher.get_error())
        self.bitmask = llt.allocate_token_bitmask(1, vocab_size)
        self.reserve = reserve

    def may_open(self, tokens_left: int) -> bool:
        return True  # measured for xgrammar only: llguidance is the alternative kept for comparison

    def mask(self, logits: Any) -> None:
        self._llt.fill_next_token_bitmask(self.matcher, self.bitmask, 0)
        self._llt.apply_token_bitmask_inplace(logits, self.bitmask.to(logits.device))

    def accept(self, token_id: int) -> None:
        if not self.matcher.consume_token(token_id):
            raise RuntimeError(f"grammar rejected token {token_id}: {self.matcher.get_error()}")

    def done(self) -> bool:
        return self.matcher.is_stopped()


def llguidance_lark(fmt: ChatFormat, tools: Sequence[ToolSpec], require_call: bool,
                    budget: int = DEFAULT_BUDGET, token_bytes: int = 1) -> str:
    """The same language as the xgrammar structural tag, in llguidance's Lark dialect."""
    trigger = json.dumps(_trigger(fmt))[1:-1]
    lines = [f"TEXT: /(?s:.*)/ & ~/(?s:.*{trigger}.*)/"]
    # exactly json.dumps's separators, as with xgrammar, so the worst case holds here too
    strict = {"x-guidance": {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}}
    calls = bounded_calls(fmt, tools, budget, token_bytes, require_call)
    if not calls:
        return "\n".join(["start: TEXT", *lines])
    if fmt.calls_as_list:
        listed = _array_of_calls(calls, _max_calls(fmt, calls, budget, token_bytes))
        lines.append(f"calls: %json {json.dumps({**listed, **strict})}")
        head = f"start: {json.dumps(fmt.call_open)} calls" if require_call else \
            f"start: TEXT | {json.dumps(fmt.call_open)} calls"
        return "\n".join([head, *lines])
    names = []
    for i, (t, b) in enumerate(calls):
        lines.append(f"args{i}: %json {json.dumps({**b.schema, **strict})}")
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

    def constraint(self, fmt: ChatFormat, tools: Sequence[ToolSpec], require_call: bool = False,
                   budget: int = DEFAULT_BUDGET):
        import llguidance

        grammar = llguidance.LLMatcher.grammar_from_lark(llguidance_lark(fmt, tools, require_call, budget))
        return LLGuidanceConstraint(self.tokenizer, grammar, self.vocab_size)


FACTORIES = {"xgrammar": XGrammarFactory, "llguidance": LLGuidanceFactory}
