"""`andini generate` (a document valid against any JSON Schema) and `andini plan` (list, show and run
stored plans): thin shells over `agent.generate.generate` and `agent.executor.run_plan`.

Exit status of `generate`: 0 a valid document, 1 an error (bad schema file, backend down), 3 no valid
document after every attempt, 4 the model declined (the schema cannot express the intent).
Exit status of `plan run`: 0 every step done, 1 a step failed (or an error), 5 stopped at a side-effect
step: waiting for a yes, or refused.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FAILED, DECLINED, WAITING = 3, 4, 5


def register(sub: argparse._SubParsersAction) -> None:
    from agent.backends import BACKENDS

    gen = sub.add_parser(
        "generate", help="a JSON or YAML document valid against any JSON Schema",
        description="Write a document for INTENT that validates against the JSON Schema in FILE (JSON or "
                    "YAML, draft 2020-12, $ref to files beside it allowed). Exit status: 0 valid "
                    "document, 1 error, 3 no valid document after every attempt, 4 the model declined.")
    gen.add_argument("intent", metavar="INTENT", help="what the document should say, in your words")
    gen.add_argument("--schema", required=True, metavar="FILE", help="the JSON Schema, a .json or .yaml file")
    gen.add_argument("--yaml", action="store_true", help="write the document as YAML (same data as the JSON)")
    gen.add_argument("--out", metavar="FILE", help="write the document to FILE instead of stdout")
    gen.add_argument("--search", action="store_true",
                     help="ground the document in the knowledge base; the passages used are reported")
    gen.add_argument("-k", type=int, default=4, help="passages to retrieve with --search (default 4)")
    gen.add_argument("--collection", help="knowledge-base collection for --search")
    gen.add_argument("--backend", choices=list(BACKENDS), help="model backend (default: settings)")
    gen.add_argument("--model", help="local model folder or served model id")
    gen.add_argument("--adapter", help="LoRA adapter: a registered name or folder (local) or adapter id (tgi)")
    gen.add_argument("--attempts", type=int, default=3, help="model calls before giving up (default 3)")
    gen.add_argument("--max-new-tokens", type=int, help="generation limit per attempt (default 512)")
    gen.add_argument("--strict", action="store_true",
                     help="refuse a schema with keywords the grammar cannot honour, instead of holding "
                          "them by validation and retry")
    gen.add_argument("--allow-decline", action="store_true",
                     help="let the model say the schema cannot express the intent (exit status 4)")
    gen.add_argument("--json", action="store_true",
                     help="print one JSON object: document, attempts, enforcement, passages")
    gen.set_defaults(func=generate_command)

    plan = sub.add_parser("plan", help="list stored plans and run their tool calls",
                          description="Stored plans: list them, and carry out their steps' tool calls.")
    plan_sub = plan.add_subparsers(dest="plan_command", metavar="COMMAND", required=True)
    listing = plan_sub.add_parser("list", help="the stored plans, with their latest run",
                                  description="List the stored plans and how their latest run stands.")
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    listing.set_defaults(func=plan_list_command)
    run = plan_sub.add_parser(
        "run", help="carry out a plan's tool calls, step by step",
        description="Run plan ID: each step's tool call is validated against its tool's schema, `$varN.field$` "
                    "references take earlier steps' results, and steps with side effects ask first. A failed "
                    "step stops the run; running again continues from it. Exit status: 0 done, 1 a step "
                    "failed, 5 stopped at a side-effect step (waiting for a yes, or refused).")
    run.add_argument("plan_id", metavar="ID", type=int, help="the plan's number (see andini plan list)")
    run.add_argument("--yes", action="store_true", help="approve every side-effect step without asking")
    run.add_argument("--restart", action="store_true",
                     help="start a new run at step 1 instead of continuing the last one")
    run.add_argument("--json", action="store_true", help="print the run as one JSON object")
    run.set_defaults(func=plan_run_command)


def generate_command(args: argparse.Namespace) -> int:
    from agent.generate import GenerationFailed, generate
    from andini.cli import print_json

    try:
        out = generate(args.schema, args.intent, yaml=args.yaml, search=args.search, k=args.k,
                       collection=args.collection, backend=args.backend, model=args.model,
                       adapter=args.adapter, attempts=args.attempts, max_new_tokens=args.max_new_tokens,
                       strict=args.strict, allow_decline=args.allow_decline)
    except GenerationFailed as exc:
        if not args.json:
            raise
        print_json({"ok": False, "error": str(exc), "attempts": exc.attempts, "errors": exc.errors,
                    "last_output": exc.last_output})
        return FAILED
    if args.out and out.declined is None:
        Path(args.out).write_text(out.text if out.text.endswith("\n") else out.text + "\n", encoding="utf-8")
    if args.json:
        print_json({"ok": out.declined is None, **out.model_dump(mode="json"),
                    **({"out": args.out} if args.out else {})})
    else:
        _report(out, args.out)
    return DECLINED if out.declined is not None else 0


def _report(out, path: str | None) -> None:
    """The document on stdout (unless --out), how it was held and what it used on stderr."""
    if out.declined is not None:
        print(f"declined: {out.declined}", file=sys.stderr)
        return
    if path:
        print(f"wrote {path}", file=sys.stderr)
    else:
        print(out.text.rstrip("\n"))
    tries = "first try" if out.attempts == 1 else f"{out.attempts} attempts"
    print(f"valid ({out.enforcement}, {out.backend}, {tries})", file=sys.stderr)
    for item in out.unenforced:
        print(f"  held by validation only: {item}", file=sys.stderr)
    for p in out.passages:
        print(f"  source: {p.source}" + (f" › {p.heading}" if p.heading else ""), file=sys.stderr)


def plan_list_command(args: argparse.Namespace) -> int:
    from agent.executor import latest_run
    from agent.plans import PlanStore
    from andini.cli import print_json

    rows = []
    for info in PlanStore().list():
        run = latest_run(info.id)
        rows.append({**info.model_dump(), "last_run": run.status if run else None,
                     "stopped_at": run.stopped_at if run else None})
    if args.json:
        print_json({"plans": rows})
    for row in [] if args.json else rows:
        where = f" at step {row['stopped_at']}" if row["stopped_at"] else ""
        state = f"  [{row['last_run']}{where}]" if row["last_run"] else ""
        print(f"#{row['id']} {row['goal']} ({row['steps']} steps){state}")
    return 0


def plan_run_command(args: argparse.Namespace) -> int:
    from agent.cli import _ask
    from agent.executor import run_plan
    from andini.cli import print_json

    def approve(step: int, call) -> bool:
        return True if args.yes else _ask(f"step {step}: run {call.name}({call.to_json()})?")

    interactive = args.yes or sys.stdin.isatty()
    run = run_plan(args.plan_id, approve=approve if interactive else None, restart=args.restart)
    if args.json:
        print_json(run.model_dump(mode="json"))
    else:
        _show_run(run)
    return {"done": 0, "needs_confirmation": WAITING, "refused": WAITING}.get(run.status, 1)


MARKS = {"done": "✓", "manual": "·", "failed": "✗", "needs_confirmation": "?", "refused": "–", "pending": " "}


def _show_run(run) -> None:
    import json

    print(f"plan #{run.plan_id}, run {run.id}: {run.status}")
    for s in run.steps:
        what = f" {s.call.name}({s.call.to_json()})" if s.call else ""
        print(f" {MARKS[s.status]} {s.step}. {s.title}{what}")
        if s.status == "done" and s.result is not None:
            print(f"     → {json.dumps(s.result, ensure_ascii=False, default=str)[:300]}")
    if run.error:
        hint = "; answer yes (or pass --yes) to go on" if run.status == "needs_confirmation" else ""
        print(f"stopped at step {run.stopped_at}: {run.error}{hint}", file=sys.stderr)
