"""`andini run` and `andini chat`: thin shells over `agent.run.Agent` that render its events."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    """Add this package's subcommands; handlers import heavy modules lazily."""
    run = sub.add_parser("run", help="one agent turn: answer, tool calls, plan",
                         description="Run one agent turn for INTENT and print the answer, the tool calls "
                                     "and any plan.")
    run.add_argument("intent", metavar="INTENT", help="what you want, in your words")
    _common(run)
    run.add_argument("--thread", help="continue this thread id")
    run.add_argument("--yes", action="store_true", help="approve tools with side effects without asking")
    run.add_argument("--json", action="store_true", help="print one JSON object with the whole turn")
    run.set_defaults(func=run_command)

    chat = sub.add_parser("chat", help="chat with the agent in the terminal (streaming)",
                          description="Chat with the agent; /new starts a new thread, /quit leaves.")
    _common(chat)
    chat.add_argument("--thread", help="continue this thread id")
    chat.set_defaults(func=chat_command)


def _common(p: argparse.ArgumentParser) -> None:
    from agent.backends import BACKENDS

    p.add_argument("--backend", choices=list(BACKENDS), help="model backend (default: settings)")
    p.add_argument("--model", help="local model folder or served model id")
    p.add_argument("--adapter", help="LoRA adapter: a name `andini adapters` lists or a folder (local), the "
                                     "adapter id (tgi), or 'none' (default: ANDINI_ADAPTER; unset: the newest "
                                     "registered for the model)")
    p.add_argument("--max-new-tokens", type=int, help="generation limit per model call")


def _agent(args: argparse.Namespace) -> Any:
    from agent.run import Agent

    return Agent(backend=args.backend, model=args.model, adapter=args.adapter,
                 max_new_tokens=args.max_new_tokens)


def _ask(question: str) -> bool:
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def render(event: Any, out: Any = None, err: Any = None) -> None:
    """Human-readable rendering: the answer streams to stdout, the agent's actions go to stderr."""
    # Looked up per call, not bound at import: a captured or replaced stream must not go stale.
    out, err = out or sys.stdout, err or sys.stderr
    if event.kind == "token":
        out.write(event.text)
        out.flush()
    elif event.kind == "tool_call":
        print(f"\n→ {event.call.name}({event.call.to_json()})", file=err)
    elif event.kind == "tool_result":
        mark = "✓" if event.ok else "✗"
        cites = "; ".join(f"{s.source} › {s.heading}" if s.heading else s.source for s in event.sources)
        print(f"{mark} {event.text}" + (f": {cites}" if cites else ""), file=err)
    elif event.kind == "plan":
        from agent.plans import PlanStore

        print(f"\nplan #{event.plan_id}:\n{PlanStore().export(event.plan_id, 'yaml')}", file=out)
    elif event.kind == "final":
        print("", file=out)
        for s in event.sources:
            print(f"  source: {s.source}" + (f" › {s.heading}" if s.heading else ""), file=out)
    elif event.kind == "error":
        print(f"\nerror: {event.text}", file=err)


def _turn(agent: Any, events, approve_all: bool, on_event) -> tuple[Any, list]:
    """Drive one turn to its end, answering confirm events; returns (last event, all events)."""
    seen = []
    while True:
        last = None
        for event in events:
            seen.append(event)
            on_event(event)
            last = event
        if last is None or last.kind != "confirm":
            return last, seen
        question = f"{last.text} {last.call.name}({last.call.to_json()})"
        if not (approve_all or sys.stdin.isatty()):
            # Nobody to ask: the turn stops with the call pending (status needs_confirmation), rather than
            # a rejection on the person's behalf, which a small model answers with the same call, forever.
            print(f"{question}\n  not run: stdin is not a terminal. Approve with --yes, or answer it in "
                  f"`andini chat --thread {last.thread_id}`.", file=sys.stderr)
            return last, seen
        approve = approve_all or _ask(question)
        events = agent.resume(last.thread_id, approve)


def run_command(args: argparse.Namespace) -> int:
    from agent.turns import TurnResult
    from andini.cli import print_json

    agent = _agent(args)
    show = (lambda e: None) if args.json else render
    _, events = _turn(agent, agent.stream(args.intent, thread_id=args.thread), args.yes, show)
    result = TurnResult.fold(events, args.thread)
    if args.json:  # which adapter answered, beside the turn
        print_json({**result.model_dump(mode="json"), "adapter": agent.adapter.model_dump(mode="json")})
    return 0 if result.status == "done" else 1


def chat_command(args: argparse.Namespace) -> int:
    from agent.turns import waiting_calls

    agent = _agent(args)
    thread = args.thread
    print(f"andini chat ({agent.backend}, {agent.adapter.describe()}): /new for a new thread, /quit to leave.",
          file=sys.stderr)
    waiting = waiting_calls(agent.pending(thread)) if thread else []
    if waiting:  # calls left waiting by `andini run`: one decision answers them all, as in the turn
        approve = _ask("Run " + ", ".join(f"{c.name}({c.to_json()})" for c in waiting) + "? It changes your data.")
        _turn(agent, agent.resume(thread, approve), False, render)
    while True:
        try:
            line = input("\nyou> ").strip()
        except EOFError:
            return 0
        if line in ("/quit", "/exit"):
            return 0
        if line == "/new":
            thread = None
            continue
        if not line:
            continue
        print("andini> ", end="", flush=True)
        last, _ = _turn(agent, agent.stream(line, thread_id=thread), False, render)
        thread = last.thread_id if last is not None else thread
