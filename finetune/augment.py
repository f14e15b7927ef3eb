"""Augmentations of the training mix: seeded transforms of validated examples, never guessed targets.

Each transform is a pure function of its inputs and a seed (the same data and seed give the same
output) and marks what it made in `meta["augment"]`, which the dataset card counts per split:

- `compose`: one request made of two or three single-call examples, the target their calls in order.
  Same function (`parallel`: one tool, several argument sets) or different functions
  (`multi`: several tools), as BFCL's parallel and parallel_multiple ask. Only examples whose
  request is one user turn are composed, and their calls were validated when read.
- `add_distractors`: extra offered tools chosen by similarity to the called ones (word overlap of
  names, descriptions and parameter names), so "offered" never means "call it" and choosing among
  near neighbours is learned. Near-identical tools (overlap >= `_SAME_TOOL`) are never offered:
  either could be right. Given a budget (`fits`), an example gets only the distractors that keep it
  inside it: otherwise the longest examples, those with several calls, were the ones dropped later.
- `irrelevance_by_removal`: the called tools removed, the similar distractors kept; the target becomes
  the no-call reply (Hammer's irrelevance augmentation). `irrelevance_by_donor`: another example's
  tools offered instead (the older, easier kind).
- `mask_names`: function and parameter names replaced by meaningless ones, consistently in the tools
  and the target (Hammer's function masking), so the model must read descriptions, not names.
- `shuffle_arguments`: a tool's parameters listed in another order and the target's arguments
  written in that order; `shuffle_tools`: the offered tools in another order.

Every output is validated again by `finetune.validate.example_problems` (see `augment_split`).
"""

from __future__ import annotations

import json
import random
import re
import string
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from andini.calls import call_problems
from andini.schema import MAKE_PLAN, Example, Message, ToolCall, ToolSpec
from finetune.readers import IRRELEVANT_REPLY

_SAME_TOOL = 0.5
_STOP = frozenset("a an and are as at be by for from get given in is it of on or set the this to with "
                  "which will be can that used use using value values name type".split())
_JOINERS = (" Also, ", " And ", "\n", " Then, ")


def _tagged(ex: Example, kind: str, **update: Any) -> Example:
    meta = {**ex.meta, **update.pop("meta", {}), "augment": [*ex.meta.get("augment", []), kind]}
    return ex.model_copy(update={**update, "meta": meta})


def single_request(ex: Example) -> bool:
    """One user turn (an optional system turn before it), exactly one call, no references."""
    roles = [m.role for m in ex.messages]
    return (roles in (["user"], ["system", "user"]) and len(ex.target_calls) == 1
            and not ex.meta.get("labels") and "$" not in json.dumps(ex.target_calls[0].arguments))


def _request(ex: Example) -> str:
    return ex.messages[-1].content.strip()


def _join(parts: list[str], rng: random.Random) -> str:
    text = parts[0]
    for part in parts[1:]:
        joiner = rng.choice(_JOINERS)
        if joiner.strip() and not part.startswith("I "):
            part = part[:1].lower() + part[1:]
        text = text.rstrip() + joiner + part
    return text


def compose(examples: list[Example], count: int, same_function: bool, seed: int) -> list[Example]:
    """`count` new examples, each the requests of 2-3 single-call examples joined, calls in order."""
    rng = random.Random(f"{seed}:compose:{same_function}")
    pool = [e for e in examples if single_request(e)]
    groups: dict[str, list[Example]] = defaultdict(list)
    for ex in pool:  # by name: where two sources declare one name differently, the first part's tool is
        groups[ex.target_calls[0].name if same_function else "all"].append(ex)  # offered, and validation decides
    keys = sorted(k for k, v in groups.items() if len(v) >= 2)
    out: list[Example] = []
    seen: set[str] = set()
    for _ in range(count * 5):
        if len(out) >= count or not keys:
            break
        group = groups[rng.choice(keys)]
        parts = rng.sample(group, min(len(group), rng.choice((2, 2, 3))))
        calls = [p.target_calls[0] for p in parts]
        names = [c.name for c in calls]
        signature = "|".join(sorted(p.id for p in parts))
        if signature in seen or (not same_function and len(set(names)) < len(names)):
            continue
        if len({json.dumps(c.arguments, sort_keys=True) for c in calls}) < len(calls):
            continue  # the same call twice is not a parallel request
        seen.add(signature)
        tools: list[ToolSpec] = []
        for p in parts:
            tools.extend(t for t in p.tools if t.name in names and t.name not in {u.name for u in tools})
        if any(call_problems(c, tools) for c in calls):
            continue  # one name, two declarations that disagree: not a verified target
        kind = "compose_parallel" if same_function else "compose_multi"
        out.append(Example(id=f"{kind}:{signature}", messages=[Message(role="user", content=_join(
            [_request(p) for p in parts], rng))], tools=tools, target_calls=calls, source=parts[0].source,
            license=parts[0].license, meta={"source_file": parts[0].meta.get("source_file"), "augment": [kind],
                                            "parts": [p.id for p in parts]}))
    return out


# ---------------------------------------------------------------- distractors by similarity

_WORD = re.compile(r"[A-Za-z][a-z]+|[A-Z]+(?![a-z])|[0-9]+")


def tool_words(tool: ToolSpec) -> frozenset[str]:
    """Content words of a tool's name (snake and camel case split), description and parameter names."""
    props = " ".join((tool.parameters.get("properties") or {}).keys())
    text = f"{tool.name} {tool.description} {props}".replace("_", " ")
    return frozenset(w.lower() for w in _WORD.findall(text) if len(w) > 2 and w.lower() not in _STOP)


class ToolIndex:
    """Every distinct tool of a set of examples, with an inverted index of its words."""

    def __init__(self, examples: list[Example]):
        self.tools: list[ToolSpec] = []
        self.words: list[frozenset[str]] = []
        self.postings: dict[str, list[int]] = defaultdict(list)
        names: set[str] = set()
        for ex in examples:
            for tool in ex.tools:
                if tool.name not in names and tool.name != MAKE_PLAN:
                    names.add(tool.name)
                    self.add(tool)

    def add(self, tool: ToolSpec) -> None:
        words = tool_words(tool)
        for w in words:
            self.postings[w].append(len(self.tools))
        self.tools.append(tool)
        self.words.append(words)

    def similar(self, own: list[ToolSpec], k: int) -> list[ToolSpec]:
        """Up to `k` tools most similar (Jaccard of words) to any of `own`, none near-identical to them."""
        own_names = {t.name.lower() for t in own}
        best: dict[int, float] = {}
        blocked: set[int] = set()
        for tool in own:
            words = tool_words(tool)
            shared: Counter = Counter(j for w in words for j in self.postings.get(w, ()))
            for j, n in shared.items():
                score = n / (len(words) + len(self.words[j]) - n)
                if score >= _SAME_TOOL:
                    blocked.add(j)
                best[j] = max(best.get(j, 0.0), score)
        ranked = sorted((j for j in best if j not in blocked and self.tools[j].name.lower() not in own_names),
                        key=lambda j: (-best[j], self.tools[j].name))
        return [self.tools[j] for j in ranked[:k]]


def add_distractors(examples: list[Example], count: int, seed: int, index: ToolIndex | None = None,
                    candidates: int = 6, fits: Callable[[Example], bool] | None = None) -> list[Example]:
    """Offer `count` more tools: drawn from the `candidates` most similar to the called (else offered)
    ones, falling back to random tools when too few share a word. Inserted at seeded positions. With
    `fits`, as many of them as keep the example fitting (fewer, or none)."""
    index = index or ToolIndex(examples)
    out = []
    for ex in examples:
        if not ex.tools or count == 0 or ex.target_plan is not None:
            out.append(ex)
            continue
        rng = random.Random(f"{seed}:distract:{ex.id}")
        called = [t for t in ex.tools if t.name in {c.name for c in ex.target_calls}] or list(ex.tools)
        near = [t for t in index.similar(called, candidates) if t.name not in {u.name for u in ex.tools}]
        picked = rng.sample(near, min(count, len(near)))
        while len(picked) < count and len(index.tools) > len(ex.tools) + len(picked):
            extra = rng.choice(index.tools)
            if extra.name not in {t.name for t in [*ex.tools, *picked]}:
                picked.append(extra)
        tools, distracted = list(ex.tools), ex
        for tool in picked:
            tools.insert(rng.randint(0, len(tools)), tool)
            candidate = _tagged(ex, "distractors", tools=list(tools))
            if fits is not None and not fits(candidate):
                break
            distracted = candidate
        out.append(distracted)
    return out


# ---------------------------------------------------------------- no-call examples


def irrelevance_by_removal(examples: list[Example], count: int, seed: int) -> list[Example]:
    """`count` no-call examples: a single request whose called tools are removed, the rest kept."""
    rng = random.Random(f"{seed}:removal")
    pool = [e for e in examples if e.target_calls and all(m.role in ("system", "user") for m in e.messages)
            and len({t.name for t in e.tools} - {c.name for c in e.target_calls}) > 0]
    out = []
    for ex in rng.sample(pool, min(count, len(pool))):
        called = {c.name for c in ex.target_calls}
        out.append(_tagged(ex, "irrelevance_removal", id=f"{ex.id}-removed",
                           tools=[t for t in ex.tools if t.name not in called], target_calls=[],
                           target_text=IRRELEVANT_REPLY, meta={"irrelevance": True}))
    return out


def irrelevance_by_donor(examples: list[Example], count: int, seed: int) -> list[Example]:
    """`count` no-call examples: a single request offered another example's tools, none of them called."""
    with_calls = [e for e in examples if e.target_calls and len(e.messages) == 1]
    rng = random.Random(seed)
    rng.shuffle(with_calls)
    out: list[Example] = []
    for ex, donor in zip(with_calls, with_calls[1:] + with_calls[:1], strict=True):
        if len(out) >= count:
            break
        if {t.name for t in donor.tools} & {c.name for c in ex.target_calls}:
            continue
        out.append(Example(id=f"{ex.id}-irrelevant", messages=[Message(role="user", content=_request(ex))],
                           tools=donor.tools, target_text=IRRELEVANT_REPLY, source=ex.source,
                           license=ex.license, meta={"source_file": ex.meta.get("source_file"),
                                                     "irrelevance": True, "augment": ["irrelevance_donor"]}))
    return out


# ---------------------------------------------------------------- masking and order


def _random_name(rng: random.Random, prefix: str) -> str:
    return prefix + "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(5))


def maskable(ex: Example) -> bool:
    """Tools offered, the request in user turns only (earlier calls would carry the old names)."""
    return bool(ex.tools) and ex.target_plan is None and all(m.role in ("system", "user") for m in ex.messages) \
        and not ex.meta.get("labels")


def mask_names(ex: Example, seed: int) -> Example:
    """Every function and top-level parameter name replaced by a random one, in tools and target."""
    rng = random.Random(f"{seed}:mask:{ex.id}")
    functions = {t.name: _random_name(rng, "fn_") for t in ex.tools}
    params: dict[str, dict[str, str]] = {}
    tools = []
    for tool in ex.tools:
        schema = json.loads(json.dumps(tool.parameters))
        props = schema.get("properties") or {}
        rename = {p: _random_name(rng, "p_") for p in props}
        params[tool.name] = rename
        if props:
            schema["properties"] = {rename[p]: v for p, v in props.items()}
        if isinstance(schema.get("required"), list):
            schema["required"] = [rename.get(p, p) for p in schema["required"]]
        tools.append(tool.model_copy(update={"name": functions[tool.name], "parameters": schema}))
    calls = [ToolCall(name=functions[c.name], arguments={params[c.name].get(k, k): v for k, v in c.arguments.items()})
             for c in ex.target_calls]
    return _tagged(ex, "mask_names", tools=tools, target_calls=calls)


def shuffle_arguments(ex: Example, seed: int) -> Example:
    """Each called tool's parameters in a seeded order; the target's arguments follow that order."""
    rng = random.Random(f"{seed}:args:{ex.id}")
    order: dict[str, list[str]] = {}
    tools = []
    for tool in ex.tools:
        props = tool.parameters.get("properties") or {}
        names = list(props)
        rng.shuffle(names)
        order[tool.name] = names
        tools.append(tool.model_copy(update={"parameters": {**tool.parameters,
                                                            "properties": {n: props[n] for n in names}}}))
    calls = []
    for call in ex.target_calls:
        rank = {n: i for i, n in enumerate(order.get(call.name, []))}
        calls.append(ToolCall(name=call.name, arguments=dict(sorted(call.arguments.items(),
                                                                    key=lambda kv: rank.get(kv[0], len(rank))))))
    return _tagged(ex, "shuffle_arguments", tools=tools, target_calls=calls)


def shuffle_tools(ex: Example, seed: int) -> Example:
    rng = random.Random(f"{seed}:tools:{ex.id}")
    tools = list(ex.tools)
    rng.shuffle(tools)
    return _tagged(ex, "shuffle_tools", tools=tools)


# ---------------------------------------------------------------- the recipe


def augment_split(examples: list[Example], data: Any, removed: Counter | None = None,
                  fits: Callable[[Example], bool] | None = None) -> list[Example]:
    """One split's examples with the configured augmentations (`data` is the DataConfig), in a fixed
    order: compose, distractors, no-call examples, then masking and shuffles on a seeded share.
    Distractors are only added while `fits` holds. Outputs that fail validation are dropped and
    counted in `removed` (none should)."""
    from finetune.validate import example_problems

    def picked(kind: str, ex: Example, share: float) -> bool:  # a stable draw per (transform, example)
        return random.Random(f"{seed}:{kind}:{ex.id}").random() < share

    aug, seed, n = data.augment, data.seed, len(examples)
    items = [*examples, *compose(examples, round(n * aug.compose_parallel), True, seed),
             *compose(examples, round(n * aug.compose_multi), False, seed)]
    items = add_distractors(items, data.distractor_tools, seed, ToolIndex(items), aug.distractor_candidates, fits)
    items += irrelevance_by_removal(items, round(n * aug.irrelevance_removal), seed)
    items += irrelevance_by_donor(items, round(n * data.irrelevance_fraction), seed)
    out = []
    for ex in items:
        if maskable(ex) and picked("mask", ex, aug.mask_names):
            ex = mask_names(ex, seed)
        if ex.tools and picked("args", ex, aug.shuffle_arguments):
            ex = shuffle_arguments(ex, seed)
        if len(ex.tools) > 1 and picked("tools", ex, aug.shuffle_tools):
            ex = shuffle_tools(ex, seed)
        if example_problems(ex):
            if removed is not None:
                removed["/".join(ex.meta.get("augment", [])) or "none"] += 1
            continue
        out.append(ex)
    return out
