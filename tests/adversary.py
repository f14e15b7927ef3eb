"""An adversarial model for the constrained decoder: the proof that bounded grammars close within the
budget does not depend on what a real model happens to prefer.

`AdversaryModel` stands where the transformer stands in `agent.local.LocalEngine.decode` (the very loop,
grammar factory and matcher the local backend runs) and returns logits of one of two kinds:
- "open": every token that would close something (`"`, `}`, `]`, a stop token) scores lowest, and
  among the rest the shortest tokens score highest, so the model writes one byte at a time, fills
  every string, adds every item and property the grammar allows, and closes only when forced;
- "random": seeded Gaussian logits.
`corpus()` gathers every tool schema in ../shared/data (BFCL's functions, Seal-Tools' tool.jsonl)
and the plan schema, as the readers in finetune/ turn them into `ToolSpec`s; `documents()` the real
public schemas of `andini generate`'s benchmark (benchmarks/schemas/), which `run_document` decodes
exactly as the local backend of `agent.generate` does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from andini.schema import Message, ToolSpec, plan_tool

SCHEMAS = Path(__file__).resolve().parent.parent / "benchmarks" / "schemas"


class AdversaryModel:
    """Logits without a network: `kind` is "open" or "random" (see the module docstring)."""

    def __init__(self, vocab: list[bytes], stop_ids: list[int], kind: str, seed: int = 0):
        import torch

        self.kind, self.size = kind, len(vocab)
        self.generator = torch.Generator().manual_seed(seed)
        closing = torch.tensor([any(c in t for c in b'"}]') for t in vocab], dtype=torch.bool)
        closing[stop_ids] = True
        self.preference = -torch.tensor([float(len(t) or 99) for t in vocab])
        self.preference[closing] = -1e4
        self.device = "cpu"
        self.config = SimpleNamespace(model_type="adversary")

    def get_output_embeddings(self) -> Any:
        return SimpleNamespace(weight=SimpleNamespace(shape=(self.size, 1)))

    def __call__(self, input_ids: Any, cache: Any = None, **kwargs: Any) -> Any:
        import torch

        noise = torch.rand(self.size, generator=self.generator)
        logits = self.preference + noise if self.kind == "open" else torch.randn(self.size, generator=self.generator)
        return SimpleNamespace(logits=logits.view(1, 1, -1), cache=None)


class ScriptedTextModel:
    """Logits that spell out `script`'s tokens, one per forward pass, then a stop token: a model that
    wants exactly this output, to see what the decoder lets through."""

    def __init__(self, script: list[int], stop_id: int, size: int):
        self.script, self.stop_id, self.size, self.step = script, stop_id, size, 0
        self.device = "cpu"
        self.config = SimpleNamespace(model_type="text")

    def get_output_embeddings(self) -> Any:
        return SimpleNamespace(weight=SimpleNamespace(shape=(self.size, 1)))

    def __call__(self, input_ids: Any, cache: Any = None, **kwargs: Any) -> Any:
        import torch

        logits = torch.zeros(self.size)
        logits[self.script[self.step] if self.step < len(self.script) else self.stop_id] = 100.0
        self.step += 1
        return SimpleNamespace(logits=logits.view(1, 1, -1), cache=None)


def engine(tokenizer: Any, kind: str, seed: int = 0) -> Any:
    """A LocalEngine (ChatML, the default model's tokenizer) whose model is the adversary of `kind`."""
    return _local_engine(tokenizer, lambda factory, stop: AdversaryModel(factory.vocab, stop, kind, seed),
                         f"adversary-{kind}")


def text_engine(tokenizer: Any, script: str) -> Any:
    """A LocalEngine like `engine`'s whose model is a ScriptedTextModel writing `script`."""
    ids = tokenizer(script, add_special_tokens=False)["input_ids"]
    return _local_engine(tokenizer, lambda factory, stop: ScriptedTextModel(ids, stop[-1], len(tokenizer)),
                         "scripted-text")


def _local_engine(tokenizer: Any, make_model: Any, name: str) -> Any:
    from agent.grammar import XGrammarFactory
    from agent.local import LocalEngine
    from andini.formats import get_format

    fmt = get_format("chatml")
    stop = sorted({tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(fmt.end_of_turn)})
    factory = XGrammarFactory(tokenizer, len(tokenizer), stop)
    return LocalEngine(model=make_model(factory, stop), tokenizer=tokenizer, fmt=fmt, name=name, stop_ids=stop,
                       grammars={"xgrammar": factory})


@dataclass
class Outcome:
    tool: str
    kind: str
    tokens: int
    budget: int
    finished: bool
    error: str | None
    seconds: float


def run(eng: Any, tool: ToolSpec, budget: int, kind: str) -> Outcome:
    """One required call to `tool` under its bounded grammar, checked like `backends.complete` checks."""
    from agent.bounds import BudgetError
    from andini.calls import calls_error

    start = time.perf_counter()
    try:
        gen = eng.generate([Message(role="user", content="call it")], [tool], require_call=True,
                           max_new_tokens=budget)
    except BudgetError as exc:
        return Outcome(tool.name, kind, 0, budget, False, f"refused: {exc}", time.perf_counter() - start)
    try:
        _, calls = eng.fmt.parse(gen.text)
        error = calls_error(calls, [tool]) or (None if len(calls) == 1 else f"{len(calls)} calls")
    except (ValueError, TypeError) as exc:
        error = f"does not parse: {exc}: {gen.text[-200:]}"
    return Outcome(tool.name, kind, gen.new_tokens, budget, gen.finished, error, time.perf_counter() - start)


def corpus(data: Path) -> Iterator[ToolSpec]:
    """Each distinct tool schema in BFCL and Seal-Tools, then the plan schema (offered alone, and
    specialised to the agent's built-in tools)."""
    from agent.tools import ToolContext, builtin_tools
    from agent.validate import tool_specs
    from finetune.readers import read_examples, seal_tools

    seen: set[str] = set()

    def fresh(tool: ToolSpec) -> bool:
        key = json.dumps(tool.model_dump(), sort_keys=True)
        return not (key in seen or seen.add(key))

    for path in sorted((data / "bfcl").glob("BFCL_v4_*.json")):
        for example in read_examples(path, "bfcl"):
            yield from (t for t in example.tools if fresh(t))
    seal = data / "toolcalls" / "seal-tools" / "tool.jsonl"
    if seal.exists():
        yield from (t for t in seal_tools(seal).values() if fresh(t))
    builtin = tool_specs(builtin_tools(ToolContext()))
    yield plan_tool()
    yield plan_tool(builtin)


def documents() -> list[Any]:
    """The benchmark's schemas (benchmarks/schemas/README.md), loaded as `andini generate` loads them."""
    from andini.docschema import load_schema

    return [load_schema(p) for p in sorted(SCHEMAS.glob("*.schema.*"))]


def run_document(eng: Any, doc: Any, budget: int, kind: str, allow_decline: bool = False) -> Outcome:
    """One document under `andini generate`'s bounded grammar, checked as `generate()` checks a reply."""
    from agent.bounds import BudgetError
    from agent.generate import check_reply, document_decoder, prompt

    start = time.perf_counter()
    name = Path(doc.source).name + (" (or decline)" if allow_decline else "")
    try:
        decode, _ = document_decoder(eng, doc, allow_decline, budget)
    except BudgetError as exc:
        return Outcome(name, kind, 0, budget, False, f"refused: {exc}", time.perf_counter() - start)
    gen = decode(prompt(doc, "write it", [], allow_decline))
    _, errors = check_reply(doc, gen.text, allow_decline)
    error = f"{'; '.join(errors[:3])}: {gen.text[-200:]}" if errors else None
    return Outcome(name, kind, gen.new_tokens, budget, gen.finished, error, time.perf_counter() - start)
