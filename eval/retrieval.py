"""`andini eval retrieval`: how well search finds the passage that answers a question, on one corpus or
several in one run (a table each, and their macro average).

Each corpus (`eval.corpora`: SQuAD-format files, runbook folders) has documents and questions whose answers
are character spans in a document. The documents are written out and ingested through the normal
`retrieval.ingest` pipeline into a fresh collection; every question is then asked of both retrievers. The
gold chunks of a question are those of its document whose span contains an answer's span (if no chunk
holds it whole, the chunks that overlap it). Metrics per mode: recall@k (a gold chunk in the top k),
MRR@10, nDCG@10 (binary relevance, the first gold hit counts: 1/log2(1+rank)), and query latency p50/p95;
per corpus, ingest throughput in chunks per second.

The questions are embedded in batches for the rankings (what a search would compute, far cheaper on two
cores); latency is timed on a seeded sample of single questions through the real search path.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from andini.errors import InputError
from andini.settings import Settings, get_settings
from eval.corpora import Corpus, Question, load_corpus, read_squad

__all__ = ["Question", "read_squad", "collect", "score", "evaluate_retrieval", "main"]
MODES = ("dense", "bm25", "hybrid")
LATENCY_SAMPLE = 50  # questions timed one by one per corpus
EMBED_BATCH = 64


def gold_chunks(chunks: list[tuple[str, int, int]], answers: list[tuple[int, int]]) -> tuple[set[str], bool]:
    """Ids of the chunks (id, start, end) that contain an answer span whole; else those overlapping
    one. The flag says whether the fallback was used."""
    whole = {cid for cid, s, e in chunks for a, b in answers if s <= a and b <= e}
    if whole:
        return whole, False
    return {cid for cid, s, e in chunks for a, b in answers if s < b and a < e}, True


def ranking_metrics(ranked: list[str], gold: set[str], ks: list[int]) -> dict[str, float]:
    rank = next((i for i, cid in enumerate(ranked, start=1) if cid in gold), None)
    metrics = {f"recall@{k}": float(rank is not None and rank <= k) for k in ks}
    metrics["mrr@10"] = 1.0 / rank if rank is not None and rank <= 10 else 0.0
    metrics["ndcg@10"] = 1.0 / math.log2(1 + rank) if rank is not None and rank <= 10 else 0.0
    return metrics


@dataclass
class Asked:
    """One question's gold chunks and both rankings (to FUSION_DEPTH); latencies when it was timed."""

    question: Question
    gold: set[str]
    dense: list[tuple[str, float]]
    bm25: list[tuple[str, float]]
    dense_s: float | None
    bm25_s: float | None


@dataclass
class Collected:
    """Everything a scoring pass needs: the questions asked and what ingest did."""

    asked: list[Asked]
    documents: int
    chunks: int
    ingest_s: float
    gold_fallbacks: int
    config: dict[str, Any]
    corpus: str = ""


def collect(corpus: Corpus, settings: Settings | None = None, latency_sample: int = LATENCY_SAMPLE) -> Collected:
    """Ingest the corpus into a fresh collection and rank every question with both retrievers to the
    fusion depth (so fusion variants can be scored without asking again)."""
    from retrieval import bm25, store
    from retrieval.embed import embed
    from retrieval.ingest import ingest
    from retrieval.search import FUSION_DEPTH, dense_ranking

    base = settings or get_settings()
    with tempfile.TemporaryDirectory(prefix="andini-eval-") as tmp:
        # A fresh store: a temporary embedded one, or a throwaway collection on the configured server.
        run_settings = base.model_copy(update={"home": Path(tmp) / "home"})
        name = f"eval-{uuid.uuid4().hex[:12]}"
        files = _write_documents(corpus.documents, Path(tmp) / "docs")
        embed(["warm-up"], run_settings)  # model load is not ingest throughput
        started = time.perf_counter()
        report = ingest(files, collection=name, settings=run_settings)
        ingest_s = time.perf_counter() - started
        if not report.ok:
            raise InputError(f"{len(report.errors)} documents failed to ingest: {report.errors[0].reason}",
                             path=corpus.path)
        coll = store.get_collection(name, run_settings)
        assert coll is not None  # created by the ingest above
        try:
            spans = _chunk_spans(coll, files)
            index = bm25.get_index(coll, run_settings)
            questions = corpus.questions
            timed = set(random.Random(0).sample(range(len(questions)), min(latency_sample, len(questions))))
            asked, fallbacks = [], 0
            for start in range(0, len(questions), EMBED_BATCH):
                batch = questions[start:start + EMBED_BATCH]
                result = coll.query(query_embeddings=embed([q.text for q in batch], run_settings),
                                    n_results=min(FUSION_DEPTH, coll.count()), include=["distances"])
                for i, question in enumerate(batch, start=start):
                    gold, fell_back = gold_chunks(spans[str(files[question.context])], question.answers)
                    fallbacks += fell_back
                    distances = store.included(result, "distances")[i - start]
                    dense = [(cid, 1.0 - float(d)) for cid, d in zip(result["ids"][i - start], distances, strict=True)]
                    dense_s = bm25_s = None
                    if i in timed:  # the path `search` takes: one question, embedded alone
                        t0 = time.perf_counter()
                        dense_ranking(coll, question.text, FUSION_DEPTH, run_settings)
                        dense_s = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    sparse = index.query(question.text, FUSION_DEPTH)
                    if i in timed:
                        bm25_s = time.perf_counter() - t0
                    asked.append(Asked(question, gold, dense, sparse, dense_s, bm25_s))
                print(f"{corpus.name}: ranked {len(asked)}/{len(questions)}", file=sys.stderr, flush=True)
        finally:
            if base.chroma_url:
                store.client(run_settings).delete_collection(name)
    return Collected(asked, len(files), report.chunks_written, ingest_s, fallbacks, _config(run_settings),
                     corpus.name)


def score(collected: Collected, ks: list[int], modes: list[str], rrf_k: int | None = None,
          depth: int | None = None, on_item: Callable[[dict[str, Any]], None] | None = None,
          weights: tuple[float, float] | None = None) -> dict[str, dict[str, Any]]:
    """Metrics per mode. Hybrid fuses the two kept rankings exactly as `retrieval.search` does; its
    latency is the two retrievals' plus the fusion's."""
    from eval.runs import percentile
    from retrieval.search import FUSION_DEPTH, FUSION_WEIGHTS, RRF_K, fuse

    rrf_k, depth, weights = rrf_k or RRF_K, depth or FUSION_DEPTH, weights or FUSION_WEIGHTS
    scores: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    latencies: dict[str, list[float]] = {m: [] for m in modes}
    for asked in collected.asked:
        item: dict[str, Any] = {"id": asked.question.id, "question": asked.question.text,
                                "gold": sorted(asked.gold), "corpus": collected.corpus}
        timed = (asked.dense_s or 0.0) + (asked.bm25_s or 0.0) if asked.dense_s is not None else None
        for mode in modes:
            latency = None
            if mode == "hybrid":
                t0 = time.perf_counter()
                ranked = [cid for cid, _ in fuse([asked.dense[:depth], asked.bm25[:depth]], rrf_k=rrf_k,
                                                 weights=list(weights))]
                if timed is not None:
                    latency = timed + time.perf_counter() - t0
            else:
                ranked = [cid for cid, _ in getattr(asked, mode)]
                latency = getattr(asked, f"{mode}_s")
            found = ranking_metrics(ranked, asked.gold, ks)
            scores[mode].append(found)
            if latency is not None:
                latencies[mode].append(latency)
            item[mode] = {"ranked": ranked[:10], **found}
        if on_item:
            on_item(item)
    result = {}
    for mode in modes:
        metrics: dict[str, Any] = {m: round(sum(s[m] for s in scores[mode]) / len(scores[mode]), 4)
                                   for m in scores[mode][0]}
        metrics.update(items=len(scores[mode]), latency_p50_ms=_ms(percentile(latencies[mode], 50)),
                       latency_p95_ms=_ms(percentile(latencies[mode], 95)))
        result[mode] = metrics
    return result


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def evaluate_retrieval(datasets: list[str | Path], ks: list[int] | None = None, modes: list[str] | None = None,
                       settings: Settings | None = None, limit: int | None = None,
                       on_item: Callable[[dict[str, Any]], None] | None = None,
                       rankings_dir: Path | None = None, fmt: str = "auto") -> dict[str, Any]:
    """Score search on each data set (`PATH` or `NAME=PATH`) and average the corpora. `limit` samples that
    many questions per corpus (seeded); `rankings_dir` keeps both full rankings per question
    (rankings-<corpus>.jsonl, for tuning offline: eval.retrieval_choice). Returns the summary:
    {"corpora": {name: summary}, "categories": macro average per mode, "overall": the default mode's, ...}."""
    ks = sorted(ks or [1, 5, 10])
    modes = modes or list(MODES)
    settings = settings or get_settings()
    corpora: dict[str, dict[str, Any]] = {}
    for spec in datasets:
        corpus = load_corpus(str(spec), fmt, limit)
        if corpus.name in corpora:
            raise InputError(f"two data sets are named {corpus.name!r}", hint="name them: --dataset NAME=PATH")
        collected = collect(corpus, settings)
        if rankings_dir is not None:
            save_rankings(collected, Path(rankings_dir) / f"rankings-{corpus.name}.jsonl")
        categories = score(collected, ks, modes, on_item=on_item)
        corpora[corpus.name] = {
            "dataset": str(corpus.path), "kind": corpus.kind, "questions": len(collected.asked),
            "documents": collected.documents, "chunks": collected.chunks, "ingest_s": round(collected.ingest_s, 2),
            "ingest_chunks_per_s": round(collected.chunks / max(collected.ingest_s, 1e-9), 1),
            "gold_overlap_fallbacks": collected.gold_fallbacks, "derivation": corpus.notes,
            "categories": categories}
    macro = {mode: _mean([c["categories"][mode] for c in corpora.values()]) for mode in modes}
    default_mode = settings.search_mode if settings.search_mode in macro else modes[0]
    chunks, ingest_s = sum(c["chunks"] for c in corpora.values()), sum(c["ingest_s"] for c in corpora.values())
    return {
        "kind": "retrieval", "name": f"{'+'.join(corpora)} {settings.chunk_size}/{settings.chunk_overlap}",
        "dataset": ",".join(c["dataset"] for c in corpora.values()),
        "questions": sum(c["questions"] for c in corpora.values()),
        "documents": sum(c["documents"] for c in corpora.values()), "chunks": chunks,
        "ingest_s": round(ingest_s, 2), "ingest_chunks_per_s": round(chunks / max(ingest_s, 1e-9), 1),
        "default_mode": default_mode, "config": _config(settings), "corpora": corpora,
        "overall": macro[default_mode], "categories": macro,
    }


def _mean(metric_sets: list[dict[str, float]]) -> dict[str, float]:
    """The macro average: each corpus counts once, whatever its number of questions."""
    keys = [k for k in metric_sets[0] if k != "items"]
    out: dict[str, float] = {}
    for key in keys:
        values = [m[key] for m in metric_sets if m.get(key) is not None]
        if values:
            out[key] = round(sum(values) / len(values), 4 if "latency" not in key else 1)
    out["items"] = sum(m["items"] for m in metric_sets)
    return out


def save_rankings(collected: Collected, path: Path) -> None:
    """Both rankings per question, one JSON line each, after a header line with the run's facts."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with Path(path).open("w", encoding="utf-8") as out:
        out.write(json.dumps({"corpus": collected.corpus, "documents": collected.documents,
                              "chunks": collected.chunks, "ingest_s": collected.ingest_s,
                              "gold_fallbacks": collected.gold_fallbacks, "config": collected.config}) + "\n")
        for a in collected.asked:
            q = a.question
            out.write(json.dumps({"id": q.id, "question": q.text, "context": q.context, "answers": q.answers,
                                  "gold": sorted(a.gold), "dense": a.dense, "bm25": a.bm25,
                                  "dense_s": a.dense_s, "bm25_s": a.bm25_s}) + "\n")


def load_rankings(path: Path) -> Collected:
    """What `save_rankings` wrote."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    head = json.loads(lines[0])
    asked = []
    for line in lines[1:]:
        r = json.loads(line)
        question = Question(r["id"], r["question"], r["context"], [tuple(a) for a in r["answers"]])
        asked.append(Asked(question, set(r["gold"]), [tuple(x) for x in r["dense"]],
                           [tuple(x) for x in r["bm25"]], r["dense_s"], r["bm25_s"]))
    return Collected(asked, head["documents"], head["chunks"], head["ingest_s"], head["gold_fallbacks"],
                     head["config"], head.get("corpus", Path(path).stem.removeprefix("rankings-")))


def _write_documents(documents: list[tuple[str, str]], folder: Path) -> list[Path]:
    files = []
    for rel, text in documents:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
        files.append(path.resolve())
    return files


def _chunk_spans(coll: Any, files: list[Path]) -> dict[str, list[tuple[str, int, int]]]:
    from retrieval.store import iter_metadata

    spans: dict[str, list[tuple[str, int, int]]] = {str(f): [] for f in files}
    for cid, meta, _ in iter_metadata(coll):
        spans[meta["source"]].append((cid, meta["start"], meta["end"]))
    return spans


def _config(settings: Settings) -> dict[str, Any]:
    from retrieval.search import FUSION_DEPTH, FUSION_WEIGHTS, RRF_K

    return {"chunk_size": settings.chunk_size, "chunk_overlap": settings.chunk_overlap,
            "embed_model": settings.embed_model, "rrf_k": RRF_K, "fusion_depth": FUSION_DEPTH,
            "fusion_weights": list(FUSION_WEIGHTS),
            "store": "server" if settings.chroma_url else "embedded"}


def format_table(summary: dict[str, Any], ks: list[int]) -> str:
    """Markdown: one table of modes per corpus, then the macro average when there are several."""
    columns = [f"recall@{k}" for k in ks] + ["mrr@10", "ndcg@10", "latency_p50_ms", "latency_p95_ms"]

    def table(categories: dict[str, dict[str, Any]]) -> list[str]:
        lines = ["| mode | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        for mode, metrics in categories.items():
            lines.append(f"| {mode} | " + " | ".join(str(metrics.get(c, "-")) for c in columns) + " |")
        return lines

    corpora = summary["corpora"]
    if len(corpora) == 1:
        return "\n".join(table(summary["categories"]))
    out: list[str] = []
    for name, c in corpora.items():
        out += [f"### {name}: {c['questions']} questions, {c['documents']} documents, {c['chunks']} chunks, "
                f"ingest {c['ingest_chunks_per_s']} chunks/s", "", *table(c["categories"]), ""]
    out += [f"### macro average over {len(corpora)} corpora", "", *table(summary["categories"])]
    return "\n".join(out)


def main(args: argparse.Namespace) -> int:
    """`andini eval retrieval --dataset [NAME=]PATH [--dataset ...] [-k 1,5,10] [--mode M|all] [--limit N] [--out DIR] [--json]`."""
    from eval.runs import RunWriter, new_run_dir

    try:
        ks = sorted({int(k) for k in str(args.k).split(",") if k.strip()})
    except ValueError:
        raise InputError(f"-k takes comma-separated whole numbers, not {args.k!r}", field="-k") from None
    if not ks or min(ks) < 1:
        raise InputError("-k needs at least one cut-off of 1 or more", field="-k")
    datasets = args.dataset if isinstance(args.dataset, list) else [args.dataset]
    modes = list(MODES) if getattr(args, "mode", "all") in (None, "all") else [args.mode]
    fmt, limit = getattr(args, "format", "auto") or "auto", getattr(args, "limit", None)
    settings = get_settings()
    run_dir = new_run_dir("retrieval", "+".join(Path(str(d)).stem for d in datasets), getattr(args, "out", None))
    writer = RunWriter(run_dir)
    writer.write_config({"kind": "retrieval", "datasets": [str(d) for d in datasets], "format": fmt, "k": ks,
                         "modes": modes, "limit": limit, **_config(settings)})
    try:
        summary = evaluate_retrieval(datasets, ks, modes, settings, limit=limit, on_item=writer.add_item,
                                     rankings_dir=run_dir, fmt=fmt)
    finally:
        writer.close()
    writer.write_summary(summary)
    (run_dir / "report.md").write_text(format_table(summary, ks) + "\n")
    if args.json:
        from andini.cli import print_json

        print_json({"run": str(run_dir), **summary})
        return 0
    print(format_table(summary, ks))
    print(f"{summary['questions']} questions, {summary['documents']} documents, {summary['chunks']} chunks; "
          f"ingest {summary['ingest_chunks_per_s']} chunks/s; run folder: {run_dir}", file=sys.stdout)
    return 0
