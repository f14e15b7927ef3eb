"""`andini generate` on real public schemas (subsets, benchmarks/schemas/README.md): schema-valid rate and
field-level match against reference documents, per schema.

    .venv/bin/python benchmarks/bench_generate.py [--adapter base|DIR]... [--backend local] [--attempts 3]
                                                  [--max-new-tokens 512] [--schema FILE]... [--out FILE.json]
    .venv/bin/python benchmarks/bench_generate.py --report A.json B.json   # one table from several runs

`--adapter` may be given several times, `base` naming the base model: each gives its rows of one
table (`--adapter base --adapter artifacts/smollm2-cpu-adapter`: base vs adapter, same cases).

Valid: the document validates against its schema (after up to --attempts model calls); first try: on
the first call. Field P/R/F1: leaves of the generated document against the reference's, same place and
value (eval/documents.py); a case with no valid document counts as matching nothing. Seconds: median
wall time of one case, all attempts included (the machine's load is printed with the table).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

CASES = HERE / "schemas" / "cases.yaml"


def run_case(case: dict[str, Any], args: argparse.Namespace, adapter: str | None) -> dict[str, Any]:
    from agent.generate import GenerationFailed, generate
    from eval.documents import match_document

    start = time.perf_counter()
    try:
        out = generate(HERE / "schemas" / case["schema"], case["intent"], backend=args.backend,
                       adapter=adapter, attempts=args.attempts, max_new_tokens=args.max_new_tokens)
        document, attempts, valid, error = out.document, out.attempts, True, None
    except GenerationFailed as exc:
        document, attempts, valid, error = None, exc.attempts, False, "; ".join(exc.errors[:2])
    seconds = time.perf_counter() - start
    found = match_document(document, case["reference"])
    return {"model": model_label(args.backend, adapter), "id": case["id"], "schema": case["schema"], "valid": valid, "attempts": attempts,
            "first_try": valid and attempts == 1, "seconds": round(seconds, 2), "matched": found.matched,
            "generated": found.generated, "expected": found.expected, "error": error, "document": document}


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from eval.documents import FieldMatch

    total = FieldMatch(matched=sum(r["matched"] for r in rows), generated=sum(r["generated"] for r in rows),
                       expected=sum(r["expected"] for r in rows))
    return {"cases": len(rows), "valid": sum(r["valid"] for r in rows) / len(rows),
            "first_try": sum(r["first_try"] for r in rows) / len(rows),
            "attempts": statistics.mean(r["attempts"] for r in rows),
            "precision": total.precision, "recall": total.recall, "f1": total.f1,
            "seconds": statistics.median(r["seconds"] for r in rows)}


def model_label(backend: str, adapter: str | None) -> str:
    return f"{backend} + {Path(adapter).name}" if adapter else f"{backend} (base)"


def table(rows: list[dict[str, Any]]) -> str:
    """One row per (model, schema), then each model's total."""
    models: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for row in rows:
        models.setdefault(row.get("model", "model"), {}).setdefault(row["schema"], []).append(row)
    lines = ["| model | schema | cases | valid | first try | mean attempts | field P | field R | field F1 | "
             "s/case (median) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for model, groups in models.items():
        every = [r for group in groups.values() for r in group]
        for name, group in [*groups.items(), ("**all**", every)]:
            s = summary(group)
            lines.append(f"| {model} | {name} | {s['cases']} | {s['valid']:.0%} | {s['first_try']:.0%} | "
                         f"{s['attempts']:.2f} | {s['precision']:.2f} | {s['recall']:.2f} | {s['f1']:.2f} | "
                         f"{s['seconds']:.1f} |")
    return "\n".join(lines)


def main() -> int:
    import yaml

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=Path, default=CASES)
    parser.add_argument("--backend", default="local")
    parser.add_argument("--adapter", action="append", help="LoRA adapter folder (local backend), or 'base'; "
                                                           "repeat it for one row set each (default: base)")
    parser.add_argument("--attempts", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--limit", type=int, help="only the first N cases")
    parser.add_argument("--schema", action="append", help="only the cases of this schema file (repeatable)")
    parser.add_argument("--out", type=Path, help="write every case's row (with its document) as JSON")
    parser.add_argument("--report", type=Path, nargs="+", help="print one table from earlier --out files")
    args = parser.parse_args()
    if args.report:
        runs = [json.loads(path.read_text()) for path in args.report]
        print(" + ".join(r["header"] for r in runs) + "\n")
        print(table([row for r in runs for row in r["rows"]]))
        return 0
    cases = [c for c in yaml.safe_load(args.cases.read_text()) if not args.schema or c["schema"] in args.schema]
    cases = cases[: args.limit]
    adapters = [None if a in ("base", "none", "") else a for a in (args.adapter or ["base"])]
    rows = []
    for adapter in adapters:
        for case in cases:
            row = run_case(case, args, adapter)
            rows.append(row)
            if args.out:  # after every case, so that a run cut short keeps what it measured
                write_run(args.out, "partial: " + str(len(rows)), rows)
            print(f"{row['model']} {row['id']}: {'valid' if row['valid'] else 'INVALID'} after {row['attempts']}, "
                  f"{row['matched']}/{row['expected']} fields, {row['seconds']} s", file=sys.stderr)
    models = ", ".join(model_label(args.backend, a) + (f" ({a})" if a else "") for a in adapters)
    header = (f"models: {models}; {len(cases)} case(s) each; attempts <= {args.attempts}; max_new_tokens "
              f"{args.max_new_tokens}; load average {os.getloadavg()[0]:.2f}")
    print(header + "\n")
    print(table(rows))
    if args.out:
        write_run(args.out, header, rows)
    return 0


def write_run(path: Path, header: str, rows: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps({"header": header, "summary": summary(rows), "rows": rows}, indent=1, default=str))


if __name__ == "__main__":
    sys.exit(main())
