"""Local backend speed: decoding with and without the grammar vs plain `model.generate`, time to first
token, and one agent turn's latency split into model, tools and overhead.

    .venv/bin/python benchmarks/bench_agent.py [--prompts 8] [--max-new-tokens 48] [--repeats 3]

Each prompt runs every variant back to back, `--repeats` times, so background load on a shared machine
hits all variants alike; the table shows medians. Decode tokens/s counts tokens after the first, over
the time after the first (prefill is reported separately as time to first token).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from andini.schema import Message, ToolSpec

TOOLS = [
    ToolSpec(name="search_knowledge_base", description="Search the person's documents.",
             parameters={"type": "object", "properties": {"query": {"type": "string"},
                                                          "k": {"type": "integer"}}, "required": ["query"]}),
    ToolSpec(name="create_task", description="Add a task.",
             parameters={"type": "object", "properties": {"title": {"type": "string"},
                                                          "detail": {"type": "string"}}, "required": ["title"]}),
]
PROMPTS = ["Find what my notes say about the installation.", "Add a task to call the bank.",
           "Search the docs for the API token setting.", "Remind me to water the plants.",
           "What does the documentation say about Chroma?", "Create a task: tidy the desk.",
           "Look up the default chunk size.", "Tell me a fact about owls."]


def plain_generate(engine: Any, messages: list[Message], max_new_tokens: int) -> dict[str, float]:
    """transformers' own `model.generate` (greedy, same prompt, KV cache), with a streamer for TTFT."""
    import torch
    from transformers.generation.streamers import BaseStreamer

    class FirstToken(BaseStreamer):
        def __init__(self):
            self.calls, self.first = 0, 0.0

        def put(self, value):
            self.calls += 1
            if self.calls == 2:  # the first put() is the prompt
                self.first = time.perf_counter()

        def end(self):
            pass

    ids = engine.prompt_ids(messages, TOOLS)
    streamer = FirstToken()
    start = time.perf_counter()
    with torch.inference_mode():
        out = engine.model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False, streamer=streamer,
                                    eos_token_id=engine.stop_ids, pad_token_id=engine.stop_ids[0])
    total = time.perf_counter() - start
    new = int(out.shape[1] - ids.shape[1])
    return _rates(new, streamer.first - start, total)


def ours(engine: Any, messages: list[Message], max_new_tokens: int, library: str | None) -> dict[str, float]:
    gen = engine.generate(messages, TOOLS, constrained=library is not None, max_new_tokens=max_new_tokens,
                          library=library or "xgrammar")
    return _rates(gen.new_tokens, gen.ttft_s, gen.latency_s)


def _rates(new: int, ttft: float, total: float) -> dict[str, float]:
    decode = max(total - ttft, 1e-9)
    return {"tokens": new, "ttft_s": ttft, "total_s": total,
            "decode_tps": (new - 1) / decode if new > 1 else 0.0, "overall_tps": new / total}


def speed_table(engine: Any, prompts: list[str], max_new_tokens: int, repeats: int) -> None:
    variants = {
        "model.generate (no grammar)": lambda m: plain_generate(engine, m, max_new_tokens),
        "andini loop, no grammar": lambda m: ours(engine, m, max_new_tokens, None),
        "andini loop + xgrammar": lambda m: ours(engine, m, max_new_tokens, "xgrammar"),
        "andini loop + llguidance": lambda m: ours(engine, m, max_new_tokens, "llguidance"),
    }
    for run in variants.values():  # warm-up: grammar compilers, llguidance's torch.compile, caches
        run([Message(role="user", content=prompts[0])])
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for _ in range(repeats):
        for prompt in prompts:
            for name, run in variants.items():
                rows[name].append(run([Message(role="user", content=prompt)]))
    base = statistics.median(r["decode_tps"] for r in rows["model.generate (no grammar)"])
    print(f"\n{'variant':30} {'decode tok/s':>12} {'vs generate':>11} {'TTFT ms':>8} {'tokens/call':>11}")
    for name, results in rows.items():
        tps = statistics.median(r["decode_tps"] for r in results)
        ttft = statistics.median(r["ttft_s"] for r in results) * 1000
        toks = statistics.mean(r["tokens"] for r in results)
        print(f"{name:30} {tps:12.1f} {tps / base - 1:+10.1%} {ttft:8.0f} {toks:11.1f}")


def mask_cost(engine: Any, steps: int = 64) -> None:
    """Per-token grammar cost alone (mask + advance), on a plain-text answer and inside a tool call."""
    import torch

    text = ('Sure, here is what I found in the notes. <tool_call>\n{"name": "create_task", "arguments": '
            '{"title": "call the bank tomorrow morning", "detail": "ask about the card"}}\n</tool_call>')
    ids = engine.tokenizer(text, add_special_tokens=False).input_ids[:steps]
    logits = torch.zeros(1, engine.vocab_size)
    print(f"\n{'library':12} {'compile ms':>10} {'mask+accept µs/token':>21}")
    for library in ("xgrammar", "llguidance"):
        factory = engine.grammar_factory(library)
        factory.constraint(engine.fmt, TOOLS)  # warm
        start = time.perf_counter()
        constraint = factory.constraint(engine.fmt, TOOLS[::-1])  # a tool set not compiled before
        compile_ms = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        try:
            for token in ids:
                constraint.mask(logits)
                constraint.accept(token)
        except RuntimeError as exc:  # report, and go on to the other library
            print(f"{library:12} {compile_ms:10.1f}   FAILED: {str(exc).splitlines()[0][:90]}")
            continue
        per_token = (time.perf_counter() - start) / len(ids) * 1e6
        print(f"{library:12} {compile_ms:10.1f} {per_token:21.0f}")


class _Timer:
    """Callback handler summing time spent in model calls and in tools."""

    def __init__(self):
        from langchain_core.callbacks import BaseCallbackHandler

        timer = self

        class Handler(BaseCallbackHandler):
            def on_chat_model_start(self, serialized, messages, *, run_id, **kw):
                timer.open[run_id] = time.perf_counter()
                timer.model_calls += 1

            def on_llm_end(self, response, *, run_id, **kw):
                timer.model += time.perf_counter() - timer.open.pop(run_id, time.perf_counter())

            def on_tool_start(self, serialized, input_str, *, run_id, **kw):
                timer.open[run_id] = time.perf_counter()
                timer.tool_calls += 1

            def on_tool_end(self, output, *, run_id, **kw):
                timer.tools += time.perf_counter() - timer.open.pop(run_id, time.perf_counter())

        self.open: dict[Any, float] = {}
        self.model = self.tools = 0.0
        self.model_calls = self.tool_calls = 0
        self.handler = Handler()


def agent_turn(max_new_tokens: int) -> None:
    """One turn on the local backend: the first call must use list_tasks, then the model answers."""
    from agent.run import Agent

    agent = Agent(first_tool_choice="list_tasks", max_new_tokens=max_new_tokens, max_model_calls=3)
    # read-only tools, so the turn is not paused for consent by a create_task the untuned model may try
    agent.tools = [t for t in agent.tools if t.name in ("list_tasks", "search_knowledge_base")]
    graph = agent.graph  # build (and load the model) outside the timing
    for attempt in ("warm-up", "timed"):
        timer = _Timer()
        config = {"configurable": {"thread_id": f"bench-{attempt}"}, "callbacks": [timer.handler]}
        start = time.perf_counter()
        graph.invoke({"messages": [{"role": "user", "content": "Which tasks do I have?"}]}, config)
        total = time.perf_counter() - start
    overhead = total - timer.model - timer.tools
    print(f"\nagent turn ({timer.model_calls} model calls, {timer.tool_calls} tool calls): total {total * 1000:.0f} ms = model {timer.model * 1000:.0f} ms"
          f" + tools {timer.tools * 1000:.0f} ms + overhead {overhead * 1000:.0f} ms ({overhead / total:.1%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--agent-only", action="store_true", help="only the agent-turn latency split")
    args = parser.parse_args()

    import os

    import torch

    from agent.local import get_engine

    engine = get_engine()
    print(f"model {engine.name} dtype {engine.model.dtype} torch threads {torch.get_num_threads()} "
          f"cpus {os.cpu_count()} load {os.getloadavg()[0]:.1f}")
    if not args.agent_only:
        speed_table(engine, PROMPTS[: args.prompts], args.max_new_tokens, args.repeats)
        mask_cost(engine)
    agent_turn(max(args.max_new_tokens, 64))


if __name__ == "__main__":
    main()
