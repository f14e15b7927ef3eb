"""Tune hybrid search offline: score reciprocal-rank-fusion variants on the rankings an
`andini eval retrieval` run kept (RUN_DIR/rankings-<corpus>.jsonl: dense and BM25 rankings to depth 50
per question).

    .venv/bin/python benchmarks/bench_retrieval_fusion.py RUN_DIR [RUN_DIR...]

Nothing is asked again, so a whole grid costs seconds. Prints one table per corpus of each run. With --holdout, it
also checks that tuning carries over: questions are split in two by their gold passage, the grid is
tuned on one half and scored on the other, both ways round.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RRF_KS = (5, 10, 30, 60)
DEPTHS = (10, 20, 50)
WEIGHTS = ((1.0, 1.0), (2.0, 1.0), (1.0, 2.0), (1.0, 3.0), (1.0, 4.0))  # (dense, bm25)


def fused_metrics(collected, rrf_k: int, depth: int, weights: tuple[float, float]) -> dict[str, float]:
    from eval.retrieval import ranking_metrics
    from retrieval.search import fuse

    totals: dict[str, float] = {}
    for asked in collected.asked:
        ranked = [cid for cid, _ in fuse([asked.dense[:depth], asked.bm25[:depth]], rrf_k=rrf_k,
                                         weights=list(weights))]
        for name, value in ranking_metrics(ranked, asked.gold, [1, 5, 10]).items():
            totals[name] = totals.get(name, 0.0) + value
    return {name: value / len(collected.asked) for name, value in totals.items()}


def holdout(collected) -> None:
    """Tune on half the questions (split by gold passage, so no passage is on both sides), score the other."""
    halves = ([], [])
    for asked in collected.asked:
        key = min(asked.gold) if asked.gold else asked.question
        halves[int(key.encode().hex(), 16) % 2].append(asked)
    grid = [(k, d, w) for k in RRF_KS for d in DEPTHS for w in WEIGHTS]
    print("\n| tuned on | scored on | best (rrf k, depth, weights) | mrr@10 tuned | mrr@10 equal (k=60, depth 50, 1:1) |")
    print("|---|---|---|---|---|")
    for tune, test, name in ((halves[0], halves[1], "A"), (halves[1], halves[0], "B")):
        tune_set, test_set = _Subset(collected, tune), _Subset(collected, test)
        best = max(grid, key=lambda g: fused_metrics(tune_set, *g)["mrr@10"])
        print(f"| {name} ({len(tune)}) | {'B' if name == 'A' else 'A'} ({len(test)}) | {best} | "
              f"{fused_metrics(test_set, *best)['mrr@10']:.4f} | "
              f"{fused_metrics(test_set, 60, 50, (1.0, 1.0))['mrr@10']:.4f} |")


class _Subset:
    def __init__(self, collected, asked):
        self.asked, self.config, self.chunks = asked, collected.config, collected.chunks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument("--holdout", action="store_true", help="also tune on one half, score the other")
    args = parser.parse_args()
    from eval.retrieval import load_rankings, score

    for path in [p for run in args.runs for p in sorted(run.glob("rankings*.jsonl"))]:
        collected = load_rankings(path)
        config = collected.config
        print(f"\n{path}: chunk_size {config['chunk_size']}, overlap {config['chunk_overlap']}, "
              f"{collected.chunks} chunks, {len(collected.asked)} questions\n")
        print("| variant | recall@1 | recall@5 | recall@10 | mrr@10 | ndcg@10 |")
        print("|---|---|---|---|---|---|")
        for mode, m in score(collected, [1, 5, 10], ["dense", "bm25"]).items():
            print(f"| {mode} alone | {m['recall@1']:.4f} | {m['recall@5']:.4f} | {m['recall@10']:.4f} | "
                  f"{m['mrr@10']:.4f} | {m['ndcg@10']:.4f} |")
        for rrf_k in RRF_KS:
            for depth in DEPTHS:
                for weights in WEIGHTS:
                    m = fused_metrics(collected, rrf_k, depth, weights)
                    print(f"| rrf k={rrf_k} depth={depth} w(dense,bm25)={weights[0]},{weights[1]} | "
                          f"{m['recall@1']:.4f} | {m['recall@5']:.4f} | {m['recall@10']:.4f} | "
                          f"{m['mrr@10']:.4f} | {m['ndcg@10']:.4f} |")
        if args.holdout:
            holdout(collected)
    return 0


if __name__ == "__main__":
    sys.exit(main())
