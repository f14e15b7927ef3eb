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
    token_ids: list[int] = field(default_factory=list)
    #: True when the model began a call that the tokens left could not hold, so the output ended before
    #: it (agent/grammar.py, CallWatch): a call the budget refused, not one the model did not want.
    stopped_before_call: bool = False


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
    #: Requests decoded together at most (see `decode`); more wait for the next batch.
    max_batch: int = 32
    pending: list[_Request] = field(default_factory=list)
    pending_lock: threading.Lock = field(default_factory=threading.Lock)
    #: Threads inside `generate` (for `_gather`), and how long a batch waits for their prompts.
    callers: int = 0
    gather_s: float = 0.05

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
        with self.pending_lock:
            self.callers += 1  # announced before the grammar compiles, so a batch waits for this prompt
        try:
            constraint = None
            if constrained and tools:
                constraint = self.grammar_factory(library).constraint(self.fmt, tools, require_call, max_new_tokens)
            return self.decode(self.prompt_ids(messages, tools), constraint, max_new_tokens, temperature, on_token)
        finally:
            with self.pending_lock:
                self.callers -= 1

    def decode(self, input_ids: Any, constraint: Any, max_new_tokens: int, temperature: float,
               on_token: Callable[[str], None] | None) -> Generation:
        """Decode one prompt. Calls from several threads at once are decoded together as one batch
        (up to `max_batch`): whichever caller holds the model decodes everything waiting, so a batch
        needs no scheduler thread, and a lone caller decodes alone, exactly as before."""
        request = _Request(input_ids, constraint, max_new_tokens, temperature, on_token, time.perf_counter())
        with self.pending_lock:
            self.pending.append(request)
        while request.result is None:
            with self.lock:  # one decode at a time per loaded model
                self._gather()
                with self.pending_lock:
                    batch, self.pending = self.pending[:self.max_batch], self.pending[self.max_batch:]
                if batch:
                    for req, gen in zip(batch, self.decode_batch(batch), strict=True):
                        req.result = gen
        return request.result

    def _gather(self) -> None:
        """Wait briefly until every caller inside `generate` has its prompt queued (or the batch is full)."""
        deadline = time.perf_counter() + self.gather_s
        while time.perf_counter() < deadline:
            with self.pending_lock:
                if len(self.pending) >= min(max(self.callers, 1), self.max_batch):
                    return
            time.sleep(0.001)

    def decode_batch(self, batch: list[_Request]) -> list[Generation]:
        """Greedy or sampled decoding of several prompts at once, each with its own grammar, budget and
        stop. Prompts are padded on the left so every row's next token sits in the last column."""
        import torch

        device = self.model.device
        width = max(int(r.input_ids.shape[1]) for r in batch)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.stop_ids[0]
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, r in enumerate(batch):
            n = int(r.input_ids.shape[1])
            ids[row, width - n:] = r.input_ids[0]
            mask[row, width - n:] = 1
        ids, mask = ids.to(device), mask.to(device)
        padded = bool((mask == 0).any())
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        states = [_State() for _ in batch]
        cache, step_input = None, ids
        limit = max(r.max_new_tokens for r in batch)
        with torch.inference_mode():
            for step in range(limit):
                extra = {"attention_mask": mask, "position_ids": positions} if padded else {}
                out = self.model(input_ids=step_input, cache=cache, use_cache=True, logits_to_keep=1, **extra)
                cache = out.cache
                logits = out.logits[:, -1, :].float()
                next_tokens = []
                for row, (r, st) in enumerate(zip(batch, states, strict=True)):
                    if st.done:
                        next_tokens.append(pad)
                        continue
                    st.step(self, r, logits[row:row + 1], step)
                    next_tokens.append(st.ids[-1] if st.ids and not st.done else pad)
                if all(st.done for st in states):
                    break
                step_input = torch.tensor(next_tokens, device=device).unsqueeze(-1)
                if padded:
                    mask = torch.cat([mask, torch.ones((len(batch), 1), dtype=mask.dtype, device=device)], -1)
                    positions = positions[:, -1:] + 1
        now = time.perf_counter()
        results = []
        for r, st in zip(batch, states, strict=True):
            text = self.tokenizer.decode(st.ids, skip_special_tokens=False)
            if r.on_token is not None and len(text) > len(st.shown):
                r.on_token(text[len(st.shown):])
            results.append(Generation(text=text, new_tokens=len(st.ids), ttft_s=st.ttft - r.start if st.ttft else 0.0,
                                      latency_s=now - r.start, finished=st.finished,
                                      prompt_tokens=int(r.input_ids.shape[1]), token_ids=list(st.ids),
                                      stopped_before_call=st.before_call))
        return results


@dataclass
class _Request:
    input_ids: Any
    constraint: Any
    max_new_tokens: int
    temperature: float
    on_token: Callable[[str], None] | None
    start: float
    result: Generation | None = None


@dataclass
class _State:
    """One row of a batch while it decodes."""

    ids: list[int] = field(default_factory=list)
    shown: str = ""
    ttft: float = 0.0
    finished: bool = False
    done: bool = False
    before_call: bool = False

    def step(self, engine: LocalEngine, r: _Request, logits: Any, step: int) -> None:
        """Choose this row's next token: mask, sample, accept; then the stop, budget and grammar tests."""
        if step >= r.max_new_tokens:
            self.done = True  # cut off at its own budget
            return
        if r.constraint is not None:
            r.constraint.mask(logits)
        token = _sample(logits, r.temperature)
        if not self.ttft:
            self.ttft = time.perf_counter()
        if r.constraint is not None:
            r.constraint.accept(token)
        if token in engine.stop_ids:
            self.finished = self.done = True
            return
        if r.constraint is not None and not r.constraint.may_open(r.max_new_tokens - step - 1):
            self.finished = self.done = self.before_call = True  # a call starting here could not close: end before it
            return
        self.ids.append(token)
        if r.on_token is not None:
            text = engine.tokenizer.decode(self.ids, skip_special_tokens=False)
            if len(text) > len(self.shown) and not text.endswith("\ufffd"):
                r.on_token(text[len(self.shown):])
                self.shown = text
        if r.constraint is not None and r.constraint.done():
            self.finished = self.done = True
        elif step + 1 >= r.max_new_tokens:
            self.done = True


def _sample(logits: Any, temperature: float) -> int:
    import torch

    if temperature <= 0:
        return int(torch.argmax(logits, dim=-1)[0])
    probs = torch.softmax(logits / temperature, dim=-1)
    return int(torch.multinomial(probs, 1)[0, 0])


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


_ENGINES: dict[tuple[str | None, str | None], LocalEngine] = {}
_ENGINES_LOCK = threading.Lock()


def get_engine(model: str | None = None, adapter: str | None = None) -> LocalEngine:
    """The cached engine for (model, adapter); loads it on first use."""
    key = (model, adapter)
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            from andini.models import DEFAULT_MODEL, load_model

            loaded, tokenizer = load_model(model, adapter=adapter)
            if adapter:  # folded into the weights: the same model, without LoRA's extra matmuls per token
                loaded = loaded.merge_and_unload()
            if _cuda():
                loaded = loaded.to("cuda")
            name = model or DEFAULT_MODEL
            fmt = get_format(detect_format(model))
            stop_ids = {tokenizer.eos_token_id}
            end_id = tokenizer.convert_tokens_to_ids(fmt.end_of_turn)
            if isinstance(end_id, int) and end_id != tokenizer.unk_token_id:
                stop_ids.add(end_id)
            _ENGINES[key] = LocalEngine(loaded, tokenizer, fmt, name,
                                        sorted(i for i in stop_ids if i is not None))
        return _ENGINES[key]
