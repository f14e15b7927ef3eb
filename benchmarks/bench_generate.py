"""`andini generate` on real public schemas (subsets, benchmarks/schemas/README.md): schema-valid rate and
field-level match against reference documents, per schema.

    .venv/bin/python benchmarks/bench_generate.py [--adapter DIR] [--backend local] [--attempts 3]
                                                  [--max-new-tokens 512] [--schema FILE]... [--out FILE.json]
    .venv/bin/python benchmarks/bench_generate.py --report A.json B.json   # one table from several runs

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


def run_case(case: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    from agent.generate import GenerationFailed, generate
    from eval.documents import match_document

    start = time.perf_counter()
    try:
        out = generate(HERE / "schemas" / case["schema"], case["intent"], backend=args.backend,
                       adapter=args.adapter, attempts=args.attempts, max_new_tokens=args.max_new_tokens)
        document, attempts, valid, error = out.document, out.attempts, True, None
    except GenerationFailed as exc:
        document, attempts, valid, error = None, exc.attempts, False, "; ".join(exc.errors[:2])
    seconds = time.perf_counter() - start
    found = match_document(document, case["reference"])
    return {"id": case["id"], "schema": case["schema"], "valid": valid, "attempts": attempts,
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


def table(rows: list[dict[str, Any]]) -> str:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["schema"], []).append(row)
    lines = ["| schema | cases | valid | first try | mean attempts | field P | field R | field F1 | s/case (median) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, group in [*groups.items(), ("**all**", rows)]:
        s = summary(group)
        lines.append(f"| {name} | {s['cases']} | {s['valid']:.0%} | {s['first_try']:.0%} | {s['attempts']:.2f} | "
                     f"{s['precision']:.2f} | {s['recall']:.2f} | {s['f1']:.2f} | {s['seconds']:.1f} |")
    return "\n".join(lines)


def main() -> int:
    import yaml

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=Path, default=CASES)
    parser.add_argument("--backend", default="local")
    parser.add_argument("--adapter", help="LoRA adapter folder (local backend)")
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
    rows = []
    for case in cases:
        row = run_case(case, args)
        rows.append(row)
        print(f"{row['id']}: {'valid' if row['valid'] else 'INVALID'} after {row['attempts']}, "
              f"{row['matched']}/{row['expected']} fields, {row['seconds']} s", file=sys.stderr)
    model = f"{args.backend}" + (f" + adapter {args.adapter}" if args.adapter else " (base)")
    header = (f"model: {model}; attempts <= {args.attempts}; max_new_tokens {args.max_new_tokens}; "
              f"load average {os.getloadavg()[0]:.2f}")
    print(header + "\n")
    print(table(rows))
    if args.out:
        args.out.write_text(json.dumps({"header": header, "summary": summary(rows), "rows": rows}, indent=1,
                                       default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
