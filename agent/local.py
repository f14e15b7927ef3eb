"""The embedded model: an in-process transformers model, a token loop with an optional grammar, and
token streaming. One loaded model per (model, adapter) is cached in the process.

Prompts are rendered only through `andini.formats`, the same code that renders training text.
The loop is ours rather than `model.generate` so that streaming needs no thread, the grammar mask and
the stop test sit in one place, and time to first token is measured where it happens;
`benchmarks/bench_agent.py` compares its speed with `model.generate` on the same prompts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from andini.formats import ChatFormat, detect_format, get_format, prompt_text
from andini.schema import Message, ToolSpec

DEFAULT_GRAMMAR_LIBRARY = "xgrammar"


@dataclass
class Generation:
    """What one model call produced."""

    text: str
    new_tokens: int
    ttft_s: float
    latency_s: float
    #: False when max_new_tokens cut the output short.
    finished: bool
    prompt_tokens: int = 0


@dataclass
class LocalEngine:
    """A loaded model with its tokenizer, chat format and grammar compiler."""

    model: Any
    tokenizer: Any
    fmt: ChatFormat
    name: str
    stop_ids: list[int] = field(default_factory=list)
    grammars: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def vocab_size(self) -> int:
        return int(self.model.get_output_embeddings().weight.shape[0])

    def grammar_factory(self, library: str = DEFAULT_GRAMMAR_LIBRARY) -> Any:
        if library not in self.grammars:
            from agent.grammar import FACTORIES

            self.grammars[library] = FACTORIES[library](self.tokenizer, self.vocab_size, self.stop_ids)
        return self.grammars[library]

    def prompt_ids(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> Any:
        text = prompt_text(self.fmt, messages, tools)
        return self.tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids

    def generate(self, messages: Sequence[Message], tools: Sequence[ToolSpec], *,
                 constrained: bool = True, require_call: bool = False, max_new_tokens: int = 256,
                 temperature: float = 0.0, on_token: Callable[[str], None] | None = None,
                 library: str = DEFAULT_GRAMMAR_LIBRARY) -> Generation:
        """One assistant turn. With `constrained`, tool calls follow the tools' schemas, bounded to
        close within `max_new_tokens` (agent/bounds.py; BudgetError before generating when they cannot)."""
        constraint = None
        if constrained and tools:
            constraint = self.grammar_factory(library).constraint(self.fmt, tools, require_call, max_new_tokens)
        input_ids = self.prompt_ids(messages, tools)
        with self.lock:  # one generation at a time per loaded model (the UI may call from threads)
            return self.decode(input_ids, constraint, max_new_tokens, temperature, on_token)

    def decode(self, input_ids: Any, constraint: Any, max_new_tokens: int, temperature: float,
               on_token: Callable[[str], None] | None) -> Generation:
        import torch

        start = time.perf_counter()
        ttft, cache, ids, shown, finished = 0.0, None, [], "", False
        step_input = input_ids.to(self.model.device)
        with torch.inference_mode():
            for step in range(max_new_tokens):
                out = self.model(input_ids=step_input, cache=cache, use_cache=True, logits_to_keep=1)
                cache = out.cache
                logits = out.logits[:, -1, :].float()
                if constraint is not None:
                    constraint.mask(logits)
                token = _sample(logits, temperature)
                if not ttft:
                    ttft = time.perf_counter() - start
                if constraint is not None:
                    constraint.accept(token)
                if token in self.stop_ids:
                    finished = True
                    break
                if constraint is not None and not constraint.may_open(max_new_tokens - step - 1):
                    finished = True  # a call starting here could not close in the budget: end before it
                    break
                ids.append(token)
                if on_token is not None:
                    text = self.tokenizer.decode(ids, skip_special_tokens=False)
                    if len(text) > len(shown) and not text.endswith("\ufffd"):
                        on_token(text[len(shown):])
                        shown = text
                if constraint is not None and constraint.done():
                    finished = True
                    break
                step_input = torch.tensor([[token]], device=self.model.device)
        text = self.tokenizer.decode(ids, skip_special_tokens=False)
        if on_token is not None and len(text) > len(shown):
            on_token(text[len(shown):])
        return Generation(text=text, new_tokens=len(ids), ttft_s=ttft,
                          latency_s=time.perf_counter() - start, finished=finished,
                          prompt_tokens=int(input_ids.shape[1]))


def _sample(logits: Any, temperature: float) -> int:
    import torch

    if temperature <= 0:
        return int(torch.argmax(logits, dim=-1)[0])
    probs = torch.softmax(logits / temperature, dim=-1)
    return int(torch.multinomial(probs, 1)[0, 0])


_ENGINES: dict[tuple[str | None, str | None], LocalEngine] = {}
_ENGINES_LOCK = threading.Lock()


def get_engine(model: str | None = None, adapter: str | None = None) -> LocalEngine:
    """The cached engine for (model, adapter); loads it on first use."""
    key = (model, adapter)
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            from andini.models import DEFAULT_MODEL, load_model

            loaded, tokenizer = load_model(model, adapter=adapter)
            name = model or DEFAULT_MODEL
            fmt = get_format(detect_format(model))
            stop_ids = {tokenizer.eos_token_id}
            end_id = tokenizer.convert_tokens_to_ids(fmt.end_of_turn)
            if isinstance(end_id, int) and end_id != tokenizer.unk_token_id:
                stop_ids.add(end_id)
            _ENGINES[key] = LocalEngine(loaded, tokenizer, fmt, name,
                                        sorted(i for i in stop_ids if i is not None))
        return _ENGINES[key]
