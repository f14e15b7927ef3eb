"""Bounded grammars: every constrained output has a worst-case length, and it fits the token budget.

A schema without bounds lets a small model write one string, one array or one free-form key forever,
until `max_new_tokens` cuts it off and the output no longer parses. `bound_schema` returns a copy that
the grammar compiles instead: the same JSON, with bounds on everything that can grow. A value it
admits is also valid against the original schema (it only tightens), and `worst_case_bytes` is the
length of the longest JSON text the grammar admits for it, exactly as xgrammar writes it with
`json.dumps` separators (`", "` and `": "`, no other whitespace; see agent/grammar.py).

Tokens from bytes: every token a grammar may pick carries at least `min_token_bytes` bytes (measured
from the tokenizer's vocabulary: 1 for byte-level BPE tokenizers such as SmolLM2's and Mistral's,
which hold a token for each byte). So a text of B bytes takes at most ceil(B / min_token_bytes) tokens,
whichever tokens the model chooses; one more token is the stop token. A schema fits a budget of N
tokens when that count, the fixed call text around it included, is at most N.

What is bounded, and how (xgrammar 0.2.8 and llguidance 1.9 both honour these keywords):
- strings: a `pattern` of printable ASCII without `"` or `\\` and a maximum length. Counted in bytes,
  a string with `maxLength` alone costs up to 4 bytes a character (UTF-8), so that bound would leave a
  quarter of the budget; escapes are not admitted either way. The pattern is written in runs of at
  most 64 characters (`RUN`): xgrammar 0.2.8 crashes compiling a repetition such as `{0,160}`, and
  its compile time grows fast with the repetition. A longer `minLength` is written in several runs.
  `enum` and `const` strings stay as they are; a schema's own `pattern` is kept when its longest match
  is finite, else refused.
- integers and numbers: a range (default +-10^9); xgrammar then admits at most 6 fraction digits and
  no exponent.
- arrays: `maxItems`; objects with declared properties: no other keys (xgrammar's strict mode);
  free-form objects (`dict[str, Any]`): `maxProperties`, `propertyNames` with a bounded pattern, and
  scalar values; an unconstrained value (`{}`, BFCL's `any`): a bounded scalar.
Strings and arrays are budgeted separately: the caps step down through `LEVELS`, string length first,
so a plan keeps several steps with shorter text rather than one step with long text. Arrays nested in
arrays get half the cap of their parent. A schema's own smaller maximum is kept, its minimum is never
undercut; when even the last level does not fit, `BudgetError` names the schema and the budget.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from andini.errors import AndiniError

#: Printable ASCII without `"` and `\`: one byte a character and no JSON escapes.
CHAR = "[ -!#-\\[\\]-~]"
#: Longest repetition written in one pattern run, and the longest string: xgrammar 0.2.8 fails to
#: compile `{0,160}`, and its compile time grows with the run (measured: 0.15 s for 32, 0.3 s for 64,
#: 0.9 s for two runs of 32, 15 s for five).
RUN = 64
#: Default range of integers and numbers without one.
MAX_MAGNITUDE = 10**9
#: Fraction digits xgrammar admits in a number with a range (measured on 0.2.8).
FRACTION_DIGITS = 6
#: (string characters, array items) caps, tried in order until the worst case fits.
LEVELS: tuple[tuple[int, int], ...] = (
    (64, 8), (56, 8), (48, 8), (48, 7), (40, 7), (40, 6), (36, 6),
    (32, 6), (32, 5), (28, 5), (24, 5), (24, 4), (20, 4), (18, 4), (16, 4), (16, 3), (14, 3), (12, 3),
    (10, 3), (8, 3), (8, 2), (6, 2), (4, 2), (4, 1), (2, 1), (1, 1),
)
#: Longest key of a free-form object.
MAX_KEY_CHARS = 24
#: Formats with a fixed length that the grammar may keep (others become bounded strings).
FIXED_FORMATS = {"date": 10}


class BudgetError(AndiniError):
    """A schema whose smallest bounded form cannot fit the token budget."""


class UnboundedError(ValueError):
    """A schema part `worst_case_bytes` cannot bound (names where)."""


@dataclass(frozen=True)
class Bounded:
    """A bounded schema, its worst-case JSON length and the caps that made it fit."""

    schema: Any
    worst_bytes: int
    worst_tokens: int
    string_chars: int
    array_items: int


def min_token_bytes(decoded_vocab: Sequence[bytes], special_ids: Sequence[int] = ()) -> int:
    """The fewest bytes any non-special token carries (xgrammar never lets an empty token through)."""
    special = set(special_ids)
    return min(len(t) for i, t in enumerate(decoded_vocab) if t and i not in special)


def tokens_for(nbytes: int, token_bytes: int = 1) -> int:
    """Worst-case tokens for `nbytes` of text, plus the stop token."""
    return math.ceil(nbytes / max(1, token_bytes)) + 1


def bound_schema(schema: Any, budget_tokens: int, token_bytes: int = 1, *, name: str = "schema",
                 overhead_bytes: int = 0) -> Bounded:
    """The loosest bounded copy of `schema` whose worst case, with `overhead_bytes` of fixed text
    around it (a call's name and tags), fits `budget_tokens`; else `BudgetError`."""
    smallest = None
    for chars, items in LEVELS:
        bounded = _bound(schema, chars, items, 0)
        try:
            worst = worst_case_bytes(bounded)
        except UnboundedError as exc:
            raise BudgetError(f"{name}: cannot bound {exc}",
                              hint="give the schema a finite pattern, or drop it") from exc
        tokens = tokens_for(worst + overhead_bytes, token_bytes)
        if tokens <= budget_tokens:
            return Bounded(bounded, worst, tokens, chars, items)
        smallest = tokens
    raise BudgetError(f"{name} cannot fit a budget of {budget_tokens} tokens: even with strings of "
                      f"{LEVELS[-1][0]} character(s) and arrays of {LEVELS[-1][1]} item(s) its longest output "
                      f"takes {smallest} tokens", hint=f"raise max_new_tokens to at least {smallest}, or offer "
                                                      "fewer or smaller tools")


def served_tools(tools: Sequence[Any], budget: int, tool_choice: Any = None) -> list[dict[str, Any]]:
    """Tools as a server is sent them (OpenAI `tools` form): each schema bounded, as the local grammar
    bounds it (agent/bounds.py), so the server's own grammar (TGI's `tools`, vLLM/SGLang's guided
    decoding) also closes every call inside `budget` tokens. The server's tokenizer is unknown here:
    one byte a token, the least a byte-level BPE token carries. A required call that cannot fit is a
    BudgetError before any request; otherwise an unfitting tool is sent as it is. Replies are still
    validated against the original schemas (`andini.calls`)."""
    from langchain_core.utils.function_calling import convert_to_openai_tool

    from andini.schema import ToolSpec

    required = tool_choice not in (None, "auto", "none", False)
    out = []
    for tool in tools:
        spec = ToolSpec.from_openai(tool.openai() if isinstance(tool, ToolSpec) else convert_to_openai_tool(tool))
        frame = len(f'{{"name": "{spec.name}", "arguments": }}')
        try:
            bounded = bound_schema({"type": "object", **spec.parameters}, budget, name=f"tool '{spec.name}'",
                                   overhead_bytes=frame).schema
        except BudgetError:
            if required:
                raise
            bounded = spec.parameters
        out.append(ToolSpec(name=spec.name, description=spec.description, parameters=bounded).openai())
    return out


# ---------------------------------------------------------------- making a schema bounded

_KEEP = ("description", "default", "title")


def _bound(node: Any, chars: int, items: int, depth: int) -> Any:
    if node is True or node == {}:
        return _any_scalar(chars)
    if node is False or not isinstance(node, dict):
        return node
    if "enum" in node or "const" in node:
        return {k: v for k, v in node.items() if k in ("enum", "const", "type", *_KEEP)}
    if "allOf" in node and len(node["allOf"]) == 1:
        merged = {**{k: v for k, v in node.items() if k != "allOf"}, **node["allOf"][0]}
        return _bound(merged, chars, items, depth)
    for key in ("anyOf", "oneOf"):  # the grammar takes any branch; "exactly one" is left to validation
        if key in node:
            rest = {k: v for k, v in node.items() if k != key}
            return {"anyOf": [_bound({**rest, **b} if isinstance(b, dict) else b, chars, items, depth)
                              for b in node[key]], **_kept(node)}
    kind = node.get("type") or _implied_type(node)
    if isinstance(kind, list):
        return {"anyOf": [_bound({**node, "type": t}, chars, items, depth) for t in kind], **_kept(node)}
    if kind is None:
        return _any_scalar(chars)
    return _BOUNDERS[kind](node, chars, items, depth) if kind in _BOUNDERS else node


def _kept(node: dict) -> dict:
    return {k: node[k] for k in _KEEP if k in node}


def _implied_type(node: dict) -> str | None:
    if "properties" in node or "additionalProperties" in node:
        return "object"
    if "items" in node or "prefixItems" in node:
        return "array"
    return None


def string_pattern(low: int, high: int) -> str:
    """A pattern for `low`..`high` characters of CHAR, written in runs of at most RUN."""
    parts, done = [], 0
    while done < high:
        run = min(RUN, high - done)
        need = min(run, max(0, low - done))
        parts.append(f"{CHAR}{{{need},{run}}}" if need < run else f"{CHAR}{{{run}}}")
        done += run
    return "^" + "".join(parts) + "$"


def _string(node: dict, chars: int, items: int, depth: int) -> dict:
    low = int(node.get("minLength", 0))
    if "pattern" in node:
        return {"type": "string", "pattern": node["pattern"], **_kept(node)}
    if node.get("format") in FIXED_FORMATS:
        return {"type": "string", "format": node["format"], **_kept(node)}
    high = max(low, min(int(node.get("maxLength", chars)), chars))
    return {"type": "string", "pattern": string_pattern(low, high), **_kept(node)}


def _range(node: dict, integer: bool) -> dict:
    out = {k: node[k] for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
           if k in node and (integer or k != "multipleOf")}
    if "minimum" not in out and "exclusiveMinimum" not in out:
        out["minimum"] = -MAX_MAGNITUDE
    if "maximum" not in out and "exclusiveMaximum" not in out:
        out["maximum"] = MAX_MAGNITUDE
    return out


def _integer(node: dict, chars: int, items: int, depth: int) -> dict:
    return {"type": "integer", **_range(node, True), **_kept(node)}


def _number(node: dict, chars: int, items: int, depth: int) -> dict:
    return {"type": "number", **_range(node, False), **_kept(node)}


def _array(node: dict, chars: int, items: int, depth: int) -> dict:
    cap = _cap(items, depth, scalar=not _is_structured(node.get("items", True)))
    low = int(node.get("minItems", 0))
    prefix = [_bound(p, chars, items, depth + 1) for p in node.get("prefixItems", [])]
    rest = node.get("items", True)
    out: dict[str, Any] = {"type": "array", **_kept(node)}
    if prefix:
        out["prefixItems"] = prefix
    if rest is False:
        out["items"] = False
    else:
        out["items"] = _bound(rest, chars, items, depth + 1)
    out["maxItems"] = max(low, len(prefix) if rest is False else 0, min(int(node.get("maxItems", cap)), cap))
    if low:
        out["minItems"] = low
    return out


def _cap(items: int, depth: int, scalar: bool) -> int:
    """Items for an array (or free keys for an object): halved for each enclosing array, and halved
    again for lists of scalars (notes, sources), so that the structure keeps its items longest."""
    return max(1, items >> (depth + scalar))


def _is_structured(node: Any) -> bool:
    return isinstance(node, dict) and (node.get("type") in ("object", "array") or "properties" in node)


def _object(node: dict, chars: int, items: int, depth: int) -> dict:
    props = dict(node.get("properties") or {})
    extra = node.get("additionalProperties", not props)
    if extra is not False:  # a required name the schema does not describe: any value, but present
        props.update({k: {} for k in node.get("required", []) if k not in props})
    out: dict[str, Any] = {"type": "object", **_kept(node)}
    if props:
        out["properties"] = {k: _bound(v, chars, items, depth) for k, v in props.items()}
    if node.get("required"):
        out["required"] = list(node["required"])
    if extra is False or (props and extra is None):
        out["additionalProperties"] = False
        return out
    # free-form keys: bounded names, scalar values, a bounded count
    cap = max(int(node.get("minProperties", 0)), len(props) + _cap(items, depth, scalar=True))
    out["additionalProperties"] = _any_scalar(chars) if extra is True or extra == {} else \
        _bound(extra, chars, items, depth + 1)
    out["propertyNames"] = {"pattern": string_pattern(1, min(MAX_KEY_CHARS, max(1, chars)))}
    out["maxProperties"] = min(int(node.get("maxProperties", cap)), cap)
    if node.get("minProperties"):
        out["minProperties"] = int(node["minProperties"])
    return out


def _any_scalar(chars: int) -> dict:
    """An unconstrained value, generated as a bounded scalar."""
    return {"anyOf": [{"type": "string", "pattern": string_pattern(0, chars)},
                      {"type": "number", "minimum": -MAX_MAGNITUDE, "maximum": MAX_MAGNITUDE},
                      {"type": "boolean"}, {"type": "null"}]}


_BOUNDERS = {"string": _string, "integer": _integer, "number": _number, "array": _array, "object": _object,
             "boolean": lambda n, c, i, d: {"type": "boolean", **_kept(n)},
             "null": lambda n, c, i, d: {"type": "null", **_kept(n)}}


# ---------------------------------------------------------------- the longest JSON a bounded schema admits

def worst_case_bytes(schema: Any, at: str = "") -> int:
    """Bytes of the longest JSON text the grammar admits for a bounded schema (UTF-8, json.dumps
    separators); `UnboundedError` names the first place with no finite bound."""
    if schema is False:
        return 0
    if not isinstance(schema, dict) or not schema:
        raise UnboundedError(f"{at or '/'}: any value (no bound)")
    if "const" in schema:
        return _literal(schema["const"])
    if "enum" in schema:
        return max(_literal(v) for v in schema["enum"])
    if "anyOf" in schema:
        return max(worst_case_bytes(b, f"{at}/anyOf/{i}") for i, b in enumerate(schema["anyOf"]))
    kind = schema.get("type")
    if kind == "string":
        return 2 + _string_chars(schema, at)
    if kind in ("integer", "number"):
        return _number_bytes(schema, kind == "integer", at)
    if kind == "boolean":
        return 5
    if kind == "null":
        return 4
    if kind == "array":
        return _array_bytes(schema, at)
    if kind == "object":
        return _object_bytes(schema, at)
    raise UnboundedError(f"{at or '/'}: no bound for {json.dumps(schema)[:80]}")


def _literal(value: Any) -> int:
    return max(len(json.dumps(value, ensure_ascii=a).encode()) for a in (False, True))


def _string_chars(schema: dict, at: str) -> int:
    if schema.get("format") in FIXED_FORMATS:
        return FIXED_FORMATS[schema["format"]]
    pattern = schema.get("pattern")
    if pattern is None:
        raise UnboundedError(f"{at or '/'}: a string without a bounded pattern")
    return _pattern_bytes(pattern, at)


def _pattern_bytes(pattern: str, at: str) -> int:
    """Longest match of a pattern, in bytes: its longest width in characters (from the stdlib's own
    regex parser), times the widest character it can match (1 byte when every class is ASCII, else 4)."""
    import re._parser as sre

    body = pattern[1:] if pattern.startswith("^") else pattern
    body = body[:-1] if body.endswith("$") and not body.endswith("\\$") else body
    parsed = sre.parse(body)
    width = parsed.getwidth()[1]
    if width >= sre.MAXREPEAT:
        raise UnboundedError(f"{at or '/'}: pattern {pattern!r} has no longest match")
    return int(width) * (1 if _ascii_only(parsed) else 4)


def _ascii_only(parsed: Any) -> bool:
    """True when every character a parsed pattern can match is ASCII."""
    import re._constants as c

    for op, av in parsed:
        if op is c.LITERAL and av > 0x7F or op in (c.ANY, c.NOT_LITERAL, c.CATEGORY):
            return False
        if op is c.IN and any(o in (c.NEGATE, c.CATEGORY) or (o is c.LITERAL and a > 0x7F)
                              or (o is c.RANGE and a[1] > 0x7F) for o, a in av):
            return False
        if op in (c.MAX_REPEAT, c.MIN_REPEAT) and not _ascii_only(av[2]):
            return False
        if op is c.SUBPATTERN and not _ascii_only(av[3]):
            return False
        if op is c.BRANCH and not all(_ascii_only(b) for b in av[1]):
            return False
    return True


def _number_bytes(schema: dict, integer: bool, at: str) -> int:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if low is None or high is None:
        raise UnboundedError(f"{at or '/'}: a number without a range")
    # the longest integer part is at one end of the range; "-0.5" has a sign that int() drops
    ends = [len(str(int(v))) + (1 if -1 < v < 0 else 0) for v in (low, high)]
    return max(ends) + (0 if integer else 1 + FRACTION_DIGITS)


def _array_bytes(schema: dict, at: str) -> int:
    if "maxItems" not in schema:
        raise UnboundedError(f"{at or '/'}: an array without maxItems")
    prefix = [worst_case_bytes(p, f"{at}/prefixItems/{i}") for i, p in enumerate(schema.get("prefixItems", []))]
    count = int(schema["maxItems"])
    rest = schema.get("items", True)
    sizes = prefix[:count]
    if len(sizes) < count and rest is not False:
        sizes += [worst_case_bytes(rest, f"{at}/items")] * (count - len(sizes))
    return 2 + sum(sizes) + 2 * max(0, len(sizes) - 1)


def _object_bytes(schema: dict, at: str) -> int:
    props = schema.get("properties") or {}
    members = [_literal(k) + 2 + worst_case_bytes(v, f"{at}/properties/{k}") for k, v in props.items()]
    extra = schema.get("additionalProperties", False)
    if extra is not False:
        if "maxProperties" not in schema or "propertyNames" not in schema:
            raise UnboundedError(f"{at or '/'}: a free-form object without maxProperties and propertyNames")
        key = 2 + _string_chars({"type": "string", **schema["propertyNames"]}, f"{at}/propertyNames")
        value = worst_case_bytes(extra, f"{at}/additionalProperties")
        members += [key + 2 + value] * max(0, int(schema["maxProperties"]) - len(props))
        members = sorted(members, reverse=True)[:max(int(schema["maxProperties"]), 0)]
    return 2 + sum(members) + 2 * max(0, len(members) - 1)
