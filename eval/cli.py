"""`andini eval ...`: score tool calls, plans and retrieval; list and compare runs.

argparse only here; each handler imports its library module when it runs, so `andini --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def _model_options(parser: argparse.ArgumentParser) -> None:
    from agent.backends import BACKENDS

    group = parser.add_argument_group("model")
    group.add_argument("--backend", choices=list(BACKENDS), help="model backend (default: settings)")
    group.add_argument("--model", help="local model folder or served model id (default: settings)")
    group.add_argument("--adapter", help="LoRA adapter: a registered name or folder (local), or served adapter id "
                                         "(default: ANDINI_ADAPTER; never picked automatically)")
    group.add_argument("--no-constrained", dest="constrained", action="store_false",
                       help="free decoding: no grammar from the tool schemas (local backend)")
    group.add_argument("--max-new-tokens", type=int, help="generation limit per item (default: settings)")
    group.add_argument("--batch", type=int, default=1,
                       help="items asked at once: one decoding batch locally, concurrent requests to a server")


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, help="at most N items (per category), the first ones")
    parser.add_argument("--name", help="label of the run in reports (default: model, adapter, options)")
    parser.add_argument("--out", type=Path, help="run folder (default: $ANDINI_HOME/runs/<time>-<kind>-<name>)")
    parser.add_argument("--json", action="store_true", help="print one JSON object: the summary")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `andini eval` and its subcommands."""
    parser = sub.add_parser("eval", help="score backends, adapters and retrieval; compare runs",
                            description="Score backends, adapters and retrieval; compare runs.")
    eval_sub = parser.add_subparsers(dest="eval_command", metavar="WHAT", required=True)

    p = eval_sub.add_parser("toolcalls", help="tool-call accuracy on BFCL, Seal-Tools, NESTFUL or andini data",
                            description="Ask a backend for tool calls on each item and score them.")
    p.add_argument("--data", type=Path, required=True,
                   help="data file, or a BFCL folder (BFCL_v4_<category>.json + possible_answer/)")
    p.add_argument("--format", required=True, choices=["bfcl", "seal", "nestful", "andini"])
    p.add_argument("--categories", help="BFCL folder: only these categories, comma-separated")
    p.add_argument("--tool-choice", choices=["auto", "required"], default="auto",
                   help="required: a call on every item, a diagnostic of call quality (constrained only)")
    _model_options(p)
    _run_options(p)
    p.set_defaults(func=_toolcalls)

    p = eval_sub.add_parser("plans", help="plan quality on CoPlan goals",
                            description="Generate a plan per CoPlan goal; score validity, step count, ROUGE-L.")
    p.add_argument("--data", type=Path, help="plan examples: a CoPlan JSONL file, or andini JSONL (default: the "
                                             "held-out plan split `andini data build` wrote)")
    p.add_argument("--tool-choice", choices=["auto", "required"], default="required",
                   help="required (default): ask for the make_plan call outright; auto: the model may answer in prose")
    _model_options(p)
    _run_options(p)
    p.set_defaults(func=_plans)

    p = eval_sub.add_parser("retrieval", help="retrieval recall/MRR on one or more corpora",
                            description="Score search over one or more corpora: a table each and their "
                                        "macro average.")
    p.add_argument("--dataset", action="append", required=True, metavar="[NAME=]PATH",
                   help="a SQuAD-format JSON file or a folder of Markdown runbooks (questions derived from "
                        "them); repeat for several corpora")
    p.add_argument("--format", default="auto", choices=["auto", "squad", "runbooks"],
                   help="auto (default): a folder is runbooks, a file is SQuAD")
    p.add_argument("--limit", type=int, help="a seeded sample of N questions per corpus")
    p.add_argument("-k", default="1,5,10", help="cut-offs, comma-separated (default 1,5,10)")
    p.add_argument("--mode", default="all", choices=["dense", "bm25", "hybrid", "all"])
    p.add_argument("--out", type=Path, help="run folder")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_retrieval)

    p = eval_sub.add_parser("retrieval-choice", help="choose the search defaults by leave-one-corpus-out",
                            description="Score a grid of search settings (mode, RRF k, fusion weights, chunking) "
                                        "on several corpora; for each corpus, choose on the others and score on it. "
                                        "The standard (hybrid, RRF k=60, equal weights, 512/64) is shipped unless "
                                        "the choice beats it left-one-out on average.")
    p.add_argument("--dataset", action="append", required=True, metavar="[NAME=]PATH",
                   help="a SQuAD-format JSON file or a folder of Markdown runbooks; repeat (two or more)")
    p.add_argument("--format", default="auto", choices=["auto", "squad", "runbooks"],
                   help="auto (default): a folder is runbooks, a file is SQuAD")
    p.add_argument("--limit", type=int, help="a seeded sample of N questions per corpus")
    p.add_argument("--chunkings", default="256/32,512/64",
                   help="chunk SIZE/OVERLAP in tokens, comma-separated (default 256/32,512/64)")
    p.add_argument("--cache", type=Path,
                   help="where rankings per (corpus, chunking) are kept between runs "
                        "(default: $ANDINI_HOME/cache/retrieval-choice)")
    p.add_argument("--out", type=Path, help="run folder")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_retrieval_choice)

    p = eval_sub.add_parser("compare", help="Markdown/HTML report comparing runs (first = baseline)",
                            description="Compare runs: tables, deltas, bar charts, flipped items.")
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    p.add_argument("--out", type=Path, help="report folder (default: $ANDINI_HOME/reports/<time>-compare)")
    p.add_argument("--json", action="store_true", help="print one JSON object: the report's paths")
    p.set_defaults(func=_compare)

    p = eval_sub.add_parser("runs", help="list evaluation runs", description="List the runs under $ANDINI_HOME/runs.")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_runs)


def _progress(index: int, total: int, record: dict[str, Any]) -> None:
    verdict = "pass" if record.get("passed") else record.get("error_type") or "fail"
    print(f"[{index}/{total}] {record.get('category', '')}/{record['id']}: {verdict} "
          f"({record.get('latency_s', 0):.1f}s)", file=sys.stderr, flush=True)


def _model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {"backend": args.backend, "model": args.model, "adapter": args.adapter, "constrained": args.constrained,
            "limit": args.limit, "max_new_tokens": args.max_new_tokens, "name": args.name, "batch": args.batch}


def _toolcalls(args: argparse.Namespace) -> int:
    from eval.toolcalls import ToolcallsConfig, run_toolcalls

    categories = [c.strip() for c in args.categories.split(",")] if args.categories else None
    config = ToolcallsConfig(data=args.data, format=args.format, categories=categories,
                             tool_choice=args.tool_choice, **_model_kwargs(args))
    run_dir, summary = run_toolcalls(config, out=args.out, progress=_progress)
    _print_summary(run_dir, summary, args.json,
                   ["accuracy", "accuracy_ci95", "no_call_where_expected", "call_where_none_expected",
                    "parse_failure_rate", "schema_valid_rate", "stopped_before_call", "latency_p50_s"])
    return 0


def _plans(args: argparse.Namespace) -> int:
    from eval.plans import PlansConfig, run_plans

    data = {"data": args.data} if args.data else {}  # unset: the held-out plan split
    config = PlansConfig(**data, tool_choice=args.tool_choice, **_model_kwargs(args))
    run_dir, summary = run_plans(config, out=args.out, progress=_progress)
    _print_summary(run_dir, summary, args.json,
                   ["schema_valid_rate", "step_count_mae", "rouge_l_f", "rouge_l_f_ci95", "latency_p50_s",
                    "tokens_per_s"])
    return 0


def _print_summary(run_dir: Path, summary: dict[str, Any], as_json: bool, columns: list[str]) -> None:
    if as_json:
        from andini.cli import print_json

        print_json({"run": str(run_dir), **summary})
        return
    rows = [(name, metrics) for name, metrics in (summary.get("categories") or {}).items()]
    rows.append(("overall", summary["overall"]))
    print(f"{'category':<22}{'n':>5}" + "".join(f"{c:>20}" for c in columns))
    for name, metrics in rows:
        cells = "".join(f"{_cell(metrics.get(c)):>20}" for c in columns)
        print(f"{name:<22}{metrics.get('items', ''):>5}{cells}")
    print(f"run folder: {run_dir}")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):  # an interval
        return "-".join(f"{v:.3f}" for v in value)
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _retrieval(args: argparse.Namespace) -> int:
    from eval import retrieval

    return int(retrieval.main(args) or 0)


def _retrieval_choice(args: argparse.Namespace) -> int:
    from eval import retrieval_choice

    return retrieval_choice.main(args)


def _compare(args: argparse.Namespace) -> int:
    from eval.compare import compare_runs

    out = args.out
    if out is None:
        from datetime import UTC, datetime

        from andini.settings import get_settings

        out = get_settings().home / "reports" / f"{datetime.now(UTC):%Y%m%d-%H%M%S}-compare"
    report = compare_runs(args.runs, out)
    if args.json:
        from andini.cli import print_json

        print_json({"report_md": str(report), "report_html": str(report.with_suffix(".html")),
                    "charts": sorted(str(p) for p in report.parent.glob("*.png"))})
    else:
        print(f"report: {report}\nhtml:   {report.with_suffix('.html')}")
    return 0


def _runs(args: argparse.Namespace) -> int:
    from eval.reports import list_runs

    runs = list_runs()
    if args.json:
        from andini.cli import print_json

        print_json({"runs": [r.model_dump(mode="json") for r in runs]})
        return 0
    for run in runs:
        headline = run.headline.get("accuracy", run.headline.get("schema_valid_rate"))
        print(f"{run.created_at}  {run.kind:<10} {run.name:<40} n={run.items}  "
              f"{'' if headline is None else f'{headline:.3f}'}  {run.path}")
    return 0
