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
  is finite (else refused), its `{m,n}` repetitions lowered until the longest match fits the
  schema's `maxLength` (which grammars drop beside a pattern) and the string cap.
- integers and numbers: a range (default +-10^9); xgrammar then admits at most 6 fraction digits and
  no exponent.
- arrays: `maxItems`; objects with declared properties: no other keys (xgrammar's strict mode);
  free-form objects (`dict[str, Any]`): `maxProperties`, `propertyNames` with a bounded pattern, and
  scalar values; an unconstrained value (`{}`, BFCL's `any`): a bounded scalar.
- `$ref`s (a person's schema for `andini generate`, bundled by andini.docschema) are inlined; one
  expanded inside itself more than RECURSION_DEPTH times is left out where it is optional and refused
  where it is required. Errors name the JSON pointer into the person's schema.
Whatever the bounded copy no longer asserts (a `format` written as a plain bounded string, say) is
listed in `Bounded.dropped`: those keywords are held by validation and retry.
Strings and arrays are budgeted separately: the caps step down through `LEVELS`, string length first,
so a plan keeps several steps with shorter text rather than one step with long text. At each level,
what the schema leaves optional gives way first (`OPTIONAL_SHARES`: a half, then a quarter of the caps,
compounding inside optional parts): a plan's required step titles keep the room its optional details,
sources and assumptions would take in the worst case. Arrays nested in arrays get half the cap of
their parent. A schema's own smaller maximum is kept, its minimum is never undercut; when even the
last level does not fit, `BudgetError` names the schema, the budget and the pointer of the part that
takes most of it.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from andini.docschema import Unenforced
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
#: At each level, the share of the caps optional properties get, tried in order: a level whose full caps
#: do not fit first gives less to what the schema leaves optional, then steps down.
OPTIONAL_SHARES = (1.0, 0.5, 0.25)
#: A schema's own pattern is shortened to the string cap only below this many characters: an author's
#: pattern is deliberate (`owner/repo@ref`), and cutting it as short as free text loses real values.
PATTERN_CHARS = 32
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
    #: the share of those caps that optional properties got (1.0: the same as required ones)
    optional_share: float
    #: assertions of the schema the bounded grammar does not carry (held by validation and retry)
    dropped: tuple[Unenforced, ...] = ()


def min_token_bytes(decoded_vocab: Sequence[bytes], special_ids: Sequence[int] = ()) -> int:
    """The fewest bytes any non-special token carries (xgrammar never lets an empty token through)."""
    special = set(special_ids)
    return min(len(t) for i, t in enumerate(decoded_vocab) if t and i not in special)


def tokens_for(nbytes: int, token_bytes: int = 1) -> int:
    """Worst-case tokens for `nbytes` of text, plus the stop token."""
    return math.ceil(nbytes / max(1, token_bytes)) + 1


def bound_schema(schema: Any, budget_tokens: int, token_bytes: int = 1, *, name: str = "schema",
                 overhead_bytes: int = 0, origins: Mapping[str, str] | None = None) -> Bounded:
    """The loosest bounded copy of `schema` whose worst case, with `overhead_bytes` of fixed text
    around it (a call's name and tags), fits `budget_tokens`; else `BudgetError`, naming the schema,
    the budget and the part of the schema that takes the most of it.

    `$ref`s into the schema itself (`#/...`) are inlined; `origins` maps a `$ref` to the place that
    errors should name (a bundled schema's references back to the person's own, andini.docschema)."""
    smallest, walk = 0, None
    for (chars, items), share in itertools.product(LEVELS, OPTIONAL_SHARES):
        walk = _Walk(chars, items, schema, dict(origins or {}), share=share)
        try:
            bounded = walk.bound(schema, 0, "")
            if bounded is False:
                raise UnboundedError("/: the schema admits no document within the bounds")
            worst = worst_case_bytes(bounded)
        except UnboundedError as exc:
            raise BudgetError(f"{name}: cannot bound {exc}",
                              hint="give it a finite bound there (a pattern with {m,n}, maxItems, fewer levels "
                                   "of $ref), or drop it") from exc
        tokens = tokens_for(worst + overhead_bytes, token_bytes)
        if tokens <= budget_tokens:
            return Bounded(bounded, worst, tokens, chars, items, share, tuple(walk.dropped))
        smallest = tokens
    assert walk is not None
    part, part_bytes = walk.largest_part(bounded)
    where = f"; the largest part, {part}, takes up to {tokens_for(part_bytes, token_bytes) - 1}" if part else ""
    raise BudgetError(f"{name} cannot fit a budget of {budget_tokens} tokens: even with strings of "
                      f"{LEVELS[-1][0]} character(s) and arrays of {LEVELS[-1][1]} item(s) its longest output "
                      f"takes {smallest} tokens{where}",
                      hint=f"raise max_new_tokens to at least {smallest}, or make the schema (or the tools "
                           "offered) smaller"
                           + (f", or bound {part} tighter (maxLength, maxItems, maxProperties)" if part else ""))


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
#: How many times a `$ref` may be expanded inside its own expansion; deeper, the recursive value is
#: left out (an optional property, array items) or, where the schema requires it, refused.
RECURSION_DEPTH = 2
_HELD_AFTER = "checked after generation"


@dataclass
class _Walk:
    """One bounding pass at one level of caps: the root `$ref`s point into, the references being
    expanded, the pointer of each bounded node (for errors) and what the grammar leaves to validation."""

    chars: int
    items: int
    root: Any
    origins: dict[str, str]
    stack: tuple[str, ...] = ()
    dropped: list[Unenforced] = field(default_factory=list)
    where: dict[int, tuple[str, Any]] = field(default_factory=dict)
    #: the share of the caps an optional property gets (compounding: optional inside optional)
    share: float = 1.0

    def bound(self, node: Any, depth: int, at: str) -> Any:
        out = self._bound(node, depth, at)
        if isinstance(out, dict):
            self.where.setdefault(id(out), (at, out))  # the node is kept so that its id stays its own
        return out

    def drop(self, keyword: str, at: str, how: str = _HELD_AFTER) -> None:
        if all(d.pointer != at for d in self.dropped):
            self.dropped.append(Unenforced(keyword, at, how))

    def _bound(self, node: Any, depth: int, at: str) -> Any:
        if node is True or node == {}:
            return _any_scalar(self.chars)
        if node is False or not isinstance(node, dict):
            return node
        if "$ref" in node:
            return self._reference(node, depth, at)
        if "enum" in node or "const" in node:
            return {k: v for k, v in node.items() if k in ("enum", "const", "type", *_KEEP)}
        if "allOf" in node and len(node["allOf"]) == 1:
            merged = {**{k: v for k, v in node.items() if k != "allOf"}, **node["allOf"][0]}
            return self.bound(merged, depth, f"{at}/allOf/0")
        for key in ("anyOf", "oneOf"):  # the grammar takes any branch; "exactly one" is left to validation
            if key in node:
                rest = {k: v for k, v in node.items() if k != key}
                branches = [self.bound({**rest, **b} if isinstance(b, dict) else b, depth, f"{at}/{key}/{i}")
                            for i, b in enumerate(node[key])]
                branches = [b for b in branches if b is not False]  # a recursion cut short, or `false`
                return {"anyOf": branches, **_kept(node)} if branches else False
        kind = node.get("type") or _implied_type(node)
        if isinstance(kind, list):
            branches = [b for b in (self.bound({**node, "type": t}, depth, at) for t in kind) if b is not False]
            return {"anyOf": branches, **_kept(node)} if branches else False
        if kind is None:
            return _any_scalar(self.chars)
        bounder = getattr(self, f"_{kind}", None)
        return bounder(node, depth, at) if bounder else node

    def _reference(self, node: dict, depth: int, at: str) -> Any:
        ref = node["$ref"]
        origin = self.origins.get(ref, ref)
        shown = origin[1:] if origin.startswith("#") else origin
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise UnboundedError(f"{at}/$ref: {ref!r} points outside the schema (bundle it first)")
        if self.stack.count(ref) > RECURSION_DEPTH:
            return False  # recursion beyond the bound: the parent leaves this value out
        try:
            target = _resolve(self.root, ref)
        except (KeyError, IndexError, ValueError) as exc:
            raise UnboundedError(f"{at}/$ref: cannot resolve {origin!r}") from exc
        rest = {k: v for k, v in node.items() if k != "$ref"}
        merged = {**target, **rest} if isinstance(target, dict) else target
        inner = _Walk(self.chars, self.items, self.root, self.origins, (*self.stack, ref), self.dropped, self.where,
                      self.share)
        return inner.bound(merged, depth, shown)

    def optional(self) -> _Walk:
        """The walk for an optional property: its share of the caps, so required content keeps the most."""
        if self.share >= 1:
            return self
        return _Walk(max(1, int(self.chars * self.share)), max(1, int(self.items * self.share)), self.root,
                     self.origins, self.stack, self.dropped, self.where, self.share)

    def _string(self, node: dict, depth: int, at: str) -> dict:
        low = int(node.get("minLength", 0))
        if "pattern" in node:
            return {"type": "string", "pattern": self._pattern(node, at), **_kept(node)}
        if node.get("format") in FIXED_FORMATS:
            return {"type": "string", "format": node["format"], **_kept(node)}
        if "format" in node:
            self.drop("format", f"{at}/format", "written as a bounded string; the format is " + _HELD_AFTER)
        high = max(low, min(int(node.get("maxLength", self.chars)), self.chars))
        return {"type": "string", "pattern": string_pattern(low, high), **_kept(node)}

    def _pattern(self, node: dict, at: str) -> str:
        """The schema's own pattern, its repetitions shortened to the schema's maxLength (which a
        grammar drops beside a pattern) and to this level's string cap, never below the pattern's
        shortest match: a tightening, since every match of the result matches the original."""
        pattern = node["pattern"]
        low, high = _pattern_width(pattern)
        if high is None:
            raise UnboundedError(f"{at}/pattern: {pattern!r} has no longest match")
        limit = max(PATTERN_CHARS, self.chars, low)
        if "maxLength" in node:
            limit = min(limit, int(node["maxLength"]))
        shortened = shorten_pattern(_optional_groups(pattern), limit)
        if "maxLength" in node and _pattern_width(shortened)[1] > int(node["maxLength"]):  # type: ignore[operator]
            self.drop("maxLength", f"{at}/maxLength", "the pattern's matches cannot all be shortened to it; "
                                                      + _HELD_AFTER)
        return shortened

    def _integer(self, node: dict, depth: int, at: str) -> dict:
        return {"type": "integer", **_range(node, True), **_kept(node)}

    def _number(self, node: dict, depth: int, at: str) -> dict:
        if "multipleOf" in node:
            self.drop("multipleOf", f"{at}/multipleOf")
        return {"type": "number", **_range(node, False), **_kept(node)}

    def _boolean(self, node: dict, depth: int, at: str) -> dict:
        return {"type": "boolean", **_kept(node)}

    def _null(self, node: dict, depth: int, at: str) -> dict:
        return {"type": "null", **_kept(node)}

    def _array(self, node: dict, depth: int, at: str) -> dict:
        cap = _cap(self.items, depth, scalar=not _is_structured(node.get("items", True)))
        low = int(node.get("minItems", 0))
        prefix = [self.bound(p, depth + 1, f"{at}/prefixItems/{i}") for i, p in enumerate(node.get("prefixItems", []))]
        rest = node.get("items", True)
        out: dict[str, Any] = {"type": "array", **_kept(node)}
        if prefix:
            out["prefixItems"] = prefix
        bounded_rest = False if rest is False else self.bound(rest, depth + 1, f"{at}/items")
        if bounded_rest is not False:
            out["items"] = bounded_rest
            out["maxItems"] = max(low, min(int(node.get("maxItems", cap)), cap))
        else:  # no items beyond the prefix (`items: false`, or a recursion cut short)
            out["maxItems"] = min(len(prefix), int(node.get("maxItems", len(prefix))))
            if low > out["maxItems"]:
                raise UnboundedError(f"{at}/items: at least {low} item(s) required, and they recurse through "
                                     f"$ref deeper than {RECURSION_DEPTH} levels")
        if low:
            out["minItems"] = low
        return out

    def _object(self, node: dict, depth: int, at: str) -> dict:
        declared = dict(node.get("properties") or {})
        own = node.get("additionalProperties")
        # keys beyond the declared ones: free-form only when the schema declares none (else left out)
        extra = own if own is not None else not declared
        required = list(node.get("required", []))
        if own is not False:  # a required name the schema does not describe: any value, but present
            declared.update({k: {} for k in required if k not in declared})
        out: dict[str, Any] = {"type": "object", **_kept(node)}
        props = {}
        for key, value in declared.items():
            walk = self if key in required else self.optional()
            bounded = walk.bound(value, depth, f"{at}/properties/{_escape(key)}")
            if bounded is not False:
                props[key] = bounded
            elif key in required:
                raise UnboundedError(f"{at}/properties/{_escape(key)}: required, and it recurses through $ref "
                                     f"deeper than {RECURSION_DEPTH} levels (or admits no value)")
        if props:
            out["properties"] = props
        if required:
            out["required"] = required
        if "patternProperties" in node and extra is not False:
            self.drop("patternProperties", f"{at}/patternProperties")
        bounded_extra = False if extra is False else _any_scalar(self.chars) if extra is True or extra == {} \
            else self.bound(extra, depth + 1, f"{at}/additionalProperties")
        if bounded_extra is False:
            out["additionalProperties"] = False
            for key in ("minProperties", "maxProperties"):  # xgrammar holds both on declared properties
                if key in node:
                    out[key] = int(node[key])
            return out
        # free-form keys: bounded names, bounded values, a bounded count
        cap = max(int(node.get("minProperties", 0)), len(props) + _cap(self.items, depth, scalar=True))
        out["additionalProperties"] = bounded_extra
        out["propertyNames"] = self._names(node, at)
        out["maxProperties"] = min(int(node.get("maxProperties", cap)), cap)
        if node.get("minProperties"):
            out["minProperties"] = int(node["minProperties"])
        return out

    def _names(self, node: dict, at: str) -> dict:
        """The keys of a free-form object: the schema's own pattern or length, else any short name."""
        own = node.get("propertyNames")
        chars = min(MAX_KEY_CHARS, max(1, self.chars))
        if isinstance(own, dict) and "pattern" in own:
            low = _pattern_width(own["pattern"])[0]
            return {"pattern": shorten_pattern(self._pattern({"type": "string", **own}, f"{at}/propertyNames"),
                                               max(low, chars))}
        if own not in (None, True, {}):
            if not (isinstance(own, dict) and set(own) <= {"type", "minLength", "maxLength", *_KEEP}):
                self.drop("propertyNames", f"{at}/propertyNames")
            own = own if isinstance(own, dict) else {}
            return {"pattern": string_pattern(max(1, int(own.get("minLength", 1))),
                                              max(1, min(int(own.get("maxLength", chars)), chars)))}
        return {"pattern": string_pattern(1, chars)}

    def largest_part(self, schema: Any) -> tuple[str, int]:
        """The pointer of the part that holds most of a bounded schema's worst case, descending while
        one part holds at least half of its parent; '' when no single part does."""
        part, size, node = "", worst_case_bytes(schema), schema
        while True:
            children = _children(node)
            if not children:
                return part, size
            child_bytes, child = max(children, key=lambda c: c[0])
            if child_bytes * 2 < size or id(child) not in self.where:
                return part, size
            part, size, node = self.where[id(child)][0] or "/", child_bytes, child


def _children(node: Any) -> list[tuple[int, Any]]:
    """Each part of a bounded schema with the bytes it can take inside it (an array's items counted
    as many times as they may repeat)."""
    if not isinstance(node, dict):
        return []
    if "anyOf" in node:
        return [(worst_case_bytes(b), b) for b in node["anyOf"]]
    out = [(worst_case_bytes(v), v) for v in (node.get("properties") or {}).values()]
    if isinstance(node.get("additionalProperties"), dict):
        extra = node["additionalProperties"]
        out.append((worst_case_bytes(extra) * int(node.get("maxProperties", 1)), extra))
    if isinstance(node.get("items"), dict):
        out.append((worst_case_bytes(node["items"]) * int(node.get("maxItems", 1)), node["items"]))
    return out


def _resolve(root: Any, ref: str) -> Any:
    """The place a local `$ref` (`#/a/b~1c/0`) points at."""
    node = root
    for part in [p.replace("~1", "/").replace("~0", "~") for p in ref[1:].split("/")[1:]]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


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


def _quantifiers(pattern: str) -> list[tuple[int, int, int, int]]:
    """(start, end, low, high) of each `{low,high}` repetition outside escapes and character classes."""
    found, i, in_class = [], 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            i += 2 if pattern[i + 1:i + 2] == "^" else 1
            i += 1 if pattern[i:i + 1] == "]" else 0  # a `]` first in a class is a literal
            continue
        elif (m := _REPEAT.match(pattern, i)) is not None:
            found.append((m.start(), m.end(), int(m[1]), int(m[2])))
            i = m.end()
            continue
        i += 1
    return found


_REPEAT = re.compile(r"\{(\d+),(\d+)\}")


def _optional_groups(pattern: str) -> str:
    """`(...)?` written `(...){0,1}`: the same language, but xgrammar 0.2.8 compiles an optional group
    that ends in a counted repetition wrongly (measured: `^a(:[A-Z]{1,2})?$` accepts `aA`, not `a:A`)."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            skip = 2 if pattern[i + 1:i + 2] == "^" else 1
            skip += 1 if pattern[i + skip:i + skip + 1] == "]" else 0
            out.append(pattern[i:i + skip])
            i += skip
            continue
        elif char == "?" and i and pattern[i - 1] == ")" and pattern[i + 1:i + 2] not in ("?", "+"):
            out.append("{0,1}")
            i += 1
            continue
        out.append(char)
        i += 1
    return "".join(out)


def shorten_pattern(pattern: str, limit: int) -> str:
    """`pattern` with its widest `{m,n}` repetitions lowered, one step at a time, until its longest
    match is at most `limit` characters (or none can be lowered further)."""
    while (_pattern_width(pattern)[1] or 0) > limit:
        spans = [q for q in _quantifiers(pattern) if q[3] > q[2]]
        if not spans:
            return pattern
        start, end, low, high = max(spans, key=lambda q: q[3] - q[2])
        pattern = f"{pattern[:start]}{{{low},{high - 1}}}{pattern[end:]}"
    return pattern


def _pattern_width(pattern: str) -> tuple[int, int | None]:
    """Shortest and longest match of a pattern in characters (None: no longest)."""
    import re._parser as sre

    low, high = _parse(pattern).getwidth()
    return int(low), None if high >= sre.MAXREPEAT else int(high)


def _parse(pattern: str) -> Any:
    import re._parser as sre

    body = pattern[1:] if pattern.startswith("^") else pattern
    body = body[:-1] if body.endswith("$") and not body.endswith("\\$") else body
    return sre.parse(body)


def _range(node: dict, integer: bool) -> dict:
    out = {k: node[k] for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
           if k in node and (integer or k != "multipleOf")}
    if "minimum" not in out and "exclusiveMinimum" not in out:
        out["minimum"] = -MAX_MAGNITUDE
    if "maximum" not in out and "exclusiveMaximum" not in out:
        out["maximum"] = MAX_MAGNITUDE
    return out


def _cap(items: int, depth: int, scalar: bool) -> int:
    """Items for an array (or free keys for an object): halved for each enclosing array, and halved
    again for lists of scalars (notes, sources), so that the structure keeps its items longest."""
    return max(1, items >> (depth + scalar))


def _is_structured(node: Any) -> bool:
    return isinstance(node, dict) and (node.get("type") in ("object", "array") or "properties" in node
                                       or "$ref" in node)


def _any_scalar(chars: int) -> dict:
    """An unconstrained value, generated as a bounded scalar."""
    return {"anyOf": [{"type": "string", "pattern": string_pattern(0, chars)},
                      {"type": "number", "minimum": -MAX_MAGNITUDE, "maximum": MAX_MAGNITUDE},
                      {"type": "boolean"}, {"type": "null"}]}


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
    width = _pattern_width(pattern)[1]
    if width is None:
        raise UnboundedError(f"{at or '/'}: pattern {pattern!r} has no longest match")
    return width * (1 if _ascii_only(_parse(pattern)) else 4)


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
        key = worst_case_bytes({"type": "string", **schema["propertyNames"]}, f"{at}/propertyNames")
        value = worst_case_bytes(extra, f"{at}/additionalProperties")
        members += [key + 2 + value] * max(0, int(schema["maxProperties"]) - len(props))
    if "maxProperties" in schema:
        members = sorted(members, reverse=True)[:max(int(schema["maxProperties"]), 0)]
    return 2 + sum(members) + 2 * max(0, len(members) - 1)
