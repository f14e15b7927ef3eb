"""Agreement of our BFCL-rule scorer with the leaderboard's own checker (the `nvidia-bfcl` package),
per category and per kind of output, on every item of the four non-live AST categories.

    .venv/bin/python benchmarks/bench_eval_agreement.py [BFCL_FOLDER]

Prints a Markdown table; docs/evaluation.md quotes it.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from eval.bfcl_ast import score_item  # noqa: E402
from tests.eval_support import CATEGORIES, bfcl_items, mutations, reference_verdict  # noqa: E402


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "data" / "bfcl"
    by_kind: dict[str, Counter] = {}
    ours_time = ref_time = 0.0
    for category in CATEGORIES:
        for item in bfcl_items(folder, category):
            for label, output in mutations(item):
                start = time.perf_counter()
                ref = reference_verdict(item, output, category)
                ref_time += time.perf_counter() - start
                start = time.perf_counter()
                ours = score_item(item["function"], output, item["ground_truth"], category).valid
                ours_time += time.perf_counter() - start
                kind = label.split(":")[0]
                for key in (f"{category}", f"kind:{kind}"):
                    counts = by_kind.setdefault(key, Counter())
                    counts["n"] += 1
                    counts["agree"] += ours == ref
                    counts["ref_pass"] += ref
    print("| slice | outputs | reference passes | agree | agreement |\n|---|---|---|---|---|")
    total = Counter()
    for key in CATEGORIES:
        total.update(by_kind[key])
    rows = [(k, by_kind[k]) for k in CATEGORIES] + [("**all**", total)]
    rows += sorted((k, c) for k, c in by_kind.items() if k.startswith("kind:"))
    for key, c in rows:
        print(f"| {key} | {c['n']} | {c['ref_pass']} | {c['agree']} | {c['agree'] / c['n']:.2%} |")
    print(f"\nscoring time: ours {ours_time:.2f}s, reference {ref_time:.2f}s for {total['n']} outputs")


if __name__ == "__main__":
    main()
